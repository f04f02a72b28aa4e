//! The encryption barrier: everything above it speaks logical keys and plaintext, everything
//! below it sees only encrypted path segments and AES-GCM ciphertext.
//!
//! Logical key `a/b/c` is stored at physical key `b/E("", a)/E("a/", b)/E("a/b/", c)`, where
//! `E` is the keyring's deterministic path cipher with the parent path as associated data,
//! and the value is encrypted under the keyring's active term with the logical key as
//! associated data (so an entry moved to another key fails authentication).

use std::sync::{Arc, RwLock};

use arc_swap::ArcSwapOption;
use ward_crypto::{CryptoError, Keyring, SecretBytes};

use crate::paths::{PHYSICAL_PREFIX, PathMemo};
use crate::{Action, Op, Storage, StoreError};

/// A value read through the barrier together with the stamp that identifies this exact
/// version of it, for a later compare-and-set ([`Expect::Value`] with [`Entry::stamp`]).
pub struct Entry {
    /// The decrypted value.
    pub value: SecretBytes,
    stamp: Vec<u8>,
}

impl Entry {
    /// An opaque token for "the entry as I read it": pass it as `Expect::Value(stamp)`.
    pub fn stamp(&self) -> Vec<u8> {
        self.stamp.clone()
    }
}

/// The barrier over a storage backend. Sealed (no keyring) until [`Barrier::unseal`].
pub struct Barrier {
    storage: Arc<dyn Storage>,
    /// Read on every operation: an `ArcSwap` load takes no lock and no shared reference
    /// count, so concurrent readers do not pass a cache line between cores.
    installed: ArcSwapOption<Installed>,
    /// Memos of decoded values to tell about deleted keys.
    pub(crate) memos: RwLock<Vec<Arc<dyn crate::decoded::ForgetDeleted>>>,
    /// Held shared by every write from its encryption to its commit's end, and exclusively
    /// while the storage is replaced underneath ([`Barrier::pause_writes`]).
    writes: tokio::sync::RwLock<()>,
}

/// Writes through the barrier wait while this is held ([`Barrier::pause_writes`]).
pub type WritesPaused<'a> = tokio::sync::RwLockWriteGuard<'a, ()>;

/// The keyring of an unsealed barrier, with the path translations made under it: a new
/// keyring starts with an empty memo, and sealing drops both.
struct Installed {
    ring: Arc<Keyring>,
    paths: PathMemo,
}

impl Installed {
    /// The physical key of logical `key`.
    fn physical(&self, key: &str) -> Result<String, StoreError> {
        self.paths.physical(&self.ring, key)
    }
}

