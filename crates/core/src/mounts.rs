//! The mount table (which engine serves which path prefix) and the per-mount keys.
//!
//! Each mount has its own versioned key-encryption key (KEK), stored behind the barrier at
//! `core/mount-keys/<uuid>`. Secret values are encrypted under per-version data keys that
//! the KEK wraps, so destroying a mount's KEK crypto-shreds the whole mount at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use ward_api::token_format::BASE62;
use ward_crypto::{Aes256GcmKey, Key256, SecretBytes, random_chars};
use ward_store::{Barrier, Expect, Op, SharedCache};

use crate::engine::MountType;
use crate::{CoreError, CoreResult};

pub(crate) const TABLE_KEY: &str = "core/mounts";
pub(crate) const KEYS_PREFIX: &str = "core/mount-keys/";

/// Path prefixes no engine may be mounted at.
const RESERVED: [&str; 4] = ["sys/", "auth/", "cubbyhole/", "identity/"];

/// One mounted engine.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct MountEntry {
    /// The mount path, always ending in `/`.
    pub(crate) path: String,
    #[serde(rename = "type")]
    pub(crate) mount_type: MountType,
    pub(crate) description: String,
    pub(crate) uuid: String,
    pub(crate) accessor: String,
    pub(crate) options: Map<String, Value>,
    pub(crate) config: Map<String, Value>,
    pub(crate) created: i64,
    /// Being disabled: no request reaches it, and the table lists it no more. Disabling an
    /// auth method marks it first, then revokes its tokens, then removes it; a disable cut
    /// short (a crash) is finished at the next unseal, so no token of a removed method lives on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) tainted: bool,
}

impl MountEntry {
    /// Vault's JSON for a mount in `sys/mounts`: lease TTLs in seconds (0: the system's),
    /// `options` null when there are none, as OpenBao answers.
    pub(crate) fn to_json(&self) -> Value {
        let mut config = Map::new();
        config.insert("default_lease_ttl".into(), json!(0));
        config.insert("max_lease_ttl".into(), json!(0));
        config.insert("force_no_cache".into(), json!(false));
        if self.is_auth() {
            config.insert("token_type".into(), json!("default-service"));
        }
        for (key, value) in &self.config {
            // Mounts stored before TTLs were normalised keep showing what they can.
            if let Ok(Some(value)) = config_value(key, value) {
                config.insert(key.clone(), value);
            }
        }
        let options = (!self.options.is_empty()).then_some(&self.options);
        json!({
            "type": self.mount_type,
            "description": self.description,
            "accessor": self.accessor,
            "uuid": self.uuid,
            "config": config,
            "options": options,
            "local": false,
            "seal_wrap": false,
            "external_entropy_access": false,
            "plugin_version": "",
            "running_plugin_version": "",
            "running_sha256": "",
            "deprecation_status": "supported",
        })
    }

    /// The engine serving this mount: its type, except that a `kv` mount is KV version 1
    /// unless its options say version 2, as Vault has it (`secrets enable kv` is version 1).
    pub(crate) fn engine(&self) -> MountType {
        match self.mount_type {
            MountType::Kv if !self.is_kv_v2() => MountType::KvV1,
            other => other,
        }
    }

    /// A `kv` mount whose options say version 2.
    pub(crate) fn is_kv_v2(&self) -> bool {
        self.mount_type == MountType::Kv
            && self.options.get("version").and_then(Value::as_str) == Some("2")
    }

    /// An auth method's mount (under `auth/`), listed by `sys/auth` rather than `sys/mounts`.
    pub(crate) fn is_auth(&self) -> bool {
        self.path.starts_with("auth/")
    }

    /// The part of `path` below this mount: "" for the mount's own path, with or without its
    /// `/` (never a panic, whatever path the table matched).
    pub(crate) fn relative<'p>(&self, path: &'p str) -> &'p str {
        path.get(self.path.len()..).unwrap_or("")
    }

    /// The storage prefix of this mount's data.
    pub(crate) fn storage_prefix(&self) -> String {
        let mut out = String::with_capacity(self.uuid.len() + 9);
        self.push_storage_prefix(&mut out);
        out
    }

    /// Appends [`Self::storage_prefix`] to `out` (no `format!` on the read path).
    pub(crate) fn push_storage_prefix(&self, out: &mut String) {
        out.push_str("logical/");
        out.push_str(&self.uuid);
        out.push('/');
    }
}

