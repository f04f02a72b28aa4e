//! KV version 2 bodies: `<mount>/data`, `<mount>/metadata`, `<mount>/delete|undelete|destroy`,
//! `<mount>/config`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DurationInput;

/// Secret values: JSON objects of any shape.
type SecretMap = serde_json::Map<String, serde_json::Value>;

/// `POST <mount>/data/<path>` (write) and `PATCH` request.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvWriteRequest {
    /// The secret's key/value pairs: secrets.
    pub data: SecretMap,
    /// Write options (check-and-set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<KvWriteOptions>,
}

impl fmt::Debug for KvWriteRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvWriteRequest")
            .field("data", &RedactedKeys(&self.data))
            .field("options", &self.options)
            .finish()
    }
}

/// The `options` of a KV write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvWriteOptions {
    /// Check-and-set: write only if the current version is this one (0: only if absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cas: Option<u64>,
}

/// Metadata of one version: the data of a write's reply and `metadata` of a read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvVersionMetadata {
    /// When the version was written (RFC 3339).
    pub created_time: String,
    /// The secret's custom metadata, `null` when none.
    pub custom_metadata: Option<BTreeMap<String, String>>,
    /// When the version was (or will be) soft-deleted; empty when not.
    pub deletion_time: String,
    /// Whether the version's data was permanently destroyed.
    pub destroyed: bool,
    /// The version number (from 1).
    pub version: u64,
}

/// `GET <mount>/data/<path>` data. `data` is `null` for a deleted or destroyed version
/// (Vault then answers 404 with this body).
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvReadData {
    /// The secret's key/value pairs: secrets.
    pub data: Option<SecretMap>,
    /// The version's metadata.
    pub metadata: KvVersionMetadata,
}

impl fmt::Debug for KvReadData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvReadData")
            .field("data", &self.data.as_ref().map(RedactedKeys))
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// `GET <mount>/metadata/<path>` data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvMetadata {
    /// Whether every write must carry `cas`.
    pub cas_required: bool,
    /// When the first version was written (RFC 3339).
    pub created_time: String,
    /// The newest version.
    pub current_version: u64,
    /// Free-form metadata, `null` when none.
    pub custom_metadata: Option<BTreeMap<String, String>>,
    /// Versions are soft-deleted this long after being written (`"0s"`: never).
    pub delete_version_after: String,
    /// How many versions are kept (0: the mount's setting).
    pub max_versions: u32,
    /// The oldest version still kept.
    pub oldest_version: u64,
    /// When the metadata last changed (RFC 3339).
    pub updated_time: String,
    /// Every kept version, keyed by number (JSON keys are strings: `"1"`).
    pub versions: BTreeMap<u64, KvVersionSummary>,
}

/// One entry of [`KvMetadata::versions`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvVersionSummary {
    /// When the version was written (RFC 3339).
    pub created_time: String,
    /// When it was soft-deleted; empty when not.
    pub deletion_time: String,
    /// Whether its data was permanently destroyed.
    pub destroyed: bool,
}

/// `POST <mount>/metadata/<path>` request: only the given fields change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvMetadataWriteRequest {
    /// How many versions to keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<u32>,
    /// Whether every write must carry `cas`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cas_required: Option<bool>,
    /// Soft-delete versions this long after they are written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_version_after: Option<DurationInput>,
    /// Free-form metadata (replaces the existing map).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<BTreeMap<String, String>>,
}

/// `POST <mount>/delete|undelete|destroy/<path>` request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvVersionsRequest {
    /// The versions to act on.
    pub versions: Vec<u64>,
}

/// `<mount>/config`: the mount-wide KV settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvConfig {
    /// How many versions to keep per secret (Vault's default: 10; 0 means the default).
    pub max_versions: u32,
    /// Whether every write must carry `cas`.
    pub cas_required: bool,
    /// Soft-delete versions this long after they are written (`"0s"`: never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_version_after: Option<DurationInput>,
}

/// Debug view of a secret map: the keys, never the values.
struct RedactedKeys<'a>(&'a SecretMap);

impl fmt::Debug for RedactedKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}
