//! What keeps an application working through a flaky or absent server: the read cache,
//! retries with backoff, the circuit breaker and the degraded-mode state.
//!
//! Every request of a [`Client`](crate::Client) passes through `Client::send`, which asks
//! the breaker, retries what may be retried and records the outcome here.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The resilience settings of a [`Client`](crate::Client). Every mechanism is on by
/// default; [`Resilience::none`] turns them all off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resilience {
    /// How long a KV read stays in the cache. Zero disables the cache.
    pub cache_ttl: Duration,
    /// Most entries the cache holds; the oldest go first when it is full.
    pub cache_capacity: usize,
    /// Attempts per call, the first included (1: no retries). Only idempotent calls are
    /// retried on 5xx, 429 and transport errors; any call is retried when the connection
    /// could not be made at all (the server never saw it). 4xx answers are never retried.
    pub max_attempts: u32,
    /// The first backoff step; attempt `n` waits a random time in `[0, base * 2^n]` ("full
    /// jitter"), capped by `retry_max_delay`.
    pub retry_base_delay: Duration,
    /// Longest wait between two attempts, `Retry-After` included.
    pub retry_max_delay: Duration,
    /// Consecutive failed calls (transport errors, 5xx) that open the circuit. 0 disables
    /// the breaker.
    pub breaker_threshold: u32,
    /// How long an open circuit refuses calls before letting one probe through.
    pub breaker_open_for: Duration,
    /// Prefix of the environment variables read by
    /// [`Client::read_secret`](crate::Client::read_secret) when the server is unreachable
    /// and the cache is empty (`WARD_FALLBACK_` + the secret's name). `None` disables the
    /// fallback.
    pub fallback_env_prefix: Option<String>,
}

/// The default fallback prefix: `WARD_FALLBACK_DB_PASSWORD` for a secret named
/// `DB_PASSWORD`.
pub const FALLBACK_ENV_PREFIX: &str = "WARD_FALLBACK_";

impl Default for Resilience {
    /// A 5-minute cache of 1,000 entries; 3 attempts from 100 ms backoff up to 2 s; the
    /// circuit opens after 5 failures in a row for 5 s; the `WARD_FALLBACK_` variables.
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(300),
            cache_capacity: 1000,
            max_attempts: 3,
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(2),
            breaker_threshold: 5,
            breaker_open_for: Duration::from_secs(5),
            fallback_env_prefix: Some(FALLBACK_ENV_PREFIX.to_owned()),
        }
    }
}

impl Resilience {
    /// Every mechanism off: each call is one request, errors come back as they are.
    pub fn none() -> Self {
        Self {
            cache_ttl: Duration::ZERO,
            cache_capacity: 0,
            max_attempts: 1,
            retry_base_delay: Duration::ZERO,
            retry_max_delay: Duration::ZERO,
            breaker_threshold: 0,
            breaker_open_for: Duration::ZERO,
            fallback_env_prefix: None,
        }
    }

    /// The wait before retry number `retry` (1 for the first retry): the server's
    /// `Retry-After` when it sent one, else full jitter over the exponential step; both
    /// capped by [`Resilience::retry_max_delay`].
    pub(crate) fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.retry_max_delay);
        }
        let step = self
            .retry_base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.retry_max_delay);
        let step_ms = u64::try_from(step.as_millis()).unwrap_or(u64::MAX);
        if step_ms == 0 {
            return Duration::ZERO;
        }
        // Jitter spreads clients out; it needs no secrecy, but the OS source is at hand.
        let random = getrandom::u64().unwrap_or(step_ms / 2);
        Duration::from_millis(random % (step_ms + 1))
    }

    fn cache_enabled(&self) -> bool {
        !self.cache_ttl.is_zero() && self.cache_capacity > 0
    }
}

/// The state of the circuit breaker of a server address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls fail at once with [`ClientError::CircuitOpen`](crate::ClientError::CircuitOpen).
    Open,
    /// The open period is over: the next call is a probe whose outcome closes or reopens it.
    HalfOpen,
}

