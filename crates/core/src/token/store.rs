//! Token persistence: tokens are stored only as SHA-256 hashes, behind the barrier.
//!
//! Layout (logical keys): `sys/token/id/<hash>` → entry, `sys/token/accessor/<accessor>` →
//! hash, `sys/token/parent/<parent-hash>/<child-hash>` → marker, for revoking a whole tree.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ward_crypto::random_base62;
use ward_store::{Action, Barrier, Expect, Op, StoreError, ThreadCache};

use crate::{CoreError, CoreResult};

/// Prefix of every Ward service token, so that scanners can find leaked ones.
pub const TOKEN_PREFIX: &str = "wrd_";

const ID_PREFIX: &str = "sys/token/id/";
const ACCESSOR_PREFIX: &str = "sys/token/accessor/";
const PARENT_PREFIX: &str = "sys/token/parent/";

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
    /// The TTL the token was created (or last renewed) with, in seconds; 0 for none.
    pub(crate) ttl: u64,
    pub(crate) explicit_max_ttl: u64,
    /// Unix time of expiry; None never expires.
    pub(crate) expire_time: Option<i64>,
    pub(crate) issue_time: i64,
    pub(crate) renewable: bool,
    pub(crate) bound_cidrs: Vec<String>,
    pub(crate) path: String,
    pub(crate) orphan: bool,
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

/// Mints a token: prefix, 32 random base62 characters, and a 6-character base62 CRC-32 of
/// the random part (so a scanner can tell a real Ward token from a look-alike).
pub(crate) fn mint_token() -> CoreResult<String> {
    let random = random_base62(32)?;
    Ok(format!("{TOKEN_PREFIX}{random}{}", checksum(&random)))
}

pub(crate) fn checksum(random: &str) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc32fast::hash(random.as_bytes());
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// The storage name of a token.
pub(crate) fn hash_token(token: &str) -> String {
    ward_crypto::sha256_hex(token.as_bytes())
}

/// Unlimited-use token entries each thread keeps (past this, a thread's cache starts over).
const CACHED_TOKENS_PER_THREAD: usize = 4096;

/// Token storage with a cache of unlimited-use entries.
pub(crate) struct TokenStore {
    cache: ThreadCache<String, TokenEntry>,
}

impl Default for TokenStore {
    fn default() -> Self {
        Self {
            cache: ThreadCache::new(CACHED_TOKENS_PER_THREAD),
        }
    }
}

impl TokenStore {
    pub(crate) fn clear_cache(&self) {
        self.cache.clear();
    }

