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
mod policy;
mod pool;
mod schedule;
mod sign;
mod store;
mod wire;

pub(crate) use store::TransitCache;

use crate::mounts::MountEntry;
use crate::params::Params;
use crate::{Core, CoreError, CoreResult, Operation, Request, Response};
use keys::Lifecycle;

/// The first words of the engine's routes below its mount (also the metric labels).
pub(crate) const ROUTE_WORDS: &[&str] = &[
    "keys", "encrypt", "decrypt", "rewrap", "datakey", "sign", "verify", "hmac", "random", "hash",
    "export", "backup", "restore",
];

impl Core {
    /// Whether a write to a transit path updates something that exists: a key's create
    /// (and an encrypt that would create it) needs `create`, everything else `update`.
    pub(crate) async fn transit_exists(&self, mount: &MountEntry, rest: &str) -> CoreResult<bool> {
        let segments: Vec<&str> = rest.split('/').collect();
        match segments.as_slice() {
            ["keys" | "encrypt", name] if keys::validate_name(name).is_ok() => {
                Ok(self.transit_load(mount, name).await?.is_some())
            }
            _ => Ok(true),
        }
    }

    pub(crate) async fn handle_transit(
        &self,
        mount: &MountEntry,
        rest: &str,
        req: Request,
    ) -> CoreResult<Response> {
        use Operation::{Delete, List, Read, Write};
        let p = Params(&req.data);
        let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let op = req.operation;
        match (segments.as_slice(), op) {
            (["keys"], List) => self.transit_list_keys(mount).await,
            (["keys", name], Write) => self.transit_create(mount, name, &p).await,
            (["keys", name], Read) => self.transit_read(mount, name).await,
            (["keys", name], Delete) => self.transit_delete_key(mount, name).await,
            (["keys", name, "config"], Write) => self.transit_config(mount, name, &p).await,
            (["keys", name, "rotate"], Write) => self.transit_rotate(mount, name).await,
            (["keys", name, "trim"], Write) => self.transit_trim(mount, name, &p).await,
            (["keys", name, action], Write) if Lifecycle::parse(action).is_some() => {
                let action = Lifecycle::parse(action).ok_or(CoreError::UnsupportedOperation)?;
                self.transit_lifecycle(mount, name, action, &p).await
            }
            (["encrypt", name], Write) => self.transit_encrypt(mount, name, &p).await,
            (["decrypt", name], Write) => self.transit_decrypt(mount, name, &p).await,
            (["rewrap", name], Write) => self.transit_rewrap(mount, name, &p).await,
            (["datakey", kind, name], Write) => self.transit_datakey(mount, kind, name, &p).await,
            (["sign", name], Write) => self.transit_sign(mount, name, None, &p).await,
            (["sign", name, alg], Write) => self.transit_sign(mount, name, Some(alg), &p).await,
            (["verify", name], Write) => self.transit_verify(mount, name, None, &p).await,
            (["verify", name, alg], Write) => self.transit_verify(mount, name, Some(alg), &p).await,
            (["hmac", name], Write) => self.transit_hmac(mount, name, None, &p).await,
            (["hmac", name, alg], Write) => self.transit_hmac(mount, name, Some(alg), &p).await,
            (["random", more @ ..], Write) if more.len() <= 2 => self.transit_random(more, &p),
            (["hash"], Write) => self.transit_hash(None, &p),
            (["hash", alg], Write) => self.transit_hash(Some(alg), &p),
            (["export", kind, name], Read) => self.transit_export(mount, kind, name, None).await,
            (["export", kind, name, version], Read) => {
                self.transit_export(mount, kind, name, Some(version)).await
            }
            (["backup", name], Read) => self.transit_backup(mount, name).await,
            (["restore"], Write) => self.transit_restore(mount, None, &p).await,
            (["restore", name], Write) => self.transit_restore(mount, Some(name), &p).await,
            ([first, ..], _)
                if ROUTE_WORDS.contains(first)
                    && !segments.iter().any(|s| s.is_empty())
                    && known_shape(&segments) =>
            {
                Err(CoreError::UnsupportedOperation)
            }
            _ => Err(CoreError::NotFound(format!(
                "no handler for route \"{}{rest}\"",
                mount.path
            ))),
        }
    }
}

/// Whether the path is one of the engine's routes (for 405 rather than 404).
fn known_shape(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["keys"]
            | ["keys", _]
            | [
                "keys",
                _,
                "config"
                    | "rotate"
                    | "trim"
                    | "deactivate"
                    | "activate"
                    | "destroy"
                    | "compromised"
            ]
            | ["encrypt" | "decrypt" | "rewrap", _]
            | ["datakey", _, _]
            | ["sign" | "verify" | "hmac", _]
            | ["sign" | "verify" | "hmac", _, _]
            | ["random", ..]
            | ["hash"]
            | ["hash", _]
            | ["export", _, _]
            | ["export", _, _, _]
            | ["backup", _]
            | ["restore"]
            | ["restore", _]
    )
}
