//! The CLI's error type and how each kind maps to an exit code.

use std::fmt;

use ward_client::ClientError;

/// Why a command failed. Display text is what the user sees on stderr; it never includes a
/// token or a secret value (API paths and the server's own messages only).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// Bad arguments (exit code 1: a local error, as Vault's).
    #[error("{0}")]
    Usage(String),
    /// A request failed; `action` says what was being done (`writing data to secret/data/a`).
    #[error("Error {action}: {}", ApiText(.source))]
    Api {
        /// What the command was doing.
        action: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
    /// A request of the generic `read`/`write`/`delete`/`list` commands failed (exit code
    /// 2, as every remote error).
    #[error("Error {action}: {}", ApiText(.source))]
    Request {
        /// What the command was doing.
        action: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
    /// A local file or stream could not be read.
    #[error("Error {action}: {source}")]
    Io {
        /// What the command was doing.
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing exists at the path asked for (exit code 2, as `vault kv get`).
    #[error("{0}")]
    NotFound(String),
    /// Anything else (exit code 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// Vault's exit codes: 2 for a remote error (the server refused or failed the request,
    /// or could not be reached; nothing found), 1 for a local one (arguments, files,
    /// anything else).
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Api { .. } | Self::Request { .. } | Self::NotFound(_) => 2,
            Self::Usage(_) | Self::Io { .. } | Self::Failed(_) => 1,
        }
    }

    /// A closure turning a client error into [`CliError::Api`] with `action`.
    pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(ClientError) -> Self {
        let action = action.into();
        move |source| Self::Api { action, source }
    }

    /// Like [`CliError::api`], giving [`CliError::Request`] (exit code 2).
    pub(crate) fn request(action: impl Into<String>) -> impl FnOnce(ClientError) -> Self {
        let action = action.into();
        move |source| Self::Request { action, source }
    }
}

/// Vault-like rendering of a client error: the status and the server's messages as a list.
struct ApiText<'a>(&'a ClientError);

impl fmt::Display for ApiText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ClientError::Api { status, errors } => {
                write!(f, "Error making API request.\n\nCode: {status}. Errors:\n")?;
                if errors.is_empty() {
                    write!(f, "\n* (no message)")?;
                }
                for error in errors {
                    write!(f, "\n* {error}")?;
                }
                Ok(())
            }
            other => write!(f, "{other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_list_the_servers_messages() {
        let error = CliError::api("writing data to secret/data/a")(ClientError::Api {
            status: 400,
            errors: vec!["check-and-set parameter did not match the current version".into()],
        });
        // A remote error: 2, as `bao kv put -cas=...` exits on the same answer.
        assert_eq!(error.exit_code(), 2);
        assert_eq!(
            error.to_string(),
            "Error writing data to secret/data/a: Error making API request.\n\nCode: 400. \
             Errors:\n\n* check-and-set parameter did not match the current version"
        );
        assert_eq!(CliError::Usage("x".into()).exit_code(), 1);
    }
}
