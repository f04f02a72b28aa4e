//! A cache that each thread keeps its own copy of.
//!
//! The records every request reads (its token, its policies' ACL, a mount's keys, a hot
//! secret's metadata) used to sit in one map per server behind a lock. Every lookup then
//! wrote to memory both runtime workers share: the lock's word and the entry's reference
//! count, which moved between the cores on every request. Here each thread fills and reads
//! its own map, under a lock only it takes on the hot path, and hands out its own `Arc`s.
//! A thread that has not seen a record yet reads it from storage once.
//!
//! Correctness rests on two rules:
//! - [`ThreadCache::remove`] and [`ThreadCache::clear`] first bump a generation, then empty
//!   every thread's map, each under that thread's lock: once they return, no thread serves
//!   what they dropped (a record that was changed, revoked or deleted, or every key on seal).
//! - A filler takes [`ThreadCache::generation`] *before* it reads what it will insert, and
//!   [`ThreadCache::insert`] refuses the value if the generation moved meanwhile, checked
//!   under the thread's lock. So a value read before a change is never cached after the
//!   change's `remove` (the race a read that overlaps a revocation would otherwise win).
//!
//! Values live as long as their thread's map keeps them or the cache itself; a thread that
//! exits leaves its map to the next thread given its slot (the `thread_local` crate reuses
//! them), so memory stays bounded by the threads alive at once times the per-thread bounds.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use thread_local::ThreadLocal;

/// What a value is counted to weigh against [`ThreadCache::with_max_bytes`].
pub type Weigh<K, V> = fn(&K, &V) -> usize;

/// Values by key, one map per thread (see the module documentation).
pub struct ThreadCache<K: Send, V: Send + Sync> {
    threads: ThreadLocal<Mutex<Entries<K, V>>>,
    /// Bumped by every remove and clear, before the maps are emptied.
    generation: AtomicU64,
    capacity: usize,
    max_bytes: usize,
    weigh: Option<Weigh<K, V>>,
}

/// One thread's map. foldhash, seeded per process: the map is bounded and read on every
/// request, where SipHash would cost as much as the rest of the lookup.
struct Entries<K, V> {
    map: HashMap<K, Arc<V>, foldhash::fast::RandomState>,
    bytes: usize,
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::default(),
            bytes: 0,
        }
    }
}

impl<K: Hash + Eq + Send, V: Send + Sync> ThreadCache<K, V> {
    /// A cache of at most `capacity` keys per thread (past it, the thread's map starts over).
    pub fn new(capacity: usize) -> Self {
        Self {
            threads: ThreadLocal::new(),
            generation: AtomicU64::new(0),
            capacity,
            max_bytes: usize::MAX,
            weigh: None,
        }
    }

    /// Also bounds each thread's map to `max_bytes` as counted by `weigh`; a value heavier
    /// than a sixty-fourth of that is never cached.
    pub fn with_max_bytes(mut self, max_bytes: usize, weigh: Weigh<K, V>) -> Self {
        self.max_bytes = max_bytes;
        self.weigh = Some(weigh);
        self
    }

    /// The generation to hand to [`Self::insert`]: take it before reading the value.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The calling thread's value for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.mine().map.get(key).cloned()
    }

    /// What `f` makes of the calling thread's value for `key` (without cloning the `Arc`).
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> Option<R>) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.mine().map.get(key).and_then(|value| f(value))
    }

    /// Caches `value` for `key` on the calling thread, unless a remove or clear came after
    /// `generation` was taken (then `false`: the value may be stale).
    pub fn insert(&self, key: K, value: Arc<V>, generation: u64) -> bool {
        let cost = self.weigh.map_or(0, |weigh| weigh(&key, &value));
        let mut mine = self.mine();
        // Checked under this thread's lock, which a remove takes after bumping: either the
        // bump is seen here, or the remove finds the value in the map and drops it.
        if self.generation.load(Ordering::SeqCst) != generation || cost > self.max_bytes / 64 {
            return false;
        }
        if let Some(old) = mine.map.remove(&key) {
            mine.bytes -= self.weigh.map_or(0, |weigh| weigh(&key, &old));
        }
        if mine.map.len() >= self.capacity || mine.bytes + cost > self.max_bytes {
            mine.map.clear();
            mine.bytes = 0;
        }
        mine.bytes += cost;
        mine.map.insert(key, value);
        true
    }

    /// Drops `key` on every thread.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for thread in self.threads.iter() {
            let mut entries = lock(thread);
            if let Some((key, old)) = entries.map.remove_entry(key) {
                entries.bytes -= self.weigh.map_or(0, |weigh| weigh(&key, &old));
            }
        }
    }

    /// Drops everything on every thread (on seal: no key outlives the keyring).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for thread in self.threads.iter() {
            let mut entries = lock(thread);
            entries.map.clear();
            entries.bytes = 0;
        }
    }

    /// How many keys the calling thread holds.
    pub fn len(&self) -> usize {
        self.mine().map.len()
    }

    /// True when the calling thread holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the calling thread's values are counted to weigh.
    pub fn bytes(&self) -> usize {
        self.mine().bytes
    }

    fn mine(&self) -> MutexGuard<'_, Entries<K, V>> {
        lock(self.threads.get_or_default())
    }
}

