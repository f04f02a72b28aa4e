//! The encryption barrier: everything above it speaks logical keys and plaintext, everything
//! below it sees only encrypted path segments and AES-GCM ciphertext.
//!
//! Logical key `a/b/c` is stored at physical key `b/E("", a)/E("a/", b)/E("a/b/", c)`, where
//! `E` is the keyring's deterministic path cipher with the parent path as associated data,
//! and the value is encrypted under the keyring's active term with the logical key as
//! associated data (so an entry moved to another key fails authentication).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ward_crypto::{CryptoError, Keyring, SecretBytes};

use crate::{Action, Op, Storage, StoreError};

/// Physical prefix of every barrier entry; keys outside it are the few unencrypted
/// bootstrap records (seal configuration, the wrapped root key and keyring).
const PHYSICAL_PREFIX: &str = "b/";

/// Longest logical key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 2048;

/// Logical-to-physical key translations remembered. A translation costs one AES-SIV per path
/// segment (a key schedule and a CMAC each), the largest share of a cached read; past this
/// many entries the memo starts over (about 200 bytes an entry).
const PATH_MEMO_ENTRIES: usize = 16_384;

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
    installed: RwLock<Option<Installed>>,
    /// Memos of decoded values to tell about deleted keys.
    pub(crate) memos: RwLock<Vec<Arc<dyn crate::decoded::ForgetDeleted>>>,
}

/// The keyring of an unsealed barrier, with the path translations made under it: a new
/// keyring starts with an empty memo, and sealing drops both.
#[derive(Clone)]
struct Installed {
    ring: Arc<Keyring>,
    paths: Arc<RwLock<HashMap<String, Arc<str>>>>,
}

impl Barrier {
    /// A sealed barrier over `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            installed: RwLock::new(None),
            memos: RwLock::new(Vec::new()),
        }
    }

    /// The backend, for the unencrypted bootstrap records only.
    pub fn raw_storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Installs the keyring: the barrier is unsealed from now on.
    pub fn unseal(&self, keyring: Arc<Keyring>) {
        if let Ok(mut guard) = self.installed.write() {
            *guard = Some(Installed {
                ring: keyring,
                paths: Arc::default(),
            });
        }
    }

    /// Drops the keyring (its keys are wiped when the last user lets go) and the path
    /// translations made under it.
    pub fn seal(&self) {
        if let Ok(mut guard) = self.installed.write() {
            *guard = None;
        }
    }

    fn installed(&self) -> Result<Installed, StoreError> {
        self.installed
            .read()
            .ok()
            .and_then(|g| g.clone())
            .ok_or(StoreError::Sealed)
    }

    /// True while no keyring is installed.
    pub fn is_sealed(&self) -> bool {
        self.installed.read().map(|g| g.is_none()).unwrap_or(true)
    }

    /// The installed keyring.
    pub fn keyring(&self) -> Result<Arc<Keyring>, StoreError> {
        Ok(self.installed()?.ring)
    }

    /// The decrypted value at `key`.
    pub async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StoreError> {
        Ok(self.get_entry(key).await?.map(|e| e.value))
    }

    /// The decrypted value at `key` with its compare-and-set stamp.
    pub async fn get_entry(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let Installed { ring, paths } = self.installed()?;
        let physical = physical_key_memo(&paths, &ring, key)?;
        let Some(sealed) = self.storage.get(&physical).await? else {
            return Ok(None);
        };
        let value = ring.decrypt(&sealed, key.as_bytes()).map_err(integrity)?;
        Ok(Some(Entry {
            value,
            stamp: sealed,
        }))
    }

    /// The ciphertext stored at `key`, not decrypted (for [`Barrier::get_decoded`]).
    pub(crate) async fn get_sealed(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let physical = self.with_installed(|i| physical_key_memo(&i.paths, &i.ring, key))?;
        self.storage.get(&physical).await
    }

    /// Decrypts `sealed`, read from `key` by [`Barrier::get_sealed`].
    pub(crate) fn open_sealed(&self, key: &str, sealed: &[u8]) -> Result<SecretBytes, StoreError> {
        self.with_installed(|i| i.ring.decrypt(sealed, key.as_bytes()).map_err(integrity))
    }

    /// Runs `f` on the installed keyring under the read lock (no reference counting, for
    /// the read path; `f` must not block).
    fn with_installed<R>(
        &self,
        f: impl FnOnce(&Installed) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let guard = self.installed.read().map_err(|_| StoreError::Sealed)?;
        f(guard.as_ref().ok_or(StoreError::Sealed)?)
    }

    /// Encrypts and stores `value` at `key`.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let Installed { ring, paths } = self.installed()?;
        let physical = physical_key_memo(&paths, &ring, key)?;
        let sealed = ring.encrypt(value, key.as_bytes()).map_err(integrity)?;
        self.storage.put(&physical, &sealed).await
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let Installed { ring, paths } = self.installed()?;
        let result = self
            .storage
            .delete(&physical_key_memo(&paths, &ring, key)?)
            .await;
        self.forget_deleted(std::iter::once(key));
        result
    }

    /// The children of logical folder `prefix` (empty or ending in `/`), decrypted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let Installed { ring, paths } = self.installed()?;
        let physical_prefix = if prefix.is_empty() {
            PHYSICAL_PREFIX.to_owned()
        } else {
            let folder = prefix.strip_suffix('/').ok_or(StoreError::InvalidKey)?;
            format!("{}/", physical_key_memo(&paths, &ring, folder)?)
        };
        let cipher = ring.path_cipher();
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
        let Installed { ring, paths } = self.installed()?;
        let deleted: Vec<String> = ops
            .iter()
            .filter(|op| matches!(op.action, Action::Delete))
            .map(|op| op.key.clone())
            .collect();
        let mut physical = Vec::with_capacity(ops.len());
        for op in ops {
            let key = physical_key_memo(&paths, &ring, &op.key)?.to_string();
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

fn integrity(_: CryptoError) -> StoreError {
    StoreError::Integrity
}

/// The physical key of logical `key`, from `memo` or by encrypting its segments.
fn physical_key_memo(
    memo: &RwLock<HashMap<String, Arc<str>>>,
    ring: &Keyring,
    key: &str,
) -> Result<Arc<str>, StoreError> {
    if let Some(found) = memo.read().ok().and_then(|m| m.get(key).cloned()) {
        return Ok(found);
    }
    let physical: Arc<str> = physical_key(ring, key)?.into();
    if let Ok(mut memo) = memo.write() {
        if memo.len() >= PATH_MEMO_ENTRIES {
            memo.clear();
        }
        memo.insert(key.to_owned(), physical.clone());
    }
    Ok(physical)
}

/// Maps a logical key to its physical key under `ring`'s path cipher.
fn physical_key(ring: &Keyring, key: &str) -> Result<String, StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.contains('\0') {
        return Err(StoreError::InvalidKey);
    }
    let cipher = ring.path_cipher();
    let mut out = String::with_capacity(PHYSICAL_PREFIX.len() + key.len() * 2 + 24);
    out.push_str(PHYSICAL_PREFIX);
    let mut parent_end = 0;
    for (i, segment) in key.split('/').enumerate() {
        if segment.is_empty() {
            return Err(StoreError::InvalidKey);
        }
        if i > 0 {
            out.push('/');
        }
        let parent = &key[..parent_end];
        out.push_str(&cipher.encrypt_segment(parent, segment).map_err(integrity)?);
        parent_end += segment.len() + 1;
    }
    Ok(out)
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
        barrier.delete("app/db").await.unwrap();
        assert!(barrier.get("app/db").await.unwrap().is_none());
    }
}
