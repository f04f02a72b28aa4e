//! `auth/token/*` bodies.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DurationInput;

/// `POST auth/token/create` (and `create-orphan`) request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenCreateRequest {
    /// Policies to attach; the parent's when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<String>>,
    /// Free-form metadata, shown by lookup and written to the audit log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<BTreeMap<String, String>>,
    /// Create an orphan (no parent; survives its creator's revocation).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_parent: bool,
    /// Do not attach the `default` policy.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_default_policy: bool,
    /// Whether the token may be renewed (Vault's default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewable: Option<bool>,
    /// Initial TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<DurationInput>,
    /// A hard limit no renewal can pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_max_ttl: Option<DurationInput>,
    /// Renewal period for periodic tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<DurationInput>,
    /// Number of uses before the token is revoked (0: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_uses: Option<u64>,
    /// Name shown in lookups and audit entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `service` or `batch`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// `auth/token/lookup` data (also `lookup-self` and `lookup-accessor`, where `id` is empty).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenLookup {
    /// The token itself: a secret (empty in accessor lookups).
    pub id: String,
    /// The token's accessor.
    pub accessor: String,
    /// Creation time, seconds since the Unix epoch.
    pub creation_time: i64,
    /// TTL at creation, in seconds.
    pub creation_ttl: u64,
    /// Name shown in lookups and audit entries.
    pub display_name: String,
    /// The identity entity, empty when none.
    pub entity_id: String,
    /// Expiry (RFC 3339), `null` for tokens that never expire.
    pub expire_time: Option<String>,
    /// Hard TTL limit in seconds (0: none).
    pub explicit_max_ttl: u64,
    /// Issue time (RFC 3339).
    pub issue_time: String,
    /// Metadata, `null` when none.
    pub meta: Option<BTreeMap<String, String>>,
    /// Remaining uses (0: unlimited).
    pub num_uses: u64,
    /// Whether the token has no parent.
    pub orphan: bool,
    /// The path that created the token.
    pub path: String,
    /// Attached policies.
    pub policies: Vec<String>,
    /// Whether the token may be renewed.
    pub renewable: bool,
    /// Seconds left (0: never expires).
    pub ttl: u64,
    /// `service` or `batch`.
    #[serde(rename = "type")]
    pub token_type: String,
}

impl fmt::Debug for TokenLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenLookup")
            .field("id", &"<redacted>")
            .field("accessor", &self.accessor)
            .field("display_name", &self.display_name)
            .field("policies", &self.policies)
            .field("ttl", &self.ttl)
            .field("renewable", &self.renewable)
            .field("orphan", &self.orphan)
            .field("token_type", &self.token_type)
            .finish_non_exhaustive()
    }
}

/// `{"token": ...}`: the body of `auth/token/lookup` and `auth/token/revoke`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenRequest {
    /// The token to act on: a secret.
    pub token: String,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `auth/token/renew` (token set) and `renew-self` (token absent) request.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenRenewRequest {
    /// The token to renew: a secret. Absent for `renew-self`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Requested extension of the TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub increment: Option<DurationInput>,
}

impl fmt::Debug for TokenRenewRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRenewRequest")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("increment", &self.increment)
            .finish()
    }
}

/// `{"accessor": ...}`: the body of `lookup-accessor` and `revoke-accessor`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenAccessorRequest {
    /// The accessor of the token to act on.
    pub accessor: String,
}
