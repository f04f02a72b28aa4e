//! ACL policies behind the barrier (`sys/policy/<name>` holds the policy text), with caches
//! of parsed policies and of the merged ACL for each set of policy names.

use std::sync::Arc;

use ward_policy::{Acl, DEFAULT_POLICY, Policy};
use ward_store::{Barrier, SharedCache};

use crate::{CoreError, CoreResult};

pub(crate) const PREFIX: &str = "sys/policy/";

/// Merged ACLs cached (past this, the cache starts over).
const CACHED_ACLS: usize = 1024;

/// Policy storage and ACL cache.
pub(crate) struct PolicyStore {
    /// The merged ACL of each sorted, deduplicated set of policy names.
    acls: SharedCache<Vec<String>, Acl>,
}

impl Default for PolicyStore {
    fn default() -> Self {
        Self {
            acls: SharedCache::new(CACHED_ACLS),
        }
    }
}

impl PolicyStore {
    /// Drops every merged ACL: once this returns, no request is authorised
    /// by a policy as it was before, and an ACL merged from policies read before cannot be
    /// cached.
    pub(crate) fn clear_cache(&self) {
        self.acls.clear();
    }

    /// Writes Vault's default policy if there is none yet.
    pub(crate) async fn install_default(&self, barrier: &Barrier) -> CoreResult<()> {
        let key = format!("{PREFIX}default");
        if barrier.get(&key).await?.is_none() {
            barrier.put(&key, DEFAULT_POLICY.as_bytes()).await?;
        }
        Ok(())
    }

    /// The normalised name, or a 400 explaining what is wrong with it.
    pub(crate) fn name(name: &str) -> CoreResult<String> {
        ward_policy::normalize_policy_name(name).map_err(|e| CoreError::bad(e.to_string()))
    }

    /// The canonical spelling of a request path that names a policy (`sys/policies/acl/NAME`
    /// or `sys/policy/NAME`), when the request spells the name otherwise (upper case,
    /// surrounding spaces): the handlers act on the normalised name, so that is the path to
    /// authorise, or a `deny` on `sys/policies/acl/dev` would not stop `.../DEV`. `None`
    /// when the path is already canonical, names no policy, or names an invalid one (which
    /// the handler refuses).
    pub(crate) fn canonical_request_path(path: &str) -> Option<String> {
        ["sys/policies/acl/", "sys/policy/"]
            .into_iter()
            .find_map(|prefix| {
                let name = path.strip_prefix(prefix)?;
                let canonical = Self::name(name).ok()?;
                (canonical != name).then(|| format!("{prefix}{canonical}"))
            })
    }

    pub(crate) async fn exists(&self, barrier: &Barrier, name: &str) -> CoreResult<bool> {
        let Ok(name) = Self::name(name) else {
            return Ok(false);
        };
        Ok(name == "root" || barrier.get(&format!("{PREFIX}{name}")).await?.is_some())
    }

    /// The policy text, if the policy exists (`root` has empty text, as in Vault).
    pub(crate) async fn read(
        &self,
        barrier: &Barrier,
        name: &str,
    ) -> CoreResult<Option<(String, String)>> {
        let name = Self::name(name)?;
        if name == "root" {
            return Ok(Some((name, String::new())));
        }
        Ok(barrier
            .get(&format!("{PREFIX}{name}"))
            .await?
            .map(|b| (name, String::from_utf8_lossy(b.expose()).into_owned())))
    }

    /// Parses, validates and stores a policy; returns what the author should know (rules
    /// that deny everything for want of response wrapping, rules that grant nothing).
    pub(crate) async fn write(
        &self,
        barrier: &Barrier,
        name: &str,
        text: &str,
    ) -> CoreResult<Vec<String>> {
        let name = Self::name(name)?;
        if ward_policy::is_reserved(&name) {
            return Err(CoreError::bad(format!(
                "cannot update the \"{name}\" policy"
            )));
        }
        let policy = Policy::parse(&name, text)
            .map_err(|e| CoreError::bad(format!("failed to parse policy: {e}")))?;
        barrier
            .put(&format!("{PREFIX}{name}"), text.as_bytes())
            .await?;
        self.clear_cache();
        Ok(policy.warnings().to_vec())
    }

    pub(crate) async fn delete(&self, barrier: &Barrier, name: &str) -> CoreResult<()> {
        let name = Self::name(name)?;
        if ward_policy::is_undeletable(&name) {
            return Err(CoreError::bad(format!("cannot delete \"{name}\" policy")));
        }
        barrier.delete(&format!("{PREFIX}{name}")).await?;
        self.clear_cache();
        Ok(())
    }

    /// Every policy name, `root` included, sorted.
    pub(crate) async fn list(&self, barrier: &Barrier) -> CoreResult<Vec<String>> {
        let mut names: Vec<String> = barrier
            .list(PREFIX)
            .await?
            .into_iter()
            .filter(|n| !n.ends_with('/'))
            .collect();
        names.push("root".into());
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The merged ACL of `names` (missing policies contribute nothing).
    pub(crate) async fn acl(&self, barrier: &Barrier, names: &[String]) -> CoreResult<Arc<Acl>> {
        // A token's names are stored sorted and distinct: look them up without a copy.
        if names.windows(2).all(|pair| pair[0] < pair[1])
            && let Some(acl) = self.acls.get(names)
        {
            return Ok(acl);
        }
        let mut key: Vec<String> = names.to_vec();
        key.sort();
        key.dedup();
        if let Some(acl) = self.acls.get(&key) {
            return Ok(acl);
        }
        let generation = self.acls.generation();
        let mut policies = Vec::new();
        for name in &key {
            if name == "root" {
                continue;
            }
            if let Some(text) = barrier.get(&format!("{PREFIX}{name}")).await? {
                let text = String::from_utf8_lossy(text.expose()).into_owned();
                // A stored policy was validated when written; skip one that no longer parses
                // rather than failing every request of its holders.
                match Policy::parse(name, &text) {
                    Ok(p) => policies.push(p),
                    Err(e) => {
                        tracing::warn!(policy = %name, error = %crate::Report(&e), "stored policy failed to parse")
                    }
                }
            }
        }
        let acl = Arc::new(if key.iter().any(|n| n == "root") {
            Acl::root()
        } else {
            Acl::new(&policies)
        });
        self.acls.insert(key, Arc::clone(&acl), generation);
        Ok(acl)
    }
}
