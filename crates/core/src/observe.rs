//! What the transport needs for metrics and operations: route templates (bounded metric
//! labels), token counts, and reopening audit files after rotation.

use crate::{Core, CoreResult};

impl Core {
    /// The route template of an API path (below `/v1/`), for metric labels: fixed words are
    /// kept, names chosen by clients become `:name`, so the label set stays small.
    /// `secret/data/app/db` → `secret/data/:path`; `sys/policies/acl/dev` →
    /// `sys/policies/acl/:name`; `auth/token/lookup-self` stays as it is.
    pub fn route_template(&self, path: &str) -> String {
        let path = path.trim_matches('/');
        if !path.starts_with("sys/") && !path.starts_with("auth/") {
            return self.mount_route(path);
        }
        let segments: Vec<&str> = path.split('/').collect();
        let keep = |n: usize, tail: &str| {
            let mut out = segments[..n.min(segments.len())].join("/");
            if segments.len() > n {
                out.push('/');
                out.push_str(tail);
            }
            out
        };
        match segments.as_slice() {
            ["sys", "policies", ..] => keep(3, ":name"),
            ["sys", "policy", ..] => keep(2, ":name"),
            ["sys", "internal", ..] => keep(4, ":path"),
            ["sys", ..] => keep(2, ":path"),
            ["auth", "token", ..] => keep(3, ":path"),
            ["auth", ..] => keep(2, ":path"),
            _ => self.mount_route(path),
        }
    }

    /// The route template of a path below a mount: the mount, the engine's first segment,
    /// and `:path` for the rest (`secret/data/:path`, `transit/encrypt/:path`).
    fn mount_route(&self, path: &str) -> String {
        self.mounts
            .find_with(path, |mount| {
                let rest = path.get(mount.path.len()..).unwrap_or("");
                let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
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
