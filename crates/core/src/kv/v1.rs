//! The KV version 1 engine: a secret is one JSON object at a path below the mount, read,
//! written (replaced whole), deleted and listed there, as Vault's `kv` engine without
//! versioning serves it. `secrets enable kv` mounts it, as in Vault.
//!
//! It keeps its secrets as version 2 does (sealed under per-version data keys), keeping one
//! version only, so that `kv enable-versioning` (a tune of the mount's options to version 2)
//! upgrades a mount in place, its secrets becoming version 1 of each, as Vault upgrades them.

use serde_json::Value;

use super::validate_secret_path;
use crate::engine::{Args, Call, Engine, Route};
use crate::mounts::MountEntry;
use crate::{Core, CoreError, CoreResult, Operation, Response};

/// The KV version 1 engine.
pub(crate) struct KvV1;

/// Its one route: any path below the mount.
#[derive(Clone, Copy)]
pub(crate) enum KvV1Route {
    Secret,
}

impl Engine for KvV1 {
    type Route = KvV1Route;

    const ROUTES: &'static [Route<KvV1Route>] = {
        use Operation::{Delete, List, Read, Write};
        &[Route::new("*path", &[Read, Write, Delete, List], KvV1Route::Secret).checks_existence()]
    };

    async fn exists(
        core: &Core,
        mount: &MountEntry,
        _route: KvV1Route,
        args: Args<'_>,
    ) -> CoreResult<bool> {
        super::secret_exists(core, mount, args.get(0)).await
    }

    async fn handle(core: &Core, call: Call<'_, KvV1Route>) -> CoreResult<Response> {
        let mount = call.mount;
        let path = call.args.get(0);
        match call.operation {
            Operation::List => core.kv_list(mount, path).await,
            Operation::Read => match core
                .kv_current_value(mount, validate_secret_path(path)?)
                .await?
            {
                Some(data) => Ok(Response::data(data)),
                None => Err(CoreError::NotFound(String::new())),
            },
            Operation::Write => {
                // The body is the secret, whole (Vault's words for an empty one).
                if call.data.is_empty() {
                    return Err(CoreError::bad("missing data fields"));
                }
                let data = Value::Object(call.data.clone());
                core.kv_write(mount, validate_secret_path(path)?, None, |_| {
                    Ok(data.clone())
                })
                .await?;
                Ok(Response::empty())
            }
            Operation::Delete => core.kv_delete_all(mount, validate_secret_path(path)?).await,
            Operation::Patch => Err(CoreError::UnsupportedOperation),
        }
    }

    async fn rewrap_data_keys(
        core: &Core,
        mount: &MountEntry,
        keys: &crate::mounts::MountKeySet,
    ) -> CoreResult<u64> {
        core.kv_rewrap(mount, keys).await
    }
}
