//! Persistence of transit keys and the cache of unsealed keys.
//!
//! A key is one barrier entry at `logical/<mount uuid>/policy/<name>`: its policy in JSON
//! and its material (every version's key bytes) sealed under a fresh data key that the
//! mount's KEK wraps, with the mount and key name as associated data. So key bytes are
//! encrypted twice at rest (mount KEK, then barrier) and die with the mount's KEK.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use ward_crypto::kms::{AeadKey, SigningKey};
use ward_crypto::{Aes256GcmKey, Key256, SecretBytes};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::policy::KeyPolicy;
use crate::mounts::{MountEntry, MountKeySet};
use crate::rotation::JobKind;
use crate::{Core, CoreError, CoreResult};
use ward_store::{Expect, Op};

/// One version's secret bytes: the key proper (symmetric key, HMAC key, Ed25519 seed or
/// PKCS#8 private key) and the version's HMAC key (for `hmac/` with non-HMAC key types and
/// for convergent nonces). Wiped on drop; `Debug` shows nothing.
pub(crate) struct Material {
    pub(crate) key: SecretBytes,
    pub(crate) hmac_key: SecretBytes,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Material(<redacted>)")
    }
}

/// A key ready for use: policy, material and parsed signing keys.
pub(crate) struct LoadedKey {
    pub(crate) policy: KeyPolicy,
    pub(crate) material: BTreeMap<u32, Material>,
    pub(crate) signers: BTreeMap<u32, SigningKey>,
    /// Prepared AEAD keys of a non-derived encryption key, so a request does not expand
    /// the key schedule again.
    pub(crate) aead_keys: BTreeMap<u32, AeadKey>,
    /// The stored record this key was read from, for the compare-and-set of a change to it
    /// (`None`: built here, not read).
    stored_as: Option<Vec<u8>>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("name", &self.policy.name)
            .field("versions", &self.material.len())
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// Builds the parsed signing keys from the material.
    pub(crate) fn new(policy: KeyPolicy, material: BTreeMap<u32, Material>) -> CoreResult<Self> {
        let mut signers = BTreeMap::new();
        if let Some(kind) = policy.key_type.signing() {
            for (v, m) in &material {
                signers.insert(*v, SigningKey::from_private(kind, m.key.expose())?);
            }
        }
        let mut aead_keys = BTreeMap::new();
        if let Some(aead) = policy.key_type.aead()
            && !policy.derived
        {
            for (v, m) in &material {
                aead_keys.insert(*v, aead.prepare(m.key.expose())?);
            }
        }
        Ok(Self {
            policy,
            material,
            signers,
            aead_keys,
            stored_as: None,
        })
    }

    /// What a save replacing this key expects to find stored: the record it was read from.
    /// A change made on another server meanwhile then fails the save instead of being lost
    /// (a version rotated in there would otherwise vanish with what it encrypted).
    pub(crate) fn replaced(&self) -> Expect {
        match &self.stored_as {
            Some(stamp) => Expect::Value(stamp.clone()),
            None => Expect::Absent,
        }
    }

    /// The material of `version`.
    pub(crate) fn material(&self, version: u32) -> CoreResult<&Material> {
        self.material
            .get(&version)
            .ok_or_else(|| CoreError::bad(format!("key version {version} has no key material")))
    }

