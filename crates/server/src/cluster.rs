//! Wiring for several servers over one PostgreSQL database: what another server changed
//! goes first to the storage's read cache, then to the core's caches.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use ward_core::Core;
use ward_store::{CachedStorage, ChangeSink, PostgresStorage};

use crate::telemetry::MeteredStorage;

/// The read cache over the database.
pub(crate) type PostgresCache = CachedStorage<MeteredStorage<PostgresStorage>>;

/// Hands other servers' changes to this server's caches; both are set once they exist
/// (before that there is nothing cached to forget).
#[derive(Default)]
pub(crate) struct ClusterSink {
    pub(crate) cache: OnceLock<Arc<PostgresCache>>,
    pub(crate) core: OnceLock<Weak<Core>>,
}

impl ClusterSink {
    fn core(&self) -> Option<Arc<Core>> {
        self.core.get().and_then(Weak::upgrade)
    }
}

#[async_trait]
impl ChangeSink for ClusterSink {
    async fn changed(&self, keys: &[String]) {
        if let Some(cache) = self.cache.get() {
            for key in keys {
                cache.invalidate(key);
            }
        }
        if let Some(core) = self.core() {
            core.storage_changed(keys).await;
        }
    }

    async fn resync(&self) {
        if let Some(cache) = self.cache.get() {
            cache.clear();
        }
        if let Some(core) = self.core() {
            core.resync_caches().await;
        }
    }

    async fn restored(&self) {
        if let Some(cache) = self.cache.get() {
            cache.clear();
        }
        if let Some(core) = self.core() {
            core.storage_restored().await;
        }
    }
}

/// This server's name when the configuration gives none: its host name and port.
pub(crate) fn default_node_id(addr: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ward".into());
    format!("{host}:{}", addr.port())
}
