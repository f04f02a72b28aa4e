//! `ward run`: starts a command with secrets in its environment, as `envconsul` and
//! `infisical run` do. Nothing is written to disk, the token is not passed on, signals are
//! forwarded, and the command's exit code is returned; `--watch` restarts (or signals) the
//! command when a secret changes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use ward_api::parse_duration_seconds;
use ward_client::{Client, SecretRef, SecretSource, SecretValue};

use crate::cmd::{Outcome, read_file};
use crate::context::Context;
use crate::error::CliError;

/// The token variables a child never sees: it gets its secrets, not the power to read more.
const TOKEN_VARIABLES: [&str; 2] = ["WARD_TOKEN", "VAULT_TOKEN"];

/// How long a restarted command may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

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
    let change_signal = args.signal.as_deref().map(parse_signal).transpose()?;
    let client = &context.client;

    let mut values = read_all(client, &wanted, false).await?;
    // Watching may outlive the token's TTL: keep it renewed while the command runs.
    let _renewal = args.watch.then(|| client.start_renewal(None));
    let mut unreadable = false;
    let mut child = spawn(&args.command, &values)?;
    let mut interrupt = listen(SignalKind::interrupt())?;
    let mut terminate = listen(SignalKind::terminate())?;
    let mut hangup = listen(SignalKind::hangup())?;
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await;
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|source| CliError::Io {
                    action: "waiting for the command".into(),
                    source,
                })?;
                return Ok(Outcome { stdout: String::new(), code: exit_code(status), warnings: Vec::new() });
            }
            _ = interrupt.recv() => forward(&child, Signal::INT),
            _ = terminate.recv() => forward(&child, Signal::TERM),
            _ = hangup.recv() => forward(&child, Signal::HUP),
            _ = ticks.tick(), if args.watch => {
                let latest = match read_all(client, &wanted, true).await {
                    Ok(latest) => latest,
                    Err(error) => {
                        // The command keeps what it has; said once, not every second.
                        if !unreadable {
                            crate::print_stderr(&format!("ward run: cannot watch the secrets: {error}"));
                        }
                        unreadable = true;
                        continue;
                    }
                };
                unreadable = false;
                if latest.values().any(|v| v.source == SecretSource::Fallback)
                    || !changed(&values, &latest)
                {
                    continue;
                }
                values = latest;
                match change_signal {
                    Some(signal) => {
                        crate::print_stderr("ward run: a secret changed; signalling the command");
                        forward(&child, signal);
                    }
                    None => {
                        crate::print_stderr("ward run: a secret changed; restarting the command");
                        stop(&mut child).await;
                        child = spawn(&args.command, &values)?;
                    }
                }
            }
        }
    }
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

/// `NAME=mount/path#field`: an environment variable name and the secret it receives.
fn parse_assignment(text: &str) -> Result<(String, SecretRef), String> {
    let (name, reference) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=mount/path#field"))?;
    let name = name.trim();
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(format!("{name:?} is not an environment variable name"));
    }
    let secret = reference.trim().parse().map_err(|e| format!("{e}"))?;
    Ok((name.to_owned(), secret))
}

/// Reads every secret (`fresh`: past the cache). Fallback values are reported on stderr.
async fn read_all(
    client: &Client,
    wanted: &BTreeMap<String, SecretRef>,
    fresh: bool,
) -> Result<BTreeMap<String, SecretValue>, CliError> {
    let mut values = BTreeMap::new();
    for (name, secret) in wanted {
        let read = if fresh {
            client.read_secret_fresh(name, secret).await
        } else {
            client.read_secret(name, secret).await
        };
        let value = read.map_err(CliError::api(&format!("reading {secret}")))?;
        if value.source == SecretSource::Fallback && !fresh {
            crate::print_stderr(&format!(
                "ward run: degraded: the server cannot be reached; {name} comes from \
                 WARD_FALLBACK_{name}"
            ));
        }
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Whether a value or version differs (where each came from does not matter: the first
/// read of two fields of one secret is the server's, the second the cache's).
fn changed(before: &BTreeMap<String, SecretValue>, after: &BTreeMap<String, SecretValue>) -> bool {
    before.len() != after.len()
        || before.iter().zip(after).any(|((name_a, a), (name_b, b))| {
            name_a != name_b || a.value != b.value || a.version != b.version
        })
}

/// Starts the command with the secrets added to (and the tokens removed from) ward's own
/// environment.
fn spawn(command: &[OsString], values: &BTreeMap<String, SecretValue>) -> Result<Child, CliError> {
    let (program, arguments) = command
        .split_first()
        .ok_or_else(|| CliError::Usage("No command given after --".into()))?;
    let mut process = Command::new(program);
    process.args(arguments);
    for variable in TOKEN_VARIABLES {
        process.env_remove(variable);
    }
    process.envs(values.iter().map(|(name, value)| (name, &value.value)));
    // Its own process group, which receives the signals: a `sh -c` script's children (its
    // `sleep`, its server) are stopped with it instead of being left behind.
    process.process_group(0);
    process.spawn().map_err(|source| CliError::Io {
        action: format!("starting {}", program.to_string_lossy()),
        source,
    })
}

/// A stream of `kind` signals delivered to ward.
fn listen(kind: SignalKind) -> Result<tokio::signal::unix::Signal, CliError> {
    signal(kind).map_err(|source| CliError::Io {
        action: "listening for signals".into(),
        source,
    })
}

/// Sends `signal` to the child's process group, if the child is still running.
fn forward(child: &Child, signal: Signal) {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    if let Some(pid) = pid {
        // It may have exited a moment ago; its exit is reported by wait().
        let _ignored = kill_process_group(pid, signal);
    }
}

/// Stops the child for a restart: SIGTERM, then SIGKILL after the grace period.
async fn stop(child: &mut Child) {
    forward(child, Signal::TERM);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ignored = child.kill().await;
    }
}

/// The exit code a shell would report: the command's own, or 128 + the signal that
/// killed it.
fn exit_code(status: ExitStatus) -> u8 {
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    u8::try_from(code & 0xff).unwrap_or(1)
}

/// `HUP`, `SIGHUP` or `hup` (and INT, TERM, USR1, USR2, QUIT).
fn parse_signal(name: &str) -> Result<Signal, CliError> {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("SIG").unwrap_or(&upper) {
        "HUP" => Ok(Signal::HUP),
        "INT" => Ok(Signal::INT),
        "TERM" => Ok(Signal::TERM),
        "USR1" => Ok(Signal::USR1),
        "USR2" => Ok(Signal::USR2),
        "QUIT" => Ok(Signal::QUIT),
        _ => Err(CliError::Usage(format!(
            "Invalid -signal {name:?}: expected HUP, INT, TERM, USR1, USR2 or QUIT"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_need_a_variable_name_and_a_reference() {
        let (name, secret) = parse_assignment("DB_PASSWORD=secret/myapp/db#password").unwrap();
        assert_eq!(name, "DB_PASSWORD");
        assert_eq!(secret.to_string(), "secret/myapp/db#password");
        for bad in [
            "DB_PASSWORD",
            "1X=secret/a#b",
            "A-B=secret/a#b",
            "=secret/a#b",
            "X=secret/a",
        ] {
            assert!(parse_assignment(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn signals_parse_with_or_without_the_prefix() {
        assert_eq!(parse_signal("HUP").unwrap(), Signal::HUP);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::TERM);
        assert!(parse_signal("KILLALL").is_err());
    }
}