/// Applies `given` (a mount's `config`, or a tune) to `config`: lease TTLs are stored as
/// seconds, `force_no_cache` as a boolean, nulls are skipped (the Vault CLI sends
/// `"options": null`), other settings are kept as given.
pub(crate) fn apply_config(
    config: &mut Map<String, Value>,
    given: &Map<String, Value>,
) -> CoreResult<()> {
    for (key, value) in given {
        if let Some(value) = config_value(key, value)? {
            config.insert(key.clone(), value);
        }
    }
    let ttl = |key| config.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (default, max) = (ttl("default_lease_ttl"), ttl("max_lease_ttl"));
    if max > 0 && default > max {
        return Err(CoreError::bad(format!(
            "backend max lease TTL of {max} would be less than backend default lease TTL of \
             {default}"
        )));
    }
    Ok(())
}

/// One `config` setting as stored; `None` for one that is not kept.
fn config_value(key: &str, value: &Value) -> CoreResult<Option<Value>> {
    Ok(match (key, value) {
        // `options` has a field of its own; the Vault CLI sends `"options": null` here.
        (_, Value::Null) | ("options", _) => None,
        // The Vault CLI sends `""` for a TTL it leaves as it is.
        ("default_lease_ttl" | "max_lease_ttl", Value::String(s)) if s.is_empty() => None,
        ("default_lease_ttl" | "max_lease_ttl", v) => {
            let ttl = ward_api::duration_from_json(v).map_err(|_| {
                CoreError::bad(format!("invalid value for '{key}': expected a duration"))
            })?;
            Some(json!(ttl.as_secs()))
        }
        ("force_no_cache", v) => Some(json!(ward_api::lenient::bool(v).ok_or_else(|| {
            CoreError::bad("invalid value for 'force_no_cache': expected a boolean")
        })?)),
        (_, v) => Some(v.clone()),
    })
}

