//! Token persistence: tokens are stored only as SHA-256 hashes, behind the barrier.
//!
//! Layout (logical keys): `sys/token/id/<hash>` → entry, `sys/token/accessor/<accessor>` →
//! hash, `sys/token/parent/<parent-hash>/<child-hash>` → marker, for revoking a whole tree.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ward_api::token_format::{self, BASE62};
use ward_crypto::random_chars;
use ward_store::{Barrier, Expect, Op, SharedCache, StoreError};

use crate::{CoreError, CoreResult};

pub(crate) const ID_PREFIX: &str = "sys/token/id/";
const ACCESSOR_PREFIX: &str = "sys/token/accessor/";
pub(crate) const PARENT_PREFIX: &str = "sys/token/parent/";

/// A stored token. Holds no token, only its hash.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct TokenEntry {
    pub(crate) hash: String,
    pub(crate) accessor: String,
    pub(crate) parent: Option<String>,
    pub(crate) policies: Vec<String>,
    pub(crate) meta: Map<String, Value>,
    pub(crate) display_name: String,
    /// Uses left; 0 means unlimited.
    pub(crate) num_uses: u64,
    pub(crate) creation_time: i64,
    /// The TTL the token was created with, in seconds (0 for none): Vault's
    /// `creation_ttl`, and the period of a renewal that names none.
    pub(crate) ttl: u64,
    pub(crate) explicit_max_ttl: u64,
    /// Unix time of expiry; None never expires.
    pub(crate) expire_time: Option<i64>,
    pub(crate) issue_time: i64,
    pub(crate) renewable: bool,
    pub(crate) bound_cidrs: Vec<String>,
    pub(crate) path: String,
    pub(crate) orphan: bool,
    /// The longest life its auth method allows, in seconds from creation (0: only the
    /// server's maximum); renewals stop there.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) max_ttl: u64,
    /// Unix time of the last renewal, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_renewal: Option<i64>,
}