/// Whether the application is being served by the server, or by fallback values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthState {
    /// Every secret read came from the server or the cache.
    Healthy,
    /// The server was unreachable and these secrets (by name) came from fallback
    /// environment variables. A name leaves the list when the server serves it again.
    Degraded {
        /// Names of the secrets served from fallbacks.
        fallbacks: Vec<String>,
    },
}

/// Locks a mutex, carrying on with the data if a panicking thread poisoned it (the maps
/// here stay consistent between statements).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One circuit breaker, shared by every client of the same server address.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    inner: Mutex<BreakerInner>,
}

#[derive(Debug, Default)]
struct BreakerInner {
    /// Failed calls in a row.
    failures: u32,
    /// When the circuit last opened; `None` while closed.
    opened_at: Option<Instant>,
    /// When the half-open probe was let through; a probe that never reports (its future
    /// dropped) is replaced after another open period.
    probe_started: Option<Instant>,
    /// What the last failed call met.
    last_error: String,
}

/// The breakers, one per server address.
static BREAKERS: LazyLock<Mutex<HashMap<String, Arc<Breaker>>>> = LazyLock::new(Mutex::default);

impl Breaker {
    /// The breaker of `address`, made on first use.
    pub(crate) fn for_address(address: &str) -> Arc<Self> {
        lock(&BREAKERS)
            .entry(address.to_owned())
            .or_default()
            .clone()
    }

    /// `None` when a call may go out now (a half-open circuit lets one probe through);
    /// else the last failure, for the error the caller gets.
    pub(crate) fn refuse(&self, settings: &Resilience) -> Option<String> {
        if settings.breaker_threshold == 0 {
            return None;
        }
        let mut inner = lock(&self.inner);
        let opened_at = inner.opened_at?;
        let probing = matches!(inner.probe_started, Some(started) if started.elapsed() < settings.breaker_open_for);
        if opened_at.elapsed() < settings.breaker_open_for || probing {
            return Some(inner.last_error.clone());
        }
        inner.probe_started = Some(Instant::now());
        None
    }

    /// Records a call's outcome (`failure`: what went wrong): a success closes the circuit,
    /// enough failures in a row (or a failed probe) open it.
    pub(crate) fn record(&self, settings: &Resilience, address: &str, failure: Option<String>) {
        if settings.breaker_threshold == 0 {
            return;
        }
        let mut inner = lock(&self.inner);
        let Some(failure) = failure else {
            if inner.opened_at.is_some() {
                tracing::info!(address, "ward server reachable again: circuit closed");
            }
            *inner = BreakerInner::default();
            return;
        };
        inner.failures = inner.failures.saturating_add(1);
        inner.last_error = failure;
        let probing = inner.opened_at.is_some();
        if probing || inner.failures >= settings.breaker_threshold {
            if !probing {
                tracing::warn!(
                    address,
                    failures = inner.failures,
                    last_error = %inner.last_error,
                    "ward server unreachable: circuit opened"
                );
            }
            inner.opened_at = Some(Instant::now());
            inner.probe_started = None;
        }
    }

    /// The state as seen now.
    pub(crate) fn state(&self, settings: &Resilience) -> CircuitState {
        let inner = lock(&self.inner);
        match inner.opened_at {
            None => CircuitState::Closed,
            Some(at) if at.elapsed() < settings.breaker_open_for => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        }
    }
}

/// A bounded cache of successful reads, keyed by API path, with a time to live.
#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    entries: Mutex<HashMap<String, CacheEntry>>,
}

#[derive(Debug)]
struct CacheEntry {
    stored: Instant,
    body: Arc<[u8]>,
}

impl ReadCache {
    /// The body cached for `path`, if younger than the TTL.
    pub(crate) fn get(&self, settings: &Resilience, path: &str) -> Option<Arc<[u8]>> {
        if !settings.cache_enabled() {
            return None;
        }
        let mut entries = lock(&self.entries);
        match entries.get(path) {
            Some(entry) if entry.stored.elapsed() < settings.cache_ttl => Some(entry.body.clone()),
            Some(_) => {
                entries.remove(path);
                None
            }
            None => None,
        }
    }

