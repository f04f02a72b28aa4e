//! The commands, one module per group, and what they share.

pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod data;
pub(crate) mod generic;
pub(crate) mod kv;
pub(crate) mod login;
pub(crate) mod operator;
pub(crate) mod policy;
pub(crate) mod quorum;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod secrets;
pub(crate) mod snapshot;
pub(crate) mod token;

use std::collections::BTreeMap;
use std::io::Read;

use crate::error::CliError;

/// What a successful command prints to stdout, and its exit code.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Text for stdout.
    pub(crate) stdout: String,
    /// Exit code (0 unless the command reports a state, as `status` does).
    pub(crate) code: u8,
    /// Warnings the server returned, printed to stderr as Vault's CLI does.
    pub(crate) warnings: Vec<String>,
}

impl Outcome {
    /// Exit code 0 with `stdout`.
    pub(crate) fn ok(stdout: impl Into<String>) -> Self {
        Self {
            stdout: stdout.into(),
            code: 0,
            warnings: Vec::new(),
        }
    }

    /// The same outcome with the server's warnings attached.
    pub(crate) fn with_warnings(mut self, warnings: Option<Vec<String>>) -> Self {
        self.warnings.extend(warnings.into_iter().flatten());
        self
    }

    /// `stdout` with a trailing newline added.
    pub(crate) fn line(stdout: impl Into<String>) -> Self {
        let mut text = stdout.into();
        text.push('\n');
        Self::ok(text)
    }
}

/// All of stdin as a string.
pub(crate) fn read_stdin(what: &str) -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| CliError::Io {
            action: format!("reading {what} from stdin"),
            source,
        })?;
    Ok(text)
}

/// A file's contents as a string.
pub(crate) fn read_file(path: &str, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        action: format!("reading {what} from {path}"),
        source,
    })
}

/// `k=v` pairs (repeatable flags such as `-metadata`) as a map.
pub(crate) fn parse_pairs(
    pairs: &[String],
    flag: &str,
) -> Result<BTreeMap<String, String>, CliError> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            // Only the key is shown: the value may be secret.
            _ => Err(CliError::Usage(format!(
                "Invalid -{flag} {:?}: expected key=value",
                pair.split('=').next().unwrap_or_default()
            ))),
        })
        .collect()
}
