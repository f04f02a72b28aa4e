//! `ward run`: starts a command with secrets in its environment, as `envconsul` and
//! `infisical run` do. Nothing is written to disk, the token is not passed on, signals are
//! forwarded, and the command's exit code is returned; `--watch` restarts (or signals) the
//! command when a secret changes. The supervision is `ward_agent::supervise`, which the
//! agent's `exec` mode shares.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use ward_agent::AgentError;
use ward_agent::supervise::{Supervision, parse_assignment, parse_signal, supervise};
use ward_api::parse_duration_seconds;
use ward_client::SecretRef;

use crate::cmd::{Outcome, read_file};
use crate::context::Context;
use crate::error::CliError;

/// Arguments of `ward run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// A secret for the command's environment: `NAME=mount/path#field`
    /// (`DB_PASSWORD=secret/myapp/db#password`). Repeatable; wins over --env-file.
    #[arg(long = "secret", value_name = "NAME=REF")]
    secrets: Vec<String>,
    /// A file of `NAME=mount/path#field` lines (blank lines and `#` comment lines allowed).
    /// Repeatable.
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// Watch the secrets and restart the command (or send it --signal) when one changes.
    #[arg(long)]
    watch: bool,
    /// How often --watch asks the server (whole seconds: `1s`, `1m`). The default sees a
    /// change within a second, for one small read per secret per second.
    #[arg(long = "watch-interval", value_name = "DURATION", default_value = "1s")]
    watch_interval: String,
    /// With --watch: send this signal (HUP, INT, TERM, USR1, USR2) on a change instead of
    /// restarting the command.
    #[arg(long = "signal", value_name = "SIGNAL")]
    signal: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// `ward run`.
pub(crate) async fn run(context: &Context, args: RunArgs) -> Result<Outcome, CliError> {
    let wanted = wanted_secrets(&args)?;
    let interval = Duration::from_secs(
        parse_duration_seconds(&args.watch_interval)
            .map_err(|e| CliError::Usage(format!("Invalid -watch-interval: {e}")))?
            .max(1),
    );
    let change_signal = args
        .signal
        .as_deref()
        .map(parse_signal)
        .transpose()
        .map_err(|e| CliError::Usage(format!("Invalid -signal: {e}")))?;
    let client = &context.client;
    // Watching may outlive the token's TTL: keep it renewed while the command runs.
    let _renewal = args.watch.then(|| client.start_renewal(None));
    let code = supervise(Supervision {
        client,
        secrets: &wanted,
        command: &args.command,
        watch: args.watch.then_some(interval),
        change_signal,
        label: "ward run",
    })
    .await
    .map_err(|error| match error {
        AgentError::Server { action, source } => CliError::Api { action, source },
        AgentError::Io { action, source } => CliError::Io { action, source },
        other => CliError::Failed(other.to_string()),
    })?;
    Ok(Outcome {
        stdout: String::new(),
        code,
        warnings: Vec::new(),
    })
}

/// The secrets asked for, by variable name: the env files in order, then --secret.
fn wanted_secrets(args: &RunArgs) -> Result<BTreeMap<String, SecretRef>, CliError> {
    let mut wanted = BTreeMap::new();
    for file in &args.env_files {
        let text = read_file(&file.display().to_string(), "the env file")?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, secret) = parse_assignment(line).map_err(|e| {
                CliError::Usage(format!("{}, line {}: {e}", file.display(), number + 1))
            })?;
            wanted.insert(name, secret);
        }
    }
    for assignment in &args.secrets {
        let (name, secret) = parse_assignment(assignment)
            .map_err(|e| CliError::Usage(format!("Invalid -secret: {e}")))?;
        wanted.insert(name, secret);
    }
    if wanted.is_empty() {
        return Err(CliError::Usage(
            "No secrets: give -secret NAME=mount/path#field or -env-file FILE".into(),
        ));
    }
    Ok(wanted)
}