/// The built-in mount serving `path`, if any: `sys/` and `auth/token/`, which the mount
/// table does not hold.
pub(crate) fn builtin(path: &str) -> Option<(MountType, Arc<MountEntry>)> {
    static BUILTIN: std::sync::LazyLock<[Arc<MountEntry>; 2]> = std::sync::LazyLock::new(|| {
        let entry = |path: &str, mount_type, description: &str| {
            Arc::new(MountEntry {
                path: path.into(),
                mount_type,
                description: description.into(),
                uuid: String::new(),
                accessor: mount_type.as_str().into(),
                options: Map::new(),
                config: Map::new(),
                created: 0,
                tainted: false,
            })
        };
        [
            entry(
                "sys/",
                MountType::System,
                "system endpoints used for control, policy and debugging",
            ),
            entry("auth/token/", MountType::Token, "token based credentials"),
        ]
    });
    BUILTIN
        .iter()
        .find(|m| {
            path.strip_prefix(m.path.trim_end_matches('/'))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .map(|m| (m.mount_type, Arc::clone(m)))
}

/// What `sys/mounts/<path>` asks to mount.
pub(crate) struct NewMount {
    pub(crate) mount_type: MountType,
    pub(crate) description: String,
    pub(crate) options: Map<String, Value>,
    pub(crate) config: Map<String, Value>,
}

/// The live mount table (loaded on unseal, cleared on seal). Read on every request: an
/// `ArcSwap` load takes no lock and no shared reference count.
///
/// Changes (enable, disable) are serialised by `changes` and each one is a compare-and-set
/// of the stored table against the version it was computed from, so that two changes can
/// never both start from the same table and one silently undo the other (a lost mount, or a
/// disabled one brought back with its key destroyed), and memory always holds what storage
/// holds.
#[derive(Default)]
pub(crate) struct MountTable {
    entries: ArcSwap<Vec<Arc<MountEntry>>>,
    changes: tokio::sync::Mutex<()>,
}

/// The stored mount table and the stamp a compare-and-set of it expects.
struct StoredTable {
    entries: Vec<Arc<MountEntry>>,
    expect: Expect,
}

impl MountTable {
    pub(crate) async fn load(&self, barrier: &Barrier) -> CoreResult<()> {
        let _change = self.changes.lock().await;
        let stored = Self::read_stored(barrier).await?;
        self.set(stored.entries);
        Ok(())
    }

    /// The table as storage holds it now.
    async fn read_stored(barrier: &Barrier) -> CoreResult<StoredTable> {
        Ok(match barrier.get_entry(TABLE_KEY).await? {
            Some(entry) => {
                let entries: Vec<MountEntry> = serde_json::from_slice(entry.value.expose())
                    .map_err(CoreError::corrupt_json("mount table"))?;
                StoredTable {
                    entries: entries.into_iter().map(Arc::new).collect(),
                    expect: Expect::Value(entry.stamp()),
                }
            }
            None => StoredTable {
                entries: Vec::new(),
                expect: Expect::Absent,
            },
        })
    }

    /// Makes `entries`, less the tainted ones, the live table.
    fn set(&self, mut entries: Vec<Arc<MountEntry>>) {
        entries.retain(|m| !m.tainted);
        // Longest path first, so `find` takes the most specific mount.
        entries.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then_with(|| a.path.cmp(&b.path))
        });
        self.entries.store(Arc::new(entries));
    }

    pub(crate) fn clear(&self) {
        self.set(Vec::new());
    }

    pub(crate) fn all(&self) -> Arc<Vec<Arc<MountEntry>>> {
        self.entries.load_full()
    }

    /// The mount serving `path` (a path below `/v1/`, no leading slash).
    pub(crate) fn find(&self, path: &str) -> Option<Arc<MountEntry>> {
        self.find_with(path, Arc::clone)
    }

    /// `f` of the mount serving `path`, without holding on to the mount.
    pub(crate) fn find_with<R>(
        &self,
        path: &str,
        f: impl FnOnce(&Arc<MountEntry>) -> R,
    ) -> Option<R> {
        self.entries
            .load()
            .iter()
            .find(|m| {
                // `path` is below the mount, or is the mount itself without its `/`.
                path.starts_with(&m.path) || m.path.strip_suffix('/') == Some(path)
            })
            .map(f)
    }

    /// Mounts a new engine at `path` (normalised: [`normalise_mount_path`] or
    /// [`auth_mount_path`]). Fails if the path, a path above it or one below it is mounted
    /// already, also when another request is mounting it at the same moment.
    pub(crate) async fn enable(
        &self,
        barrier: &Barrier,
        keys: &MountKeys,
        path: &str,
        new: NewMount,
    ) -> CoreResult<()> {
        let path = path.to_owned();
        let _change = self.changes.lock().await;
        let current = Self::read_stored(barrier).await?;
        if let Some(clash) = current
            .entries
            .iter()
            .find(|m| m.path.starts_with(&path) || path.starts_with(&m.path))
        {
            return Err(CoreError::bad(format!(
                "path is already in use at {}",
                clash.path
            )));
        }
        let entry = MountEntry {
            path: path.clone(),
            mount_type: new.mount_type,
            description: new.description,
            uuid: uuid::Uuid::new_v4().to_string(),
            accessor: format!(
                "{}{}_{}",
                if path.starts_with("auth/") {
                    "auth_"
                } else {
                    ""
                },
                new.mount_type.as_str(),
                random_chars(BASE62, 8)?.to_lowercase()
            ),
            options: new.options,
            config: new.config,
            created: crate::core::now(),
            tainted: false,
        };
        keys.create(barrier, &entry.uuid).await?;
        let mut next = current.entries;
        next.push(Arc::new(entry));
        self.persist(barrier, current.expect, next).await
    }

    /// Changes the mount at `path` (normalised) in place (`sys/mounts/:path/tune`).
    pub(crate) async fn tune(
        &self,
        barrier: &Barrier,
        path: &str,
        change: impl FnOnce(&mut MountEntry) -> CoreResult<()>,
    ) -> CoreResult<()> {
        let _change = self.changes.lock().await;
        let current = Self::read_stored(barrier).await?;
        let mut next = current.entries.clone();
        let Some(slot) = next.iter_mut().find(|m| m.path == path) else {
            return Err(no_mount(path));
        };
        let mut entry = MountEntry::clone(slot);
        change(&mut entry)?;
        *slot = Arc::new(entry);
        self.persist(barrier, current.expect, next).await
    }

    /// Marks the mount at `path` (normalised) [tainted](MountEntry::tainted); false if
    /// there is none.
    pub(crate) async fn taint(&self, barrier: &Barrier, path: &str) -> CoreResult<bool> {
        let _change = self.changes.lock().await;
        let current = Self::read_stored(barrier).await?;
        let mut next = current.entries.clone();
        let Some(slot) = next.iter_mut().find(|m| m.path == path) else {
            return Ok(false);
        };
        *slot = Arc::new(MountEntry {
            tainted: true,
            ..MountEntry::clone(slot)
        });
        self.persist(barrier, current.expect, next).await?;
        Ok(true)
    }

    /// The paths of the stored mounts whose disable has not finished.
    pub(crate) async fn tainted(&self, barrier: &Barrier) -> CoreResult<Vec<String>> {
        let stored = Self::read_stored(barrier).await?;
        let paths = stored.entries.iter().filter(|m| m.tainted);
        Ok(paths.map(|m| m.path.clone()).collect())
    }

    /// Unmounts `path` (normalised): takes it out of the table first (no request reaches it
    /// from then on), then shreds the mount's key (its data is unreadable from then on),
    /// then deletes its entries.
    pub(crate) async fn disable(
        &self,
        barrier: &Barrier,
        keys: &MountKeys,
        path: &str,
    ) -> CoreResult<()> {
        let _change = self.changes.lock().await;
        let current = Self::read_stored(barrier).await?;
        let Some(entry) = current.entries.iter().find(|m| m.path == path).cloned() else {
            // Vault answers 204 for an absent mount as well.
            return Ok(());
        };
        let next: Vec<Arc<MountEntry>> = current
            .entries
            .iter()
            .filter(|m| m.path != path)
            .cloned()
            .collect();
        self.persist(barrier, current.expect, next).await?;
        keys.destroy(barrier, &entry.uuid).await?;
        delete_tree(barrier, &entry.storage_prefix()).await?;
        barrier
            .delete(&crate::rotation::usage::mount_record(&entry.uuid))
            .await?;
        // The key record's ciphertext must not survive in the database's free pages or log.
        barrier.erase_deleted().await?;
        Ok(())
    }

    /// Stores `entries` as the table if the stored one is still what `expect` says, then
    /// makes them the live table. Called with `changes` held; a conflict means another
    /// server (or a restore) changed the table underneath.
    async fn persist(
        &self,
        barrier: &Barrier,
        expect: Expect,
        entries: Vec<Arc<MountEntry>>,
    ) -> CoreResult<()> {
        let plain: Vec<&MountEntry> = entries.iter().map(AsRef::as_ref).collect();
        let bytes = serde_json::to_vec(&plain).map_err(CoreError::Encode)?;
        if barrier
            .try_commit(vec![Op::put(TABLE_KEY, expect, bytes)])
            .await?
        {
            self.set(entries);
            return Ok(());
        }
        // Memory follows storage, whatever changed it.
        let stored = Self::read_stored(barrier).await?;
        self.set(stored.entries);
        Err(CoreError::bad(
            "the mount table changed while this change was made; try again",
        ))
    }
}

