//! Decoded values remembered by the ciphertext they came from.
//!
//! A hot record (a secret's metadata, say) is read, decrypted and parsed on every request,
//! though it rarely changes. [`Barrier::get_decoded`] still reads the record's ciphertext
//! from storage on every call (the storage, or its cache, stays the one source of truth),
//! but when those bytes are the ones it decoded last time it hands back the decoded value
//! instead of decrypting and parsing them again. A write changes the ciphertext (every
//! encryption draws a fresh nonce), so a changed record is always decoded afresh: there is
//! nothing to invalidate, and nothing can be served stale.
//!
//! What is remembered can be key material (an unwrapped data key): a memo registered with
//! [`Barrier::forget_deleted_keys_in`] drops a key's value as soon as the barrier deletes the
//! key, so destroying a record destroys its decoded copy too.

use std::sync::Arc;

use crate::{Barrier, SharedCache, StoreError};

/// Decoded values by logical key, each with the ciphertext it was decoded from.
pub struct DecodedMemo<T: Send + Sync> {
    cache: SharedCache<String, Decoded<T>>,
}

/// A memo the barrier tells about deleted keys.
pub trait ForgetDeleted: Send + Sync {
    /// `key` was deleted: drop what is remembered of it.
    fn forget(&self, key: &str);
}

impl<T: Send + Sync> ForgetDeleted for DecodedMemo<T> {
    fn forget(&self, key: &str) {
        self.cache.remove(key);
    }
}

struct Decoded<T> {
    sealed: Vec<u8>,
    value: Arc<T>,
}

/// What an entry is counted to weigh: its key, its ciphertext, and as much again for the
/// decoded value (a decoded record is no larger than its ciphertext), plus bookkeeping.
#[allow(clippy::ptr_arg)] // the signature of a `Weigh<String, _>`
fn weight<T>(key: &String, decoded: &Decoded<T>) -> usize {
    key.len() + 2 * decoded.sealed.len() + 64
}

impl<T: Send + Sync> DecodedMemo<T> {
    /// A memo of at most `capacity` keys weighing at most `max_bytes` (past either it starts
    /// over). A record heavier than a sixty-fourth of `max_bytes` is
    /// decoded on every read.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            cache: SharedCache::new(capacity).with_max_bytes(max_bytes, weight),
        }
    }

    /// Forgets every decoded value (on seal: nothing decoded outlives the keyring).
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// How many keys it remembers.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// True when it remembers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, key: &str, sealed: &[u8]) -> Option<Arc<T>> {
        // Ciphertext is not secret: a plain comparison is fine.
        self.cache
            .get(key)
            .filter(|found| found.sealed == sealed)
            .map(|found| Arc::clone(&found.value))
    }

    fn remember(&self, key: &str, sealed: Vec<u8>, value: Arc<T>, generation: u64) {
        let decoded = Arc::new(Decoded { sealed, value });
        self.cache.insert(key.to_owned(), decoded, generation);
    }
}

impl<T: Send + Sync> std::fmt::Debug for DecodedMemo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedMemo")
            .field("entries", &self.len())
            .field("cache", &self.cache)
            .finish()
    }
}

impl Barrier {
    /// Tells `memo` of every key this barrier deletes (through `delete` or `commit`) from
    /// now on, so that it drops its decoded copy.
    pub fn forget_deleted_keys_in(&self, memo: Arc<dyn ForgetDeleted>) {
        if let Ok(mut memos) = self.memos.write() {
            memos.push(memo);
        }
    }

