//! `sys/mounts`: enabling secrets engines and listing them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DurationInput;
use crate::lenient::string_map;

/// `POST sys/mounts/<path>` request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MountEnableRequest {
    /// Engine type: `kv`, `transit`, ... (`kv-v2` is `kv` with `options.version = "2"`).
    #[serde(rename = "type")]
    pub engine_type: String,
    /// Free-form description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Lease settings.
    #[serde(skip_serializing_if = "MountConfigInput::is_empty")]
    pub config: MountConfigInput,
    /// Engine options, such as `{"version": "2"}` for KV. Numbers are accepted as strings.
    #[serde(
        deserialize_with = "string_map",
        skip_serializing_if = "Option::is_none"
    )]
    pub options: Option<BTreeMap<String, String>>,
    /// Whether the mount is local to this cluster (not replicated).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// Whether values are additionally wrapped by the seal.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub seal_wrap: bool,
}

/// The `config` of a mount-enable request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MountConfigInput {
    /// Default lease TTL for the mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_lease_ttl: Option<DurationInput>,
    /// Maximum lease TTL for the mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lease_ttl: Option<DurationInput>,
    /// Whether responses must not be cached by clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_no_cache: Option<bool>,
}

impl MountConfigInput {
    /// True when no setting is given (so the field can be left out of a request).
    pub fn is_empty(&self) -> bool {
        self.default_lease_ttl.is_none()
            && self.max_lease_ttl.is_none()
            && self.force_no_cache.is_none()
    }
}

/// One entry of `GET sys/mounts` (keyed by path with a trailing slash), or
/// `GET sys/mounts/<path>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MountInfo {
    /// Engine type: `kv`, `transit`, `system`, `cubbyhole`, ...
    #[serde(rename = "type")]
    pub engine_type: String,
    /// Free-form description.
    pub description: String,
    /// A stable id naming the mount (`kv_1a2b3c4d`).
    pub accessor: String,
    /// The mount's UUID.
    pub uuid: String,
    /// Lease settings in seconds.
    pub config: MountConfig,
    /// Engine options (`{"version": "2"}` for KV v2), `null` when none.
    #[serde(deserialize_with = "string_map")]
    pub options: Option<BTreeMap<String, String>>,
    /// Whether the mount is local to this cluster.
    pub local: bool,
    /// Whether values are additionally wrapped by the seal.
    pub seal_wrap: bool,
    /// Whether the engine may read external entropy.
    pub external_entropy_access: bool,
    /// Plugin version (empty for built-in engines).
    pub plugin_version: String,
    /// The version actually running (`v0.1.0+builtin.ward`).
    pub running_plugin_version: String,
    /// The running plugin's SHA-256 (empty for built-in engines).
    pub running_sha256: String,
}

/// Lease settings of a mount, in seconds (0: the system default).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MountConfig {
    /// Default lease TTL.
    pub default_lease_ttl: u64,
    /// Maximum lease TTL.
    pub max_lease_ttl: u64,
    /// Whether responses must not be cached by clients.
    pub force_no_cache: bool,
}