/// Deletes every entry below `prefix` (ending in `/`).
pub(crate) async fn delete_tree(barrier: &Barrier, prefix: &str) -> CoreResult<()> {
    let mut folders = vec![prefix.to_owned()];
    while let Some(folder) = folders.pop() {
        for child in barrier.list(&folder).await? {
            let full = format!("{folder}{child}");
            if child.ends_with('/') {
                folders.push(full);
            } else {
                barrier.delete(&full).await?;
            }
        }
    }
    Ok(())
}

/// A secrets engine's mount path from `sys/mounts/:path`, ending in `/`; the reserved
/// prefixes (`auth/` among them) are refused.
pub(crate) fn normalise_mount_path(path: &str) -> CoreResult<String> {
    let with_slash = checked_path(path)?;
    if RESERVED.iter().any(|r| with_slash.starts_with(r)) {
        return Err(CoreError::bad(format!(
            "cannot mount at reserved path '{with_slash}'"
        )));
    }
    Ok(with_slash)
}

/// An auth method's mount path from `sys/auth/:path`: `auth/<path>/`.
pub(crate) fn auth_mount_path(path: &str) -> CoreResult<String> {
    Ok(format!("auth/{}", checked_path(path)?))
}

/// `path` with one `/` at its end, refused when empty or with an empty, `.` or `..` segment.
fn checked_path(path: &str) -> CoreResult<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Err(CoreError::bad("mount path cannot be empty"));
    }
    if trimmed
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(CoreError::bad(
            "mount path contains an empty, '.' or '..' segment",
        ));
    }
    Ok(format!("{trimmed}/"))
}

