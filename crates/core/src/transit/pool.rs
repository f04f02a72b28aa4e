//! The bounded pool that runs transit's expensive crypto (RSA keys, batches, key
//! generation) off the async workers.
//!
//! A batch of RSA-4096 signatures takes seconds of CPU. Run on an async worker it holds that
//! worker for all of it, and two such requests on a two-core machine stopped every other
//! request, `sys/health`, `sys/seal-status` and unseal included. Here such work goes to
//! tokio's blocking threads, as many pieces at once as there are cores less one (at least
//! one; that core is left to the async workers), queueing in arrival order beyond that; cheap single operations
//! (an AES-GCM encryption takes a microsecond) stay inline, where a thread hop would cost
//! more than the work.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::policy::KeyType;
use super::store::LoadedKey;
use crate::params::Params;
use crate::{Core, CoreError, CoreResult, Response};

/// Most items of a batch with an RSA key: an RSA-4096 signature costs milliseconds, so this
/// bounds one request to about a second of one core.
pub(crate) const MAX_RSA_BATCH_ITEMS: usize = 128;

/// Batches up to this many items of a cheap key type run inline.
const INLINE_BATCH_ITEMS: usize = 16;

/// Bounds the expensive transit work that runs at once.
pub(crate) struct CryptoPool {
    permits: Arc<Semaphore>,
}

impl Default for CryptoPool {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        // Leave a core to the async workers (health, seal status, unseal, cheap requests).
        let size = cores.saturating_sub(1).max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
        }
    }
}

/// Whether an operation with `key` on `items` items (1 for a single request) is worth
/// moving to the pool: every private-key operation of an RSA key, and batches past a few
/// items.
pub(super) fn worth_offloading(key: &LoadedKey, items: usize) -> bool {
    is_rsa(key.policy.key_type) || items > INLINE_BATCH_ITEMS
}

/// RSA: the key type whose operations (and generation) cost milliseconds to seconds.
pub(super) fn is_rsa(t: KeyType) -> bool {
    matches!(t, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
}

impl Core {
    /// Runs `work` on the transit crypto pool and waits for it (without holding an async
    /// worker meanwhile). `userpass` hashes its passwords here too: the pool's bound also
    /// bounds the memory Argon2id takes.
    pub(crate) async fn transit_offload<T, F>(&self, work: F) -> CoreResult<T>
    where
        F: FnOnce() -> CoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.transit.pool.permits)
            .acquire_owned()
            .await
            .map_err(|e| CoreError::task("transit crypto pool", e))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| CoreError::task("transit crypto task", e))?
    }

    /// Runs `run` on the request's fields: inline when cheap, else on the pool (with a copy
    /// of the fields, which costs little next to the work that makes the pool worth it).
    /// `items` is the batch's length, 1 for a single operation.
    pub(super) async fn transit_run<F>(
        &self,
        key: Arc<LoadedKey>,
        p: &Params<'_>,
        items: usize,
        run: F,
    ) -> CoreResult<Response>
    where
        F: FnOnce(&LoadedKey, &Params<'_>) -> CoreResult<Response> + Send + 'static,
    {
        if is_rsa(key.policy.key_type) && items > MAX_RSA_BATCH_ITEMS {
            return Err(CoreError::bad(format!(
                "batch_input has {items} items; at most {MAX_RSA_BATCH_ITEMS} are accepted per \
                 request with an RSA key"
            )));
        }
        if !worth_offloading(&key, items) {
            return run(&key, p);
        }
        let fields = p.0.clone();
        self.transit_offload(move || run(&key, &Params(&fields)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_always_has_a_permit() {
        let pool = CryptoPool::default();
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert!(pool.permits.available_permits() >= 1);
        assert!(pool.permits.available_permits() <= cores);
    }
}
