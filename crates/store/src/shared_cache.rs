//! A bounded map of values that every thread reads, behind one lock.
//!
//! It holds the records every request reads (its token, its policies' ACL, a mount's keys):
//! a lookup takes the lock, clones an `Arc` and lets go. (Per-thread copies of these maps
//! made no measurable difference, docs-machinery-figures.md.)
//!
//! One rule keeps it correct when a record changes while a request is reading it: a filler
//! takes [`SharedCache::generation`] *before* it reads what it will insert, and
//! [`SharedCache::insert`] refuses the value if a [`SharedCache::remove`] or
//! [`SharedCache::clear`] came in between. So a value read before a change (a revocation, a
//! policy write, a seal) is never cached after it.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a value is counted to weigh against [`SharedCache::with_max_bytes`].
pub type Weigh<K, V> = fn(&K, &V) -> usize;

/// Values by key (see the module documentation).
pub struct SharedCache<K, V> {
    state: Mutex<State<K, V>>,
    capacity: usize,
    max_bytes: usize,
    weigh: Option<Weigh<K, V>>,
}

/// The map, hashed with foldhash (seeded per process): it is bounded and read on every
/// request, where SipHash would cost as much as the rest of the lookup.
struct State<K, V> {
    map: HashMap<K, Arc<V>, foldhash::fast::RandomState>,
    bytes: usize,
    /// Bumped by every remove and clear.
    generation: u64,
}

impl<K: Hash + Eq, V> SharedCache<K, V> {
    /// A cache of at most `capacity` keys (past it, it starts over).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                map: HashMap::default(),
                bytes: 0,
                generation: 0,
            }),
            capacity,
            max_bytes: usize::MAX,
            weigh: None,
        }
    }

    /// Also bounds the cache to `max_bytes` as counted by `weigh`; a value heavier than a
    /// sixty-fourth of that is never cached.
    pub fn with_max_bytes(mut self, max_bytes: usize, weigh: Weigh<K, V>) -> Self {
        self.max_bytes = max_bytes;
        self.weigh = Some(weigh);
        self
    }

    /// The generation to hand to [`Self::insert`]: take it before reading the value.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The value for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().map.get(key).cloned()
    }

    /// Caches `value` for `key`, unless a remove or clear came after `generation` was taken
    /// (then `false`: the value may be stale).
    pub fn insert(&self, key: K, value: Arc<V>, generation: u64) -> bool {
        let cost = self.weigh.map_or(0, |weigh| weigh(&key, &value));
        let mut state = self.lock();
        if state.generation != generation || cost > self.max_bytes / 64 {
            return false;
        }
        if let Some(old) = state.map.remove(&key) {
            state.bytes -= self.weigh.map_or(0, |weigh| weigh(&key, &old));
        }
        if state.map.len() >= self.capacity || state.bytes + cost > self.max_bytes {
            state.map.clear();
            state.bytes = 0;
        }
        state.bytes += cost;
        state.map.insert(key, value);
        true
    }

    /// Drops `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut state = self.lock();
        state.generation += 1;
        if let Some((key, old)) = state.map.remove_entry(key) {
            state.bytes -= self.weigh.map_or(0, |weigh| weigh(&key, &old));
        }
    }

    /// Drops everything (on seal: no key outlives the keyring).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.map.clear();
        state.bytes = 0;
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes its values are counted to weigh.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Locks the map. A panic while it was held can only have left it inconsistent, so
    /// recover by emptying it (and refusing fills begun before).
    fn lock(&self) -> MutexGuard<'_, State<K, V>> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                guard.map.clear();
                guard.bytes = 0;
                guard.generation += 1;
                self.state.clear_poison();
                guard
            }
        }
    }
}

impl<K, V> std::fmt::Debug for SharedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
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
    fn every_thread_reads_the_same_values() {
        let cache: SharedCache<String, String> = SharedCache::new(16);
        assert!(cache.insert("a".into(), Arc::new("one".into()), cache.generation()));
        let theirs = on_another_thread(|| cache.get("a").unwrap());
        assert!(Arc::ptr_eq(&cache.get("a").unwrap(), &theirs));
    }

    #[test]
    fn a_removed_key_is_gone_for_every_thread() {
        let cache: SharedCache<String, u32> = SharedCache::new(16);
        let generation = cache.generation();
        cache.insert("token".into(), Arc::new(1), generation);
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
        let cache: SharedCache<String, &str> = SharedCache::new(16);
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
    fn it_is_bounded_in_keys_and_bytes() {
        let cache: SharedCache<String, usize> = SharedCache::new(4);
        for i in 0..10 {
            cache.insert(format!("k{i}"), Arc::new(i), cache.generation());
            assert!(cache.len() <= 4);
        }
        assert_eq!(cache.get("k9").as_deref(), Some(&9));

        let cache: SharedCache<String, usize> =
            SharedCache::new(1000).with_max_bytes(6400, |key, size| key.len() + size);
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
        let cache: SharedCache<String, usize> =
            SharedCache::new(16).with_max_bytes(1 << 20, |_, size| *size);
        cache.insert("k".into(), Arc::new(100), cache.generation());
        cache.insert("k".into(), Arc::new(50), cache.generation());
        assert_eq!(cache.bytes(), 50);
        cache.remove("k");
        assert_eq!(cache.bytes(), 0);
    }
}