/// A mount's key-encryption keys, by version.
pub(crate) struct MountKeySet {
    pub(crate) latest: u32,
    /// When the latest version was made (unix seconds; 0 when not recorded).
    pub(crate) latest_created: i64,
    keys: BTreeMap<u32, Aes256GcmKey>,
    /// Counts the latest version's seals (shared by every copy of this set).
    latest_seals: Arc<crate::rotation::usage::SealCounter>,
}

impl MountKeySet {
    /// The versions held, oldest first.
    pub(crate) fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// Wraps a data key under the latest KEK; returns (version, wrapped).
    pub(crate) fn wrap(&self, dek: &Key256, aad: &[u8]) -> CoreResult<(u32, Vec<u8>)> {
        let kek = self
            .keys
            .get(&self.latest)
            .ok_or_else(|| CoreError::corrupt("mount key set (latest version missing)"))?;
        let wrapped = kek.seal(dek.expose(), aad)?;
        self.latest_seals.count();
        Ok((self.latest, wrapped))
    }

    /// Unwraps a data key wrapped under KEK `version`.
    pub(crate) fn unwrap(&self, version: u32, wrapped: &[u8], aad: &[u8]) -> CoreResult<Key256> {
        let kek = self
            .keys
            .get(&version)
            .ok_or_else(|| CoreError::corrupt("mount key set (a wrapping version is gone)"))?;
        let plain: SecretBytes = kek.open(wrapped, aad)?;
        Ok(Key256::from_slice(plain.expose())?)
    }
}

#[derive(Serialize, Deserialize)]
struct StoredKeys {
    latest: u32,
    keys: BTreeMap<u32, String>,
    /// Creation time of each version (unix seconds), for scheduled rotation. Older records
    /// have none: their mount's creation time stands in.
    #[serde(default)]
    created: BTreeMap<u32, i64>,
}

impl StoredKeys {
    fn encode(&self) -> CoreResult<zeroize::Zeroizing<Vec<u8>>> {
        Ok(zeroize::Zeroizing::new(
            serde_json::to_vec(self).map_err(CoreError::Encode)?,
        ))
    }
}

/// The record holds every KEK version in base64: wiped when it drops, as the keys are.
impl Drop for StoredKeys {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for encoded in self.keys.values_mut() {
            encoded.zeroize();
        }
    }
}

/// Attempts at a key-record update that keeps losing compare-and-set races.
const KEY_UPDATE_ATTEMPTS: usize = 16;

/// Mounts whose KEKs are kept unwrapped (past this, the cache starts over).
const CACHED_MOUNT_KEYS: usize = 1024;

/// Cache of unwrapped mount KEKs (dropped on seal).
pub(crate) struct MountKeys {
    cache: SharedCache<String, MountKeySet>,
    /// What each KEK version has sealed in this process (AES-GCM usage limits).
    seals: crate::rotation::usage::SealCounters,
}

impl Default for MountKeys {
    fn default() -> Self {
        Self {
            cache: SharedCache::new(CACHED_MOUNT_KEYS),
            seals: crate::rotation::usage::SealCounters::default(),
        }
    }
}

impl MountKeys {
    /// Drops the unwrapped KEKs (on seal).
    pub(crate) fn clear(&self) {
        self.cache.clear();
        self.seals.clear();
    }

    /// Drops mount `uuid`'s unwrapped KEKs (another server changed them).
    pub(crate) fn forget(&self, uuid: &str) {
        self.cache.remove(uuid);
    }

    /// Drops every unwrapped KEK, keeping the usage counts.
    pub(crate) fn forget_all(&self) {
        self.cache.clear();
    }

    /// How many data keys mount `uuid`'s KEK `version` has wrapped in this process.
    pub(crate) fn seals(&self, uuid: &str, version: u32) -> u64 {
        self.seals.get(uuid, version)
    }

    async fn create(&self, barrier: &Barrier, uuid: &str) -> CoreResult<()> {
        let key = Key256::generate()?;
        let stored = StoredKeys {
            latest: 1,
            keys: BTreeMap::from([(1, B64.encode(key.expose()))]),
            created: BTreeMap::from([(1, crate::core::now())]),
        };
        barrier
            .put(&format!("{KEYS_PREFIX}{uuid}"), &stored.encode()?)
            .await?;
        Ok(())
    }

