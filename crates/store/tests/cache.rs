#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the read cache promises: it answers repeated reads itself, stays bounded, and
//! never serves a value older than a write that completed before the read began.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};
use ward_store::{
    Action, CacheLimits, CachedStorage, Expect, MemoryStorage, Op, Storage, StoreError,
};

fn cached() -> CachedStorage<MemoryStorage> {
    CachedStorage::new(MemoryStorage::new(), CacheLimits::default())
}

#[tokio::test]
async fn repeated_reads_are_hits_including_absent_keys() {
    let cache = cached();
    cache.put("k", b"v").await.unwrap();
    for _ in 0..3 {
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(cache.get("absent").await.unwrap(), None);
    }
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits, stats.entries), (2, 4, 2));
}

#[tokio::test]
async fn writes_through_the_cache_replace_what_it_holds() {
    let cache = cached();
    assert_eq!(cache.get("k").await.unwrap(), None);
    cache.put("k", b"1").await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"1"[..]));
    cache
        .commit(vec![Op {
            key: "k".into(),
            expect: Expect::Value(b"1".to_vec()),
            action: Action::Put(b"2".to_vec()),
        }])
        .await
        .unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"2"[..]));
    cache.delete("k").await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn a_failed_commit_drops_the_keys_it_touched() {
    let cache = cached();
    cache.put("k", b"old").await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"old"[..]));
    // Someone else changes the backend behind the cache's back...
    cache.inner().put("k", b"theirs").await.unwrap();
    // ...and our CAS, based on the stale value, fails: the cache must not keep "old".
    let outcome = cache
        .commit(vec![Op {
            key: "k".into(),
            expect: Expect::Value(b"old".to_vec()),
            action: Action::Put(b"mine".to_vec()),
        }])
        .await;
    assert!(matches!(outcome, Err(StoreError::Conflict)));
    assert_eq!(
        cache.get("k").await.unwrap().as_deref(),
        Some(&b"theirs"[..])
    );
}

