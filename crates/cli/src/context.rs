//! The connection settings every client command shares: address, token, output format.

use ward_client::{Client, DEFAULT_ADDRESS};

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
    /// Token to authenticate with [env: WARD_TOKEN, then VAULT_TOKEN].
    // The id differs from the name: `token lookup TOKEN` has a positional named `token`.
    #[arg(
        long = "token",
        id = "global_token",
        global = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Output format.
    #[arg(long = "format", id = "global_format", global = true, value_name = "FORMAT", value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// A ready client and the chosen output format.
pub(crate) struct Context {
    /// The HTTP client.
    pub(crate) client: Client,
    /// Output format.
    pub(crate) format: Format,
}

impl GlobalArgs {
    /// The output format asked for.
    #[cfg(test)]
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Builds the client: flags win over WARD_*, which win over VAULT_*.
    pub(crate) fn context(&self) -> Result<Context, CliError> {
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
            .or_else(|| env_var("VAULT_TOKEN"));
        let client = Client::new(&address, token.as_deref().map(str::trim))
            .map_err(|e| CliError::Usage(format!("Error configuring the client: {e}")))?;
        Ok(Context {
            client,
            format: self.format,
        })
    }
}

/// An environment variable, treating empty as unset (as Vault does).
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
