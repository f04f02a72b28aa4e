//! Ward's storage layer: the [`Storage`] trait every backend implements, the backends
//! themselves (SQLite embedded, in-memory for tests), a read cache, and the encryption
//! barrier that every entry passes through before it reaches a backend.
//!
//! Backends see only opaque keys and ciphertext: the barrier encrypts both the values and
//! the path segments of the keys before a backend is called.

mod backend;
mod barrier;
mod cache;
mod cluster;
mod decoded;
mod keys;
mod memory;
mod paths;
#[cfg(feature = "postgres")]
mod postgres;
mod shared_cache;
mod sqlite;

pub use backend::{Action, EXPORT_BATCH, Entries, Expect, Export, Import, Op, Storage, StoreError};
pub use barrier::{Barrier, Entry, WritesPaused};
pub use cache::{CacheLimits, CacheStats, CachedStorage};
pub use cluster::{ChangeSink, Cluster, NodeStatus};
pub use decoded::{DecodedMemo, ForgetDeleted};
pub use keys::MAX_BACKEND_KEY_LEN;
pub use memory::MemoryStorage;
pub use paths::MAX_KEY_LEN;
#[cfg(feature = "postgres")]
pub use postgres::{
    ClusterOptions, PostgresCluster, PostgresFailure, PostgresLock, PostgresOptions,
    PostgresStorage,
};
pub use shared_cache::{SharedCache, Weigh};
pub use sqlite::{CommitStats, DurabilitySettings, SqliteOptions, SqliteStorage};