#[tokio::test]
async fn invalidate_and_clear_forget_other_writers_changes() {
    let cache = cached();
    cache.put("a", b"1").await.unwrap();
    cache.put("b", b"1").await.unwrap();
    assert!(cache.get("a").await.unwrap().is_some());
    assert!(cache.get("b").await.unwrap().is_some());
    cache.inner().put("a", b"2").await.unwrap();
    cache.inner().put("b", b"2").await.unwrap();
    // Still the cached values: nothing told the cache.
    assert_eq!(cache.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
    cache.invalidate("a");
    assert_eq!(cache.get("a").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(cache.get("b").await.unwrap().as_deref(), Some(&b"1"[..]));
    cache.clear();
    assert_eq!(cache.get("b").await.unwrap().as_deref(), Some(&b"2"[..]));
}

#[tokio::test]
async fn the_cache_stays_within_its_limits() {
    let limits = CacheLimits {
        max_entries: 10,
        max_bytes: 2048,
        max_value_bytes: 1024,
    };
    let cache = CachedStorage::new(MemoryStorage::new(), limits);
    for i in 0..100 {
        cache.put(&format!("k{i}"), &[7; 300]).await.unwrap();
        cache.get(&format!("k{i}")).await.unwrap();
        let stats = cache.stats();
        assert!(stats.entries <= 10 && stats.bytes <= 2048, "{stats:?}");
    }
    // 300-byte values plus overhead: the byte bound is the tighter one here.
    assert_eq!(cache.stats().entries, 5);
    // Too large to cache at all: every read goes to the backend.
    cache.put("huge", &[1; 1500]).await.unwrap();
    cache.get("huge").await.unwrap();
    let misses = cache.stats().misses;
    assert_eq!(cache.get("huge").await.unwrap().unwrap().len(), 1500);
    assert_eq!(cache.stats().misses, misses + 1);
    // The most recently used entries are the ones kept.
    let hits = cache.stats().hits;
    cache.get("k99").await.unwrap();
    assert_eq!(cache.stats().hits, hits + 1);
}

/// A real in-memory backend whose reads or writes can be held at a gate after they have
/// reached the backend, to replay exact interleavings of a read and a write.
struct Gated {
    inner: MemoryStorage,
    hold_gets: AtomicBool,
    hold_puts: AtomicBool,
    reached: Notify,
    release: Semaphore,
}

impl Gated {
    fn new() -> Self {
        Self {
            inner: MemoryStorage::new(),
            hold_gets: AtomicBool::new(false),
            hold_puts: AtomicBool::new(false),
            reached: Notify::new(),
            release: Semaphore::new(0),
        }
    }

    async fn gate(&self, hold: &AtomicBool) {
        if hold.load(Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.acquire().await.unwrap().forget();
        }
    }
}

#[async_trait]
impl Storage for Gated {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.inner.get(key).await;
        self.gate(&self.hold_gets).await;
        value
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let outcome = self.inner.put(key, value).await;
        self.gate(&self.hold_puts).await;
        outcome
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.inner.commit(ops).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_started_before_a_write_does_not_cache_the_old_value() {
    let cache = Arc::new(CachedStorage::new(Gated::new(), CacheLimits::default()));
    cache.put("k", b"old").await.unwrap();
    cache.inner().hold_gets.store(true, Ordering::SeqCst);
    let reader = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move { cache.get("k").await.unwrap() })
    };
    cache.inner().reached.notified().await; // The read has fetched "old" from the backend.
    cache.inner().hold_gets.store(false, Ordering::SeqCst);
    cache.put("k", b"new").await.unwrap(); // A write completes meanwhile.
    cache.inner().release.add_permits(1);
    assert_eq!(reader.await.unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"new"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_a_write_never_go_back_to_the_old_value() {
    let cache = Arc::new(CachedStorage::new(Gated::new(), CacheLimits::default()));
    cache.put("k", b"old").await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"old"[..]));
    cache.inner().hold_puts.store(true, Ordering::SeqCst);
    let writer = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move { cache.put("k", b"new").await.unwrap() })
    };
    // The backend holds "new" but the write has not returned: a read that sees "new"
    // must not be followed by one that sees "old".
    cache.inner().reached.notified().await;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"new"[..]));
    cache.inner().release.add_permits(1);
    writer.await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"new"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_write_still_invalidates_once_it_lands() {
    let cache = Arc::new(CachedStorage::new(Gated::new(), CacheLimits::default()));
    cache.put("k", b"old").await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"old"[..]));
    cache.inner().hold_puts.store(true, Ordering::SeqCst);
    let writer = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move { cache.put("k", b"new").await })
    };
    cache.inner().reached.notified().await;
    writer.abort(); // The caller gives up while the backend is mid-write.
    assert!(writer.await.unwrap_err().is_cancelled());
    cache.inner().hold_puts.store(false, Ordering::SeqCst);
    cache.inner().release.add_permits(1);
    for _ in 0..50 {
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"new"[..]));
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_readers_only_ever_move_forward() {
    let cache = Arc::new(cached());
    cache.put("n", &0u32.to_be_bytes()).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (cache, done) = (Arc::clone(&cache), Arc::clone(&done));
        readers.push(tokio::spawn(async move {
            let mut seen = 0u32;
            while !done.load(Ordering::SeqCst) {
                let value = cache.get("n").await.unwrap().unwrap();
                let value = u32::from_be_bytes(value.try_into().unwrap());
                assert!(value >= seen, "went back from {seen} to {value}");
                seen = value;
                tokio::task::yield_now().await;
            }
        }));
    }
    for i in 1..=2000u32 {
        cache.put("n", &i.to_be_bytes()).await.unwrap();
        // A read after the write returned sees it (or something newer).
        let now = cache.get("n").await.unwrap().unwrap();
        assert_eq!(u32::from_be_bytes(now.try_into().unwrap()), i);
    }
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        reader.await.unwrap();
    }
}
