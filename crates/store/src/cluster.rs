//! What a server sharing its storage with others needs from the backend: to hear what the
//! others change ([`ChangeSink`]), to know whether it is the active one, and to wait until
//! the others' writes have reached its caches ([`Cluster`]). The PostgreSQL backend provides
//! it (`PostgresCluster`); the core uses it without knowing which backend is below.

use async_trait::async_trait;

use crate::StoreError;

/// Told what other servers changed.
#[async_trait]
pub trait ChangeSink: Send + Sync + 'static {
    /// Another server committed changes to these physical keys.
    async fn changed(&self, keys: &[String]);
    /// Changes may have been missed: forget everything cached.
    async fn resync(&self);
    /// Another server restored a snapshot: everything changed, the keyring included (it may
    /// be another cluster's, which this server's root key does not open). Writes made for
    /// the storage as it was must not start once this returns.
    async fn restored(&self);
}

/// One server of a cluster, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The server's node id.
    pub node_id: String,
    /// Its API address.
    pub api_addr: String,
    /// Its cluster address.
    pub cluster_addr: String,
    /// The version it runs.
    pub version: String,
    /// Its last heartbeat, in Unix milliseconds (the database's clock).
    pub last_echo_ms: i64,
    /// Since when it has been active, in Unix milliseconds, if it is (or was, until another
    /// took over).
    pub active_since_ms: Option<i64>,
}

/// This server's place among the servers sharing the storage.
#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// This server's node id.
    fn node_id(&self) -> &str;
    /// Whether this server is the active one (the one that runs scheduled work).
    fn is_active(&self) -> bool;
    /// Since when this server has been active (Unix ms), if it is.
    fn active_since_ms(&self) -> Option<i64>;
    /// Returns once every write that returned, on any server, before this call has reached
    /// this server's caches.
    async fn fence(&self) -> Result<(), StoreError>;
    /// The servers that reported lately, this one included.
    async fn nodes(&self) -> Result<Vec<NodeStatus>, StoreError>;
    /// Makes the active server (this one or another) give up being active.
    async fn step_down(&self) -> Result<(), StoreError>;
    /// Whether this server can serve (it is unsealed): only then may it become active, and
    /// an active server that seals gives way.
    fn set_serving(&self, serving: bool);
}
