//! The connection settings every client command shares: address, token, output format.

use std::path::PathBuf;
use std::time::Duration;

use ward_api::parse_duration_seconds;
use ward_client::{Client, ClientOptions, DEFAULT_ADDRESS, DEFAULT_TIMEOUT};

use crate::error::CliError;
use crate::output::Format;

/// Flags accepted by every client command.
#[derive(Debug, clap::Args)]
pub(crate) struct GlobalArgs {
    /// Server address [env: WARD_ADDR, then VAULT_ADDR; default http://127.0.0.1:8200].
    #[arg(
        long = "address",
        id = "global_address",
        global = true,
        value_name = "URL"
    )]
    address: Option<String>,
    /// Token to authenticate with [env: WARD_TOKEN, then VAULT_TOKEN; then the one `ward
    /// login` stored in ~/.ward-token, else ~/.vault-token].
    // The id differs from the name: `token lookup TOKEN` has a positional named `token`.
    #[arg(
        long = "token",
        id = "global_token",
        global = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Output format: table or json; `report compliance` also takes markdown and html
    /// [env: WARD_FORMAT, then VAULT_FORMAT; default: table].
    // A string, not a value enum: `report compliance` has formats of its own.
    #[arg(
        long = "format",
        id = "global_format",
        global = true,
        value_name = "FORMAT"
    )]
    format: Option<String>,
    /// PEM CA bundle to trust instead of the system roots [env: WARD_CACERT, then VAULT_CACERT].
    #[arg(
        long = "ca-cert",
        id = "global_ca_cert",
        global = true,
        value_name = "FILE"
    )]
    ca_cert: Option<PathBuf>,
    /// PEM client certificate for mutual TLS, with -client-key [env: WARD_CLIENT_CERT, then
    /// VAULT_CLIENT_CERT].
    #[arg(
        long = "client-cert",
        id = "global_client_cert",
        global = true,
        value_name = "FILE"
    )]
    client_cert: Option<PathBuf>,
    /// PEM private key of -client-cert [env: WARD_CLIENT_KEY, then VAULT_CLIENT_KEY].
    #[arg(
        long = "client-key",
        id = "global_client_key",
        global = true,
        value_name = "FILE"
    )]
    client_key: Option<PathBuf>,
    /// Do not verify the server's certificate (insecure) [env: WARD_SKIP_VERIFY, then
    /// VAULT_SKIP_VERIFY].
    #[arg(long = "tls-skip-verify", id = "global_tls_skip_verify", global = true)]
    tls_skip_verify: bool,
    /// Request timeout (`60s`, `2m`) [env: WARD_CLIENT_TIMEOUT, then VAULT_CLIENT_TIMEOUT].
    #[arg(
        long = "client-timeout",
        id = "global_client_timeout",
        global = true,
        value_name = "DURATION"
    )]
    client_timeout: Option<String>,
}

/// A ready client and the chosen output format.
#[derive(Clone)]
pub(crate) struct Context {
    /// The HTTP client.
    pub(crate) client: Client,
    /// Output format.
    pub(crate) format: Format,
}

impl GlobalArgs {
    /// The output format: the flag, else WARD_FORMAT, else VAULT_FORMAT, else table.
    pub(crate) fn format(&self) -> Result<Format, CliError> {
        match self.format_name() {
            None => Ok(Format::Table),
            Some(name) => <Format as clap::ValueEnum>::from_str(&name, true).map_err(|_| {
                CliError::Usage(format!("Invalid output format {name:?} (table or json)"))
            }),
        }
    }

    /// The output format asked for, by name: the flag, else WARD_FORMAT, else VAULT_FORMAT.
    pub(crate) fn format_name(&self) -> Option<String> {
        self.format
            .clone()
            .or_else(|| env_var("WARD_FORMAT"))
            .or_else(|| env_var("VAULT_FORMAT"))
    }

    /// Builds the client: flags win over WARD_*, which win over VAULT_*.
    pub(crate) fn context(&self) -> Result<Context, CliError> {
        self.context_with(self.format()?)
    }

    /// Builds the client for a command that reads the format name itself.
    pub(crate) fn context_with(&self, format: Format) -> Result<Context, CliError> {
        let address = self
            .address
            .clone()
            .or_else(|| env_var("WARD_ADDR"))
            .or_else(|| env_var("VAULT_ADDR"))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        let token = self
            .token
            .clone()
            .or_else(|| env_var("WARD_TOKEN"))
            .or_else(|| env_var("VAULT_TOKEN"))
            .or_else(crate::token_file::read);
        let options = self.client_options()?;
        let client = Client::with_options(&address, token.as_deref().map(str::trim), &options)
            .map_err(|e| CliError::Usage(format!("Error configuring the client: {e}")))?;
        Ok(Context { client, format })
    }
}

impl GlobalArgs {
    /// TLS and timeout settings from the flags, then WARD_*, then VAULT_* variables.
    fn client_options(&self) -> Result<ClientOptions, CliError> {
        let ca_cert = setting(&self.ca_cert, "WARD_CACERT", "VAULT_CACERT");
        let ca_cert_pem = ca_cert
            .map(|path| read_file(&path, "the CA certificate"))
            .transpose()?;
        let client_cert = setting(&self.client_cert, "WARD_CLIENT_CERT", "VAULT_CLIENT_CERT");
        let client_key = setting(&self.client_key, "WARD_CLIENT_KEY", "VAULT_CLIENT_KEY");
        let client_cert_pem = match (client_cert, client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((
                read_file(&cert, "the client certificate")?,
                read_file(&key, "the client key")?,
            )),
            _ => {
                return Err(CliError::Usage(
                    "A client certificate needs its key, and a key its certificate \
                     (-client-cert and -client-key)"
                        .into(),
                ));
            }
        };
        let skip_env = env_var("WARD_SKIP_VERIFY").or_else(|| env_var("VAULT_SKIP_VERIFY"));
        let tls_skip_verify = self.tls_skip_verify
            || skip_env
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        let timeout = match self
            .client_timeout
            .clone()
            .or_else(|| env_var("WARD_CLIENT_TIMEOUT"))
            .or_else(|| env_var("VAULT_CLIENT_TIMEOUT"))
        {
            Some(text) => {
                let seconds = parse_duration_seconds(&text)
                    .map_err(|e| CliError::Usage(format!("Invalid client timeout: {e}")))?;
                Duration::from_secs(seconds.max(1))
            }
            None => DEFAULT_TIMEOUT,
        };
        Ok(ClientOptions {
            timeout,
            ca_cert_pem,
            tls_skip_verify,
            client_cert_pem,
        })
    }
}

/// A path setting: the flag, else the WARD_ variable, else the VAULT_ one.
fn setting(flag: &Option<PathBuf>, ward: &str, vault: &str) -> Option<PathBuf> {
    flag.clone()
        .or_else(|| env_var(ward).map(PathBuf::from))
        .or_else(|| env_var(vault).map(PathBuf::from))
}

/// The contents of `path`, named `what` in the error.
fn read_file(path: &std::path::Path, what: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        action: format!("reading {what} {}", path.display()),
        source,
    })
}

/// An environment variable, treating empty as unset (as Vault does).
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
