//! Transit keys' `auto_rotate_period`: the scheduler's side (see `crate::rotation`).
//!
//! A key is due once its latest version is older than the period (Vault's rule), so a
//! manual rotation postpones the next scheduled one.

use super::keys::rotate_key;
use super::policy::KeyPolicy;
use crate::mounts::MountEntry;
use crate::rotation::JobKind;
use crate::{Core, CoreError, CoreResult};

/// When `policy`'s key is next due for rotation (unix seconds), if it rotates at all.
fn next_due(policy: &KeyPolicy) -> Option<i64> {
    if policy.auto_rotate_period == 0 {
        return None;
    }
    let latest = policy
        .versions
        .get(&policy.latest_version)
        .map_or(0, |v| v.time);
    let period = i64::try_from(policy.auto_rotate_period).unwrap_or(i64::MAX);
    Some(latest.saturating_add(period))
}

impl Core {
    /// Keeps the scheduler's job for this key in line with its policy (after every save).
    /// A failure is logged, not returned: the key itself was saved.
    pub(crate) async fn transit_schedule(&self, mount: &MountEntry, policy: &KeyPolicy) {
        if let Err(e) = self
            .schedule(
                JobKind::Transit,
                &mount.uuid,
                &policy.name,
                next_due(policy),
            )
            .await
        {
            tracing::warn!(mount = %mount.path, key = %policy.name, error = %crate::Report(&e), "cannot schedule the key's rotation");
        }
    }

    /// The scheduler's run for key `name`: rotates it when due, else files its due time.
    pub(crate) async fn transit_scheduled_rotation(
        &self,
        mount: &MountEntry,
        name: &str,
        now: i64,
    ) -> CoreResult<()> {
        let Some(key) = self.transit_load(mount, name).await? else {
            return self
                .schedule(JobKind::Transit, &mount.uuid, name, None)
                .await;
        };
        let due = next_due(&key.policy);
        match due {
            Some(due) if due <= now => {}
            _ => {
                return self
                    .schedule(JobKind::Transit, &mount.uuid, name, due)
                    .await;
            }
        }
        let id = Core::job_claim_id(JobKind::Transit, &mount.uuid, name);
        if !self
            .claim(&id, u64::from(key.policy.latest_version))
            .await?
        {
            return Ok(());
        }
        let result = self
            .transit_update(mount, name, move |key| {
                // Under the key's lock: a rotation since the look above settles it.
                match next_due(&key.policy) {
                    Some(due) if due <= now => rotate_key(key),
                    _ => Err(CoreError::bad("not due")),
                }
            })
            .await;
        match result {
            Ok(resp) => {
                let version = resp
                    .data_tree()
                    .and_then(|d| d.get("latest_version").cloned());
                tracing::info!(mount = %mount.path, key = name, ?version, "transit key rotated on schedule");
                Ok(())
            }
            Err(CoreError::BadRequest(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
