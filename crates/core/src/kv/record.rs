//! KV v2 records: per-secret metadata and sealed versions (envelope-encrypted values).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use ward_api::format_duration;
use ward_crypto::{Aes256GcmKey, Key256};

use crate::mounts::MountKeySet;
use crate::{CoreError, CoreResult, RawJson};

/// What Vault keeps per version in the metadata.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct VersionMeta {
    pub(crate) created_time: String,
    /// Empty unless soft-deleted.
    pub(crate) deletion_time: String,
    pub(crate) destroyed: bool,
}

/// The `metadata` block of a data read or write.
#[derive(Serialize)]
pub(crate) struct VersionView<'a> {
    created_time: String,
    custom_metadata: Option<&'a Map<String, Value>>,
    deletion_time: String,
    destroyed: bool,
    version: u64,
}

/// Per-secret metadata (`metadata/<path>`).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct Metadata {
    pub(crate) created_time: String,
    pub(crate) updated_time: String,
    pub(crate) current_version: u64,
    pub(crate) oldest_version: u64,
    /// 0 means "the mount's default".
    pub(crate) max_versions: u64,
    pub(crate) cas_required: bool,
    /// Seconds after which a new version is soft-deleted; 0 for never.
    pub(crate) delete_version_after: u64,
    pub(crate) custom_metadata: Map<String, Value>,
    pub(crate) versions: BTreeMap<u64, VersionMeta>,
    /// How many times the metadata itself was written (OpenBao's
    /// `current_metadata_version`, which `metadata_cas` is checked against).
    #[serde(default)]
    pub(crate) metadata_version: u64,
    /// Metadata writes must carry `metadata_cas`.
    #[serde(default)]
    pub(crate) metadata_cas_required: bool,
    /// Ward's rotation policy, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rotation: Option<super::rotation::RotationPolicy>,
}

impl Metadata {
    /// The effective deletion time of version `v`, taking `delete_version_after` into account.
    pub(crate) fn deletion_time(&self, v: &VersionMeta) -> String {
        if !v.deletion_time.is_empty() || self.delete_version_after == 0 {
            return v.deletion_time.clone();
        }
        match chrono::DateTime::parse_from_rfc3339(&v.created_time) {
            Ok(created) => {
                let after = chrono::Duration::seconds(
                    i64::try_from(self.delete_version_after).unwrap_or(i64::MAX / 2),
                );
                ward_api::time::rfc3339_nanos((created + after).to_utc().into())
            }
            Err(_) => String::new(),
        }
    }

    /// True when version `v` is deleted (soft, possibly by schedule) at `now`.
    pub(crate) fn is_deleted(&self, v: &VersionMeta, now: &chrono::DateTime<chrono::Utc>) -> bool {
        let t = self.deletion_time(v);
        !t.is_empty()
            && chrono::DateTime::parse_from_rfc3339(&t)
                .map(|d| d <= *now)
                .unwrap_or(true)
    }

    /// The `metadata` block of a data read or write.
    pub(crate) fn version_json(&self, version: u64) -> Value {
        serde_json::to_value(self.version_view(version)).unwrap_or(Value::Null)
    }

    /// The `metadata` block of a data read or write, to serialise without building a
    /// `Value` (the fields in the order `version_json`'s map gives them).
    pub(crate) fn version_view(&self, version: u64) -> VersionView<'_> {
        let absent = VersionMeta::default();
        let v = self.versions.get(&version).unwrap_or(&absent);
        VersionView {
            created_time: v.created_time.clone(),
            custom_metadata: (!self.custom_metadata.is_empty()).then_some(&self.custom_metadata),
            deletion_time: self.deletion_time(v),
            destroyed: v.destroyed,
            version,
        }
    }

    fn custom_json(&self) -> Value {
        if self.custom_metadata.is_empty() {
            Value::Null
        } else {
            Value::Object(self.custom_metadata.clone())
        }
    }

    /// The full `metadata/<path>` response.
    pub(crate) fn to_json(&self) -> Value {
        let versions: Map<String, Value> = self
            .versions
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    json!({
                        "created_time": v.created_time,
                        "deletion_time": self.deletion_time(v),
                        "destroyed": v.destroyed,
                    }),
                )
            })
            .collect();
        let mut out = json!({
            "cas_required": self.cas_required,
            "created_time": self.created_time,
            "current_metadata_version": self.metadata_version,
            "current_version": self.current_version,
            "custom_metadata": self.custom_json(),
            "delete_version_after": format_duration(self.delete_version_after),
            "max_versions": self.max_versions,
            "metadata_cas_required": self.metadata_cas_required,
            "oldest_version": self.oldest_version,
            "updated_time": self.updated_time,
            "versions": versions,
        });
        if let (Some(policy), Value::Object(o)) = (&self.rotation, &mut out)
            && let Value::Object(extra) = policy.to_json(self)
        {
            o.extend(extra);
        }
        out
    }
}

/// A version's value, encrypted under its own data key, which the mount's KEK wraps.
#[derive(Serialize, Deserialize)]
pub(crate) struct SealedVersion {
    kek_version: u32,
    wrapped_dek: String,
    ciphertext: String,
}

