//! AES-GCM usage limits: a key used with random 96-bit nonces must not seal more than about
//! 2^32 messages (NIST SP 800-38D §8.3; past that, a nonce collision, which leaks the GHASH
//! key, becomes too likely). The barrier's keyring term and each mount's KEK are such keys,
//! so Ward counts what each has sealed, across restarts, and rotates it once the count
//! reaches [`RotationConfig::aead_usage_limit`](super::RotationConfig) (by default Vault's
//! 3,865,470,566, 90% of 2^32), whatever the configured rotation periods.
//!
//! Counting costs nothing on the request path: the keyring already counts its encryptions in
//! memory, and a KEK's wraps go to one shared atomic. A record behind the barrier
//! (`core/usage/<key>`) holds a *reserved* count: the sum of the blocks every process (every
//! server sharing the storage, and every earlier run) has reserved for itself. Each process
//! encrypts within what it has reserved, and its scheduler tick adds another block, by
//! compare-and-set, before it runs out; so the record is never below the real count, over
//! all servers and restarts. What a process reserved and did not use stays counted (a crash
//! can only over-count, which brings a rotation forward, never back). The key is rotated once
//! the record reaches the limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use ward_store::{Expect, Op};

use crate::mounts::MountEntry;
use crate::{Core, CoreError, CoreResult};

/// Vault's limit: rotate after this many encryptions under one key (0.9 × 2^32).
pub(crate) const DEFAULT_AEAD_USAGE_LIMIT: u64 = 3_865_470_566;

const USAGE_PREFIX: &str = "core/usage/";

/// How far ahead of the real count a reservation runs: far more than a tick's worth of
/// encryptions (16 Mi, against the ~1 M/s a server here can do), and small beside the limit.
fn reservation_block(limit: u64) -> u64 {
    (limit / 64).clamp(1, 1 << 24)
}

/// The name of mount `uuid`'s KEK usage (its record is this below `core/usage/`).
fn mount_usage_name(uuid: &str) -> String {
    format!("mount/{uuid}")
}

/// Where the usage of mount `uuid`'s KEK is recorded (deleted with the mount).
pub(crate) fn mount_record(uuid: &str) -> String {
    format!("{USAGE_PREFIX}{}", mount_usage_name(uuid))
}

/// The record behind the barrier: how many encryptions of key `version` may have happened.
#[derive(Serialize, Deserialize)]
struct StoredUsage {
    version: u32,
    reserved: u64,
}

/// What this process knows of one key's usage.
#[derive(Clone, Copy)]
struct Tracked {
    version: u32,
    /// What this process has reserved for itself (its count stays below it).
    budget: u64,
    /// The record's reserved count as this process last wrote it.
    recorded: u64,
}

/// Attempts at adding to a usage record that keeps losing compare-and-set races.
const USAGE_UPDATE_ATTEMPTS: usize = 16;

/// The usage of the keys being counted, by record name (`keyring`, `mount/<uuid>`).
#[derive(Default)]
pub(crate) struct UsageTracker {
    tracked: Mutex<std::collections::HashMap<String, Tracked>>,
}

impl UsageTracker {
    /// Forgets everything (on seal): the next tick reads the records again.
    pub(crate) fn clear(&self) {
        if let Ok(mut t) = self.tracked.lock() {
            t.clear();
        }
    }

    fn get(&self, name: &str) -> Option<Tracked> {
        self.tracked.lock().ok().and_then(|t| t.get(name).copied())
    }

    fn set(&self, name: &str, tracked: Tracked) {
        if let Ok(mut t) = self.tracked.lock() {
            t.insert(name.to_owned(), tracked);
        }
    }
}

/// A counter of the seals one KEK version has made in this process, shared by every copy
/// of the unwrapped key set.
#[derive(Default)]
pub(crate) struct SealCounter(AtomicU64);