    /// Drops `hash` from every thread's cache: once this returns, no request is served
    /// from a cached copy, and a read of the entry that began before cannot cache it.
    fn forget(&self, hash: &str) {
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

    /// Stores a new token entry with its accessor and parent links, atomically.
    pub(crate) async fn create(&self, barrier: &Barrier, entry: &TokenEntry) -> CoreResult<()> {
        let mut ops = vec![
            put(
                format!("{ID_PREFIX}{}", entry.hash),
                encode(entry)?,
                Expect::Absent,
            ),
            put(
                format!("{ACCESSOR_PREFIX}{}", entry.accessor),
                entry.hash.clone().into_bytes(),
                Expect::Absent,
            ),
        ];
        if let Some(parent) = &entry.parent {
            ops.push(put(
                format!("{PARENT_PREFIX}{parent}/{}", entry.hash),
                Vec::new(),
                Expect::Any,
            ));
        }
        barrier.commit(ops).await.map_err(|e| match e {
            StoreError::Conflict => CoreError::bad("token id already in use"),
            other => other.into(),
        })
    }

    /// Rewrites an entry (renewal).
    pub(crate) async fn update(&self, barrier: &Barrier, entry: &TokenEntry) -> CoreResult<()> {
        barrier
            .put(&format!("{ID_PREFIX}{}", entry.hash), &encode(entry)?)
            .await?;
        self.forget(&entry.hash);
        Ok(())
    }

    /// Counts one use of a limited-use token; revokes it when that was the last use.
    /// Compare-and-set, so two concurrent requests can never both spend the last use.
    pub(crate) async fn spend_use(&self, barrier: &Barrier, hash: &str) -> CoreResult<bool> {
        let key = format!("{ID_PREFIX}{hash}");
        for _ in 0..16 {
            let Some(current) = barrier.get_entry(&key).await? else {
                return Ok(false);
            };
            let mut entry: TokenEntry = decode(current.value.expose())?;
            if entry.num_uses == 0 {
                return Ok(true);
            }
            entry.num_uses -= 1;
            if entry.num_uses == 0 {
                // Last use: delete the entry under compare-and-set, so that of two racing
                // requests only one gets the last use; then clear what hangs off it.
                let consume = Op {
                    key: key.clone(),
                    expect: Expect::Value(current.stamp()),
                    action: Action::Delete,
                };
                match barrier.commit(vec![consume]).await {
                    Ok(()) => {
                        self.forget(hash);
                        self.remove_links(barrier, hash, &entry).await?;
                        return Ok(true);
                    }
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let op = Op {
                key: key.clone(),
                expect: Expect::Value(current.stamp()),
                action: Action::Put(encode(&entry)?),
            };
            match barrier.commit(vec![op]).await {
                Ok(()) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::bad(
            "token is in use by too many concurrent requests",
        ))
    }

    /// Revokes a token and, recursively, every token it created.
    pub(crate) async fn revoke_tree(&self, barrier: &Barrier, hash: &str) -> CoreResult<()> {
        let mut stack = vec![hash.to_owned()];
        let mut order = Vec::new();
        while let Some(h) = stack.pop() {
            for child in barrier.list(&format!("{PARENT_PREFIX}{h}/")).await? {
                stack.push(child.trim_end_matches('/').to_owned());
            }
            order.push(h);
        }
        // Children first, so a crash half-way never leaves an orphaned live child.
        for h in order.iter().rev() {
            self.revoke_one(barrier, h).await?;
        }
        Ok(())
    }

    /// Revokes one token; its children become orphans.
    pub(crate) async fn revoke_orphan(&self, barrier: &Barrier, hash: &str) -> CoreResult<()> {
        for child in barrier.list(&format!("{PARENT_PREFIX}{hash}/")).await? {
            let child = child.trim_end_matches('/');
            if let Some(e) = self.get(barrier, child).await? {
                let mut e = (*e).clone();
                e.parent = None;
                e.orphan = true;
                self.update(barrier, &e).await?;
            }
            barrier
                .delete(&format!("{PARENT_PREFIX}{hash}/{child}"))
                .await?;
        }
        self.revoke_one(barrier, hash).await
    }

    async fn revoke_one(&self, barrier: &Barrier, hash: &str) -> CoreResult<()> {
        self.forget(hash);
        let Some(entry) = self.get_uncached(barrier, hash).await? else {
            return Ok(());
        };
        barrier.delete(&format!("{ID_PREFIX}{hash}")).await?;
        self.forget(hash);
        self.remove_links(barrier, hash, &entry).await
    }

    /// Deletes a removed token's accessor and parent link, and revokes its children.
    async fn remove_links(
        &self,
        barrier: &Barrier,
        hash: &str,
        entry: &TokenEntry,
    ) -> CoreResult<()> {
        for child in barrier.list(&format!("{PARENT_PREFIX}{hash}/")).await? {
            Box::pin(self.revoke_tree(barrier, child.trim_end_matches('/'))).await?;
        }
        let mut ops = vec![del(format!("{ACCESSOR_PREFIX}{}", entry.accessor))];
        if let Some(parent) = &entry.parent {
            ops.push(del(format!("{PARENT_PREFIX}{parent}/{hash}")));
        }
        barrier.commit(ops).await?;
        Ok(())
    }

    async fn get_uncached(&self, barrier: &Barrier, hash: &str) -> CoreResult<Option<TokenEntry>> {
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

fn put(key: String, value: Vec<u8>, expect: Expect) -> Op {
    Op {
        key,
        expect,
        action: Action::Put(value),
    }
}

fn del(key: String) -> Op {
    Op {
        key,
        expect: Expect::Any,
        action: Action::Delete,
    }
}

fn encode(entry: &TokenEntry) -> CoreResult<Vec<u8>> {
    serde_json::to_vec(entry).map_err(|e| CoreError::Internal(e.to_string()))
}

fn decode(bytes: &[u8]) -> CoreResult<TokenEntry> {
    serde_json::from_slice(bytes).map_err(|_| CoreError::Internal("token entry is corrupt".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_prefix_length_and_valid_checksum() {
        let t = mint_token().unwrap();
        assert!(t.starts_with(TOKEN_PREFIX));
        assert_eq!(t.len(), 42);
        let body = &t[4..];
        assert_eq!(checksum(&body[..32]), &body[32..]);
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
