//! The encryption barrier: everything above it speaks logical keys and plaintext, everything
//! below it sees only encrypted path segments and AES-GCM ciphertext.
//!
//! Logical key `a/b/c` is stored at physical key `b/E("", a)/E("a/", b)/E("a/b/", c)`, where
//! `E` is the keyring's deterministic path cipher with the parent path as associated data,
//! and the value is encrypted under the keyring's active term with the logical key as
//! associated data (so an entry moved to another key fails authentication).

use std::sync::{Arc, RwLock};

use ward_crypto::{CryptoError, Keyring, SecretBytes};

use crate::{Action, Op, Storage, StoreError};

/// Physical prefix of every barrier entry; keys outside it are the few unencrypted
/// bootstrap records (seal configuration, the wrapped root key and keyring).
const PHYSICAL_PREFIX: &str = "b/";

/// Longest logical key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 2048;

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
    keyring: RwLock<Option<Arc<Keyring>>>,
}

impl Barrier {
    /// A sealed barrier over `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            keyring: RwLock::new(None),
        }
    }

    /// The backend, for the unencrypted bootstrap records only.
    pub fn raw_storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Installs the keyring: the barrier is unsealed from now on.
    pub fn unseal(&self, keyring: Arc<Keyring>) {
        if let Ok(mut guard) = self.keyring.write() {
            *guard = Some(keyring);
        }
    }

    /// Drops the keyring (its keys are wiped when the last user lets go).
    pub fn seal(&self) {
        if let Ok(mut guard) = self.keyring.write() {
            *guard = None;
        }
    }

    /// True while no keyring is installed.
    pub fn is_sealed(&self) -> bool {
        self.keyring.read().map(|g| g.is_none()).unwrap_or(true)
    }

    /// The installed keyring.
    pub fn keyring(&self) -> Result<Arc<Keyring>, StoreError> {
        self.keyring
            .read()
            .ok()
            .and_then(|g| g.clone())
            .ok_or(StoreError::Sealed)
    }

    /// The decrypted value at `key`.
    pub async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StoreError> {
        Ok(self.get_entry(key).await?.map(|e| e.value))
    }

    /// The decrypted value at `key` with its compare-and-set stamp.
    pub async fn get_entry(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let ring = self.keyring()?;
        let physical = physical_key(&ring, key)?;
        let Some(sealed) = self.storage.get(&physical).await? else {
            return Ok(None);
        };
        let value = ring.decrypt(&sealed, key.as_bytes()).map_err(integrity)?;
        Ok(Some(Entry {
            value,
            stamp: sealed,
        }))
    }

    /// Encrypts and stores `value` at `key`.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let ring = self.keyring()?;
        let physical = physical_key(&ring, key)?;
        let sealed = ring.encrypt(value, key.as_bytes()).map_err(integrity)?;
        self.storage.put(&physical, &sealed).await
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let ring = self.keyring()?;
        self.storage.delete(&physical_key(&ring, key)?).await
    }

    /// The children of logical folder `prefix` (empty or ending in `/`), decrypted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let ring = self.keyring()?;
        let physical_prefix = if prefix.is_empty() {
            PHYSICAL_PREFIX.to_owned()
        } else {
            let folder = prefix.strip_suffix('/').ok_or(StoreError::InvalidKey)?;
            format!("{}/", physical_key(&ring, folder)?)
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
        let ring = self.keyring()?;
        let mut physical = Vec::with_capacity(ops.len());
        for op in ops {
            let key = physical_key(&ring, &op.key)?;
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
        self.storage.commit(physical).await
    }
}

fn integrity(_: CryptoError) -> StoreError {
    StoreError::Integrity
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