impl Barrier {
    /// A sealed barrier over `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            installed: ArcSwapOption::empty(),
            memos: RwLock::new(Vec::new()),
            writes: tokio::sync::RwLock::new(()),
        }
    }

    /// Waits for the writes under way to end and holds back new ones until the guard is
    /// dropped: for replacing the storage (a snapshot restore) and installing the keyring
    /// that goes with it, so that no value encrypted for the storage as it was lands in it.
    pub async fn pause_writes(&self) -> WritesPaused<'_> {
        self.writes.write().await
    }

    /// The backend, for the unencrypted bootstrap records only.
    pub fn raw_storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Installs the keyring: the barrier is unsealed from now on.
    pub fn unseal(&self, keyring: Arc<Keyring>) {
        self.installed.store(Some(Arc::new(Installed {
            ring: keyring,
            paths: PathMemo::default(),
        })));
    }

    /// Drops the keyring (its keys are wiped when the last user lets go) and the path
    /// translations made under it.
    pub fn seal(&self) {
        self.installed.store(None);
    }

    fn installed(&self) -> Result<Arc<Installed>, StoreError> {
        self.installed.load_full().ok_or(StoreError::Sealed)
    }

    /// True while no keyring is installed.
    pub fn is_sealed(&self) -> bool {
        self.installed.load().is_none()
    }

    /// The installed keyring.
    pub fn keyring(&self) -> Result<Arc<Keyring>, StoreError> {
        Ok(self.installed()?.ring.clone())
    }

    /// The logical key stored at physical key `physical`, if that is a barrier entry whose
    /// path this keyring decrypts (for telling caches what another server changed).
    pub fn logical_key(&self, physical: &str) -> Option<String> {
        let segments = physical.strip_prefix(PHYSICAL_PREFIX)?;
        let installed = self.installed.load();
        let cipher = installed.as_deref()?.ring.path_cipher();
        let mut logical = String::new();
        for segment in segments.split('/') {
            let name = cipher.decrypt_segment(&logical, segment).ok()?;
            logical.push_str(&name);
            logical.push('/');
        }
        logical.pop();
        Some(logical)
    }

    /// The decrypted value at `key`.
    pub async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StoreError> {
        Ok(self.get_entry(key).await?.map(|e| e.value))
    }

    /// The decrypted value at `key` with its compare-and-set stamp.
    pub async fn get_entry(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let installed = self.installed()?;
        let physical = installed.physical(key)?;
        let Some(sealed) = self.storage.get(&physical).await? else {
            return Ok(None);
        };
        let value = installed
            .ring
            .decrypt(&sealed, key.as_bytes())
            .map_err(integrity)?;
        Ok(Some(Entry {
            value,
            stamp: sealed,
        }))
    }

    /// The ciphertext stored at `key`, not decrypted (for [`Barrier::get_decoded`]).
    pub(crate) async fn get_sealed(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let physical = self.with_installed(|i| i.physical(key))?;
        self.storage.get(&physical).await
    }

    /// Decrypts `sealed`, read from `key` by [`Barrier::get_sealed`].
    pub(crate) fn open_sealed(&self, key: &str, sealed: &[u8]) -> Result<SecretBytes, StoreError> {
        self.with_installed(|i| i.ring.decrypt(sealed, key.as_bytes()).map_err(integrity))
    }

    /// Runs `f` on the installed keyring without taking a reference count (for the read
    /// path; `f` must not block).
    fn with_installed<R>(
        &self,
        f: impl FnOnce(&Installed) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        f(self.installed.load().as_deref().ok_or(StoreError::Sealed)?)
    }

    /// Encrypts and stores `value` at `key`.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let _writing = self.writes.read().await;
        let installed = self.installed()?;
        let physical = installed.physical(key)?;
        let sealed = installed
            .ring
            .encrypt(value, key.as_bytes())
            .map_err(integrity)?;
        self.storage.put(&physical, &sealed).await
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let _writing = self.writes.read().await;
        let physical = self.with_installed(|i| i.physical(key))?;
        let result = self.storage.delete(&physical).await;
        self.forget_deleted(std::iter::once(key));
        result
    }

    /// Makes deleted entries unrecoverable from the storage's files ([`Storage::erase_deleted`]).
    pub async fn erase_deleted(&self) -> Result<(), StoreError> {
        self.storage.erase_deleted().await
    }

    /// The children of logical folder `prefix` (empty or ending in `/`), decrypted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let installed = self.installed()?;
        let physical_prefix = if prefix.is_empty() {
            PHYSICAL_PREFIX.to_owned()
        } else {
            let folder = prefix.strip_suffix('/').ok_or(StoreError::InvalidKey)?;
            format!("{}/", installed.physical(folder)?)
        };
        let cipher = installed.ring.path_cipher();
        let mut names = Vec::new();
        for child in self.storage.list(&physical_prefix).await? {
            let (segment, folder) = match child.strip_suffix('/') {
                Some(s) => (s, "/"),
                None => (child.as_str(), ""),
            };
            let name = cipher.decrypt_segment(prefix, segment).map_err(integrity)?;
            names.push(format!("{name}{folder}"));
        }
        names.sort();
        Ok(names)
    }

    /// Applies logical ops atomically. `Expect::Value` must carry an [`Entry::stamp`] (see [`crate::Expect`]);
    /// `Action::Put` carries plaintext, encrypted here.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let _writing = self.writes.read().await;
        let installed = self.installed()?;
        let ring = &installed.ring;
        let deleted: Vec<String> = ops
            .iter()
            .filter(|op| matches!(op.action, Action::Delete))
            .map(|op| op.key.clone())
            .collect();
        let mut physical = Vec::with_capacity(ops.len());
        for op in ops {
            let key = installed.physical(&op.key)?;
            let action = match op.action {
                Action::Put(plain) => {
                    Action::Put(ring.encrypt(&plain, op.key.as_bytes()).map_err(integrity)?)
                }
                other => other,
            };
            physical.push(Op {
                key,
                expect: op.expect,
                action,
            });
        }
        let result = self.storage.commit(physical).await;
        self.forget_deleted(deleted.iter().map(String::as_str));
        result
    }
}

impl Barrier {
    /// [`commit`](Self::commit)s `ops`: `Ok(false)` when one's [`Expect`](crate::Expect) no
    /// longer held because a concurrent writer got there first, for the caller to read again
    /// and retry.
    pub async fn try_commit(&self, ops: Vec<Op>) -> Result<bool, StoreError> {
        match self.commit(ops).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn integrity(_: CryptoError) -> StoreError {
    StoreError::Integrity
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStorage;

    fn ring() -> Arc<Keyring> {
        Arc::new(Keyring::generate(0).unwrap())
    }

    #[tokio::test]
    async fn translations_are_remembered_per_keyring_and_forgotten_on_seal() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let barrier = Barrier::new(storage.clone());
        let first = ring();
        barrier.unseal(first.clone());
        barrier.put("app/db", b"v1").await.unwrap();
        // Read twice: the second read uses the remembered translation.
        assert_eq!(
            barrier.get("app/db").await.unwrap().unwrap().expose(),
            b"v1"
        );
        assert_eq!(
            barrier.get("app/db").await.unwrap().unwrap().expose(),
            b"v1"
        );

        // Another keyring has another path key: the entry is simply not found under it. A
        // translation remembered from the first keyring would find the first entry and fail
        // to decrypt it instead.
        barrier.seal();
        assert!(matches!(
            barrier.get("app/db").await,
            Err(StoreError::Sealed)
        ));
        barrier.unseal(ring());
        assert!(barrier.get("app/db").await.unwrap().is_none());

        barrier.unseal(first);
        assert_eq!(
            barrier.get("app/db").await.unwrap().unwrap().expose(),
            b"v1"
        );
        assert_eq!(barrier.list("app/").await.unwrap(), ["db"]);
        let physical = storage.list("b/").await.unwrap();
        let folder = format!("b/{}", physical[0]);
        let leaf = storage.list(&folder).await.unwrap().remove(0);
        assert_eq!(
            barrier.logical_key(&format!("{folder}{leaf}")).as_deref(),
            Some("app/db")
        );
        assert_eq!(barrier.logical_key("core/keyring"), None);
        barrier.delete("app/db").await.unwrap();
        assert!(barrier.get("app/db").await.unwrap().is_none());
    }
}
