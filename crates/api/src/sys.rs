//! `sys/` bodies that Vault sends without the response envelope: init, unseal, seal status,
//! health, key status.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `PUT sys/init` request.
///
/// Vault requires `secret_shares` and `secret_threshold` for a Shamir seal; a missing value
/// decodes as 0 so that the server, not the decoder, reports what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InitRequest {
    /// How many unseal key shares to create.
    pub secret_shares: u32,
    /// How many shares unseal needs.
    pub secret_threshold: u32,
    /// PGP public keys to encrypt each share to (not supported by Ward; kept for shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgp_keys: Option<Vec<String>>,
    /// A PGP public key to encrypt the root token to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_token_pgp_key: Option<String>,
    /// Recovery shares, for seals that unseal automatically (HSM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_shares: Option<u32>,
    /// Recovery threshold, for seals that unseal automatically (HSM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_threshold: Option<u32>,
    /// Shares kept by the seal itself (HSM seals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_shares: Option<u32>,
}

/// `PUT sys/init` response: the unseal key shares and the initial root token.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InitResponse {
    /// Unseal key shares, hex-encoded: secrets.
    pub keys: Vec<String>,
    /// The same shares, base64-encoded.
    pub keys_base64: Vec<String>,
    /// Recovery key shares (automatic seals only), hex-encoded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovery_keys: Vec<String>,
    /// Recovery key shares, base64-encoded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovery_keys_base64: Vec<String>,
    /// The initial root token: a secret.
    pub root_token: String,
}

impl fmt::Debug for InitResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitResponse")
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .field(
                "recovery_keys",
                &format_args!("<{} redacted>", self.recovery_keys.len()),
            )
            .field("root_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `GET sys/init` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InitStatus {
    /// Whether the server has been initialised.
    pub initialized: bool,
}

/// `GET sys/leader` response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LeaderStatus {
    /// Whether the server runs in high-availability mode.
    pub ha_enabled: bool,
    /// Whether this server is the active one.
    pub is_self: bool,
    /// Since when the active server has been active (RFC 3339).
    pub active_time: String,
    /// The active server's API address.
    pub leader_address: String,
    /// The active server's cluster address.
    pub leader_cluster_address: String,
    /// Whether this server is a performance standby (never, in Ward).
    pub performance_standby: bool,
    /// Replication position of a performance standby (always 0 in Ward).
    pub performance_standby_last_remote_wal: u64,
}

/// `PUT sys/unseal` request: one key share, or `reset` to discard the shares given so far.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UnsealRequest {
    /// One unseal key share (hex or base64): a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Discard the progress of the current unseal attempt.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    /// Seal migration: the shares of the stored seal move the root key to the configured one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub migrate: bool,
}

impl fmt::Debug for UnsealRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsealRequest")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("reset", &self.reset)
            .field("migrate", &self.migrate)
            .finish()
    }
}

/// `GET sys/seal-status` response, also the reply to `PUT sys/unseal`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SealStatus {
    /// The seal type: `shamir`, `pkcs11`, ...
    #[serde(rename = "type")]
    pub seal_type: String,
    /// Whether the server has been initialised.
    pub initialized: bool,
    /// Whether the server is sealed.
    pub sealed: bool,
    /// Unseal threshold.
    pub t: u32,
    /// Number of key shares.
    pub n: u32,
    /// Shares given so far in the current unseal attempt.
    pub progress: u32,
    /// Id of the current unseal attempt; empty when none.
    pub nonce: String,
    /// Server version.
    pub version: String,
    /// Build date (Vault's name).
    pub build_date: String,
    /// Commit date (OpenBao's name for the same thing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_date: Option<String>,
    /// Whether a seal migration is in progress.
    pub migration: bool,
    /// Whether the seal uses recovery keys (automatic seals).
    pub recovery_seal: bool,
    /// The kind of the recovery keys (`shamir`), with an automatic seal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_seal_type: Option<String>,
    /// The storage backend (`sqlite`, `postgresql`, `inmem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
    /// Cluster name, once unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Cluster id, once unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

/// `GET sys/health` response. Clients such as vaultrs require every non-optional field.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthResponse {
    /// Whether the server has been initialised.
    pub initialized: bool,
    /// Whether the server is sealed.
    pub sealed: bool,
    /// Whether the server is a standby (not the active node).
    pub standby: bool,
    /// Whether the server is a performance standby (always false for Ward).
    pub performance_standby: bool,
    /// Performance replication mode (`disabled`).
    pub replication_performance_mode: String,
    /// Disaster-recovery replication mode (`disabled`).
    pub replication_dr_mode: String,
    /// Server time, seconds since the Unix epoch.
    pub server_time_utc: i64,
    /// Server version.
    pub version: String,
    /// Cluster name, once unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Cluster id, once unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

/// `GET sys/key-status`: the barrier keyring's newest term.
///
/// Vault sends these fields both at the top level and inside `data`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyStatus {
    /// The newest keyring term (starts at 1, +1 per `sys/rotate`).
    pub term: u32,
    /// When that term was installed (RFC 3339).
    pub install_time: String,
    /// How many encryptions the term has performed.
    pub encryptions: u64,
}