/// Associated data binding a sealed version to its mount, path and version number.
fn aad(mount_uuid: &str, path: &str, version: u64) -> Vec<u8> {
    format!("kv/{mount_uuid}/{path}/{version}").into_bytes()
}

impl SealedVersion {
    /// Encrypts `data` (the secret's JSON object) under a fresh data key.
    pub(crate) fn seal(
        keys: &MountKeySet,
        mount_uuid: &str,
        path: &str,
        version: u64,
        data: &Value,
    ) -> CoreResult<Self> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(data).map_err(CoreError::Encode)?);
        let aad = aad(mount_uuid, path, version);
        let dek = Key256::generate()?;
        let ciphertext = Aes256GcmKey::new(&dek)?.seal(&plain, &aad)?;
        let (kek_version, wrapped) = keys.wrap(&dek, &aad)?;
        Ok(Self {
            kek_version,
            wrapped_dek: B64.encode(wrapped),
            ciphertext: B64.encode(ciphertext),
        })
    }

    /// Rewraps the data key under `keys`' latest KEK when an older one wraps it; true when
    /// it changed.
    pub(crate) fn rewrap(
        &mut self,
        keys: &MountKeySet,
        mount_uuid: &str,
        path: &str,
        version: u64,
    ) -> CoreResult<bool> {
        if self.kek_version >= keys.latest {
            return Ok(false);
        }
        let aad = aad(mount_uuid, path, version);
        let wrapped = B64.decode(&self.wrapped_dek).map_err(|_| corrupt())?;
        let dek = keys.unwrap(self.kek_version, &wrapped, &aad)?;
        let (kek_version, wrapped) = keys.wrap(&dek, &aad)?;
        self.kek_version = kek_version;
        self.wrapped_dek = B64.encode(wrapped);
        Ok(true)
    }

    /// Unwraps the data key and decodes the ciphertext: everything but the decryption.
    pub(crate) fn prepare(
        &self,
        keys: &MountKeySet,
        mount_uuid: &str,
        path: &str,
        version: u64,
    ) -> CoreResult<OpenedVersion> {
        let aad = aad(mount_uuid, path, version);
        let wrapped = B64.decode(&self.wrapped_dek).map_err(|_| corrupt())?;
        let dek = keys.unwrap(self.kek_version, &wrapped, &aad)?;
        let ciphertext = B64.decode(&self.ciphertext).map_err(|_| corrupt())?;
        Ok(OpenedVersion {
            dek: Aes256GcmKey::new(&dek)?,
            ciphertext,
            aad,
        })
    }
}

fn corrupt() -> CoreError {
    CoreError::corrupt("kv version record (wrapped key or ciphertext)")
}

/// A sealed version ready to decrypt: its data key unwrapped (aws-lc wipes it on drop), its
/// ciphertext decoded. Reads remember these by the stored record's ciphertext, so that a hot
/// secret's key is not unwrapped on every read; the value itself is decrypted every time
/// and never kept.
pub(crate) struct OpenedVersion {
    dek: Aes256GcmKey,
    ciphertext: Vec<u8>,
    aad: Vec<u8>,
}

impl OpenedVersion {
    /// The stored record `bytes` (a [`SealedVersion`]) prepared under `keys`.
    pub(crate) fn decode(
        bytes: &[u8],
        keys: &MountKeySet,
        mount_uuid: &str,
        path: &str,
        version: u64,
    ) -> CoreResult<Self> {
        let sealed: SealedVersion =
            serde_json::from_slice(bytes).map_err(CoreError::corrupt_json("kv version record"))?;
        sealed.prepare(keys, mount_uuid, path, version)
    }

    /// Decrypts the value.
    pub(crate) fn open(&self) -> CoreResult<Value> {
        let plain = self.dek.open(&self.ciphertext, &self.aad)?;
        serde_json::from_slice(plain.expose()).map_err(|_| corrupt())
    }

    /// The response to a read of this version: `{"data": <the value>, "metadata": ...}`
    /// serialised, with the decrypted value copied in as it was stored (Ward serialised it
    /// when it was written) rather than parsed into a tree and serialised again.
    pub(crate) fn read_response(&self, metadata: VersionView<'_>) -> CoreResult<RawJson> {
        #[derive(Serialize)]
        struct Read<'a> {
            data: &'a RawValue,
            metadata: VersionView<'a>,
        }
        let plain = self.dek.open(&self.ciphertext, &self.aad)?;
        let data: &RawValue = serde_json::from_slice(plain.expose()).map_err(|_| corrupt())?;
        serde_json::value::to_raw_value(&Read { data, metadata }).map_err(|_| corrupt())
    }
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": 1});
        merge_patch(&mut doc, &json!({"b": [1, 2]}));
        assert_eq!(doc, json!({"a": 1, "b": [1, 2]}));
    }

    #[test]
    fn delete_version_after_schedules_deletion() {
        let meta = Metadata {
            delete_version_after: 60,
            ..Metadata::default()
        };
        let v = VersionMeta {
            created_time: "2020-01-01T00:00:00Z".into(),
            ..VersionMeta::default()
        };
        assert!(meta.deletion_time(&v).starts_with("2020-01-01T00:01:00"));
        assert!(meta.is_deleted(&v, &chrono::Utc::now()));
    }
}
