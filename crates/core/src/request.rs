//! Transport-neutral requests and responses, shaped like Vault's logical requests.

use std::net::IpAddr;

use serde_json::{Map, Value};

/// What a request does, independent of the HTTP method that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// GET.
    Read,
    /// POST or PUT: create or update, decided by whether the target exists.
    Write,
    /// PATCH (JSON merge patch).
    Patch,
    /// DELETE.
    Delete,
    /// LIST, or GET with `?list=true`.
    List,
}

/// A request to the core.
pub struct Request {
    /// The operation.
    pub operation: Operation,
    /// The path below `/v1/`, without leading or trailing slashes normalised away.
    pub path: String,
    /// The JSON body's fields (or query parameters for reads).
    pub data: Map<String, Value>,
    /// The client token, if one was sent.
    pub token: Option<String>,
    /// The client's address, for CIDR-bound tokens.
    pub remote_addr: Option<IpAddr>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies and tokens are secret: show only the routing facts.
        f.debug_struct("Request")
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("has_token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

/// The auth block of a response that created or looked up a token.
#[derive(Clone, PartialEq)]
pub struct AuthInfo {
    /// The token itself (only when it was just created).
    pub client_token: String,
    /// The token's accessor.
    pub accessor: String,
    /// Policies attached to the token.
    pub policies: Vec<String>,
    /// Free-form metadata.
    pub metadata: Map<String, Value>,
    /// Seconds until expiry; 0 for none.
    pub lease_duration: u64,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// Whether the token has no parent.
    pub orphan: bool,
    /// Uses left; 0 for unlimited.
    pub num_uses: u64,
}

impl std::fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthInfo")
            .field("policies", &self.policies)
            .finish_non_exhaustive()
    }
}

/// A successful result.
#[derive(Debug, Default)]
pub struct Response {
    /// The `data` field of Vault's envelope; `None` means "no content" (HTTP 204).
    pub data: Option<Value>,
    /// The `auth` field, for token-issuing operations.
    pub auth: Option<AuthInfo>,
    /// Warnings for the client.
    pub warnings: Vec<String>,
    /// A raw body to send instead of the envelope (sys/health, sys/seal-status, sys/init
    /// answer with bare objects, as Vault does).
    pub raw: Option<Value>,
    /// An HTTP status to use instead of the default (sys/health's codes).
    pub status: Option<u16>,
}

impl Response {
    /// An envelope response with `data`.
    pub fn data(data: Value) -> Self {
        Self {
            data: Some(data),
            ..Self::default()
        }
    }

    /// A bare JSON response (no envelope).
    pub fn raw(body: Value) -> Self {
        Self {
            raw: Some(body),
            ..Self::default()
        }
    }

    /// A response with no body (HTTP 204).
    pub fn empty() -> Self {
        Self::default()
    }
}