/// Neither the accessor (it looks up, renews and revokes the token) nor the hash.
impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("policies", &self.policies)
            .field("display_name", &self.display_name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TokenEntry {
    pub(crate) fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Seconds left before expiry (0 when it never expires).
    pub(crate) fn remaining(&self, now: i64) -> u64 {
        self.expire_time
            .map(|t| u64::try_from(t - now).unwrap_or(0))
            .unwrap_or(0)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Mints a token in Ward's format (`ward_api::token_format`).
pub(crate) fn mint_token() -> CoreResult<String> {
    let random = random_chars(BASE62, token_format::RANDOM_LEN)?;
    Ok(token_format::token_from_random(&random))
}

/// Mints a token's accessor: 24 random base62 characters, as Vault's are.
pub(crate) fn mint_accessor() -> CoreResult<String> {
    Ok(random_chars(BASE62, 24)?)
}

/// The storage name of a token.
pub(crate) fn hash_token(token: &str) -> String {
    ward_crypto::sha256_hex(token.as_bytes())
}

/// Unlimited-use token entries cached (past this, the cache starts over).
const CACHED_TOKENS: usize = 4096;

/// Locks serialising the changes to each token (see [`TokenLocks`]).
const TOKEN_LOCK_STRIPES: usize = 256;

/// Compare-and-set attempts before a change gives up. Within one server the token's lock
/// makes conflicts impossible; a conflict means another server sharing the storage changed
/// the entry meanwhile (and so made progress), so many attempts are cheap insurance.
const CAS_ATTEMPTS: usize = 1000;

/// Ancestors checked when a token is used; a token deeper than this in a tree of tokens is
/// refused rather than checked only in part.
const MAX_LINEAGE: usize = 128;

/// Serialises, within this server, every change to one token's stored entry (spending a
/// use, renewing, revoking, orphaning, creating a child under it): without it, concurrent
/// requests on one limited-use token would mostly lose their compare-and-set to each other
/// and be refused by contention rather than by the uses left. Correctness across servers
/// sharing the storage rests on the compare-and-set of every change, not on this.
///
/// Striped by the token's hash; a task never holds two stripes at once, so stripes shared
/// by two tokens cannot deadlock.
struct TokenLocks {
    stripes: Box<[tokio::sync::Mutex<()>]>,
}

impl Default for TokenLocks {
    fn default() -> Self {
        Self {
            stripes: (0..TOKEN_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }
}

impl TokenLocks {
    async fn lock(&self, hash: &str) -> tokio::sync::MutexGuard<'_, ()> {
        // The hash is a SHA-256 in hex, so any of its bytes spread tokens evenly.
        let stripe = hash.bytes().take(8).fold(0usize, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(usize::from(b))
        }) % self.stripes.len();
        self.stripes[stripe].lock().await
    }
}

/// What a token's ancestors allow it.
pub(crate) enum Lineage {
    /// Every ancestor is alive; `ends` is when the first of them expires, if any does.
    Alive { ends: Option<i64> },
    /// An ancestor is gone or expired: the token is dead too.
    Dead,
}

/// Why a change to a token's stored entry was not made.
pub(crate) enum Refusal {
    /// The entry is gone (revoked, used up) or expired.
    Gone,
    /// The change's own rule refused it.
    Refused(CoreError),
}

impl From<CoreError> for Refusal {
    fn from(e: CoreError) -> Self {
        Refusal::Refused(e)
    }
}

/// Token storage with a cache of unlimited-use entries.
pub(crate) struct TokenStore {
    cache: SharedCache<String, TokenEntry>,
    locks: TokenLocks,
    pub(crate) expiry: super::expiry::ExpiryIndex,
}

impl Default for TokenStore {
    fn default() -> Self {
        Self {
            cache: SharedCache::new(CACHED_TOKENS),
            locks: TokenLocks::default(),
            expiry: super::expiry::ExpiryIndex::default(),
        }
    }
}

impl TokenStore {
    pub(crate) fn clear_cache(&self) {
        self.cache.clear();
        self.expiry.clear();
    }

    /// Drops `hash` from the cache: once this returns, no request is served
    /// from a cached copy, and a read of the entry that began before cannot cache it.
    pub(crate) fn forget(&self, hash: &str) {
        self.cache.remove(hash);
    }

    pub(crate) async fn get(
        &self,
        barrier: &Barrier,
        hash: &str,
    ) -> CoreResult<Option<Arc<TokenEntry>>> {
        if let Some(e) = self.cache.get(hash) {
            return Ok(Some(e));
        }
        let generation = self.cache.generation();
        let Some(bytes) = barrier.get(&format!("{ID_PREFIX}{hash}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry = decode(bytes.expose())?;
        let entry = Arc::new(entry);
        if entry.num_uses == 0 {
            self.cache
                .insert(hash.to_owned(), Arc::clone(&entry), generation);
        }
        Ok(Some(entry))
    }

    pub(crate) async fn by_accessor(
        &self,
        barrier: &Barrier,
        accessor: &str,
    ) -> CoreResult<Option<Arc<TokenEntry>>> {
        if accessor.is_empty() || accessor.contains('/') {
            return Ok(None);
        }
        let Some(hash) = barrier.get(&format!("{ACCESSOR_PREFIX}{accessor}")).await? else {
            return Ok(None);
        };
        let hash = String::from_utf8_lossy(hash.expose()).into_owned();
        self.get(barrier, &hash).await
    }

    /// Whether every ancestor of `entry` is still stored and unexpired, and when the first
    /// of them expires. A token dies with its parent: revocation deletes the parent before
    /// its descendants, and expiry is a revocation the sweep carries out a moment later, so
    /// checking this on use makes both take effect for the whole tree at once. Ancestors
    /// are usually cached (they have no use limit), so this costs a map lookup per level.
    pub(crate) async fn lineage(
        &self,
        barrier: &Barrier,
        entry: &TokenEntry,
        now: i64,
    ) -> CoreResult<Lineage> {
        let mut ends: Option<i64> = None;
        let Some(first) = &entry.parent else {
            return Ok(Lineage::Alive { ends });
        };
        let mut ancestor = match self.get(barrier, first).await? {
            Some(parent) => parent,
            None => return Ok(Lineage::Dead),
        };
        for _ in 0..MAX_LINEAGE {
            if let Some(t) = ancestor.expire_time {
                if t <= now {
                    return Ok(Lineage::Dead);
                }
                ends = Some(ends.map_or(t, |e| e.min(t)));
            }
            let Some(next) = &ancestor.parent else {
                return Ok(Lineage::Alive { ends });
            };
            ancestor = match self.get(barrier, next).await? {
                Some(parent) => parent,
                None => return Ok(Lineage::Dead),
            };
        }
        Ok(Lineage::Dead)
    }

    /// Whether every ancestor of `entry` is still alive (see [`TokenStore::lineage`]).
    pub(crate) async fn lineage_alive(
        &self,
        barrier: &Barrier,
        entry: &TokenEntry,
        now: i64,
    ) -> CoreResult<bool> {
        Ok(matches!(
            self.lineage(barrier, entry, now).await?,
            Lineage::Alive { .. }
        ))
    }

    /// Stores a new token entry with its accessor and its parent link, atomically, as a
    /// child of (or, for an orphan, created by) `creator`. `build` makes the entry from the
    /// creator's entry as stored now, under the creator's lock and in the same commit as a
    /// check that the creator is unchanged: a child is never written under a parent that is
    /// being revoked, and never from a limited-use creator (Vault's rules and messages).
    /// Without a creator (a root token), `build` sees no entry.
    pub(crate) async fn create(
        &self,
        barrier: &Barrier,
        creator: Option<&str>,
        build: impl FnOnce(Option<&TokenEntry>) -> CoreResult<TokenEntry>,
    ) -> CoreResult<TokenEntry> {
        let Some(creator) = creator else {
            let entry = build(None)?;
            self.insert(barrier, &entry, None).await?;
            return Ok(entry);
        };
        let _guard = self.locks.lock(creator).await;
        let no_parent = || CoreError::bad("parent token lookup failed: no parent found");
        let current = barrier
            .get_entry(&format!("{ID_PREFIX}{creator}"))
            .await?
            .ok_or_else(no_parent)?;
        let creator_entry = decode(current.value.expose())?;
        if creator_entry
            .expire_time
            .is_some_and(|t| t <= crate::core::now())
        {
            return Err(no_parent());
        }
        if creator_entry.num_uses > 0 {
            return Err(CoreError::bad(
                "restricted use token cannot generate child tokens",
            ));
        }
        let entry = build(Some(&creator_entry))?;
        let still_there = Op::check(
            format!("{ID_PREFIX}{creator}"),
            Expect::Value(current.stamp()),
        );
        self.insert(barrier, &entry, Some(still_there)).await?;
        Ok(entry)
    }

    async fn insert(
        &self,
        barrier: &Barrier,
        entry: &TokenEntry,
        condition: Option<Op>,
    ) -> CoreResult<()> {
        let mut ops = vec![
            Op::put(
                format!("{ID_PREFIX}{}", entry.hash),
                Expect::Absent,
                encode(entry)?,
            ),
            Op::put(
                format!("{ACCESSOR_PREFIX}{}", entry.accessor),
                Expect::Absent,
                entry.hash.clone().into_bytes(),
            ),
        ];
        if let Some(parent) = &entry.parent {
            let link = format!("{PARENT_PREFIX}{parent}/{}", entry.hash);
            ops.push(Op::put(link, Expect::Any, Vec::new()));
        }
        let guarded = condition.is_some();
        ops.extend(condition);
        barrier.commit(ops).await.map_err(|e| match e {
            // The creator changed between its read and this commit: only another server
            // can do that (this one holds the creator's lock), by renewing or revoking it.
            StoreError::Conflict if guarded => {
                CoreError::bad("parent token lookup failed: the parent changed; retry")
            }
            StoreError::Conflict => CoreError::bad("token id already in use"),
            other => other.into(),
        })?;
        self.expiry.track(entry);
        Ok(())
    }

    /// Changes the stored entry of `hash` with `change`, under the token's lock and by
    /// compare-and-set against the entry as read, so that no change is made to an entry
    /// that was revoked, used up or expired meanwhile, and no change is lost (a renewal can
    /// never write back a use count or an entry that a concurrent request changed).
    /// Returns the entry as written.
    pub(crate) async fn update(
        &self,
        barrier: &Barrier,
        hash: &str,
        now: i64,
        mut change: impl FnMut(&TokenEntry) -> Result<TokenEntry, Refusal>,
    ) -> Result<TokenEntry, Refusal> {
        let key = format!("{ID_PREFIX}{hash}");
        let _guard = self.locks.lock(hash).await;
        for _ in 0..CAS_ATTEMPTS {
            let Some(current) = barrier.get_entry(&key).await.map_err(CoreError::from)? else {
                return Err(Refusal::Gone);
            };
            let entry = decode(current.value.expose())?;
            if entry.expire_time.is_some_and(|t| t <= now) {
                return Err(Refusal::Gone);
            }
            let changed = change(&entry)?;
            let op = Op::put(
                key.clone(),
                Expect::Value(current.stamp()),
                encode(&changed)?,
            );
            if barrier
                .try_commit(vec![op])
                .await
                .map_err(CoreError::from)?
            {
                self.forget(hash);
                self.expiry.track(&changed);
                return Ok(changed);
            }
        }
        Err(CoreError::Contended {
            record: "token entry",
        }
        .into())
    }

    /// Spends one use of the limited-use token `hash` if it may be used now from `remote`,
    /// and returns its entry with the uses left; `None` when it may not (gone, expired,
    /// used up, wrong address). The last use deletes the token (with its children). Under
    /// the token's lock and by compare-and-set, so every use is counted exactly once and
    /// concurrent requests are served or refused by the uses left, never by contention.
    pub(crate) async fn spend_use(
        &self,
        barrier: &Barrier,
        hash: &str,
        now: i64,
        remote: Option<IpAddr>,
    ) -> CoreResult<Option<Arc<TokenEntry>>> {
        let key = format!("{ID_PREFIX}{hash}");
        let guard = self.locks.lock(hash).await;
        for _ in 0..CAS_ATTEMPTS {
            let Some(current) = barrier.get_entry(&key).await? else {
                return Ok(None);
            };
            let mut entry: TokenEntry = decode(current.value.expose())?;
            if !Self::check_usable(&entry, now, remote) {
                return Ok(None);
            }
            if entry.num_uses == 0 {
                return Ok(Some(Arc::new(entry)));
            }
            entry.num_uses -= 1;
            let expect = Expect::Value(current.stamp());
            let op = if entry.num_uses == 0 {
                Op::delete(key.clone(), expect)
            } else {
                Op::put(key.clone(), expect, encode(&entry)?)
            };
            if !barrier.try_commit(vec![op]).await? {
                continue;
            }
            if entry.num_uses == 0 {
                // Last use: the token is gone; what hangs off it goes too.
                self.forget(hash);
                drop(guard);
                self.remove_links(barrier, hash, &entry).await?;
                self.revoke_children(barrier, hash).await?;
            }
            return Ok(Some(Arc::new(entry)));
        }
        Err(CoreError::Contended {
            record: "token entry",
        })
    }

    /// Revokes a token and every token below it. The token itself goes first: from then
    /// on no child can be created under it, and its descendants are refused on use (see
    /// [`TokenStore::lineage_alive`]) while they are deleted one by one. A crash half-way
    /// leaves descendants that cannot be used, which the expiry sweep then deletes.
    pub(crate) async fn revoke_tree(&self, barrier: &Barrier, hash: &str) -> CoreResult<()> {
        self.revoke_one(barrier, hash).await?;
        self.revoke_children(barrier, hash).await
    }

    /// Revokes every token below `hash` (whose own entry is already gone).
    async fn revoke_children(&self, barrier: &Barrier, hash: &str) -> CoreResult<()> {
        let mut stack = vec![hash.to_owned()];
        while let Some(parent) = stack.pop() {
            for child in barrier.list(&format!("{PARENT_PREFIX}{parent}/")).await? {
                let child = child.trim_end_matches('/');
                self.revoke_one(barrier, child).await?;
                // The link, even if the child's entry was already gone.
                barrier
                    .delete(&format!("{PARENT_PREFIX}{parent}/{child}"))
                    .await?;
                stack.push(child.to_owned());
            }
        }
        Ok(())
    }

    /// Revokes one token; its children become orphans. The token goes first, so none can
    /// be created under it while its children are being orphaned.
    pub(crate) async fn revoke_orphan(&self, barrier: &Barrier, hash: &str) -> CoreResult<()> {
        self.revoke_one(barrier, hash).await?;
        let now = crate::core::now();
        for child in barrier.list(&format!("{PARENT_PREFIX}{hash}/")).await? {
            let child = child.trim_end_matches('/');
            let orphaned = self
                .update(barrier, child, now, |e| {
                    let mut e = e.clone();
                    e.parent = None;
                    e.orphan = true;
                    Ok(e)
                })
                .await;
            match orphaned {
                Ok(_) | Err(Refusal::Gone) => {}
                Err(Refusal::Refused(e)) => return Err(e),
            }
            barrier
                .delete(&format!("{PARENT_PREFIX}{hash}/{child}"))
                .await?;
        }
        Ok(())
    }

    /// Deletes one token's entry (under its lock), then its accessor and its link under
    /// its parent. Its children are left to the caller.
    async fn revoke_one(&self, barrier: &Barrier, hash: &str) -> CoreResult<()> {
        let key = format!("{ID_PREFIX}{hash}");
        let guard = self.locks.lock(hash).await;
        let mut removed = None;
        for _ in 0..CAS_ATTEMPTS {
            let Some(current) = barrier.get_entry(&key).await? else {
                break;
            };
            let entry = decode(current.value.expose())?;
            let op = Op::delete(key.clone(), Expect::Value(current.stamp()));
            if barrier.try_commit(vec![op]).await? {
                removed = Some(entry);
                break;
            }
        }
        self.forget(hash);
        drop(guard);
        match removed {
            Some(entry) => self.remove_links(barrier, hash, &entry).await,
            None if barrier.get(&key).await?.is_none() => Ok(()),
            None => Err(CoreError::Contended {
                record: "token entry",
            }),
        }
    }

    /// Deletes a removed token's accessor and its link under its parent.
    async fn remove_links(
        &self,
        barrier: &Barrier,
        hash: &str,
        entry: &TokenEntry,
    ) -> CoreResult<()> {
        let accessor = format!("{ACCESSOR_PREFIX}{}", entry.accessor);
        let mut ops = vec![Op::delete(accessor, Expect::Any)];
        if let Some(parent) = &entry.parent {
            ops.push(Op::delete(
                format!("{PARENT_PREFIX}{parent}/{hash}"),
                Expect::Any,
            ));
        }
        barrier.commit(ops).await?;
        Ok(())
    }

    /// Revokes, with their children, the tokens whose `path` starts with `prefix`: those an
    /// auth method mounted there issued (its logins' paths are `auth/<mount>/login/...`).
    /// Returns how many it revoked.
    pub(crate) async fn revoke_issued_below(
        &self,
        barrier: &Barrier,
        prefix: &str,
    ) -> CoreResult<usize> {
        let mut revoked = 0;
        for hash in barrier.list(ID_PREFIX).await? {
            let issued_there = self
                .get_uncached(barrier, &hash)
                .await?
                .is_some_and(|e| e.path.starts_with(prefix));
            if issued_there {
                self.revoke_tree(barrier, &hash).await?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// The stored entry, bypassing the cache.
    pub(crate) async fn get_uncached(
        &self,
        barrier: &Barrier,
        hash: &str,
    ) -> CoreResult<Option<TokenEntry>> {
        match barrier.get(&format!("{ID_PREFIX}{hash}")).await? {
            Some(bytes) => Ok(Some(decode(bytes.expose())?)),
            None => Ok(None),
        }
    }

    /// All accessors (for `auth/token/accessors`).
    pub(crate) async fn accessors(&self, barrier: &Barrier) -> CoreResult<Vec<String>> {
        Ok(barrier.list(ACCESSOR_PREFIX).await?)
    }

    /// Checks that `entry` may be used now from `remote`.
    pub(crate) fn check_usable(entry: &TokenEntry, now: i64, remote: Option<IpAddr>) -> bool {
        if entry.expire_time.is_some_and(|t| t <= now) {
            return false;
        }
        if entry.bound_cidrs.is_empty() {
            return true;
        }
        let Some(ip) = remote else { return false };
        entry.bound_cidrs.iter().any(|c| cidr_contains(c, ip))
    }
}

/// True when `ip` is inside `cidr` (a bare address counts as a /32 or /128).
pub(crate) fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if let Ok(net) = cidr.parse::<ipnet::IpNet>() {
        return net.contains(&ip);
    }
    cidr.parse::<IpAddr>().is_ok_and(|a| a == ip)
}

/// Validates a CIDR list from a request.
pub(crate) fn validate_cidrs(cidrs: &[String]) -> CoreResult<()> {
    for c in cidrs {
        if c.parse::<ipnet::IpNet>().is_err() && c.parse::<IpAddr>().is_err() {
            return Err(CoreError::bad(format!(
                "invalid CIDR in token_bound_cidrs: {c:?}"
            )));
        }
    }
    Ok(())
}

fn encode(entry: &TokenEntry) -> CoreResult<Vec<u8>> {
    serde_json::to_vec(entry).map_err(CoreError::Encode)
}

fn decode(bytes: &[u8]) -> CoreResult<TokenEntry> {
    serde_json::from_slice(bytes).map_err(CoreError::corrupt_json("token entry"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_prefix_length_and_valid_checksum() {
        let t = mint_token().unwrap();
        assert!(t.starts_with("wrd_"));
        assert_eq!(t.len(), 42);
        let body = &t[4..];
        assert_eq!(token_format::checksum(&body[..32]), &body.as_bytes()[32..]);
        assert!(token_format::looks_like_token(&t));
        assert_ne!(t, mint_token().unwrap());
    }

    #[test]
    fn cidrs_bind_addresses() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(cidr_contains("10.0.0.0/8", ip));
        assert!(!cidr_contains("192.168.0.0/16", ip));
        assert!(cidr_contains("10.1.2.3", ip));
        assert!(cidr_contains(
            "127.0.0.1/32",
            "::ffff:127.0.0.1".parse().unwrap()
        ));
        assert!(validate_cidrs(&["nope".into()]).is_err());
    }
}