    /// Stores `body` for `path`, making room by dropping expired entries, then the oldest.
    pub(crate) fn put(&self, settings: &Resilience, path: &str, body: &[u8]) {
        if !settings.cache_enabled() {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= settings.cache_capacity && !entries.contains_key(path) {
            entries.retain(|_, entry| entry.stored.elapsed() < settings.cache_ttl);
            while entries.len() >= settings.cache_capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.stored)
                    .map(|(key, _)| key.clone());
                match oldest {
                    Some(key) => entries.remove(&key),
                    None => break,
                };
            }
        }
        entries.insert(
            path.to_owned(),
            CacheEntry {
                stored: Instant::now(),
                body: body.into(),
            },
        );
    }

    /// Drops the entries whose path starts with `prefix` (all of them for `""`).
    pub(crate) fn invalidate(&self, prefix: &str) {
        lock(&self.entries).retain(|path, _| !path.starts_with(prefix));
    }

    /// How many entries are held (expired ones included until they are touched).
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

/// The names of the secrets currently served from fallbacks.
#[derive(Debug, Default)]
pub(crate) struct Degraded {
    fallbacks: Mutex<BTreeSet<String>>,
}

impl Degraded {
    pub(crate) fn mark(&self, name: &str) {
        lock(&self.fallbacks).insert(name.to_owned());
    }

    pub(crate) fn clear(&self, name: &str) {
        lock(&self.fallbacks).remove(name);
    }

    pub(crate) fn state(&self) -> HealthState {
        let fallbacks = lock(&self.fallbacks);
        if fallbacks.is_empty() {
            HealthState::Healthy
        } else {
            HealthState::Degraded {
                fallbacks: fallbacks.iter().cloned().collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_the_exponential_step_and_capped() {
        let settings = Resilience::default();
        for retry in 1..=6 {
            let cap =
                (settings.retry_base_delay * 2u32.pow(retry - 1)).min(settings.retry_max_delay);
            for _ in 0..50 {
                assert!(settings.backoff(retry, None) <= cap);
            }
        }
        assert_eq!(
            settings.backoff(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            settings.backoff(1, Some(Duration::from_secs(600))),
            settings.retry_max_delay
        );
    }

    #[test]
    fn breaker_opens_after_the_threshold_and_a_probe_closes_it() {
        let settings = Resilience {
            breaker_threshold: 2,
            breaker_open_for: Duration::from_millis(50),
            ..Resilience::default()
        };
        let breaker = Breaker::default();
        let failed = || Some("connection refused".to_owned());
        breaker.record(&settings, "a", failed());
        assert_eq!(breaker.state(&settings), CircuitState::Closed);
        breaker.record(&settings, "a", failed());
        assert_eq!(breaker.state(&settings), CircuitState::Open);
        assert_eq!(
            breaker.refuse(&settings).as_deref(),
            Some("connection refused")
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.state(&settings), CircuitState::HalfOpen);
        assert!(
            breaker.refuse(&settings).is_none(),
            "one probe goes through"
        );
        assert!(breaker.refuse(&settings).is_some(), "and only one");
        breaker.record(&settings, "a", failed());
        assert_eq!(
            breaker.state(&settings),
            CircuitState::Open,
            "a failed probe reopens"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.refuse(&settings).is_none());
        breaker.record(&settings, "a", None);
        assert_eq!(breaker.state(&settings), CircuitState::Closed);
    }

    #[test]
    fn cache_expires_is_bounded_and_invalidates_by_prefix() {
        let settings = Resilience {
            cache_ttl: Duration::from_millis(40),
            cache_capacity: 2,
            ..Resilience::default()
        };
        let cache = ReadCache::default();
        cache.put(&settings, "secret/data/a", b"1");
        cache.put(&settings, "secret/data/b", b"2");
        cache.put(&settings, "secret/data/c", b"3");
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get(&settings, "secret/data/a").is_none(),
            "oldest evicted"
        );
        assert_eq!(
            cache.get(&settings, "secret/data/c").as_deref(),
            Some(&b"3"[..])
        );
        cache.invalidate("secret/data/b");
        assert!(cache.get(&settings, "secret/data/b").is_none());
        std::thread::sleep(Duration::from_millis(50));
        assert!(cache.get(&settings, "secret/data/c").is_none(), "expired");
        let off = Resilience::none();
        cache.put(&off, "x", b"1");
        assert!(cache.get(&off, "x").is_none());
    }
}
