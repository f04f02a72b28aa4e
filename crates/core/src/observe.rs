//! What the transport needs for metrics and operations: route templates (bounded metric
//! labels), token counts, and reopening audit files after rotation.

use crate::{Core, CoreResult};

/// The routes below `sys/` and `auth/` whose words are fixed, each with the placeholder
/// for what a client may add after them. Nothing a client chooses becomes a label: a path
/// that matches none of these is `sys/:unknown` or `auth/:unknown`, so that requests (even
/// unauthenticated ones, which are counted too) cannot grow the set of metric series.
const SYSTEM_ROUTES: &[(&str, &str)] = &[
    ("sys/audit", ":path"),
    ("sys/audit-hash", ":path"),
    ("sys/capabilities", ""),
    ("sys/capabilities-self", ""),
    ("sys/health", ""),
    ("sys/init", ""),
    ("sys/internal/ui/mounts", ":path"),
    ("sys/key-status", ""),
    ("sys/leader", ""),
    ("sys/metrics", ""),
    ("sys/mounts", ":path"),
    ("sys/policies/acl", ":name"),
    ("sys/policy", ":name"),
    ("sys/rotate", ""),
    ("sys/rotate/mount", ":path"),
    ("sys/rotation/status", ""),
    ("sys/seal", ""),
    ("sys/seal-status", ""),
    ("sys/unseal", ""),
    ("auth/token/accessors", ""),
    ("auth/token/create", ""),
    ("auth/token/create-orphan", ""),
    ("auth/token/lookup", ""),
    ("auth/token/lookup-accessor", ""),
    ("auth/token/lookup-self", ""),
    ("auth/token/renew", ""),
    ("auth/token/renew-self", ""),
    ("auth/token/revoke", ""),
    ("auth/token/revoke-accessor", ""),
    ("auth/token/revoke-orphan", ""),
    ("auth/token/revoke-self", ""),
];

impl Core {
    /// The route template of an API path (below `/v1/`), for metric labels: the fixed words
    /// of Ward's routes are kept, and everything else becomes a placeholder, so the label set
    /// is bounded by the routes and the mounts the operators created, never by clients.
    /// `secret/data/app/db` → `secret/data/:path`; `sys/policies/acl/dev` →
    /// `sys/policies/acl/:name`; `auth/token/lookup-self` stays as it is;
    /// `secret/anything-else` → `secret/:unknown`.
    pub fn route_template(&self, path: &str) -> String {
        let path = path.trim_matches('/');
        let system = ["sys", "auth"]
            .into_iter()
            .find(|root| path.strip_prefix(root).is_some_and(|r| r.starts_with('/')));
        let Some(root) = system else {
            return self.mount_route(path);
        };
        let fixed = SYSTEM_ROUTES
            .iter()
            .filter(|(route, _)| {
                path.strip_prefix(route)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|(route, _)| route.len());
        match fixed {
            Some((route, placeholder)) if path.len() > route.len() && !placeholder.is_empty() => {
                format!("{route}/{placeholder}")
            }
            Some((route, "")) if path.len() > route.len() => format!("{route}/:unknown"),
            Some((route, _)) => (*route).to_owned(),
            None => format!("{root}/:unknown"),
        }
    }

    /// The route template of a path below a mount: the mount, the engine's first word, and
    /// `:path` for the rest (`secret/data/:path`, `transit/encrypt/:path`). A first word the
    /// engine does not know becomes `:unknown`.
    fn mount_route(&self, path: &str) -> String {
        self.mounts
            .find_with(path, |mount| {
                let rest = mount.relative(path);
                let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
                let words = match mount.mount_type.as_str() {
                    "transit" => crate::transit::ROUTE_WORDS,
                    _ => crate::kv::ROUTE_WORDS,
                };
                let first = if first.is_empty() || words.contains(&first) {
                    first
                } else {
                    ":unknown"
                };
                let mut out = String::with_capacity(mount.path.len() + first.len() + 6);
                out.push_str(&mount.path);
                out.push_str(first);
                if !tail.is_empty() {
                    out.push_str("/:path");
                }
                out
            })
            .unwrap_or_else(|| "unmatched".into())
    }

    /// How many tokens exist (0 while sealed).
    pub async fn token_count(&self) -> CoreResult<usize> {
        if self.is_sealed() {
            return Ok(0);
        }
        Ok(self.tokens.accessors(&self.barrier).await?.len())
    }

    /// Asks every audit device to close and reopen its destination: after `logrotate` moved
    /// a file away, the next line goes to a new file, chained to the last line of the old one.
    pub fn reopen_audit_devices(&self) {
        self.audit.reopen();
    }
}
