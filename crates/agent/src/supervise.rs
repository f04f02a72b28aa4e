//! One supervised command with secrets in its environment: what `ward run` and the agent's
//! `exec` mode share. The token is not passed on, signals are forwarded, the command's exit
//! code is returned, and with a watch interval the command is restarted (or signalled) when
//! a secret's value or version changes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use ward_client::{Client, SecretRef, SecretSource, SecretValue};

use crate::AgentError;

/// The token variables a child never sees: it gets its secrets, not the power to read more.
const TOKEN_VARIABLES: [&str; 2] = ["WARD_TOKEN", "VAULT_TOKEN"];

/// How long a restarted command may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What to run and how to watch it.
#[derive(Debug)]
pub struct Supervision<'a> {
    /// The client that reads the secrets.
    pub client: &'a Client,
    /// The secrets, by environment variable name.
    pub secrets: &'a BTreeMap<String, SecretRef>,
    /// The program and its arguments.
    pub command: &'a [OsString],
    /// How often to look for changes (`None`: never).
    pub watch: Option<Duration>,
    /// The signal sent on a change instead of a restart.
    pub change_signal: Option<Signal>,
    /// The prefix of the messages on stderr (`ward run`, `ward agent`).
    pub label: &'a str,
}

/// Runs the command until it exits and returns the exit code a shell would report.
pub async fn supervise(supervision: Supervision<'_>) -> Result<u8, AgentError> {
    let Supervision {
        client,
        secrets,
        command,
        watch,
        change_signal,
        label,
    } = supervision;
    let mut values = read_all(client, secrets, false, label).await?;
    let mut unreadable = false;
    let mut child = spawn(command, &values)?;
    let mut interrupt = listen(SignalKind::interrupt())?;
    let mut terminate = listen(SignalKind::terminate())?;
    let mut hangup = listen(SignalKind::hangup())?;
    let mut ticks = tokio::time::interval(watch.unwrap_or(Duration::from_secs(3600)));
    ticks.tick().await;
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.map_err(AgentError::io("waiting for the command"))?;
                return Ok(exit_code(status));
            }
            _ = interrupt.recv() => forward(&child, Signal::INT),
            _ = terminate.recv() => forward(&child, Signal::TERM),
            _ = hangup.recv() => forward(&child, Signal::HUP),
            _ = ticks.tick(), if watch.is_some() => {
                let latest = match read_all(client, secrets, true, label).await {
                    Ok(latest) => latest,
                    Err(error) => {
                        // The command keeps what it has; said once, not every tick.
                        if !unreadable {
                            say!("{label}: cannot watch the secrets: {error}");
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
                        say!("{label}: a secret changed; signalling the command");
                        forward(&child, signal);
                    }
                    None => {
                        say!("{label}: a secret changed; restarting the command");
                        stop(&mut child).await;
                        child = spawn(command, &values)?;
                    }
                }
            }
        }
    }
}

/// `NAME=mount/path#field`: an environment variable name and the secret it receives.
pub fn parse_assignment(text: &str) -> Result<(String, SecretRef), String> {
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
    label: &str,
) -> Result<BTreeMap<String, SecretValue>, AgentError> {
    let mut values = BTreeMap::new();
    for (name, secret) in wanted {
        let read = if fresh {
            client.read_secret_fresh(name, secret).await
        } else {
            client.read_secret(name, secret).await
        };
        let value = read.map_err(AgentError::server(format!("reading {secret}")))?;
        if value.source == SecretSource::Fallback && !fresh {
            say!(
                "{label}: degraded: the server cannot be reached; {name} comes from \
                 WARD_FALLBACK_{name}"
            );
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

/// Starts the command with the secrets added to (and the tokens removed from) our own
/// environment.
fn spawn(
    command: &[OsString],
    values: &BTreeMap<String, SecretValue>,
) -> Result<Child, AgentError> {
    let (program, arguments) = command
        .split_first()
        .ok_or_else(|| AgentError::Config("No command given".into()))?;
    let mut process = Command::new(program);
    process.args(arguments);
    for variable in TOKEN_VARIABLES {
        process.env_remove(variable);
    }
    process.envs(values.iter().map(|(name, value)| (name, &value.value)));
    // Its own process group, which receives the signals: a `sh -c` script's children (its
    // `sleep`, its server) are stopped with it instead of being left behind.
    process.process_group(0);
    process.spawn().map_err(AgentError::io(format!(
        "starting {}",
        program.to_string_lossy()
    )))
}

/// A stream of `kind` signals delivered to this process.
fn listen(kind: SignalKind) -> Result<tokio::signal::unix::Signal, AgentError> {
    signal(kind).map_err(AgentError::io("listening for signals"))
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
pub fn parse_signal(name: &str) -> Result<Signal, String> {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("SIG").unwrap_or(&upper) {
        "HUP" => Ok(Signal::HUP),
        "INT" => Ok(Signal::INT),
        "TERM" => Ok(Signal::TERM),
        "USR1" => Ok(Signal::USR1),
        "USR2" => Ok(Signal::USR2),
        "QUIT" => Ok(Signal::QUIT),
        _ => Err(format!(
            "{name:?} is not a signal name: expected HUP, INT, TERM, USR1, USR2 or QUIT"
        )),
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