    /// Tells the registered memos that `keys` were deleted.
    pub(crate) fn forget_deleted<'k>(&self, keys: impl Iterator<Item = &'k str>) {
        let Ok(memos) = self.memos.read() else {
            return;
        };
        if memos.is_empty() {
            return;
        }
        for key in keys {
            for memo in memos.iter() {
                memo.forget(key);
            }
        }
    }

    /// The value at `key` decoded by `decode`, or the value decoded before if the stored
    /// ciphertext has not changed since (see the module documentation).
    pub async fn get_decoded<T, E>(
        &self,
        key: &str,
        memo: &DecodedMemo<T>,
        decode: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Option<Arc<T>>, E>
    where
        T: Send + Sync,
        E: From<StoreError>,
    {
        let generation = memo.cache.generation();
        let Some(sealed) = self.get_sealed(key).await? else {
            return Ok(None);
        };
        if let Some(value) = memo.lookup(key, &sealed) {
            return Ok(Some(value));
        }
        let plain = self.open_sealed(key, &sealed)?;
        let value = Arc::new(decode(plain.expose())?);
        memo.remember(key, sealed, Arc::clone(&value), generation);
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStorage, Storage};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use ward_crypto::Keyring;

    fn unsealed_barrier() -> Barrier {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let barrier = Barrier::new(storage);
        barrier.unseal(Arc::new(Keyring::generate(0).unwrap()));
        barrier
    }

    fn parse(count: &AtomicUsize) -> impl FnOnce(&[u8]) -> Result<String, StoreError> + '_ {
        move |bytes| {
            count.fetch_add(1, Ordering::Relaxed);
            Ok(String::from_utf8_lossy(bytes).into_owned())
        }
    }

    #[tokio::test]
    async fn an_unchanged_record_is_decoded_once_and_a_changed_one_again() {
        let barrier = unsealed_barrier();
        let memo = DecodedMemo::new(16, 1 << 20);
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
    async fn a_deleted_key_is_forgotten() {
        let barrier = unsealed_barrier();
        let memo = Arc::new(DecodedMemo::new(16, 1 << 20));
        barrier.forget_deleted_keys_in(memo.clone());
        let decodes = AtomicUsize::new(0);
        for key in ["a", "b", "c"] {
            barrier.put(key, b"v").await.unwrap();
            barrier
                .get_decoded(key, &memo, parse(&decodes))
                .await
                .unwrap();
        }
        assert_eq!(memo.len(), 3);
        barrier.delete("a").await.unwrap();
        assert_eq!(memo.len(), 2);
        barrier
            .commit(vec![crate::Op::delete("b", crate::Expect::Any)])
            .await
            .unwrap();
        assert_eq!(memo.len(), 1);
        // A read that began before a delete does not remember what it read.
        let generation = memo.cache.generation();
        memo.forget("zzz");
        memo.remember("c2", b"x".to_vec(), Arc::new("stale".into()), generation);
        assert!(memo.lookup("c2", b"x").is_none());
    }

    #[tokio::test]
    async fn the_memo_is_bounded_in_bytes_and_skips_heavy_records() {
        let barrier = unsealed_barrier();
        let memo = DecodedMemo::new(1000, 64 * 1024);
        let decodes = AtomicUsize::new(0);
        // Past a sixty-fourth of the budget a record is not remembered at all.
        barrier.put("heavy", &[b'x'; 2048]).await.unwrap();
        barrier
            .get_decoded("heavy", &memo, parse(&decodes))
            .await
            .unwrap();
        assert!(memo.is_empty());
        for i in 0..200 {
            let key = format!("k{i}");
            barrier.put(&key, &[b'v'; 256]).await.unwrap();
            barrier
                .get_decoded(&key, &memo, parse(&decodes))
                .await
                .unwrap();
            let bytes = memo.cache.bytes();
            assert!(bytes <= 64 * 1024, "{bytes}");
        }
        assert!(!memo.is_empty());
    }

    #[tokio::test]
    async fn a_decode_error_is_returned_and_not_remembered() {
        let barrier = unsealed_barrier();
        let memo: DecodedMemo<String> = DecodedMemo::new(16, 1 << 20);
        barrier.put("k", b"x").await.unwrap();
        let failed = barrier
            .get_decoded("k", &memo, |_| Err(StoreError::Integrity))
            .await;
        assert!(matches!(failed, Err(StoreError::Integrity)));
        assert!(memo.is_empty());
    }

    #[tokio::test]
    async fn the_memo_is_bounded() {
        let barrier = unsealed_barrier();
        let memo = DecodedMemo::new(4, 1 << 20);
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
