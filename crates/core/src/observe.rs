//! What the transport needs for metrics and operations: route templates (bounded metric
//! labels), token counts, and reopening audit files after rotation.

use crate::engine::{self, with_engine};
use crate::{Core, CoreResult};

impl Core {
    /// The route template of an API path (below `/v1/`), for metric labels: the pattern of
    /// the route it matches in its engine's table, so the label set is bounded by the routes
    /// and the mounts the operators created, never by clients (see [`engine::template`]).
    /// `secret/data/app/db` → `secret/data/:path`; `sys/policies/acl/dev` →
    /// `sys/policies/acl/:name`; `auth/token/lookup-self` stays as it is;
    /// `secret/anything-else` → `secret/:unknown`; a path under no mount → `unmatched`
    /// (`auth/:unknown` below `auth/`).
    pub fn route_template(&self, path: &str) -> String {
        let path = path.trim_matches('/');
        match self.target(path) {
            Some(target) => {
                let rest = target.mount.relative(path);
                with_engine!(target.kind, E => engine::template::<E>(&target.mount.path, rest))
            }
            None if path == "auth" || path.starts_with("auth/") => "auth/:unknown".into(),
            None => "unmatched".into(),
        }
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
