//! Auto-auth: the first login (AppRole or a token file), the token written to the sink
//! files, and kept alive by the client's own renewal (which logs in again when renewal is
//! no longer possible); each new token goes to the sinks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ward_client::{Client, Login, RenewalHandle};
use zeroize::Zeroizing;

use crate::AgentError;
use crate::config::AuthMethod;
use crate::files::write_atomically;

/// The default sink file mode: the owner alone.
pub(crate) const DEFAULT_SINK_MODE: u32 = 0o600;

/// Longest wait between two attempts of the first login while the server is unreachable.
const MAX_LOGIN_BACKOFF: Duration = Duration::from_secs(30);

/// How often the sink writer looks for a new token.
const SINK_CHECK: Duration = Duration::from_millis(250);

/// A sink file and its mode.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    pub(crate) path: PathBuf,
    pub(crate) mode: u32,
}

/// The login the method describes. Reads the AppRole files now (removing the secret ID
/// file when asked): later logins use what was read.
pub(crate) fn prepare(method: &AuthMethod) -> Result<Login, AgentError> {
    match method {
        AuthMethod::AppRole {
            mount,
            role_id_file,
            secret_id_file,
            remove_secret_id_file,
        } => {
            let role_id = read_trimmed(role_id_file, "the role ID")?;
            let secret_id = match secret_id_file {
                Some(path) => {
                    let secret_id = read_trimmed(path, "the secret ID")?;
                    if *remove_secret_id_file {
                        std::fs::remove_file(path).map_err(AgentError::io(format!(
                            "removing the secret ID file {}",
                            path.display()
                        )))?;
                    }
                    Some(secret_id)
                }
                None => None,
            };
            Ok(Login::AppRole {
                mount: mount.clone(),
                role_id: role_id.to_string(),
                secret_id: secret_id.map(|s| s.to_string()),
            })
        }
        AuthMethod::TokenFile(path) => {
            // Checked now, so that a missing file is a local error (exit 1).
            read_trimmed(path, "the token")?;
            Ok(Login::TokenFile(path.clone()))
        }
    }
}

fn read_trimmed(path: &Path, what: &str) -> Result<Zeroizing<String>, AgentError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(AgentError::io(format!(
            "reading {what} from {}",
            path.display()
        )))?,
    );
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(AgentError::Config(format!(
            "{} is empty: expected {what}",
            path.display()
        )));
    }
    Ok(Zeroizing::new(trimmed.to_owned()))
}

/// Logs in (retrying with backoff while the server cannot be reached; a refusal is an
/// error), writes the sinks, and starts renewal and the sink writer. Dropping the returned
/// handles stops both.
pub(crate) async fn start(
    client: &Client,
    login: Login,
    sinks: Vec<Sink>,
) -> Result<(RenewalHandle, tokio::task::JoinHandle<()>), AgentError> {
    let mut backoff = Duration::from_millis(500);
    loop {
        match client.login(&login).await {
            Ok(_) => break,
            Err(error) if error.is_outage() => {
                say!("ward agent: cannot log in yet ({error}); trying again in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_LOGIN_BACKOFF);
            }
            Err(error) => return Err(AgentError::server("logging in")(error)),
        }
    }
    let mut written = client.token_generation();
    write_sinks(client, &sinks)?;
    say!(
        "ward agent: authenticated; token written to {} sink(s)",
        sinks.len()
    );
    let renewal = client.start_renewal(Some(login));
    let watcher_client = client.clone();
    let writer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(SINK_CHECK).await;
            let generation = watcher_client.token_generation();
            if generation == written {
                continue;
            }
            match write_sinks(&watcher_client, &sinks) {
                Ok(()) => {
                    written = generation;
                    say!("ward agent: new token written to the sink(s)");
                }
                Err(error) => say!("ward agent: {error}"),
            }
        }
    });
    Ok((renewal, writer))
}

/// Writes the client's token to every sink.
fn write_sinks(client: &Client, sinks: &[Sink]) -> Result<(), AgentError> {
    let Some(token) = client.token() else {
        return Ok(());
    };
    for sink in sinks {
        write_atomically(&sink.path, token.as_bytes(), sink.mode).map_err(AgentError::io(
            format!("writing the sink file {}", sink.path.display()),
        ))?;
    }
    Ok(())
}