    /// Changes mount `uuid`'s key record with `change` under compare-and-set, then drops the
    /// cached copy so the next use reads the new record.
    async fn update<F>(&self, barrier: &Barrier, uuid: &str, change: F) -> CoreResult<u32>
    where
        F: Fn(&mut StoredKeys) -> CoreResult<()>,
    {
        let key = format!("{KEYS_PREFIX}{uuid}");
        for _ in 0..KEY_UPDATE_ATTEMPTS {
            let entry = barrier
                .get_entry(&key)
                .await?
                .ok_or_else(|| CoreError::corrupt("mount key record (missing)"))?;
            let mut stored: StoredKeys = serde_json::from_slice(entry.value.expose())
                .map_err(CoreError::corrupt_json("mount key record"))?;
            change(&mut stored)?;
            let op = Op::put(
                key.clone(),
                Expect::Value(entry.stamp()),
                stored.encode()?.to_vec(),
            );
            if barrier.try_commit(vec![op]).await? {
                self.cache.remove(uuid);
                return Ok(stored.latest);
            }
        }
        Err(CoreError::Contended {
            record: "mount key record",
        })
    }

    /// Adds a new KEK version to mount `uuid` and makes it the one that wraps; older versions
    /// stay for unwrapping. Returns the new version.
    pub(crate) async fn rotate(&self, barrier: &Barrier, uuid: &str) -> CoreResult<u32> {
        let key = Key256::generate()?;
        let encoded = zeroize::Zeroizing::new(B64.encode(key.expose()));
        self.update(barrier, uuid, |stored| {
            let next = stored
                .latest
                .checked_add(1)
                .ok_or_else(|| CoreError::Invariant("mount key versions exhausted"))?;
            stored.keys.insert(next, encoded.to_string());
            stored.created.insert(next, crate::core::now());
            stored.latest = next;
            Ok(())
        })
        .await
    }

    /// Drops mount `uuid`'s KEK versions below `keep_from` (once nothing is wrapped by them).
    pub(crate) async fn retire_below(
        &self,
        barrier: &Barrier,
        uuid: &str,
        keep_from: u32,
    ) -> CoreResult<()> {
        self.update(barrier, uuid, |stored| {
            stored.keys.retain(|v, _| *v >= keep_from);
            stored.created.retain(|v, _| *v >= keep_from);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn destroy(&self, barrier: &Barrier, uuid: &str) -> CoreResult<()> {
        self.cache.remove(uuid);
        barrier.delete(&format!("{KEYS_PREFIX}{uuid}")).await?;
        self.cache.remove(uuid);
        Ok(())
    }

    /// The KEKs of mount `uuid`.
    pub(crate) async fn get(&self, barrier: &Barrier, uuid: &str) -> CoreResult<Arc<MountKeySet>> {
        if let Some(set) = self.cache.get(uuid) {
            return Ok(set);
        }
        let generation = self.cache.generation();
        let bytes = barrier
            .get(&format!("{KEYS_PREFIX}{uuid}"))
            .await?
            .ok_or_else(|| CoreError::corrupt("mount key record (missing)"))?;
        let stored: StoredKeys = serde_json::from_slice(bytes.expose())
            .map_err(CoreError::corrupt_json("mount key record"))?;
        let mut keys = BTreeMap::new();
        for (version, encoded) in &stored.keys {
            let raw = zeroize::Zeroizing::new(
                B64.decode(encoded)
                    .map_err(|_| CoreError::corrupt("mount key"))?,
            );
            keys.insert(*version, Aes256GcmKey::new(&Key256::from_slice(&raw)?)?);
        }
        let set = Arc::new(MountKeySet {
            latest: stored.latest,
            latest_created: stored.created.get(&stored.latest).copied().unwrap_or(0),
            keys,
            latest_seals: self.seals.of(uuid, stored.latest),
        });
        self.cache
            .insert(uuid.to_owned(), Arc::clone(&set), generation);
        Ok(set)
    }
}

/// OpenBao's answer for a path no mount of the table serves.
pub(crate) fn no_mount(path: &str) -> CoreError {
    CoreError::bad(format!("No secret engine mount at {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_normalised_and_checked() {
        assert_eq!(normalise_mount_path("secret").unwrap(), "secret/");
        assert_eq!(normalise_mount_path("/a/b/").unwrap(), "a/b/");
        assert!(normalise_mount_path("sys").is_err());
        assert!(normalise_mount_path("auth/x").is_err());
        assert!(normalise_mount_path("a/../b").is_err());
        assert!(normalise_mount_path("").is_err());
        assert_eq!(auth_mount_path("/userpass/").unwrap(), "auth/userpass/");
        assert!(auth_mount_path("a/../b").is_err());
    }
}
