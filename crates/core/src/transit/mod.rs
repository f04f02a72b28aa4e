//! The transit engine: Ward's KMS. Named, versioned keys that never leave the server;
//! clients ask for encrypt, decrypt, sign, verify, HMAC and data keys. Paths, parameters
//! and replies follow Vault's transit engine (checked against OpenBao 2.7.2).
//!
//! Ward's additions:
//! - key metadata `owner`, `purpose`, `security_level`, `expires_at` (RFC 3339; past it the
//!   key only decrypts and verifies) and `labels` (string map), on create and `config`,
//!   shown on read;
//! - a state per version (`version_states` on read): `keys/:name/deactivate` (decrypt-only),
//!   `keys/:name/activate`, `keys/:name/destroy` (material erased) and
//!   `keys/:name/compromised` (no more encrypting or signing, decrypting and verifying only
//!   while the key's `allow_compromised_decrypt` is set; the key rotates at once), each with
//!   `versions`.
//!
//! Known differences: HMAC keys default to 32 bytes when `key_size` is absent (OpenBao
//! fails with 500); HMAC with SHA-3 and RSA with SHA-224 or SHA-3 are refused (aws-lc-rs
//! has no such HMAC/RSA algorithms); PSS `salt_length` takes `auto` and `hash` only;
//! backups are Ward's own format (restorable into Ward, not into Vault); no key import,
//! BYOK, managed keys, CMAC or certificate chains.

mod crypt;
mod keys;
mod misc;
pub(crate) mod policy;
mod pool;
mod schedule;
mod sign;
mod store;
mod wire;

pub(crate) use store::TransitCache;

use crate::engine::{Args, Call, Engine, Route};
use crate::mounts::MountEntry;
use crate::params::Params;
use crate::{Core, CoreResult, Operation, Response};
use keys::Lifecycle;

/// The transit engine.
pub(crate) struct Transit;

/// The routes of the transit engine. A capture that a route's shorter form leaves out is
/// `""` ([`Args::get`]), so one variant serves both forms.
#[derive(Clone, Copy)]
pub(crate) enum TransitRoute {
    Keys,
    Key,
    KeyConfig,
    KeyRotate,
    KeyTrim,
    KeyLifecycle(Lifecycle),
    Encrypt,
    Decrypt,
    Rewrap,
    Datakey,
    /// Sign, verify and HMAC, with the hash algorithm in the path or not.
    Sign,
    Verify,
    Hmac,
    /// Random bytes; the path may carry the count and the source.
    Random,
    Hash,
    Export,
    Backup,
    Restore,
}

impl Engine for Transit {
    type Route = TransitRoute;

