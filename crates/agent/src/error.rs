//! The agent's error type and its exit codes.

use ward_client::ClientError;

/// Why the agent (or `ward run`'s supervision) stopped. Messages name files, templates,
/// API paths and the server's own messages; never a token or a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration is invalid (exit code 1).
    #[error("{0}")]
    Config(String),
    /// A local file or process could not be read, written or started (exit code 1).
    #[error("Error {action}: {source}")]
    Io {
        /// What was being done (`writing the sink file /run/token`).
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused what a template asked for (exit code 2); the text names the
    /// template, its line and the path.
    #[error("{0}")]
    Refused(String),
    /// The server refused or could not serve a call (exit code 2 for a refusal, 1 when it
    /// could not be reached).
    #[error("Error {action}: {source}")]
    Server {
        /// What was being done (`logging in with AppRole`).
        action: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
}

impl AgentError {
    /// 2 when the server refused (a 4xx answer), 1 for every local error or an outage.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Server { source, .. } if source.status().is_some_and(|s| s < 500) => 2,
            Self::Refused(_) => 2,
            _ => 1,
        }
    }

    /// A closure turning a client error into [`AgentError::Server`] with `action`.
    pub(crate) fn server(action: impl Into<String>) -> impl FnOnce(ClientError) -> Self {
        let action = action.into();
        move |source| Self::Server { action, source }
    }

    /// A closure turning an I/O error into [`AgentError::Io`] with `action`.
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let action = action.into();
        move |source| Self::Io { action, source }
    }
}
