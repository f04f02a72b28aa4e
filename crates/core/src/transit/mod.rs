//! The transit engine: Ward's KMS. Named, versioned keys that never leave the server;
//! clients ask for encrypt, decrypt, sign, verify, HMAC and data keys.

use crate::mounts::MountEntry;
use crate::{Core, CoreError, CoreResult, Request, Response};

impl Core {
    /// Whether a write to a transit path updates something that exists.
    pub(crate) async fn transit_exists(
        &self,
        _mount: &MountEntry,
        _rest: &str,
    ) -> CoreResult<bool> {
        Ok(true)
    }

    pub(crate) async fn handle_transit(
        &self,
        mount: &MountEntry,
        rest: &str,
        _req: Request,
    ) -> CoreResult<Response> {
        Err(CoreError::NotFound(format!(
            "no handler for route \"{}{rest}\"",
            mount.path
        )))
    }
}
