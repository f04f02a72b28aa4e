//! Key management: create, read, list, config, delete, rotate, trim, and Ward's lifecycle
//! (deactivate, activate, destroy, compromised).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use ward_api::time::now_rfc3339_nanos;
use ward_crypto::SecretBytes;
use ward_crypto::kms::SigningKey;

use super::policy::{KeyMetadata, KeyPolicy, KeyType, VersionInfo, VersionState};
use super::pool::is_rsa;
use super::store::{LoadedKey, Material};
use crate::mounts::MountEntry;
use crate::params::Params;
use crate::{Core, CoreError, CoreResult, Response};
use ward_store::Expect;

/// Default and bounds of an HMAC key's size, in bytes (Vault's).
pub(super) const HMAC_DEFAULT_SIZE: u32 = 32;
pub(super) const HMAC_MIN_SIZE: u32 = 32;
pub(super) const HMAC_MAX_SIZE: u32 = 512;
/// Bytes of every version's own HMAC key (for `hmac/` and convergent nonces).
pub(super) const VERSION_HMAC_KEY_SIZE: usize = 32;

/// Checks a key name: one non-empty path segment.
pub(crate) fn validate_name(name: &str) -> CoreResult<&str> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.len() > 256 {
        return Err(CoreError::bad(
            "invalid key name: one non-empty path segment of at most 256 bytes",
        ));
    }
    Ok(name)
}

/// Fresh material for one version of a key of type `t`.
fn generate(t: KeyType, key_size: u32) -> CoreResult<(Material, VersionInfo)> {
    let (key, public_key) = if let Some(kind) = t.signing() {
        let (signer, private) = SigningKey::generate(kind)?;
        (private, Some(signer.public_key_text()?))
    } else if let Some(aead) = t.aead() {
        (
            SecretBytes::new(ward_crypto::random_bytes(aead.key_len())?),
            None,
        )
    } else {
        (
            SecretBytes::new(ward_crypto::random_bytes(key_size as usize)?),
            None,
        )
    };
    let material = Material {
        key,
        hmac_key: SecretBytes::new(ward_crypto::random_bytes(VERSION_HMAC_KEY_SIZE)?),
    };
    let info = VersionInfo {
        time: crate::core::now(),
        creation_time: now_rfc3339_nanos(),
        state: VersionState::Active,
        public_key,
    };
    Ok((material, info))
}

/// Options of a new key, from a create request (or an encrypt that creates on demand).
pub(crate) struct NewKey {
    pub(crate) key_type: KeyType,
    pub(crate) derived: bool,
    pub(crate) convergent: bool,
    pub(crate) exportable: bool,
    pub(crate) allow_plaintext_backup: bool,
    pub(crate) auto_rotate_period: u64,
    pub(crate) key_size: u32,
    pub(crate) metadata: KeyMetadata,
}

impl NewKey {
    pub(crate) fn from_params(p: &Params<'_>) -> CoreResult<Self> {
        let key_type = match p.str("type")? {
            Some(t) if !t.is_empty() => KeyType::parse(&t)?,
            _ => KeyType::Aes256Gcm96,
        };
        let derived = p.bool("derived")?.unwrap_or(false);
        let convergent = p.bool("convergent_encryption")?.unwrap_or(false);
        if convergent && !derived {
            return Err(CoreError::bad(
                "convergent encryption requires derivation to be enabled",
            ));
        }
        if derived && !key_type.supports_derivation() {
            return Err(CoreError::bad(format!(
                "key derivation is not supported for key type {}",
                key_type.name()
            )));
        }
        if convergent && key_type.aead().is_none() {
            return Err(CoreError::bad(format!(
                "convergent encryption not supported for keys of type {}",
                key_type.name()
            )));
        }
        let key_size = match p.u64("key_size")? {
            None | Some(0) => HMAC_DEFAULT_SIZE,
            Some(_) if key_type != KeyType::Hmac => {
                return Err(CoreError::bad(format!(
                    "key_size is not valid for algorithm {}",
                    key_type.name()
                )));
            }
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| (HMAC_MIN_SIZE..=HMAC_MAX_SIZE).contains(n))
                .ok_or_else(|| {
                    CoreError::bad(
                        "invalid key size for HMAC key, must be between 32 and 512 bytes",
                    )
                })?,
        };
        let mut metadata = KeyMetadata::default();
        metadata.update(p)?;
        Ok(Self {
            key_type,
            derived,
            convergent,
            exportable: p.bool("exportable")?.unwrap_or(false),
            allow_plaintext_backup: p.bool("allow_plaintext_backup")?.unwrap_or(false),
            auto_rotate_period: auto_rotate_period(p)?.unwrap_or(0),
            key_size,
            metadata,
        })
    }

    /// The key's first version.
    pub(crate) fn build(self, name: &str) -> CoreResult<LoadedKey> {
        let (material, info) = generate(self.key_type, self.key_size)?;
        let policy = KeyPolicy {
            name: name.to_owned(),
            key_type: self.key_type,
            derived: self.derived,
            convergent_encryption: self.convergent,
            exportable: self.exportable,
            allow_plaintext_backup: self.allow_plaintext_backup,
            deletion_allowed: false,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 0,
            latest_version: 1,
            auto_rotate_period: self.auto_rotate_period,
            key_size: self.key_size,
            versions: BTreeMap::from([(1, info)]),
            metadata: self.metadata,
            allow_compromised_decrypt: false,
            backup_info: None,
            restore_info: None,
        };
        LoadedKey::new(policy, BTreeMap::from([(1, material)]))
    }
}

