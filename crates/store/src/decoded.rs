//! Decoded values remembered by the ciphertext they came from.
//!
//! A hot record (a secret's metadata, say) is read, decrypted and parsed on every request,
//! though it rarely changes. [`Barrier::get_decoded`] still reads the record's ciphertext
//! from storage on every call (the storage, or its cache, stays the one source of truth),
//! but when those bytes are the ones it decoded last time it hands back the decoded value
//! instead of decrypting and parsing them again. A write changes the ciphertext (every
//! encryption draws a fresh nonce), so a changed record is always decoded afresh: there is
//! nothing to invalidate, and nothing can be served stale.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::{Barrier, StoreError};

/// Decoded values by logical key, each with the ciphertext it was decoded from.
pub struct DecodedMemo<T> {
    entries: RwLock<HashMap<String, Decoded<T>>>,
    capacity: usize,
}

struct Decoded<T> {
    sealed: Vec<u8>,
    value: Arc<T>,
}

impl<T> DecodedMemo<T> {
    /// A memo of at most `capacity` keys (past that it starts over).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// Forgets every decoded value (on seal: nothing decoded outlives the keyring).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len())
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, key: &str, sealed: &[u8]) -> Option<Arc<T>> {
        let entries = self.entries.read().ok()?;
        let found = entries.get(key)?;
        // Ciphertext is not secret: a plain comparison is fine.
        (found.sealed == sealed).then(|| Arc::clone(&found.value))
    }

    fn remember(&self, key: &str, sealed: Vec<u8>, value: Arc<T>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= self.capacity && !entries.contains_key(key) {
                entries.clear();
            }
            entries.insert(key.to_owned(), Decoded { sealed, value });
        }
    }
}

impl<T> std::fmt::Debug for DecodedMemo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedMemo")
            .field("entries", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Barrier {
    /// The value at `key` decoded by `decode`, or the value decoded before if the stored
    /// ciphertext has not changed since (see the module documentation).
    pub async fn get_decoded<T, E>(
        &self,
        key: &str,
        memo: &DecodedMemo<T>,
        decode: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Option<Arc<T>>, E>
    where
        E: From<StoreError>,
    {
        let Some(sealed) = self.get_sealed(key).await? else {
            return Ok(None);
        };
        if let Some(value) = memo.lookup(key, &sealed) {
            return Ok(Some(value));
        }
        let plain = self.open_sealed(key, &sealed)?;
        let value = Arc::new(decode(plain.expose())?);
        memo.remember(key, sealed, Arc::clone(&value));
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStorage, Storage};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use ward_crypto::Keyring;

    fn parse(count: &AtomicUsize) -> impl FnOnce(&[u8]) -> Result<String, StoreError> + '_ {
        move |bytes| {
            count.fetch_add(1, Ordering::Relaxed);
            Ok(String::from_utf8_lossy(bytes).into_owned())
        }
    }

    #[tokio::test]
    async fn an_unchanged_record_is_decoded_once_and_a_changed_one_again() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let barrier = Barrier::new(storage);
        barrier.unseal(Arc::new(Keyring::generate(0).unwrap()));
        let memo = DecodedMemo::new(16);
        let decodes = AtomicUsize::new(0);

        barrier.put("kv/meta/a", b"one").await.unwrap();
        for _ in 0..3 {
            let got = barrier
                .get_decoded("kv/meta/a", &memo, parse(&decodes))
                .await;
            assert_eq!(got.unwrap().unwrap().as_str(), "one");
        }
        assert_eq!(decodes.load(Ordering::Relaxed), 1);

        // The same plaintext written again is a new ciphertext: decoded afresh.
        barrier.put("kv/meta/a", b"one").await.unwrap();
        barrier
            .get_decoded("kv/meta/a", &memo, parse(&decodes))
            .await
            .unwrap();
        assert_eq!(decodes.load(Ordering::Relaxed), 2);

        barrier.put("kv/meta/a", b"two").await.unwrap();
        let got = barrier
            .get_decoded("kv/meta/a", &memo, parse(&decodes))
            .await;
        assert_eq!(got.unwrap().unwrap().as_str(), "two");

        barrier.delete("kv/meta/a").await.unwrap();
        let got = barrier
            .get_decoded("kv/meta/a", &memo, parse(&decodes))
            .await;
        assert!(got.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_decode_error_is_returned_and_not_remembered() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let barrier = Barrier::new(storage);
        barrier.unseal(Arc::new(Keyring::generate(0).unwrap()));
        let memo: DecodedMemo<String> = DecodedMemo::new(16);
        barrier.put("k", b"x").await.unwrap();
        let failed = barrier
            .get_decoded("k", &memo, |_| Err(StoreError::Integrity))
            .await;
        assert!(matches!(failed, Err(StoreError::Integrity)));
        assert!(memo.is_empty());
    }

    #[tokio::test]
    async fn the_memo_is_bounded() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let barrier = Barrier::new(storage);
        barrier.unseal(Arc::new(Keyring::generate(0).unwrap()));
        let memo = DecodedMemo::new(4);
        let decodes = AtomicUsize::new(0);
        for i in 0..10 {
            let key = format!("k{i}");
            barrier.put(&key, b"v").await.unwrap();
            barrier
                .get_decoded(&key, &memo, parse(&decodes))
                .await
                .unwrap();
            assert!(memo.len() <= 4);
        }
        memo.clear();
        assert!(memo.is_empty());
    }
}
