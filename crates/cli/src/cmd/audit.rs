//! `ward audit enable|disable|list` (Vault's commands) and `ward audit verify FILE...`, which
//! checks the hash chain of audit files offline, and with the device's public key its signed
//! checkpoints (and with the head the server reports, that no line was cut from its end).

use std::io::{BufRead, BufReader};

use clap::Subcommand;
use serde_json::{Map, Value, json};
use ward_api::audit::{ChainHead, ChainVerifier, SeriesStart};
use ward_crypto::Ed25519PublicKey;

use crate::cmd::{Outcome, parse_pairs};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, columns, json};

/// `ward audit ...`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Enable an audit device: `ward audit enable file file_path=/var/log/ward/audit.log`.
    Enable {
        /// Where to enable it (default: the type's name).
        #[arg(long)]
        path: Option<String>,
        /// A description shown by `audit list`.
        #[arg(long, default_value = "")]
        description: String,
        /// Mark the device local (accepted for Vault compatibility).
        #[arg(long)]
        local: bool,
        /// The device type: file, socket or syslog.
        device_type: String,
        /// Options as key=value: file_path, fsync; address, socket_type; facility, tag.
        options: Vec<String>,
    },
    /// Disable an audit device.
    Disable {
        /// The device's path.
        path: String,
    },
    /// List the enabled audit devices.
    List {
        /// Show each device's options too.
        #[arg(long)]
        detailed: bool,
    },
    /// Check the hash chain of audit files (a rotated series in order, oldest first). Exits
    /// 1 and names the first edited, removed, inserted or reordered line if the chain is
    /// broken. Works offline: no server needed. With the device's public key (`sys/audit`
    /// shows it) every checkpoint's signature is checked too, which finds a log re-chained
    /// from any line before its last checkpoint, or cut at its start; with the head the
    /// server reports, a log cut after its last checkpoint.
    Verify {
        /// The device's checkpoint key (`ed25519:<hex>`, as `sys/audit` shows it).
        #[arg(long = "public-key", alias = "public_key")]
        public_key: Option<String>,
        /// The device's head as `sys/audit` shows it (`SEQ:sha256:<hex>`): the log must
        /// reach it.
        #[arg(long)]
        head: Option<String>,
        /// The files, oldest first.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

/// Runs an audit command that talks to the server.
pub(crate) async fn run(context: &Context, command: AuditCommand) -> Result<Outcome, CliError> {
    match command {
        AuditCommand::Enable {
            path,
            description,
            local,
            device_type,
            options,
        } => {
            let path = device_path(path.as_deref().unwrap_or(&device_type));
            let options: Map<String, Value> = parse_pairs(&options, "option")?
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let body = json!({
                "type": device_type,
                "description": description,
                "local": local,
                "options": options,
            });
            context
                .client
                .write(&format!("sys/audit/{path}"), &body)
                .await
                .map_err(CliError::api(format!("enabling audit device at {path}")))?;
            Ok(Outcome::line(format!(
                "Success! Enabled the {device_type} audit device at: {path}"
            )))
        }
        AuditCommand::Disable { path } => {
            let path = device_path(&path);
            context
                .client
                .delete(&format!("sys/audit/{path}"))
                .await
                .map_err(CliError::api(format!("disabling audit device at {path}")))?;
            Ok(Outcome::line(format!(
                "Success! Disabled audit device (if it was enabled) at: {path}"
            )))
        }
        AuditCommand::List { detailed } => list(context, detailed).await,
        AuditCommand::Verify {
            files,
            public_key,
            head,
        } => verify(&files, public_key.as_deref(), head.as_deref()),
    }
}

async fn list(context: &Context, detailed: bool) -> Result<Outcome, CliError> {
    let devices = context
        .client
        .read("sys/audit")
        .await
        .map_err(CliError::api("listing audit devices"))?
        .and_then(|r| r.data)
        .and_then(|d| d.as_object().cloned())
        .unwrap_or_default();
    if context.format == Format::Json {
        return Ok(Outcome::ok(json(&devices)?));
    }
    if devices.is_empty() {
        // Vault prints this on stderr and exits 2.
        return Err(CliError::NotFound("No audit devices are enabled.".into()));
    }
    let mut headers = vec!["Path", "Type", "Description"];
    if detailed {
        headers.push("Options");
    }
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|(path, info)| {
            let text = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let description = text("description");
            let mut row = vec![
                path.clone(),
                text("type"),
                if description.is_empty() {
                    "n/a".into()
                } else {
                    description
                },
            ];
            if detailed {
                let options: Vec<String> = info
                    .get("options")
                    .and_then(Value::as_object)
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or(&v.to_string())))
                            .collect()
                    })
                    .unwrap_or_default();
                row.push(format!("map[{}]", options.join(" ")));
            }
            row
        })
        .collect();
    Ok(Outcome::ok(columns(&headers, &rows)))
}