/// `auto_rotate_period`; its lower bound (an hour unless the server's `rotation.min_period`
/// says otherwise) is checked by the callers, which know the configuration.
fn auto_rotate_period(p: &Params<'_>) -> CoreResult<Option<u64>> {
    p.duration("auto_rotate_period")
}

/// A list of version numbers from `versions` (array, number, or "1,2").
fn versions_param(p: &Params<'_>) -> CoreResult<Vec<u32>> {
    let list = match p.0.get("versions") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .collect::<Option<Vec<u32>>>(),
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().parse().ok()).collect(),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(|v| vec![v]),
        _ => None,
    };
    match list {
        Some(l) if !l.is_empty() && !l.contains(&0) => Ok(l),
        _ => Err(CoreError::bad(
            "'versions' must be a non-empty list of key version numbers",
        )),
    }
}

/// A lifecycle change asked of some versions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Deactivate,
    Activate,
    Destroy,
    Compromised,
}

/// Adds a new latest version to `key`.
pub(super) fn rotate_key(key: &LoadedKey) -> CoreResult<LoadedKey> {
    let mut policy = key.policy.clone();
    let mut material = key.material_copy();
    // A wrapped version number would start again at 0 and later overwrite version 1.
    let next = policy.latest_version.checked_add(1).ok_or_else(|| {
        CoreError::bad("the key has reached the maximum number of versions; create a new key")
    })?;
    let (m, info) = generate(policy.key_type, policy.key_size)?;
    policy.latest_version = next;
    policy.versions.insert(policy.latest_version, info);
    material.insert(policy.latest_version, m);
    LoadedKey::new(policy, material)
}

impl Core {
    pub(crate) async fn transit_create(
        &self,
        mount: &MountEntry,
        name: &str,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let name = validate_name(name)?;
        let new = NewKey::from_params(p)?;
        self.check_rotation_period("auto rotate period", new.auto_rotate_period)?;
        let _guard = self.transit_lock(mount, name).await;
        if let Some(existing) = self.transit_load(mount, name).await? {
            // Vault answers an existing key's create with the key, unchanged.
            return Ok(Response::data(existing.policy.to_json()));
        }
        let built = if is_rsa(new.key_type) {
            // Generating an RSA-4096 key takes about a second of CPU.
            let owned_name = name.to_owned();
            self.transit_offload(move || new.build(&owned_name)).await?
        } else {
            new.build(name)?
        };
        let key = self.transit_save(mount, built, Expect::Absent).await?;
        tracing::info!(mount = %mount.path, key = name, "transit key created");
        Ok(Response::data(key.policy.to_json()))
    }

    pub(crate) async fn transit_key(
        &self,
        mount: &MountEntry,
        name: &str,
    ) -> CoreResult<std::sync::Arc<LoadedKey>> {
        self.transit_load(mount, validate_name(name)?)
            .await?
            .ok_or_else(|| CoreError::bad("encryption key not found"))
    }

    pub(crate) async fn transit_read(
        &self,
        mount: &MountEntry,
        name: &str,
    ) -> CoreResult<Response> {
        match self.transit_load(mount, validate_name(name)?).await? {
            Some(k) => Ok(Response::data(k.policy.to_json())),
            None => Err(CoreError::NotFound(String::new())),
        }
    }

    pub(crate) async fn transit_list_keys(&self, mount: &MountEntry) -> CoreResult<Response> {
        let keys = self.transit_list(mount).await?;
        if keys.is_empty() {
            return Err(CoreError::NotFound(String::new()));
        }
        Ok(Response::data(json!({ "keys": keys })))
    }

