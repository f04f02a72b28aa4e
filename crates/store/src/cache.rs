//! A read-through cache in front of any [`Storage`].
//!
//! Correctness under concurrency rests on three rules:
//! - a key with a write in flight is never served from, nor filled into, the cache (so two
//!   reads during a write never see the new value and then the old one);
//! - every write, and every [`CachedStorage::invalidate`], drops the key and bumps the
//!   invalidation count of any read in flight for it, and a read fills the cache only if no
//!   such bump happened while it was reading (so a value read before a write is never
//!   cached after it);
//! - writes run to completion in their own task, even if the caller stops waiting, so the
//!   invalidation that ends a write always comes after the backend applied it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use hashlink::LruCache;

use crate::backend::{Op, Storage, StoreError};

/// Bookkeeping bytes counted per cached entry on top of its key and value.
const ENTRY_OVERHEAD: usize = 64;

/// How much a [`CachedStorage`] may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most entries cached (present values and known-absent keys alike).
    pub max_entries: usize,
    /// Most bytes of keys and values cached, counting a little overhead per entry.
    pub max_bytes: usize,
    /// Values larger than this are never cached.
    pub max_value_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_entries: 16_384,
            max_bytes: 32 * 1024 * 1024,
            max_value_bytes: 256 * 1024,
        }
    }
}

/// Counters of a [`CachedStorage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads passed to the backend.
    pub misses: u64,
    /// Entries cached now.
    pub entries: usize,
    /// Bytes cached now (as counted against [`CacheLimits::max_bytes`]).
    pub bytes: usize,
}

/// A read in flight for a key: how many, and how often the key was invalidated meanwhile.
#[derive(Default)]
struct Fill {
    readers: usize,
    invalidations: u64,
}

struct CacheState {
    /// `None` caches "this key is absent".
    entries: LruCache<String, Option<Vec<u8>>>,
    bytes: usize,
    writes_in_flight: HashMap<String, usize>,
    fills: HashMap<String, Fill>,
    /// Counted under the lock a hit holds anyway: a shared atomic would be one more cache
    /// line passed between the cores on every hit.
    hits: u64,
}

impl CacheState {
    fn new() -> Self {
        Self {
            entries: LruCache::new_unbounded(),
            bytes: 0,
            writes_in_flight: HashMap::new(),
            fills: HashMap::new(),
            hits: 0,
        }
    }

    fn drop_key(&mut self, key: &str) {
        if let Some(value) = self.entries.remove(key) {
            self.bytes -= entry_cost(key, value.as_deref());
        }
        if let Some(fill) = self.fills.get_mut(key) {
            fill.invalidations += 1;
        }
    }

    fn drop_all(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        for fill in self.fills.values_mut() {
            fill.invalidations += 1;
        }
    }
}

fn entry_cost(key: &str, value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD
}

/// A [`Storage`] that caches what it reads from `S` and forgets what it writes to it.
///
/// Only writes that go through this wrapper invalidate it: when other processes write the
/// same backend (a shared database), whoever learns of their writes must call
/// [`invalidate`](Self::invalidate) or [`clear`](Self::clear). `list` is never cached.
/// Writes need a tokio runtime (they run in a task of their own).
pub struct CachedStorage<S> {
    inner: Arc<S>,
    limits: CacheLimits,
    state: Arc<Mutex<CacheState>>,
    misses: AtomicU64,
}

impl<S: Storage> CachedStorage<S> {
    /// Wraps `inner` with a cache bounded by `limits`.
    pub fn new(inner: S, limits: CacheLimits) -> Self {
        Self {
            inner: Arc::new(inner),
            limits,
            state: Arc::new(Mutex::new(CacheState::new())),
            misses: AtomicU64::new(0),
        }
    }

    /// The wrapped backend. Writing through it directly bypasses the cache's invalidation.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Forgets `key` (another writer changed it).
    pub fn invalidate(&self, key: &str) {
        lock(&self.state).drop_key(key);
    }

    /// Forgets everything (for example after losing the change feed of a shared database).
    pub fn clear(&self) {
        lock(&self.state).drop_all();
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        let state = lock(&self.state);
        CacheStats {
            hits: state.hits,
            misses: self.misses.load(Ordering::Relaxed),
            entries: state.entries.len(),
            bytes: state.bytes,
        }
    }

    /// Runs `write` on the backend with `keys` marked as being written, in a task of its
    /// own so that the final invalidation happens after the backend is done even if the
    /// caller is cancelled.
    async fn write<F, Fut>(&self, keys: Vec<String>, write: F) -> Result<(), StoreError>
    where
        F: FnOnce(Arc<S>) -> Fut,
        Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        let guard = WriteGuard::start(Arc::clone(&self.state), keys);
        let pending = write(Arc::clone(&self.inner));
        let task = tokio::spawn(async move {
            let outcome = pending.await;
            // Success or failure alike: a failed commit may have been applied in part by a
            // backend that breaks its contract, or its outcome may be unknown.
            drop(guard);
            outcome
        });
        match task.await {
            Ok(outcome) => outcome,
            Err(join) => Err(StoreError::Backend(Box::new(join))),
        }
    }
}