/// A head as `sys/audit` shows it: `SEQ:PREV_HASH`.
fn parse_head(text: &str) -> Result<ChainHead, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "invalid --head {text:?}: expected SEQ:sha256:<hex>, as sys/audit shows it"
        ))
    };
    let (seq, prev_hash) = text.trim().split_once(':').ok_or_else(bad)?;
    let seq = seq.parse::<u64>().map_err(|_| bad())?;
    if seq == 0 || !prev_hash.starts_with(ward_api::audit::HASH_PREFIX) {
        return Err(bad());
    }
    Ok(ChainHead {
        seq,
        prev_hash: prev_hash.to_owned(),
    })
}

/// `ward audit verify FILE...`: streams each file through the chain verifier.
pub(crate) fn verify(
    files: &[String],
    public_key: Option<&str>,
    head: Option<&str>,
) -> Result<Outcome, CliError> {
    let mut verifier = ChainVerifier::new();
    if let Some(text) = public_key {
        let key = Ed25519PublicKey::from_text(text).ok_or_else(|| {
            CliError::Usage(format!(
                "invalid --public-key {text:?}: expected ed25519:<64 hex digits>, as sys/audit shows it"
            ))
        })?;
        verifier = verifier.with_key(Box::new(key));
    }
    if let Some(text) = head {
        verifier = verifier.expect_head(parse_head(text)?);
    }
    for (index, name) in files.iter().enumerate() {
        if index > 0 {
            verifier.next_file();
        }
        let file = std::fs::File::open(name).map_err(|source| CliError::Io {
            action: format!("reading audit file {name}"),
            source,
        })?;
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(|source| CliError::Io {
                action: format!("reading audit file {name}"),
                source,
            })?;
            if let Err(bad) = verifier.push(&line) {
                let file = files.get(bad.file).map_or(name.as_str(), String::as_str);
                return Err(CliError::Failed(format!(
                    "Audit chain broken: {file} line {}: {}",
                    bad.line, bad.reason
                )));
            }
        }
    }
    if let Err(bad) = verifier.finish() {
        let file = files
            .get(bad.file)
            .or(files.last())
            .map_or("", String::as_str);
        return Err(CliError::Failed(format!(
            "Audit chain broken: {file} line {}: {}",
            bad.line, bad.reason
        )));
    }
    let mut text = format!(
        "Success! The hash chain of {} line(s) in {} file(s) is intact.\n",
        verifier.lines(),
        files.len()
    );
    match (public_key.is_some(), verifier.last_checkpoint()) {
        (true, Some(last)) => text.push_str(&format!(
            "Checkpoints: {} signature(s) verified with the public key; the last (sequence {}) covers every line before it.\n",
            verifier.checkpoints(),
            last.seq
        )),
        (false, Some(_)) => text.push_str(&format!(
            "Note: {} checkpoint(s) found but not checked: give --public-key (sys/audit shows the device's) to check their signatures.\n",
            verifier.checkpoints()
        )),
        (_, None) => text.push_str(
            "Note: no checkpoint covers these lines (written before Ward signed checkpoints): only the chain was checked.\n",
        ),
    }
    let after = verifier.lines_after_checkpoint();
    if head.is_some() {
        text.push_str("Head: the log reaches the head the server reported.\n");
    } else if verifier.last_checkpoint().is_some() && after > 0 {
        text.push_str(&format!(
            "Note: {after} line(s) after the last checkpoint are covered by no signature: give --head (sys/audit shows the device's) to check none was cut from the end.\n"
        ));
    }
    if verifier.series_start() == Some(SeriesStart::OpenedFile) {
        text.push_str("Note: the log starts at a checkpoint that opened a file: the files before it were not given.\n");
    }
    if let Some(seq) = verifier.started_mid_chain() {
        text.push_str(&format!(
            "Note: {} starts at sequence {seq}: it continues an earlier file that was not given, which was not checked.\n",
            files.first().map_or("", String::as_str)
        ));
    }
    text.push_str(
        "Note: the last line can be altered undetected until a line after it is written.\n",
    );
    Ok(Outcome::ok(text))
}

/// A device path with exactly one trailing slash, as Vault prints them.
fn device_path(path: &str) -> String {
    format!("{}/", path.trim_matches('/'))
}