    pub(crate) async fn transit_delete_key(
        &self,
        mount: &MountEntry,
        name: &str,
    ) -> CoreResult<Response> {
        let name = validate_name(name)?;
        let _guard = self.transit_lock(mount, name).await;
        let Some(key) = self.transit_load(mount, name).await? else {
            return Err(CoreError::bad(format!(
                "error deleting policy {name}: could not delete key; not found"
            )));
        };
        if !key.policy.deletion_allowed {
            return Err(CoreError::bad(format!(
                "error deleting policy {name}: deletion is not allowed for this key"
            )));
        }
        self.transit_delete(mount, name).await?;
        // The key's ciphertext must not stay readable in free pages or the log.
        self.barrier.erase_deleted().await?;
        tracing::info!(mount = %mount.path, key = name, "transit key deleted");
        Ok(Response::empty())
    }

    /// Applies `change` to key `name` under its lock and saves the result.
    pub(super) async fn transit_update<F>(
        &self,
        mount: &MountEntry,
        name: &str,
        change: F,
    ) -> CoreResult<Response>
    where
        F: FnOnce(&LoadedKey) -> CoreResult<LoadedKey> + Send + 'static,
    {
        let name = validate_name(name)?;
        let _guard = self.transit_lock(mount, name).await;
        let key = self
            .transit_load(mount, name)
            .await?
            .ok_or_else(|| CoreError::bad(format!("key not found: {name}")))?;
        let replaced = key.replaced();
        // An RSA key's change costs seconds when it generates a version, and parses every
        // version's private key in any case.
        let next = if is_rsa(key.policy.key_type) {
            self.transit_offload(move || change(&key)).await?
        } else {
            change(&key)?
        };
        let saved = self.transit_save(mount, next, replaced).await?;
        Ok(Response::data(saved.policy.to_json()))
    }

    pub(crate) async fn transit_rotate(
        &self,
        mount: &MountEntry,
        name: &str,
    ) -> CoreResult<Response> {
        let resp = self.transit_update(mount, name, rotate_key).await?;
        tracing::info!(mount = %mount.path, key = name, "transit key rotated");
        Ok(resp)
    }

    pub(crate) async fn transit_config(
        &self,
        mount: &MountEntry,
        name: &str,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let min_dec = p.u64("min_decryption_version")?;
        let min_enc = p.u64("min_encryption_version")?;
        let deletion_allowed = p.bool("deletion_allowed")?;
        let exportable = p.bool("exportable")?;
        let backup = p.bool("allow_plaintext_backup")?;
        let arp = auto_rotate_period(p)?;
        if let Some(v) = arp {
            self.check_rotation_period("auto rotate period", v)?;
        }
        let compromised_decrypt = p.bool("allow_compromised_decrypt")?;
        let fields = p.0.clone();
        self.transit_update(mount, name, move |key| {
            let mut policy = key.policy.clone();
            let as_version =
                |n: u64| u32::try_from(n).map_err(|_| CoreError::bad("version out of range"));
            if let Some(v) = min_dec {
                let v = as_version(v)?;
                if v > policy.latest_version {
                    return Err(CoreError::bad(format!(
                        "cannot set min decryption version of {v}, latest key version is {}",
                        policy.latest_version
                    )));
                }
                // Vault: 0 means "leave as is"; it never goes below the available versions.
                if v > 0 {
                    if v < policy.min_available_version {
                        return Err(CoreError::bad(
                            "min decryption version should not be less then min available version",
                        ));
                    }
                    policy.min_decryption_version = v;
                }
            }
            if let Some(v) = min_enc {
                let v = as_version(v)?;
                if v > policy.latest_version {
                    return Err(CoreError::bad(format!(
                        "cannot set min encryption version of {v}, latest key version is {}",
                        policy.latest_version
                    )));
                }
                if v > 0 && v < policy.min_available_version {
                    return Err(CoreError::bad(
                        "min encryption version should not be less than min available version",
                    ));
                }
                policy.min_encryption_version = v;
            }
            if policy.min_encryption_version > 0
                && policy.min_encryption_version < policy.min_decryption_version
            {
                return Err(CoreError::bad(format!(
                    "cannot set min encryption/decryption values; min encryption version of {} \
                     must be greater than or equal to min decryption version of {}",
                    policy.min_encryption_version, policy.min_decryption_version
                )));
            }
            if let Some(v) = deletion_allowed {
                policy.deletion_allowed = v;
            }
            // Vault never turns these off again once on: a key once exportable may have
            // been exported.
            if exportable == Some(true) {
                policy.exportable = true;
            }
            if backup == Some(true) {
                policy.allow_plaintext_backup = true;
            }
            if let Some(v) = arp {
                policy.auto_rotate_period = v;
            }
            if let Some(v) = compromised_decrypt {
                policy.allow_compromised_decrypt = v;
            }
            policy.metadata.update(&Params(&fields))?;
            LoadedKey::new(policy, key.material_copy())
        })
        .await
    }

