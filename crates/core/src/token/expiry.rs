//! Expiry is a revocation: the rotation scheduler's tick calls [`Core::token_expiry_tick`],
//! which revokes every token whose time is up, with all of its descendants (as Vault's
//! expiration manager does). Until the sweep reaches it, an expired token is already refused
//! on use, and so are its descendants (`TokenStore::lineage_alive`).
//!
//! The sweep finds due tokens in an in-memory index of expiry times, filled as this server
//! creates and renews tokens and, every [`FULL_SCAN_EVERY`] (and at the first tick after an
//! unseal), from a scan of every stored token, so that tokens written before a restart or by
//! another server on the same storage are swept too. The scan also revokes what a revocation
//! cut short by a crash left behind: children whose parent is gone.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::store::{ID_PREFIX, PARENT_PREFIX, TokenEntry};
use crate::{Core, CoreResult};

/// How often every stored token is read to refill the index.
const FULL_SCAN_EVERY: Duration = Duration::from_secs(300);

/// Expiry times of tokens, soonest first.
#[derive(Default)]
pub(crate) struct ExpiryIndex {
    inner: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    /// (expiry, token hash), soonest first. The sweep reads the stored entry before acting,
    /// so an entry that is out of date (changed by another server) costs one read.
    due: BTreeSet<(i64, String)>,
    /// Each token's place in `due`, so that a renewal moves it rather than adding another
    /// (a token renewed in a loop must not grow the index).
    by_token: HashMap<String, i64>,
    scanned: Option<Instant>,
}

impl ExpiryIndex {
    /// Notes when `entry` expires (nothing for a token that never does).
    pub(crate) fn track(&self, entry: &TokenEntry) {
        let Some(at) = entry.expire_time else {
            return;
        };
        let Ok(mut index) = self.inner.lock() else {
            return;
        };
        if let Some(before) = index.by_token.insert(entry.hash.clone(), at) {
            index.due.remove(&(before, entry.hash.clone()));
        }
        index.due.insert((at, entry.hash.clone()));
    }

    /// Forgets everything (on seal): the next tick after an unseal scans again.
    pub(crate) fn clear(&self) {
        if let Ok(mut index) = self.inner.lock() {
            *index = Index::default();
        }
    }

    fn needs_scan(&self) -> bool {
        self.inner
            .lock()
            .map(|i| i.scanned.is_none_or(|t| t.elapsed() >= FULL_SCAN_EVERY))
            .unwrap_or(false)
    }

    fn scanned(&self) {
        if let Ok(mut index) = self.inner.lock() {
            index.scanned = Some(Instant::now());
        }
    }

    /// Takes out the tokens due at `now`.
    fn take_due(&self, now: i64) -> Vec<String> {
        let Ok(mut index) = self.inner.lock() else {
            return Vec::new();
        };
        let later = index.due.split_off(&(now + 1, String::new()));
        let due = std::mem::replace(&mut index.due, later);
        due.into_iter()
            .map(|(_, hash)| {
                index.by_token.remove(&hash);
                hash
            })
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().map(|i| i.due.len()).unwrap_or(0)
    }
}

impl Core {
    /// Revokes the tokens that expired by `now`, with their descendants.
    pub(crate) async fn token_expiry_tick(&self, now: i64) {
        if self.tokens.expiry.needs_scan() {
            match self.scan_tokens(now).await {
                Ok(()) => self.tokens.expiry.scanned(),
                Err(e) => tracing::warn!(error = %crate::Report(&e), "token expiry scan failed"),
            }
        }
        for hash in self.tokens.expiry.take_due(now) {
            if self.is_sealed() {
                return;
            }
            if let Err(e) = self.expire_token(&hash, now).await {
                tracing::warn!(error = %crate::Report(&e), "revoking an expired token failed");
            }
        }
    }

    /// Revokes `hash` if its stored entry has expired by `now` (or is gone, in which case
    /// only its descendants remain to revoke); otherwise puts it back in the index.
    async fn expire_token(&self, hash: &str, now: i64) -> CoreResult<()> {
        match self.tokens.get_uncached(&self.barrier, hash).await? {
            Some(entry) if entry.expire_time.is_none_or(|t| t > now) => {
                self.tokens.expiry.track(&entry);
                Ok(())
            }
            _ => self.tokens.revoke_tree(&self.barrier, hash).await,
        }
    }

    /// Reads every stored token into the index, and revokes the children of tokens that no
    /// longer exist.
    async fn scan_tokens(&self, now: i64) -> CoreResult<()> {
        for hash in self.barrier.list(ID_PREFIX).await? {
            if hash.ends_with('/') {
                continue;
            }
            if let Some(entry) = self.tokens.get_uncached(&self.barrier, &hash).await? {
                self.tokens.expiry.track(&entry);
            }
        }
        for parent in self.barrier.list(PARENT_PREFIX).await? {
            let Some(parent) = parent.strip_suffix('/') else {
                continue;
            };
            if self
                .tokens
                .get_uncached(&self.barrier, parent)
                .await?
                .is_none_or(|e| e.expire_time.is_some_and(|t| t <= now))
            {
                self.tokens.revoke_tree(&self.barrier, parent).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: &str, expire_time: Option<i64>) -> TokenEntry {
        TokenEntry {
            hash: hash.into(),
            accessor: String::new(),
            parent: None,
            policies: Vec::new(),
            meta: Default::default(),
            display_name: String::new(),
            num_uses: 0,
            creation_time: 0,
            ttl: 0,
            explicit_max_ttl: 0,
            expire_time,
            issue_time: 0,
            renewable: true,
            bound_cidrs: Vec::new(),
            path: String::new(),
            orphan: false,
            max_ttl: 0,
            last_renewal: None,
        }
    }

    #[test]
    fn due_tokens_come_out_once_and_renewals_move_rather_than_add() {
        let index = ExpiryIndex::default();
        index.track(&entry("never", None));
        index.track(&entry("a", Some(10)));
        index.track(&entry("b", Some(20)));
        for renewal in 0..100 {
            index.track(&entry("b", Some(30 + renewal)));
        }
        assert_eq!(index.len(), 2);
        assert_eq!(index.take_due(9), Vec::<String>::new());
        assert_eq!(index.take_due(10), vec!["a".to_owned()]);
        assert_eq!(index.take_due(10), Vec::<String>::new());
        assert_eq!(index.take_due(129), vec!["b".to_owned()]);
        assert_eq!(index.len(), 0);
        index.track(&entry("b", Some(5)));
        assert_eq!(index.take_due(5), vec!["b".to_owned()]);
    }
}
