//! The rotation scheduler: one background task per core that, while the core is unsealed,
//! looks for due work every [`RotationConfig::check_interval`] and does it.
//!
//! Due work is of four kinds:
//! - a transit key whose `auto_rotate_period` is set rotates once its latest version is
//!   older than the period (Vault's rule);
//! - a KV v2 secret with a rotation policy (see `kv/rotation.rs`) gets a new version with a
//!   generated value once its current version is older than `rotation_period`;
//! - a mount's key-encryption key rotates once its latest version is older than
//!   [`RotationConfig::mount_key_period`]; the mount's data keys are then rewrapped in the
//!   background and the old KEK versions dropped (`mount_keys.rs`);
//! - the keyring gets a new term once its active term is older than
//!   [`RotationConfig::keyring_period`] (what `sys/rotate` does).
//!
//! Transit keys and KV secrets can be many, so their due times are indexed behind the barrier
//! at `core/rotation/jobs/<id>` (the index survives restarts and is cached in memory, reloaded
//! every [`INDEX_TTL`] so that other schedulers' changes are seen). The due time is always
//! recomputed from the target itself before acting, so a stale index entry only costs a
//! look. Mount keys and the keyring are few and checked directly on every tick.
//!
//! No double runs: before acting on a target the scheduler claims it with a compare-and-set
//! write of `core/rotation/claims/<id>` naming the target's generation (key version, secret
//! version, KEK version or keyring term). Of two schedulers on one storage only one wins a
//! claim for a given generation; a claim lapses after [`CLAIM_LEASE`] so a crash mid-run
//! delays the work rather than losing it.

mod mount_keys;
pub(crate) mod usage;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use ward_api::time::rfc3339_seconds;
use ward_store::{Expect, Op};

use crate::core::now;
use crate::mounts::MountEntry;
use crate::{Core, CoreResult, Response};

pub(crate) const JOBS_PREFIX: &str = "core/rotation/jobs/";
const CLAIMS_PREFIX: &str = "core/rotation/claims/";
/// How long the in-memory copy of the job index is trusted before it is read again.
const INDEX_TTL: Duration = Duration::from_secs(30);
/// How long a claim holds (seconds) before another scheduler may take the work over.
const CLAIM_LEASE: i64 = 300;

/// Settings of the rotation scheduler (the server's `[rotation]` table).
#[derive(Debug, Clone)]
pub struct RotationConfig {
    /// How often the scheduler looks for due work (default one second).
    pub check_interval: Duration,
    /// Shortest rotation period accepted anywhere, in seconds (default one hour, as Vault
    /// requires of `auto_rotate_period`). Lower it only for tests and demonstrations.
    pub min_period: u64,
    /// Age (seconds) at which the keyring gets a new term; 0 (default) never.
    pub keyring_period: u64,
    /// Age (seconds) at which a mount's KEK is rotated and its data keys rewrapped;
    /// 0 (default) never.
    pub mount_key_period: u64,
    /// Whether KV rotation webhooks may go to internal addresses (loopback, private,
    /// link-local such as the cloud metadata service...); off by default (see
    /// [`crate::webhook`]).
    pub webhook_allow_internal: bool,
    /// Encryptions after which a keyring term or a mount KEK version is rotated whatever
    /// the periods say (default [`usage::DEFAULT_AEAD_USAGE_LIMIT`], Vault's 0.9 × 2^32;
    /// see `usage`). Lower it only for tests.
    pub aead_usage_limit: u64,
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(1),
            min_period: 3600,
            keyring_period: 0,
            mount_key_period: 0,
            webhook_allow_internal: false,
            aead_usage_limit: usage::DEFAULT_AEAD_USAGE_LIMIT,
        }
    }
}

/// What an indexed job rotates.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum JobKind {
    /// A transit key (`target` is its name).
    Transit,
    /// A KV v2 secret (`target` is its path).
    Kv,
}

/// One entry of the job index.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) kind: JobKind,
    /// The mount's uuid.
    pub(crate) mount: String,
    pub(crate) target: String,
    /// Unix seconds at which the target is next due.
    pub(crate) next_due: i64,
}

#[derive(Serialize, Deserialize)]
struct Claim {
    generation: u64,
    until: i64,
}

struct Index {
    loaded: Instant,
    jobs: HashMap<String, Job>,
}

