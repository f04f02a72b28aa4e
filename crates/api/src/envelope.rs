//! The response envelope every Vault endpoint (except a few `sys/` ones) wraps its data in.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Vault's response envelope.
///
/// Vault always sends `wrap_info`, `warnings` and `auth`, as `null` when empty, and so does
/// this type. `mount_type` is newer (Vault 1.15) and omitted when unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Response<T = serde_json::Value> {
    /// A unique id for the request, for correlating with audit logs.
    pub request_id: String,
    /// The lease of a dynamic secret; empty when there is none.
    pub lease_id: String,
    /// Whether the lease can be renewed.
    pub renewable: bool,
    /// The lease's duration in seconds.
    pub lease_duration: u64,
    /// The endpoint's payload.
    pub data: Option<T>,
    /// Set when the response was wrapped into a single-use token.
    pub wrap_info: Option<WrapInfo>,
    /// Non-fatal warnings.
    pub warnings: Option<Vec<String>>,
    /// Set by endpoints that issue or renew a token.
    pub auth: Option<Auth>,
    /// The type of the mount that served the request (for example `kv`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_type: Option<String>,
}

impl<T> Default for Response<T> {
    fn default() -> Self {
        Self {
            request_id: String::new(),
            lease_id: String::new(),
            renewable: false,
            lease_duration: 0,
            data: None,
            wrap_info: None,
            warnings: None,
            auth: None,
            mount_type: None,
        }
    }
}

impl<T> Response<T> {
    /// An envelope carrying `data` and nothing else.
    pub fn with_data(data: T) -> Self {
        Self {
            data: Some(data),
            ..Self::default()
        }
    }

    /// An envelope carrying an `auth` block (token create, renew, login).
    pub fn with_auth(auth: Auth) -> Self {
        Self {
            auth: Some(auth),
            ..Self::default()
        }
    }
}

/// The `auth` block of a response that issued or renewed a token.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Auth {
    /// The token itself: a secret.
    pub client_token: String,
    /// The token's accessor: names the token without granting its access.
    pub accessor: String,
    /// All policies attached (token and identity policies).
    pub policies: Vec<String>,
    /// Policies attached to the token itself.
    pub token_policies: Vec<String>,
    /// Free-form metadata attached at creation; `null` when none.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Seconds until the token expires (0: never).
    pub lease_duration: u64,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// The identity entity the token belongs to; empty when none.
    pub entity_id: String,
    /// `service` or `batch`.
    pub token_type: String,
    /// Whether the token has no parent.
    pub orphan: bool,
    /// Remaining uses (0: unlimited).
    pub num_uses: u64,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("client_token", &"<redacted>")
            .field("accessor", &self.accessor)
            .field("policies", &self.policies)
            .field("token_policies", &self.token_policies)
            .field("metadata", &self.metadata)
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .field("entity_id", &self.entity_id)
            .field("token_type", &self.token_type)
            .field("orphan", &self.orphan)
            .field("num_uses", &self.num_uses)
            .finish()
    }
}

/// The `wrap_info` block of a wrapped response.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WrapInfo {
    /// The single-use wrapping token: a secret.
    pub token: String,
    /// The wrapping token's accessor.
    pub accessor: String,
    /// Seconds the wrapping token lives.
    pub ttl: u64,
    /// When the wrapping token was created (RFC 3339).
    pub creation_time: String,
    /// The path whose response was wrapped.
    pub creation_path: String,
    /// The accessor of a wrapped token, when a token was wrapped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub wrapped_accessor: String,
}

impl fmt::Debug for WrapInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrapInfo")
            .field("token", &"<redacted>")
            .field("accessor", &self.accessor)
            .field("ttl", &self.ttl)
            .field("creation_time", &self.creation_time)
            .field("creation_path", &self.creation_path)
            .field("wrapped_accessor", &self.wrapped_accessor)
            .finish()
    }
}

/// The body of every error reply: `{"errors": ["..."]}`.
///
/// A 404 from a read of a missing path carries an empty list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Human-readable messages.
    #[serde(default)]
    pub errors: Vec<String>,
}

impl ErrorResponse {
    /// An error body with one message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            errors: vec![message.into()],
        }
    }
}