    /// A copy of the material, for building a modified key.
    pub(crate) fn material_copy(&self) -> BTreeMap<u32, Material> {
        self.material
            .iter()
            .map(|(v, m)| {
                (
                    *v,
                    Material {
                        key: m.key.duplicate(),
                        hmac_key: m.hmac_key.duplicate(),
                    },
                )
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct MaterialEntry {
    key: String,
    hmac_key: String,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    policy: KeyPolicy,
    kek_version: u32,
    wrapped_dek: String,
    material: String,
}

fn aad(mount_uuid: &str, name: &str) -> Vec<u8> {
    format!("transit/{mount_uuid}/{name}").into_bytes()
}

/// Serialises the material (for sealing and for backups) into a wiping buffer.
pub(crate) fn material_to_json(
    material: &BTreeMap<u32, Material>,
) -> CoreResult<Zeroizing<Vec<u8>>> {
    let entries: BTreeMap<u32, MaterialEntry> = material
        .iter()
        .map(|(v, m)| {
            (
                *v,
                MaterialEntry {
                    key: B64.encode(m.key.expose()),
                    hmac_key: B64.encode(m.hmac_key.expose()),
                },
            )
        })
        .collect();
    Ok(Zeroizing::new(
        serde_json::to_vec(&entries).map_err(CoreError::Encode)?,
    ))
}

/// Reverses [`material_to_json`].
pub(crate) fn material_from_json(bytes: &[u8]) -> Option<BTreeMap<u32, Material>> {
    let entries: BTreeMap<u32, MaterialEntry> = serde_json::from_slice(bytes).ok()?;
    entries
        .iter()
        .map(|(v, e)| {
            Some((
                *v,
                Material {
                    key: SecretBytes::new(B64.decode(&e.key).ok()?),
                    hmac_key: SecretBytes::new(B64.decode(&e.hmac_key).ok()?),
                },
            ))
        })
        .collect()
}

fn seal(keys: &MountKeySet, mount_uuid: &str, key: &LoadedKey) -> CoreResult<StoredKey> {
    let plain = material_to_json(&key.material)?;
    let aad = aad(mount_uuid, &key.policy.name);
    let dek = Key256::generate()?;
    let sealed = Aes256GcmKey::new(&dek)?.seal(&plain, &aad)?;
    let (kek_version, wrapped) = keys.wrap(&dek, &aad)?;
    Ok(StoredKey {
        policy: key.policy.clone(),
        kek_version,
        wrapped_dek: B64.encode(wrapped),
        material: B64.encode(sealed),
    })
}

fn open(keys: &MountKeySet, mount_uuid: &str, stored: StoredKey) -> CoreResult<LoadedKey> {
    let corrupt = || CoreError::corrupt("transit key record");
    let aad = aad(mount_uuid, &stored.policy.name);
    let wrapped = B64.decode(&stored.wrapped_dek).map_err(|_| corrupt())?;
    let dek = keys.unwrap(stored.kek_version, &wrapped, &aad)?;
    let sealed = B64.decode(&stored.material).map_err(|_| corrupt())?;
    let plain = Aes256GcmKey::new(&dek)?.open(&sealed, &aad)?;
    let material = material_from_json(plain.expose()).ok_or_else(corrupt)?;
    LoadedKey::new(stored.policy, material)
}

/// Unsealed keys by `<mount uuid>/<name>` and the per-key write locks. Cleared on seal.
#[derive(Default)]
pub(crate) struct TransitCache {
    keys: RwLock<crate::FastMap<String, Arc<LoadedKey>>>,
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped (under the write lock) by every save, delete and clear: a load that read its
    /// record before one of them does not cache what it read (it may be a key rotated or
    /// deleted since).
    generation: AtomicU64,
    /// Where expensive crypto runs, off the async workers.
    pub(super) pool: super::pool::CryptoPool,
}

impl TransitCache {
    /// Drops every cached key (their material is wiped as the last reference goes).
    pub(crate) fn clear(&self) {
        if let Ok(mut k) = self.keys.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            k.clear();
        }
        if let Ok(mut l) = self.locks.lock() {
            l.clear();
        }
    }

    fn get(&self, id: &str) -> Option<Arc<LoadedKey>> {
        self.keys.read().ok().and_then(|k| k.get(id).cloned())
    }

    /// The generation to hand to [`Self::fill`]: take it before reading the record.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `key`, read from storage by a load that took `generation` first, unless a
    /// save, delete or clear came since.
    fn fill(&self, id: String, key: Arc<LoadedKey>, generation: u64, live_mounts: &[String]) {
        if let Ok(mut k) = self.keys.write()
            && self.generation.load(Ordering::SeqCst) == generation
        {
            k.retain(|id, _| live_mounts.iter().any(|m| id.starts_with(m.as_str())));
            k.insert(id, key);
        }
    }

    /// Makes `key` the cached version of `id` (`None`: deleted), after it was stored.
    fn put(&self, id: String, key: Option<Arc<LoadedKey>>, live_mounts: &[String]) {
        if let Ok(mut k) = self.keys.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            // Forget keys of unmounted engines, so their material does not linger.
            k.retain(|id, _| live_mounts.iter().any(|m| id.starts_with(m.as_str())));
            match key {
                Some(key) => {
                    k.insert(id, key);
                }
                None => {
                    k.remove(&id);
                }
            }
        }
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.locks.lock() {
            Ok(mut l) => l.entry(id.to_owned()).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

fn cache_id(mount: &MountEntry, name: &str) -> String {
    format!("{}/{name}", mount.uuid)
}

fn storage_key(mount: &MountEntry, name: &str) -> String {
    format!("{}policy/{name}", mount.storage_prefix())
}

impl Core {
    fn live_mount_prefixes(&self) -> Vec<String> {
        self.mounts
            .all()
            .iter()
            .map(|m| format!("{}/", m.uuid))
            .collect()
    }

    /// The key `name` of `mount`, if it exists.
    pub(crate) async fn transit_load(
        &self,
        mount: &MountEntry,
        name: &str,
    ) -> CoreResult<Option<Arc<LoadedKey>>> {
        let id = cache_id(mount, name);
        if let Some(k) = self.transit.get(&id) {
            return Ok(Some(k));
        }
        let generation = self.transit.generation();
        let Some(entry) = self.barrier.get_entry(&storage_key(mount, name)).await? else {
            return Ok(None);
        };
        let stored: StoredKey = serde_json::from_slice(entry.value.expose())
            .map_err(CoreError::corrupt_json("transit key record"))?;
        let keys = self.mount_keys.get(&self.barrier, &mount.uuid).await?;
        let mut key = open(&keys, &mount.uuid, stored)?;
        key.stored_as = Some(entry.stamp());
        let key = Arc::new(key);
        self.transit.fill(
            id,
            Arc::clone(&key),
            generation,
            &self.live_mount_prefixes(),
        );
        Ok(Some(key))
    }

    /// Serialises writers of one key: hold the guard across load, change and save.
    pub(crate) async fn transit_lock(
        &self,
        mount: &MountEntry,
        name: &str,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        self.transit
            .lock_for(&cache_id(mount, name))
            .lock_owned()
            .await
    }

    /// Persists `key` (under the caller's lock) if storage still holds what `replaced`
    /// expects ([`LoadedKey::replaced`] of the key it changes, or `Absent` for a new one).
    /// The next use reads the saved record back (and with it the stamp of the next change).
    pub(crate) async fn transit_save(
        &self,
        mount: &MountEntry,
        key: LoadedKey,
        replaced: Expect,
    ) -> CoreResult<Arc<LoadedKey>> {
        let keys = self.mount_keys.get(&self.barrier, &mount.uuid).await?;
        let stored = seal(&keys, &mount.uuid, &key)?;
        let bytes = serde_json::to_vec(&stored).map_err(CoreError::Encode)?;
        let name = key.policy.name.clone();
        let op = Op::put(storage_key(mount, &name), replaced, bytes);
        let saved = self.barrier.try_commit(vec![op]).await?;
        self.transit
            .put(cache_id(mount, &name), None, &self.live_mount_prefixes());
        if !saved {
            return Err(CoreError::bad(format!(
                "key {name:?} was changed by another request at the same time; try again"
            )));
        }
        let key = Arc::new(key);
        self.transit_schedule(mount, &key.policy).await;
        Ok(key)
    }

    /// Deletes key `name` (under the caller's lock).
    pub(crate) async fn transit_delete(&self, mount: &MountEntry, name: &str) -> CoreResult<()> {
        self.barrier.delete(&storage_key(mount, name)).await?;
        self.transit
            .put(cache_id(mount, name), None, &self.live_mount_prefixes());
        self.schedule(JobKind::Transit, &mount.uuid, name, None)
            .await?;
        Ok(())
    }

    /// Rewraps the material data keys of `mount`'s transit keys that an older KEK than
    /// `keys.latest` wraps. Returns how many records it moved.
    pub(crate) async fn transit_rewrap_data_keys(
        &self,
        mount: &MountEntry,
        keys: &MountKeySet,
    ) -> CoreResult<u64> {
        let mut moved = 0;
        for name in self.transit_list(mount).await? {
            if name.ends_with('/') {
                continue;
            }
            let key = storage_key(mount, &name);
            let changed = crate::rotation::rewrap_record(&self.barrier, &key, |bytes| {
                let mut stored: StoredKey = serde_json::from_slice(bytes)
                    .map_err(CoreError::corrupt_json("transit key record"))?;
                if stored.kek_version >= keys.latest {
                    return Ok(None);
                }
                let corrupt = || CoreError::corrupt("transit key record");
                let aad = aad(&mount.uuid, &stored.policy.name);
                let wrapped = B64.decode(&stored.wrapped_dek).map_err(|_| corrupt())?;
                let dek = keys.unwrap(stored.kek_version, &wrapped, &aad)?;
                let (version, wrapped) = keys.wrap(&dek, &aad)?;
                stored.kek_version = version;
                stored.wrapped_dek = B64.encode(wrapped);
                Ok(Some(
                    serde_json::to_vec(&stored).map_err(CoreError::Encode)?,
                ))
            })
            .await?;
            moved += u64::from(changed);
        }
        Ok(moved)
    }

    /// Names of the mount's keys.
    pub(crate) async fn transit_list(&self, mount: &MountEntry) -> CoreResult<Vec<String>> {
        Ok(self
            .barrier
            .list(&format!("{}policy/", mount.storage_prefix()))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::transit::keys::NewKey;

    #[test]
    fn material_round_trips_and_debug_shows_no_key_bytes() {
        for t in ["aes256-gcm96", "ed25519", "hmac"] {
            let fields = serde_json::json!({"type": t});
            let new = NewKey::from_params(&Params(fields.as_object().unwrap())).unwrap();
            let key = new.build("k").unwrap();
            let m = key.material(1).unwrap();
            let shown = format!("{key:?} {m:?}");
            for secret in [m.key.expose(), m.hmac_key.expose()] {
                assert!(!shown.contains(&hex::encode(&secret[..8])));
                assert!(!shown.contains(&B64.encode(&secret[..6])));
                assert!(!shown.contains(&format!("{:?}", &secret[..4])));
            }
            let json = material_to_json(&key.material).unwrap();
            let back = material_from_json(&json).unwrap();
            assert_eq!(back[&1].key.expose(), m.key.expose());
            assert_eq!(back[&1].hmac_key.expose(), m.hmac_key.expose());
        }
        assert!(material_from_json(b"{\"1\":{\"key\":\"!!\",\"hmac_key\":\"\"}}").is_none());
    }

    fn built_key() -> Arc<LoadedKey> {
        let fields = serde_json::json!({"type": "aes256-gcm96"});
        let new = NewKey::from_params(&Params(fields.as_object().unwrap())).unwrap();
        Arc::new(new.build("k").unwrap())
    }

    #[test]
    fn a_key_loaded_before_a_save_or_delete_is_not_cached_after_it() {
        let cache = TransitCache::default();
        let live = ["m/".to_owned()];
        // A load reads the record; meanwhile the key is rotated (saved) and then deleted.
        let generation = cache.generation();
        cache.put("m/k".into(), Some(built_key()), &live);
        cache.put("m/k".into(), None, &live);
        // The load's copy must not bring the deleted key back.
        cache.fill("m/k".into(), built_key(), generation, &live);
        assert!(cache.get("m/k").is_none());
        // A load that began after the change is cached.
        cache.fill("m/k".into(), built_key(), cache.generation(), &live);
        assert!(cache.get("m/k").is_some());
        // Clearing on seal counts too.
        let generation = cache.generation();
        cache.clear();
        cache.fill("m/k".into(), built_key(), generation, &live);
        assert!(cache.get("m/k").is_none());
    }
}