    pub(crate) async fn transit_trim(
        &self,
        mount: &MountEntry,
        name: &str,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let min = p
            .u64("min_available_version")?
            .ok_or_else(|| CoreError::bad("missing min_available_version"))?;
        let min = u32::try_from(min).map_err(|_| CoreError::bad("version out of range"))?;
        self.transit_update(mount, name, move |key| {
            let mut policy = key.policy.clone();
            if min == 0 {
                return Err(CoreError::bad("minimum available version should be positive"));
            }
            if policy.min_encryption_version == 0 {
                return Err(CoreError::bad(
                    "minimum available version cannot be set when minimum encryption version is not set",
                ));
            }
            if min > policy.min_encryption_version {
                return Err(CoreError::bad(
                    "minimum available version should not be greater than minimum encryption version",
                ));
            }
            if min > policy.min_decryption_version {
                return Err(CoreError::bad(
                    "minimum available version should not be greater than minimum decryption version",
                ));
            }
            if min < policy.min_available_version {
                return Err(CoreError::bad(
                    "minimum available version should not be less than the current minimum available version",
                ));
            }
            policy.min_available_version = min;
            policy.versions.retain(|v, _| *v >= min);
            let mut material = key.material_copy();
            material.retain(|v, _| *v >= min);
            LoadedKey::new(policy, material)
        })
        .await
    }

    pub(crate) async fn transit_lifecycle(
        &self,
        mount: &MountEntry,
        name: &str,
        action: Lifecycle,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let versions = versions_param(p)?;
        let changed_versions = versions.clone();
        let resp = self
            .transit_update(mount, name, move |key| {
                let mut policy = key.policy.clone();
                let mut material = key.material_copy();
                for v in &changed_versions {
                    let latest = policy.latest_version;
                    let Some(info) = policy.versions.get_mut(v) else {
                        return Err(CoreError::bad(format!("key version {v} does not exist")));
                    };
                    match action {
                        Lifecycle::Deactivate | Lifecycle::Destroy if *v == latest => {
                            return Err(CoreError::bad(format!(
                                "key version {v} is the latest version: rotate the key first"
                            )));
                        }
                        Lifecycle::Deactivate => match info.state {
                            VersionState::Active | VersionState::Deactivated => {
                                info.state = VersionState::Deactivated;
                            }
                            other => {
                                return Err(CoreError::bad(format!(
                                    "key version {v} is {}, it cannot be deactivated",
                                    other.name()
                                )));
                            }
                        },
                        Lifecycle::Activate => match info.state {
                            VersionState::Active | VersionState::Deactivated => {
                                info.state = VersionState::Active;
                            }
                            other => {
                                return Err(CoreError::bad(format!(
                                    "key version {v} is {}, it cannot be activated again",
                                    other.name()
                                )));
                            }
                        },
                        Lifecycle::Destroy => {
                            info.state = VersionState::Destroyed;
                            material.remove(v);
                        }
                        Lifecycle::Compromised => {
                            if info.state == VersionState::Destroyed {
                                return Err(CoreError::bad(format!(
                                    "key version {v} is destroyed already"
                                )));
                            }
                            info.state = VersionState::Compromised;
                        }
                    }
                }
                let changed = LoadedKey::new(policy, material)?;
                if action == Lifecycle::Compromised {
                    // A compromised key is replaced at once, so new data never uses it.
                    return rotate_key(&changed);
                }
                Ok(changed)
            })
            .await?;
        let state = match action {
            Lifecycle::Deactivate => "deactivated",
            Lifecycle::Activate => "active",
            Lifecycle::Destroy => "destroyed",
            Lifecycle::Compromised => "compromised",
        };
        // The audit trail of state changes (key name and versions only, never material).
        tracing::warn!(
            mount = %mount.path,
            key = name,
            versions = ?versions,
            state,
            "transit key versions changed state"
        );
        Ok(resp)
    }
}
