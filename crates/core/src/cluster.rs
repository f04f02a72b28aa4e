//! The core's side of several servers sharing one storage: it keeps its caches right when
//! another server changes what they hold, waits for the others' writes before serving a
//! request, answers `sys/leader`, `sys/ha-status` and `sys/step-down`, and leaves scheduled
//! work to the active server.
//!
//! What another server changed arrives as physical keys ([`Core::storage_changed`]): the
//! storage's own read cache has dropped them already (the transport's change sink does that
//! first), which takes care of every record read through it on each use (secrets, their
//! decoded memos, auth method records). What remains are the caches of things decoded once
//! and kept: tokens, merged ACLs, mount keys, transit keys, the mount table, the keyring and
//! the rotation scheduler's index.

use std::sync::Arc;

use serde_json::json;
use ward_store::Cluster;

use crate::token::store::ID_PREFIX;
use crate::{Core, CoreResult, Response};

impl Core {
    /// Makes this core one of several servers sharing its storage.
    pub fn join_cluster(&self, cluster: Arc<dyn Cluster>) {
        self.audit.set_node(cluster.node_id());
        let _ = self.cluster.set(cluster);
    }

    /// Whether this server runs scheduled work: always, unless it is a standby of a cluster.
    pub fn is_active(&self) -> bool {
        self.cluster.get().is_none_or(|c| c.is_active())
    }

    /// Waits until the writes other servers finished have reached this server's caches.
    pub(crate) async fn fence(&self) -> CoreResult<()> {
        match self.cluster.get() {
            Some(cluster) => Ok(cluster.fence().await?),
            None => Ok(()),
        }
    }

    /// Another server changed the entries at these physical keys: forget what was decoded
    /// from them.
    pub async fn storage_changed(&self, physical: &[String]) {
        for key in physical {
            if crate::seal::is_keyring_key(key) {
                if let Err(e) = self.reload_keyring().await {
                    tracing::error!(error = %e.report(), "cannot load the keyring another server rotated");
                }
                continue;
            }
            if let Some(logical) = self.barrier.logical_key(key) {
                self.forget_changed(&logical).await;
            }
        }
    }

    async fn forget_changed(&self, key: &str) {
        if let Some(hash) = key.strip_prefix(ID_PREFIX) {
            self.tokens.forget(hash);
            // The active server revokes expired tokens: it must know those made elsewhere.
            if self.is_active()
                && let Ok(Some(entry)) = self.tokens.get_uncached(&self.barrier, hash).await
            {
                self.tokens.expiry.track(&entry);
            }
        } else if key.starts_with(crate::policy_store::PREFIX) {
            self.policies.clear_cache();
        } else if key == crate::mounts::TABLE_KEY {
            if let Err(e) = self.mounts.load(&self.barrier).await {
                tracing::error!(error = %e.report(), "cannot load the mount table another server changed");
            }
            self.transit.clear();
        } else if let Some(uuid) = key.strip_prefix(crate::mounts::KEYS_PREFIX) {
            self.mount_keys.forget(uuid);
            self.transit.clear();
        } else if key == crate::audit::TABLE_KEY {
            if let Err(e) = self.audit.sync(&self.barrier).await {
                tracing::error!(error = %e.report(), "cannot start the audit devices another server changed");
            }
        } else if key.starts_with(crate::rotation::JOBS_PREFIX) {
            self.rotation.forget_index();
        } else if self.mounts.all().iter().any(|m| {
            m.mount_type == crate::engine::MountType::Transit
                && key.starts_with(&m.storage_prefix())
        }) {
            // A key record changed (rotated, configured, deleted): rare, so start over.
            self.transit.clear();
        }
    }

    /// Changes may have been missed (the change feed was down): forget every decoded record
    /// and reload what is kept whole.
    pub async fn resync_caches(&self) {
        self.tokens.clear_cache();
        self.policies.clear_cache();
        self.mount_keys.forget_all();
        self.transit.clear();
        self.kv_memo.clear();
        self.rotation.forget_index();
        if self.is_sealed() {
            return;
        }
        if let Err(e) = self.reload_keyring().await {
            tracing::error!(error = %e.report(), "cannot reload the keyring");
        }
        if let Err(e) = self.mounts.load(&self.barrier).await {
            tracing::error!(error = %e.report(), "cannot reload the mount table");
        }
        if let Err(e) = self.audit.sync(&self.barrier).await {
            tracing::error!(error = %e.report(), "cannot reload the audit devices");
        }
    }

    /// `sys/leader`.
    pub(crate) async fn leader_status(&self) -> CoreResult<ward_api::LeaderStatus> {
        let Some(cluster) = self.cluster.get() else {
            return Ok(ward_api::LeaderStatus {
                ha_enabled: false,
                is_self: true,
                active_time: "0001-01-01T00:00:00Z".into(),
                ..ward_api::LeaderStatus::default()
            });
        };
        let nodes = cluster.nodes().await?;
        let leader = nodes
            .iter()
            .filter(|n| n.active_since_ms.is_some())
            .max_by_key(|n| n.active_since_ms);
        let is_self = cluster.is_active();
        Ok(ward_api::LeaderStatus {
            ha_enabled: true,
            is_self,
            active_time: match (is_self, cluster.active_since_ms()) {
                (true, Some(ms)) => time_of_ms(ms),
                _ => "0001-01-01T00:00:00Z".into(),
            },
            leader_address: leader.map(|n| n.api_addr.clone()).unwrap_or_default(),
            leader_cluster_address: leader.map(|n| n.cluster_addr.clone()).unwrap_or_default(),
            ..ward_api::LeaderStatus::default()
        })
    }

    /// `sys/ha-status`: every server that reported lately.
    pub(crate) async fn ha_status(&self) -> CoreResult<Response> {
        let nodes = match self.cluster.get() {
            Some(cluster) => cluster.nodes().await?,
            // Alone, it is the active node of a cluster of one (OpenBao answers the same,
            // and `bao operator members` lists it).
            None => {
                let me = &self.config.this_node;
                vec![ward_store::NodeStatus {
                    node_id: me.node_id.clone(),
                    api_addr: me.api_addr.clone(),
                    cluster_addr: me.cluster_addr.clone(),
                    version: crate::VERSION.into(),
                    last_echo_ms: 0,
                    active_since_ms: Some(0),
                }]
            }
        };
        let leader = nodes
            .iter()
            .filter(|n| n.active_since_ms.is_some())
            .max_by_key(|n| n.active_since_ms)
            .map(|n| n.node_id.clone());
        let nodes: Vec<_> = nodes
            .iter()
            .map(|n| {
                let active = leader.as_deref() == Some(n.node_id.as_str());
                json!({
                    "hostname": n.node_id,
                    "api_address": n.api_addr,
                    "cluster_address": n.cluster_addr,
                    "active_node": active,
                    // Vault shows no heartbeat for the active node itself.
                    "last_echo": (!active).then(|| time_of_ms(n.last_echo_ms)),
                    "version": n.version,
                })
            })
            .collect();
        Ok(Response::data(json!({ "nodes": nodes })).with_data_at_top_level())
    }

    /// `sys/step-down`: the active server gives up being active.
    pub(crate) async fn step_down(&self) -> CoreResult<Response> {
        if let Some(cluster) = self.cluster.get() {
            cluster.step_down().await?;
        }
        Ok(Response::empty())
    }
}

/// A time the cluster recorded in Unix milliseconds, as Vault writes these (Go's RFC 3339
/// with fractional seconds, here milliseconds: what the cluster records).
fn time_of_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
