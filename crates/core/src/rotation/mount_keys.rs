//! Scheduled rotation of the keyring and of the mounts' key-encryption keys, and the
//! background rewrap that follows a KEK rotation.
//!
//! A KEK rotation only adds a version: new data keys are wrapped by it at once, and the old
//! versions stay loaded, so reads and writes never wait. A background task then rewraps every
//! data key of the mount (KV versions' DEKs, transit keys' material DEKs) under the new version,
//! one record at a time under compare-and-set; once a full pass finds nothing left under an
//! old version, those versions are deleted. A restart mid-way loses nothing: a mount still
//! holding more than one KEK version is rewrapped again on the next tick.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use ward_api::time::rfc3339_seconds;

use crate::mounts::MountEntry;
use crate::{Core, CoreError, CoreResult, Response};

/// Time given to writes that picked the old KEK just before a rotation to commit, before
/// the rewrap starts looking.
const REWRAP_GRACE: Duration = Duration::from_millis(500);
/// Passes of a rewrap before giving up until the next tick (writes keep racing it).
const REWRAP_PASSES: usize = 4;

impl Core {
    /// Rotates the keyring when its active term is older than the configured period.
    pub(super) async fn keyring_tick(&self, now: i64) -> CoreResult<()> {
        let period = i64::try_from(self.config.rotation.keyring_period).unwrap_or(i64::MAX);
        if period == 0 {
            return Ok(());
        }
        let ring = self.barrier.keyring()?;
        let term = ring.active_term();
        if term.installed_unix().saturating_add(period) > now {
            return Ok(());
        }
        if self.claim("keyring", u64::from(term.number())).await? {
            self.rotate_keyring().await?;
            tracing::info!(term = term.number() + 1, "keyring rotated on schedule");
        }
        Ok(())
    }

    /// Rotates the KEKs that are due and starts the rewrap of any mount holding old versions.
    pub(super) async fn mount_keys_tick(self: &Arc<Self>, now: i64) {
        let period = i64::try_from(self.config.rotation.mount_key_period).unwrap_or(i64::MAX);
        self.usage_ticks().await;
        for mount in self.mounts.all().iter() {
            let keys = match self.mount_keys.get(&self.barrier, &mount.uuid).await {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(mount = %mount.path, error = %crate::Report(&e), "cannot load mount key");
                    continue;
                }
            };
            let created = if keys.latest_created > 0 {
                keys.latest_created
            } else {
                mount.created
            };
            if period > 0 && created.saturating_add(period) <= now {
                let id = format!("mount-key-{}", mount.uuid);
                match self.claim(&id, u64::from(keys.latest)).await {
                    Ok(true) => {
                        if let Err(e) = self.rotate_mount_key(mount).await {
                            tracing::warn!(mount = %mount.path, error = %crate::Report(&e), "scheduled mount key rotation failed");
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %crate::Report(&e), "cannot claim a mount key rotation")
                    }
                }
            }
            let keys = self.mount_keys.get(&self.barrier, &mount.uuid).await;
            if keys.is_ok_and(|k| k.versions().len() > 1) {
                self.start_rewrap(mount.clone());
            }
        }
    }

    /// Adds a KEK version to `mount` (new data keys use it at once).
    pub(crate) async fn rotate_mount_key(&self, mount: &MountEntry) -> CoreResult<u32> {
        let version = self.mount_keys.rotate(&self.barrier, &mount.uuid).await?;
        tracing::info!(mount = %mount.path, version, "mount key rotated");
        Ok(version)
    }

    /// `sys/rotate/mount/<path>`: rotates that mount's KEK now; the rewrap follows in the
    /// background (on the scheduler's next tick).
    pub(crate) async fn sys_rotate_mount(&self, path: &str) -> CoreResult<Response> {
        let target = format!("{}/", path.trim_matches('/'));
        let mount = self
            .mounts
            .all()
            .iter()
            .find(|m| m.path == target)
            .cloned()
            .ok_or_else(|| CoreError::bad(format!("no mount at {target}")))?;
        let version = self.rotate_mount_key(&mount).await?;
        if let Some(core) = self.shared() {
            core.start_rewrap(mount);
        }
        Ok(Response::data(
            json!({ "path": target, "key_version": version }),
        ))
    }

    /// The `mounts` entry of `sys/rotation/status`.
    pub(super) async fn mount_key_status(&self, mount: &MountEntry) -> CoreResult<Value> {
        let keys = self.mount_keys.get(&self.barrier, &mount.uuid).await?;
        let created = if keys.latest_created > 0 {
            keys.latest_created
        } else {
            mount.created
        };
        let period = i64::try_from(self.config.rotation.mount_key_period).unwrap_or(0);
        let rewrapping = self
            .rotation
            .rewrapping
            .lock()
            .map(|r| r.contains(&mount.uuid))
            .unwrap_or(false);
        Ok(json!({
            "key_versions": keys.versions(),
            "latest_version": keys.latest,
            "latest_created": rfc3339_seconds(created).unwrap_or_default(),
            "next_rotation": (period > 0)
                .then(|| rfc3339_seconds(created + period).unwrap_or_default()),
            "rewrapping": rewrapping,
        }))
    }

    /// Starts a background rewrap of `mount` unless one is running.
    fn start_rewrap(self: &Arc<Self>, mount: Arc<MountEntry>) {
        let Ok(mut running) = self.rotation.rewrapping.lock() else {
            return;
        };
        if !running.insert(mount.uuid.clone()) {
            return;
        }
        drop(running);
        let core = self.clone();
        tokio::spawn(async move {
            if let Err(e) = core.rewrap_mount(&mount).await {
                tracing::warn!(mount = %mount.path, error = %crate::Report(&e), "rewrap of data keys failed");
            }
            if let Ok(mut running) = core.rotation.rewrapping.lock() {
                running.remove(&mount.uuid);
            }
        });
    }

    /// Rewraps every data key of `mount` under its latest KEK, then drops the older versions.
    async fn rewrap_mount(&self, mount: &MountEntry) -> CoreResult<()> {
        tokio::time::sleep(REWRAP_GRACE).await;
        let keys = self.mount_keys.get(&self.barrier, &mount.uuid).await?;
        if keys.versions().len() <= 1 {
            return Ok(());
        }
        let mut total = 0;
        for _ in 0..REWRAP_PASSES {
            if self.is_sealed() {
                return Err(CoreError::Sealed);
            }
            // Still mounted? An unmount shreds the key record.
            if super::mount_by_uuid(self, &mount.uuid).is_none() {
                return Ok(());
            }
            let moved = crate::engine::with_engine!(mount.engine(), E => {
                <E as crate::engine::Engine>::rewrap_data_keys(self, mount, &keys).await?
            });
            total += moved;
            if moved == 0 {
                self.mount_keys
                    .retire_below(&self.barrier, &mount.uuid, keys.latest)
                    .await?;
                tracing::info!(mount = %mount.path, rewrapped = total, version = keys.latest, "data keys rewrapped; old mount key versions deleted");
                return Ok(());
            }
        }
        Ok(())
    }
}