    const ROUTES: &'static [Route<TransitRoute>] = {
        use Lifecycle::{Activate, Compromised, Deactivate, Destroy};
        use Operation::{Delete, List, Read, Write};
        use TransitRoute as T;
        &[
            Route::new("keys", &[List], T::Keys),
            Route::new("keys/:name", &[Read, Write, Delete], T::Key).checks_existence(),
            Route::new("keys/:name/config", &[Write], T::KeyConfig),
            Route::new("keys/:name/rotate", &[Write], T::KeyRotate),
            Route::new("keys/:name/trim", &[Write], T::KeyTrim),
            Route::new(
                "keys/:name/deactivate",
                &[Write],
                T::KeyLifecycle(Deactivate),
            ),
            Route::new("keys/:name/activate", &[Write], T::KeyLifecycle(Activate)),
            Route::new("keys/:name/destroy", &[Write], T::KeyLifecycle(Destroy)),
            Route::new(
                "keys/:name/compromised",
                &[Write],
                T::KeyLifecycle(Compromised),
            ),
            Route::new("encrypt/:name", &[Write], T::Encrypt).checks_existence(),
            Route::new("decrypt/:name", &[Write], T::Decrypt),
            Route::new("rewrap/:name", &[Write], T::Rewrap),
            Route::new("datakey/:kind/:name", &[Write], T::Datakey),
            Route::new("sign/:name", &[Write], T::Sign),
            Route::new("sign/:name/:algorithm", &[Write], T::Sign),
            Route::new("verify/:name", &[Write], T::Verify),
            Route::new("verify/:name/:algorithm", &[Write], T::Verify),
            Route::new("hmac/:name", &[Write], T::Hmac),
            Route::new("hmac/:name/:algorithm", &[Write], T::Hmac),
            Route::new("random", &[Write], T::Random),
            Route::new("random/:bytes", &[Write], T::Random),
            Route::new("random/:bytes/:source", &[Write], T::Random),
            Route::new("hash", &[Write], T::Hash),
            Route::new("hash/:algorithm", &[Write], T::Hash),
            Route::new("export/:kind/:name", &[Read], T::Export),
            Route::new("export/:kind/:name/:version", &[Read], T::Export),
            Route::new("backup/:name", &[Read], T::Backup),
            Route::new("restore", &[Write], T::Restore),
            Route::new("restore/:name", &[Write], T::Restore),
        ]
    };

    /// A key's create (and an encrypt that would create it) needs `create`, everything
    /// else `update`.
    async fn exists(
        core: &Core,
        mount: &MountEntry,
        _route: TransitRoute,
        args: Args<'_>,
    ) -> CoreResult<bool> {
        let name = args.get(0);
        if keys::validate_name(name).is_err() {
            return Ok(true);
        }
        Ok(core.transit_load(mount, name).await?.is_some())
    }

    async fn handle(core: &Core, call: Call<'_, TransitRoute>) -> CoreResult<Response> {
        use Operation::{Delete, Read};
        use TransitRoute as T;
        let p = Params(call.data);
        let mount = call.mount;
        let (first, second, third) = (call.args.get(0), call.args.get(1), call.args.get(2));
        match call.route {
            T::Keys => core.transit_list_keys(mount).await,
            T::Key => match call.operation {
                Read => core.transit_read(mount, first).await,
                Delete => core.transit_delete_key(mount, first).await,
                _ => core.transit_create(mount, first, &p).await,
            },
            T::KeyConfig => core.transit_config(mount, first, &p).await,
            T::KeyRotate => core.transit_rotate(mount, first).await,
            T::KeyTrim => core.transit_trim(mount, first, &p).await,
            T::KeyLifecycle(action) => core.transit_lifecycle(mount, first, action, &p).await,
            T::Encrypt => core.transit_encrypt(mount, first, &p).await,
            T::Decrypt => core.transit_decrypt(mount, first, &p).await,
            T::Rewrap => core.transit_rewrap(mount, first, &p).await,
            T::Datakey => core.transit_datakey(mount, first, second, &p).await,
            T::Sign => {
                core.transit_keyed(mount, first, given(second), &p, sign::sign_reply)
                    .await
            }
            T::Verify => {
                core.transit_keyed(mount, first, given(second), &p, sign::verify_reply)
                    .await
            }
            T::Hmac => {
                core.transit_keyed(mount, first, given(second), &p, sign::hmac_reply)
                    .await
            }
            T::Random => core.transit_random(&[first, second], &p),
            T::Hash => core.transit_hash(given(first), &p),
            T::Export => {
                core.transit_export(mount, first, second, given(third))
                    .await
            }
            T::Backup => core.transit_backup(mount, first).await,
            T::Restore => core.transit_restore(mount, given(first), &p).await,
        }
    }

    async fn rewrap_data_keys(
        core: &Core,
        mount: &MountEntry,
        keys: &crate::mounts::MountKeySet,
    ) -> CoreResult<u64> {
        core.transit_rewrap_data_keys(mount, keys).await
    }
}

/// A capture the route's shorter form leaves out (`""`) as `None`.
fn given(capture: &str) -> Option<&str> {
    Some(capture).filter(|c| !c.is_empty())
}