impl SealCounter {
    pub(crate) fn count(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The shared counters of the KEK versions in use, by (mount uuid, version).
#[derive(Default)]
pub(crate) struct SealCounters {
    counters: Mutex<std::collections::HashMap<(String, u32), Arc<SealCounter>>>,
}

impl SealCounters {
    /// The counter of `uuid`'s KEK `version` (made on first use).
    pub(crate) fn of(&self, uuid: &str, version: u32) -> Arc<SealCounter> {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(counters.entry((uuid.to_owned(), version)).or_default())
    }

    /// What `uuid`'s KEK `version` has sealed in this process (0 if never used).
    pub(crate) fn get(&self, uuid: &str, version: u32) -> u64 {
        self.counters
            .lock()
            .ok()
            .and_then(|c| c.get(&(uuid.to_owned(), version)).map(|c| c.get()))
            .unwrap_or(0)
    }

    /// Drops every counter (on seal; what they counted is in the reservations).
    pub(crate) fn clear(&self) {
        if let Ok(mut c) = self.counters.lock() {
            c.clear();
        }
    }
}

impl Core {
    /// Brings the usage record `name` of key `version` up to date with `counted` (this
    /// process's encryptions under it) and says whether the key has reached the limit.
    async fn usage_reached_limit(
        &self,
        name: &str,
        version: u32,
        counted: u64,
    ) -> CoreResult<bool> {
        let limit = self.config.rotation.aead_usage_limit;
        let block = reservation_block(limit);
        let mut tracked = match self.usage.get(name) {
            Some(t) if t.version == version => t,
            // First look since unseal, or the key was rotated: nothing reserved yet.
            _ => Tracked {
                version,
                budget: 0,
                recorded: 0,
            },
        };
        if counted.saturating_add(block / 2) >= tracked.budget {
            if counted > tracked.budget && tracked.budget > 0 {
                tracing::warn!(
                    key = name,
                    "encryptions outran their reservation between two ticks"
                );
            }
            let more = counted.saturating_sub(tracked.budget).saturating_add(block);
            tracked.recorded = self.reserve_usage(name, version, more).await?;
            tracked.budget = tracked.budget.saturating_add(more);
        }
        self.usage.set(name, tracked);
        Ok(tracked.recorded >= limit)
    }

    /// Adds `more` to the reserved count of record `name` for key `version`, by
    /// compare-and-set (other servers add to it too), and returns the new count.
    async fn reserve_usage(&self, name: &str, version: u32, more: u64) -> CoreResult<u64> {
        let key = format!("{USAGE_PREFIX}{name}");
        for _ in 0..USAGE_UPDATE_ATTEMPTS {
            let entry = self.barrier.get_entry(&key).await?;
            let (stored, expect) = match &entry {
                Some(e) => (
                    serde_json::from_slice::<StoredUsage>(e.value.expose())
                        .map_err(CoreError::corrupt_json("usage record"))?,
                    Expect::Value(e.stamp()),
                ),
                None => (
                    StoredUsage {
                        version,
                        reserved: 0,
                    },
                    Expect::Absent,
                ),
            };
            if stored.version > version {
                // Another server rotated the key: this version is past, nothing to record.
                return Ok(0);
            }
            let reserved = if stored.version == version {
                stored.reserved.saturating_add(more)
            } else {
                more
            };
            let record = serde_json::to_vec(&StoredUsage { version, reserved })
                .map_err(CoreError::Encode)?;
            if self
                .barrier
                .try_commit(vec![Op::put(key.clone(), expect, record)])
                .await?
            {
                return Ok(reserved);
            }
        }
        Err(CoreError::bad(
            "the usage record keeps changing under this server; the next tick tries again",
        ))
    }

    /// Rotates the keyring once its active term has sealed [`DEFAULT_AEAD_USAGE_LIMIT`]
    /// (or the configured limit) entries.
    pub(super) async fn keyring_usage_tick(&self) -> CoreResult<()> {
        let ring = self.barrier.keyring()?;
        let term = ring.active_term();
        if self
            .usage_reached_limit("keyring", term.number(), term.encryptions())
            .await?
            && self.claim("keyring", u64::from(term.number())).await?
        {
            self.rotate_keyring().await?;
            tracing::info!(
                term = term.number() + 1,
                "keyring rotated: its term reached the AES-GCM usage limit"
            );
        }
        Ok(())
    }

    /// Rotates `mount`'s KEK once its latest version has wrapped as many data keys as the
    /// limit allows (the rewrap follows from `mount_keys_tick`, which calls this first).
    pub(super) async fn mount_key_usage_tick(&self, mount: &MountEntry) -> CoreResult<()> {
        let keys = self.mount_keys.get(&self.barrier, &mount.uuid).await?;
        let counted = self.mount_keys.seals(&mount.uuid, keys.latest);
        let name = mount_usage_name(&mount.uuid);
        if self
            .usage_reached_limit(&name, keys.latest, counted)
            .await?
            && self
                .claim(&format!("mount-key-{}", mount.uuid), u64::from(keys.latest))
                .await?
        {
            let version = self.rotate_mount_key(mount).await?;
            tracing::info!(
                mount = %mount.path,
                version,
                "mount key rotated: its latest version reached the AES-GCM usage limit"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_run_ahead_by_a_bounded_block() {
        assert_eq!(reservation_block(DEFAULT_AEAD_USAGE_LIMIT), 1 << 24);
        assert_eq!(reservation_block(640), 10);
        assert_eq!(reservation_block(10), 1);
    }

    #[test]
    fn counters_are_shared_per_key_version() {
        let counters = SealCounters::default();
        let a = counters.of("m", 1);
        let b = counters.of("m", 1);
        a.count();
        b.count();
        counters.of("m", 2).count();
        assert_eq!(counters.get("m", 1), 2);
        assert_eq!(counters.get("m", 2), 1);
        assert_eq!(counters.get("n", 1), 0);
    }
}