/// The scheduler's state in the core.
#[derive(Default)]
pub(crate) struct Scheduler {
    index: Mutex<Option<Index>>,
    /// Mounts (uuids) whose data keys are being rewrapped right now.
    rewrapping: Mutex<HashSet<String>>,
    core: OnceLock<Weak<Core>>,
}

impl Scheduler {
    pub(crate) fn forget_index(&self) {
        if let Ok(mut i) = self.index.lock() {
            *i = None;
        }
    }
}

fn job_id(kind: JobKind, mount: &str, target: &str) -> String {
    let kind = match kind {
        JobKind::Transit => "transit",
        JobKind::Kv => "kv",
    };
    hex::encode(ward_crypto::sha256(
        format!("{kind}/{mount}/{target}").as_bytes(),
    ))
}

impl Core {
    /// Starts the rotation scheduler on the current tokio runtime. The task holds only a weak
    /// reference: it ends when the core is dropped (or when the handle is aborted). While the
    /// core is sealed it does nothing.
    pub fn spawn_scheduler(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let _ = self.rotation.core.set(Arc::downgrade(self));
        self.start_audit_ticker();
        let weak = Arc::downgrade(self);
        let interval = self
            .config
            .rotation
            .check_interval
            .max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(core) = weak.upgrade() else { return };
                core.rotation_tick().await;
            }
        })
    }

    /// The core as an `Arc`, when a scheduler was started (for background tasks).
    pub(crate) fn shared(&self) -> Option<Arc<Core>> {
        self.rotation.core.get().and_then(Weak::upgrade)
    }

    async fn rotation_tick(self: &Arc<Self>) {
        if self.is_sealed() {
            self.rotation.forget_index();
            return;
        }
        if !self.is_active() {
            // A standby leaves scheduled work to the active server (once it becomes active
            // it starts from what storage holds: the expiry index scans again), but records
            // what it encrypts itself against the usage limits.
            self.rotation.forget_index();
            self.tokens.expiry.clear();
            self.usage_ticks().await;
            return;
        }
        let now = now();
        // Expiry is a revocation (token/expiry.rs).
        self.token_expiry_tick(now).await;
        if let Err(e) = self.keyring_tick(now).await {
            tracing::warn!(error = %crate::Report(&e), "scheduled keyring rotation failed");
        }
        self.mount_keys_tick(now).await;
        let due = match self.due_jobs(now).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %crate::Report(&e), "rotation scheduler cannot read its job index");
                return;
            }
        };
        for (id, job) in due {
            if self.is_sealed() {
                return;
            }
            if let Err(e) = self.run_job(&job, now).await {
                tracing::warn!(error = %crate::Report(&e), kind = ?job.kind, job = %id, "scheduled rotation failed");
            }
        }
    }

    /// Records this server's encryptions under the keyring and each mount's KEK, and rotates
    /// a key that reached the AES-GCM usage limit (see `usage.rs`).
    async fn usage_ticks(&self) {
        if let Err(e) = self.keyring_usage_tick().await {
            tracing::warn!(error = %crate::Report(&e), "keyring usage check failed");
        }
        for mount in self.mounts.all().iter() {
            if let Err(e) = self.mount_key_usage_tick(mount).await {
                tracing::warn!(mount = %mount.path, error = %crate::Report(&e), "mount key usage check failed");
            }
        }
    }

    /// Indexed jobs due at `now`.
    async fn due_jobs(&self, now: i64) -> CoreResult<Vec<(String, Job)>> {
        let fresh = self
            .rotation
            .index
            .lock()
            .ok()
            .and_then(|i| i.as_ref().map(|i| i.loaded.elapsed() < INDEX_TTL))
            .unwrap_or(false);
        if !fresh {
            let mut jobs = HashMap::new();
            for id in self.barrier.list(JOBS_PREFIX).await? {
                if id.ends_with('/') {
                    continue;
                }
                if let Some(bytes) = self.barrier.get(&format!("{JOBS_PREFIX}{id}")).await?
                    && let Ok(job) = serde_json::from_slice::<Job>(bytes.expose())
                {
                    jobs.insert(id, job);
                }
            }
            if let Ok(mut i) = self.rotation.index.lock() {
                *i = Some(Index {
                    loaded: Instant::now(),
                    jobs,
                });
            }
        }
        let index = self.rotation.index.lock().ok();
        let mut due: Vec<(String, Job)> = index
            .as_ref()
            .and_then(|i| i.as_ref())
            .map(|i| {
                i.jobs
                    .iter()
                    .filter(|(_, j)| j.next_due <= now)
                    .map(|(id, j)| (id.clone(), j.clone()))
                    .collect()
            })
            .unwrap_or_default();
        due.sort_by_key(|(_, j)| j.next_due);
        Ok(due)
    }

    async fn run_job(&self, job: &Job, now: i64) -> CoreResult<()> {
        let Some(mount) = mount_by_uuid(self, &job.mount) else {
            // The mount is gone, and its keys and secrets with it.
            return self.schedule(job.kind, &job.mount, &job.target, None).await;
        };
        match job.kind {
            JobKind::Transit => {
                self.transit_scheduled_rotation(&mount, &job.target, now)
                    .await
            }
            JobKind::Kv => self
                .kv_scheduled_rotation(&mount, &job.target, now)
                .await
                .map(|_| ()),
        }
    }

    /// Records when target `target` of `mount` is next due (`None`: never; the job is
    /// removed). Writes only when that changes.
    pub(crate) async fn schedule(
        &self,
        kind: JobKind,
        mount: &str,
        target: &str,
        next_due: Option<i64>,
    ) -> CoreResult<()> {
        let id = job_id(kind, mount, target);
        let key = format!("{JOBS_PREFIX}{id}");
        let stored: Option<Job> = self
            .barrier
            .get(&key)
            .await?
            .and_then(|b| serde_json::from_slice(b.expose()).ok());
        let wanted = next_due.map(|next_due| Job {
            kind,
            mount: mount.to_owned(),
            target: target.to_owned(),
            next_due,
        });
        if stored != wanted {
            match &wanted {
                Some(job) => {
                    self.barrier
                        .put(
                            &key,
                            &serde_json::to_vec(job).map_err(crate::CoreError::Encode)?,
                        )
                        .await?;
                }
                None => {
                    self.barrier
                        .commit(vec![
                            Op::delete(key.clone(), Expect::Any),
                            Op::delete(format!("{CLAIMS_PREFIX}{id}"), Expect::Any),
                        ])
                        .await?;
                }
            }
        }
        if let Ok(mut guard) = self.rotation.index.lock()
            && let Some(index) = guard.as_mut()
        {
            match wanted {
                Some(job) => {
                    index.jobs.insert(id, job);
                }
                None => {
                    index.jobs.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// The job id of a target, for [`Core::claim`].
    pub(crate) fn job_claim_id(kind: JobKind, mount: &str, target: &str) -> String {
        job_id(kind, mount, target)
    }

    /// Claims the work on `id` at `generation`: true for exactly one caller among all
    /// schedulers on this storage, until the claim's lease lapses.
    pub(crate) async fn claim(&self, id: &str, generation: u64) -> CoreResult<bool> {
        let key = format!("{CLAIMS_PREFIX}{id}");
        let now = now();
        let entry = self.barrier.get_entry(&key).await?;
        let expect = match &entry {
            Some(e) => {
                if let Ok(c) = serde_json::from_slice::<Claim>(e.value.expose())
                    && c.generation >= generation
                    && c.until > now
                {
                    return Ok(false);
                }
                Expect::Value(e.stamp())
            }
            None => Expect::Absent,
        };
        let claim = Claim {
            generation,
            until: now + CLAIM_LEASE,
        };
        let op = Op::put(
            key,
            expect,
            serde_json::to_vec(&claim).map_err(crate::CoreError::Encode)?,
        );
        Ok(self.barrier.try_commit(vec![op]).await?)
    }

    /// Every job of the index, as stored (behind the barrier, so on every server alike).
    pub(crate) async fn rotation_jobs(&self) -> CoreResult<Vec<Job>> {
        let mut jobs = Vec::new();
        for id in self.barrier.list(JOBS_PREFIX).await? {
            if let Some(bytes) = self.barrier.get(&format!("{JOBS_PREFIX}{id}")).await?
                && let Ok(job) = serde_json::from_slice::<Job>(bytes.expose())
            {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// `sys/rotation/status`: the periods, the keyring's and each mount's KEK versions and
    /// next due times, and the indexed jobs.
    pub(crate) async fn rotation_status(&self) -> CoreResult<Response> {
        let cfg = &self.config.rotation;
        let ring = self.barrier.keyring()?;
        let term = ring.active_term();
        let mut mounts = Map::new();
        for m in self.mounts.all().iter() {
            mounts.insert(m.path.clone(), self.mount_key_status(m).await?);
        }
        let mut jobs = Vec::new();
        for job in self.rotation_jobs().await? {
            let path = mount_by_uuid(self, &job.mount)
                .map(|m| m.path.clone())
                .unwrap_or_default();
            jobs.push(json!({
                "kind": job.kind,
                "mount": path,
                "target": job.target,
                "next_due": rfc3339_seconds(job.next_due).unwrap_or_default(),
            }));
        }
        let keyring_due = (cfg.keyring_period > 0).then(|| {
            rfc3339_seconds(term.installed_unix() + i64::try_from(cfg.keyring_period).unwrap_or(0))
                .unwrap_or_default()
        });
        Ok(Response::data(json!({
            "check_interval_ms": u64::try_from(cfg.check_interval.as_millis()).unwrap_or(u64::MAX),
            "min_period": cfg.min_period,
            "keyring_period": cfg.keyring_period,
            "mount_key_period": cfg.mount_key_period,
            "keyring": {
                "term": term.number(),
                "install_time": rfc3339_seconds(term.installed_unix()).unwrap_or_default(),
                "next_rotation": keyring_due.map_or(Value::Null, Value::String),
            },
            "mounts": mounts,
            "jobs": jobs,
        })))
    }

    /// Checks a requested rotation period against the configured minimum.
    pub(crate) fn check_rotation_period(&self, name: &str, period: u64) -> CoreResult<()> {
        let min = self.config.rotation.min_period;
        if period != 0 && period < min {
            return Err(crate::CoreError::bad(if min == 3600 {
                format!("{name} must be 0 to disable or at least an hour")
            } else {
                format!("{name} must be 0 to disable or at least {min} seconds")
            }));
        }
        Ok(())
    }
}

/// Rewrites one record under compare-and-set: `rewrap` gets its plaintext and answers the
/// new plaintext, or `None` when the record needs no change. Retries when a concurrent write
/// wins; a record that disappears meanwhile needs nothing. True when it was rewritten.
pub(crate) async fn rewrap_record<F>(
    barrier: &ward_store::Barrier,
    key: &str,
    rewrap: F,
) -> CoreResult<bool>
where
    F: Fn(&[u8]) -> CoreResult<Option<Vec<u8>>>,
{
    const ATTEMPTS: usize = 16;
    for _ in 0..ATTEMPTS {
        let Some(entry) = barrier.get_entry(key).await? else {
            return Ok(false);
        };
        let Some(next) = rewrap(entry.value.expose())? else {
            return Ok(false);
        };
        let op = Op::put(key, Expect::Value(entry.stamp()), next);
        if barrier.try_commit(vec![op]).await? {
            return Ok(true);
        }
    }
    Err(crate::CoreError::Contended {
        record: "a rewrapped record",
    })
}

/// The mount serving data under uuid `uuid`, if still mounted.
pub(crate) fn mount_by_uuid(core: &Core, uuid: &str) -> Option<Arc<MountEntry>> {
    core.mounts.all().iter().find(|m| m.uuid == uuid).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoreConfig;
    use ward_store::MemoryStorage;

    #[tokio::test]
    async fn only_one_of_two_cores_on_one_storage_wins_a_claim() {
        let storage: Arc<dyn ward_store::Storage> = Arc::new(MemoryStorage::new());
        let a = Core::new(storage.clone(), CoreConfig::default());
        let out = a.dev_init(None).await.unwrap();
        let b = Core::new(storage, CoreConfig::default());
        b.unseal(&hex::encode(out.keys[0].expose())).await.unwrap();
        let (x, y) = tokio::join!(a.claim("job", 3), b.claim("job", 3));
        assert!(x.unwrap() ^ y.unwrap(), "exactly one claim must win");
        assert!(!a.claim("job", 3).await.unwrap());
        assert!(!b.claim("job", 2).await.unwrap());
        // The next generation is a new piece of work.
        assert!(b.claim("job", 4).await.unwrap());
        assert!(!a.claim("job", 4).await.unwrap());
    }
}