/// Locks the cache state. A panic while the lock was held can only leave the cache
/// inconsistent, never the backend, so recover by emptying it.
fn lock(state: &Mutex<CacheState>) -> MutexGuard<'_, CacheState> {
    match state.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            guard.drop_all();
            state.clear_poison();
            guard
        }
    }
}

/// Marks keys as being written for as long as it lives; dropping it ends the write.
struct WriteGuard {
    state: Arc<Mutex<CacheState>>,
    keys: Vec<String>,
}

impl WriteGuard {
    fn start(state: Arc<Mutex<CacheState>>, keys: Vec<String>) -> Self {
        {
            let mut locked = lock(&state);
            for key in &keys {
                locked.drop_key(key);
                *locked.writes_in_flight.entry(key.clone()).or_default() += 1;
            }
        }
        Self { state, keys }
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut locked = lock(&self.state);
        for key in &self.keys {
            if let Some(count) = locked.writes_in_flight.get_mut(key.as_str()) {
                *count -= 1;
                if *count == 0 {
                    locked.writes_in_flight.remove(key.as_str());
                }
            }
            locked.drop_key(key);
        }
    }
}

/// A read in flight that may fill the cache; dropping it (error, cancellation) only
/// withdraws the read.
struct FillGuard<'c> {
    state: &'c Mutex<CacheState>,
    key: &'c str,
    seen_invalidations: u64,
}

impl<'c> FillGuard<'c> {
    fn finish(self, value: &Option<Vec<u8>>, limits: &CacheLimits) {
        let mut state = lock(self.state);
        let unchanged = state
            .fills
            .get(self.key)
            .is_some_and(|fill| fill.invalidations == self.seen_invalidations);
        let cacheable = value
            .as_ref()
            .is_none_or(|v| v.len() <= limits.max_value_bytes);
        if unchanged && cacheable && !state.writes_in_flight.contains_key(self.key) {
            let cost = entry_cost(self.key, value.as_deref());
            if let Some(old) = state.entries.insert(self.key.to_owned(), value.clone()) {
                state.bytes -= entry_cost(self.key, old.as_deref());
            }
            state.bytes += cost;
            while state.entries.len() > limits.max_entries || state.bytes > limits.max_bytes {
                match state.entries.remove_lru() {
                    Some((key, old)) => state.bytes -= entry_cost(&key, old.as_deref()),
                    None => break,
                }
            }
        }
        // Drop releases this reader's place in `fills`.
    }
}

impl Drop for FillGuard<'_> {
    fn drop(&mut self) {
        let mut state = lock(self.state);
        if let Some(fill) = state.fills.get_mut(self.key) {
            fill.readers -= 1;
            if fill.readers == 0 {
                state.fills.remove(self.key);
            }
        }
    }
}

impl<S> std::fmt::Debug for CachedStorage<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Cached values are ciphertext, but show only sizes anyway.
        let (entries, bytes) = {
            let state = lock(&self.state);
            (state.entries.len(), state.bytes)
        };
        f.debug_struct("CachedStorage")
            .field("limits", &self.limits)
            .field("entries", &entries)
            .field("bytes", &bytes)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: Storage> Storage for CachedStorage<S> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let fill = {
            let mut guard = lock(&self.state);
            let state = &mut *guard;
            if !state.writes_in_flight.is_empty() && state.writes_in_flight.contains_key(key) {
                None
            } else if let Some(value) = state.entries.get(key) {
                state.hits += 1;
                return Ok(value.clone());
            } else {
                let fill = state.fills.entry(key.to_owned()).or_default();
                fill.readers += 1;
                Some(FillGuard {
                    state: &self.state,
                    key,
                    seen_invalidations: fill.invalidations,
                })
            }
        };
        self.misses.fetch_add(1, Ordering::Relaxed);
        let value = self.inner.get(key).await?;
        if let Some(fill) = fill {
            fill.finish(&value, &self.limits);
        }
        Ok(value)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write(vec![key.clone()], move |inner| async move {
            inner.put(&key, &value).await
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(vec![key.clone()], move |inner| async move {
            inner.delete(&key).await
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let keys = ops.iter().map(|op| op.key.clone()).collect();
        self.write(keys, move |inner| async move { inner.commit(ops).await })
            .await
    }

    async fn erase_deleted(&self) -> Result<(), StoreError> {
        self.inner.erase_deleted().await
    }

    async fn export(&self) -> Result<crate::Export, StoreError> {
        self.inner.export().await
    }

    /// Every cached entry may be gone or changed: the cache is emptied once the import
    /// has committed (and before, so nothing read while it runs outlives it).
    async fn replace_all(
        &self,
        steps: tokio::sync::mpsc::Receiver<crate::Import>,
    ) -> Result<u64, StoreError> {
        self.clear();
        let result = self.inner.replace_all(steps).await;
        self.clear();
        result
    }
}
