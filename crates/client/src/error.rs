//! The client's error type.

/// What went wrong with a request. Messages never include the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error status; `errors` is its `{"errors": [...]}` list.
    #[error("{}", api_message(*status, errors))]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The server's messages (may be empty, as for a plain 404).
        errors: Vec<String>,
    },
    /// The server could not be reached, or the connection failed mid-request.
    #[error("error talking to the server: {}", with_causes(.0))]
    Transport(#[source] reqwest::Error),
    /// The server's reply was not the JSON expected.
    #[error("could not decode the server's reply to {path}: {source}")]
    Decode {
        /// The API path requested (never contains secrets: tokens travel in a header).
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// What the server sent could not be written where it was to go (a snapshot file).
    #[error("could not write the server's reply: {0}")]
    Write(#[source] std::io::Error),
    /// The server address is not a usable http(s) URL.
    #[error("invalid server address {0:?}: expected http://host:port or https://host:port")]
    InvalidAddress(String),
    /// The CA certificate given to trust could not be parsed.
    #[error("invalid CA certificate: {0}")]
    InvalidCaCertificate(#[source] reqwest::Error),
    /// The client certificate or its key could not be parsed.
    #[error("invalid client certificate or key: {}", with_causes(.0))]
    InvalidClientCertificate(#[source] reqwest::Error),
    /// The token contains characters an HTTP header cannot carry (the token is not shown).
    #[error("the token contains characters that cannot be sent in an HTTP header")]
    InvalidToken,
    /// The circuit breaker of this server is open after repeated failures: the call was not
    /// sent. It lets a probe through once its open period is over.
    #[error(
        "the circuit to {address} is open after repeated failures (the last: {last_error}); \
         not calling it for now"
    )]
    CircuitOpen {
        /// The server's address.
        address: String,
        /// What the last failed call met (never contains the token).
        last_error: String,
    },
    /// The request is malformed before it is sent (a caller's mistake).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// The HTTP status, for errors the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the server answered 503 because it is sealed (or otherwise unavailable).
    pub fn is_unavailable(&self) -> bool {
        self.status() == Some(503)
    }

    /// True when the server could not serve the call at all: unreachable, its circuit open,
    /// or answering 5xx. What makes [`Client::read_secret`](crate::Client::read_secret) use
    /// a fallback; a 4xx (denied, not found) never does.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::CircuitOpen { .. })
            || self.status().is_some_and(|status| status >= 500)
    }
}

fn api_message(status: u16, errors: &[String]) -> String {
    if errors.is_empty() {
        format!("server returned HTTP {status}")
    } else {
        format!("server returned HTTP {status}: {}", errors.join("; "))
    }
}

/// `error`'s message followed by its causes', so that a TLS failure says why ("invalid peer
/// certificate: UnknownIssuer") instead of only "error sending request".
fn with_causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let message = inner.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = inner.source();
    }
    text
}