/// Locks one thread's map. A panic while it was held can only have left the map
/// inconsistent, so recover by emptying it.
fn lock<K, V>(entries: &Mutex<Entries<K, V>>) -> MutexGuard<'_, Entries<K, V>> {
    match entries.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            guard.map.clear();
            guard.bytes = 0;
            entries.clear_poison();
            guard
        }
    }
}

impl<K: Send, V: Send + Sync> std::fmt::Debug for ThreadCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadCache")
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_another_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| s.spawn(f).join().unwrap())
    }

    #[test]
    fn each_thread_fills_its_own_copy() {
        let cache: ThreadCache<String, String> = ThreadCache::new(16);
        let generation = cache.generation();
        assert!(cache.insert("a".into(), Arc::new("one".into()), generation));
        assert_eq!(cache.get("a").as_deref().map(String::as_str), Some("one"));
        // Another thread has not read the record yet: it fills its own map. (All in one
        // thread: a second thread may or may not be given the first one's map, depending on
        // which threads of the test run exit and start in between.)
        let theirs = on_another_thread(|| {
            assert!(cache.get("a").is_none());
            assert!(cache.insert("a".into(), Arc::new("one".into()), generation));
            assert_eq!(cache.len(), 1);
            cache.get("a").unwrap()
        });
        // The two threads hand out different allocations (no shared reference count).
        let mine = cache.get("a").unwrap();
        assert!(!Arc::ptr_eq(&mine, &theirs));
    }

    #[test]
    fn a_removed_key_is_gone_on_every_thread_at_once() {
        let cache: ThreadCache<String, u32> = ThreadCache::new(16);
        let generation = cache.generation();
        cache.insert("token".into(), Arc::new(1), generation);
        on_another_thread(|| cache.insert("token".into(), Arc::new(1), generation));
        cache.insert("other".into(), Arc::new(2), generation);

        on_another_thread(|| cache.remove("token"));
        assert!(cache.get("token").is_none());
        assert!(on_another_thread(|| cache.get("token")).is_none());
        assert_eq!(cache.get("other").as_deref(), Some(&2));

        cache.clear();
        assert!(cache.is_empty());
        assert!(on_another_thread(|| cache.is_empty()));
    }

    #[test]
    fn a_value_read_before_a_remove_is_not_cached_after_it() {
        let cache: ThreadCache<String, &str> = ThreadCache::new(16);
        // A request starts to read the token's record...
        let generation = cache.generation();
        // ...the token is revoked meanwhile, on another thread...
        on_another_thread(|| cache.remove("token"));
        // ...and the request's stale copy must not be cached.
        assert!(!cache.insert("token".into(), Arc::new("revoked"), generation));
        assert!(cache.get("token").is_none());
        // A clear counts too.
        let generation = cache.generation();
        cache.clear();
        assert!(!cache.insert("token".into(), Arc::new("sealed"), generation));
        // A fill that began after the change is cached.
        assert!(cache.insert("token".into(), Arc::new("fresh"), cache.generation()));
    }

    #[test]
    fn each_thread_is_bounded_in_keys_and_bytes() {
        let cache: ThreadCache<String, usize> = ThreadCache::new(4);
        for i in 0..10 {
            cache.insert(format!("k{i}"), Arc::new(i), cache.generation());
            assert!(cache.len() <= 4);
        }
        assert_eq!(cache.get("k9").as_deref(), Some(&9));

        let cache: ThreadCache<String, usize> =
            ThreadCache::new(1000).with_max_bytes(6400, |key, size| key.len() + size);
        // Past a sixty-fourth of the budget a value is not cached at all.
        assert!(!cache.insert("heavy".into(), Arc::new(200), cache.generation()));
        for i in 0..100 {
            cache.insert(format!("k{i}"), Arc::new(90), cache.generation());
            assert!(cache.bytes() <= 6400, "{}", cache.bytes());
        }
        assert!(!cache.is_empty());
        cache.remove("k99");
        cache.clear();
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn replacing_a_key_keeps_the_count_right() {
        let cache: ThreadCache<String, usize> =
            ThreadCache::new(16).with_max_bytes(1 << 20, |_, size| *size);
        cache.insert("k".into(), Arc::new(100), cache.generation());
        cache.insert("k".into(), Arc::new(50), cache.generation());
        assert_eq!(cache.bytes(), 50);
        cache.remove("k");
        assert_eq!(cache.bytes(), 0);
    }
}
