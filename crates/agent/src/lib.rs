//! `ward agent`: a long-running helper beside an application, configured by a TOML file
//! with Vault Agent's blocks and names.
//!
//! - **auto-auth** ([`config::AutoAuthConfig`]): logs in with AppRole (role and secret ID
//!   files, the latter removed once read) or a token file, writes the token to sink files
//!   (mode 0600, atomically) and keeps it alive with the client's renewal, which logs in
//!   again when the token can no longer be renewed;
//! - **templates**: files rendered with minijinja from KV secrets and transit operations,
//!   rendered again every `static_secret_render_interval` and written (then their command
//!   run) only when their output changes;
//! - **exec**: one child with secrets in its environment, restarted or signalled when they
//!   change: [`supervise`], the code `ward run --watch` runs;
//! - **api_proxy**: a loopback listener forwarding requests with the agent's token and
//!   answering reads from its cache while the server is sealed or down.

/// Writes one line to stderr, ignoring a closed stderr (a log line is never worth a panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ignored = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod auth;
pub mod config;
mod error;
mod files;
mod proxy;
pub mod supervise;
mod template;

use std::ffi::OsString;
use std::path::Path;

use tokio::signal::unix::{SignalKind, signal};
use ward_client::{Client, ClientOptions, DEFAULT_ADDRESS};

pub use config::AgentConfig;
pub use error::AgentError;

use crate::auth::{DEFAULT_SINK_MODE, Sink};
use crate::supervise::{Supervision, supervise};
use crate::template::Templates;

/// Runs the agent configured by `config_path` until it is stopped (SIGINT or SIGTERM: exit
/// code 0) or, in exec mode, until its child exits (the child's exit code).
pub async fn run(config_path: &Path) -> Result<u8, AgentError> {
    let config = AgentConfig::load(config_path)?;
    let exec = config.exec().map_err(AgentError::Config)?;
    let interval = config.render_interval().map_err(AgentError::Config)?;
    let proxy_addresses = config.proxy_addresses().map_err(AgentError::Config)?;
    let client = client(&config)?;
    // Templates are compiled before logging in: a mistake in one costs no login (nor the
    // secret ID file).
    let mut templates = if config.template.is_empty() {
        None
    } else {
        Some(Templates::load(&config.template, &client)?)
    };

    let mut _auth = None;
    if let (Some(auto_auth), Some(method)) = (&config.auto_auth, config.auth_method()) {
        let sinks = auto_auth
            .sink
            .iter()
            .map(|sink| Sink {
                path: sink.config.path.clone(),
                mode: sink.config.mode.map_or(DEFAULT_SINK_MODE, |m| m.bits()),
            })
            .collect();
        let login = auth::prepare(&method)?;
        _auth = Some(auth::start(&client, login, sinks).await?);
    }
    let _proxy = if proxy_addresses.is_empty() {
        Vec::new()
    } else {
        let use_token = config
            .api_proxy
            .as_ref()
            .and_then(|p| p.use_auto_auth_token)
            .unwrap_or(true);
        proxy::start(&client, &proxy_addresses, use_token, config.proxy_caches()).await?
    };
    let _templates = match templates.take() {
        Some(mut templates) => {
            // The first pass must succeed: an application started after the agent
            // expects its files.
            templates.pass().await?;
            Some(AbortOnDrop(tokio::spawn(templates.watch(interval))))
        }
        None => None,
    };

    if let Some(exec) = exec {
        let command: Vec<OsString> = exec.command.iter().map(OsString::from).collect();
        return supervise(Supervision {
            client: &client,
            secrets: &exec.env,
            command: &command,
            watch: exec.watch.then_some(interval),
            change_signal: exec.signal,
            label: "ward agent",
        })
        .await;
    }
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(AgentError::io("listening for signals"))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(AgentError::io("listening for signals"))?;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    say!("ward agent: stopping");
    Ok(0)
}

/// A background task stopped when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The client for `[vault]`: its address (else `WARD_ADDR`, `VAULT_ADDR`, the default) and
/// TLS trust. No token yet: auto-auth brings it.
fn client(config: &AgentConfig) -> Result<Client, AgentError> {
    let address = config
        .vault
        .address
        .clone()
        .or_else(|| std::env::var("WARD_ADDR").ok().filter(|a| !a.is_empty()))
        .or_else(|| std::env::var("VAULT_ADDR").ok().filter(|a| !a.is_empty()))
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
    let mut options = ClientOptions {
        tls_skip_verify: config.vault.tls_skip_verify,
        ..ClientOptions::default()
    };
    if let Some(path) = &config.vault.ca_cert {
        options.ca_cert_pem = Some(std::fs::read(path).map_err(AgentError::io(format!(
            "reading the CA certificate {}",
            path.display()
        )))?);
    }
    Client::with_options(&address, None, &options)
        .map_err(|e| AgentError::Config(format!("Error in [vault]: {e}")))
}
