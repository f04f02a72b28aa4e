//! The `sys/` routes that answer without a token, sealed too: health, seal-status, init,
//! unseal, leader. They answer with bare objects ([`Bare`]), not the envelope, as Vault does.

use base64::Engine as _;
use serde_json::Value;
use ward_api::{HealthResponse, InitResponse, InitStatus};

use super::SysRoute;
use crate::params::Params;
use crate::{Bare, Core, CoreError, CoreResult, Operation, Response};

impl Core {
    /// Answers one of the routes [marked unauthenticated](crate::engine::Route::unauthenticated).
    pub(crate) async fn sys_open(
        &self,
        route: SysRoute,
        op: Operation,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let bare = match (route, op) {
            (SysRoute::Health, _) => Bare::Health(self.health().await?),
            (SysRoute::SealStatus, _) => Bare::SealStatus(self.seal_status().await?),
            (SysRoute::Init, Operation::Write) => Bare::Init(self.init_reply(p).await?),
            (SysRoute::Init, _) => Bare::InitStatus(InitStatus {
                initialized: self.is_initialized().await?,
            }),
            (SysRoute::Unseal, _) => {
                let reset = matches!(p.0.get("reset"), Some(Value::Bool(true)))
                    || matches!(p.0.get("reset"), Some(Value::String(s)) if s == "true");
                if reset {
                    self.unseal_reset().await;
                } else {
                    let migrate = matches!(p.0.get("migrate"), Some(Value::Bool(true)))
                        || matches!(p.0.get("migrate"), Some(Value::String(s)) if s == "true");
                    match p.0.get("key") {
                        Some(Value::String(k)) if !k.is_empty() => {
                            self.unseal_with(k, migrate).await?;
                        }
                        _ => {
                            return Err(CoreError::bad(
                                "'key' must be specified in request body as JSON, or 'reset' \
                                 set to true",
                            ));
                        }
                    };
                }
                Bare::SealStatus(self.seal_status().await?)
            }
            (SysRoute::Leader, _) => Bare::Leader(self.leader_status().await?),
            _ => return Err(CoreError::UnsupportedOperation),
        };
        Ok(Response::bare(bare))
    }

    async fn health(&self) -> CoreResult<HealthResponse> {
        let initialized = self.is_initialized().await?;
        let sealed = self.is_sealed();
        Ok(HealthResponse {
            initialized,
            sealed,
            standby: !sealed && !self.is_active(),
            performance_standby: false,
            replication_performance_mode: "disabled".into(),
            replication_dr_mode: "disabled".into(),
            server_time_utc: crate::core::now(),
            version: crate::VERSION.into(),
            cluster_name: (!sealed).then(|| self.config.cluster_name.clone()),
            cluster_id: self.cluster_id(),
        })
    }

    async fn init_reply(&self, p: &Params<'_>) -> CoreResult<InitResponse> {
        let shares = small_int(p, "secret_shares")?.unwrap_or(5);
        let threshold = small_int(p, "secret_threshold")?.unwrap_or(3);
        // Vault's clients send 0 for "not given".
        let recovery_shares = small_int(p, "recovery_shares").map(|n| n.filter(|&n| n > 0))?;
        let recovery_threshold =
            small_int(p, "recovery_threshold").map(|n| n.filter(|&n| n > 0))?;
        if p.0.get("pgp_keys").is_some_and(|v| !v.is_null())
            || p.0.get("recovery_pgp_keys").is_some_and(|v| !v.is_null())
            || p.0
                .get("stored_shares")
                .is_some_and(|v| !v.is_null() && v != 0 && v != 1)
        {
            return Err(CoreError::bad(
                "pgp_keys, recovery_pgp_keys and stored_shares are not supported",
            ));
        }
        let encode = |keys: &[ward_crypto::SecretBytes]| -> (Vec<String>, Vec<String>) {
            (
                keys.iter().map(|k| hex::encode(k.expose())).collect(),
                keys.iter()
                    .map(|k| base64::engine::general_purpose::STANDARD.encode(k.expose()))
                    .collect(),
            )
        };
        if self.enabled_auto_seal().is_some() {
            // With an automatic seal the secret_* counts have no use (Vault ignores them too):
            // the seal holds the root key, and the shares handed out are recovery shares.
            let out = self
                .init_auto(
                    recovery_shares.unwrap_or(5),
                    recovery_threshold.unwrap_or(3),
                )
                .await?;
            let (recovery_keys, recovery_keys_base64) = encode(&out.recovery_keys);
            return Ok(InitResponse {
                recovery_keys,
                recovery_keys_base64,
                root_token: out.root_token.expose().to_owned(),
                ..InitResponse::default()
            });
        }
        if recovery_shares.is_some() || recovery_threshold.is_some() {
            return Err(CoreError::bad(
                "parameters recovery_shares,recovery_threshold not applicable to seal type shamir",
            ));
        }
        let out = self.init(shares, threshold).await?;
        let (keys, keys_base64) = encode(&out.keys);
        Ok(InitResponse {
            keys,
            keys_base64,
            root_token: out.root_token.expose().to_owned(),
            ..InitResponse::default()
        })
    }
}

/// A share count: an integer from 1 to 255, as a number or a string.
fn small_int(p: &Params<'_>, name: &str) -> CoreResult<Option<u8>> {
    match p.0.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|n| u8::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                CoreError::bad(format!(
                    "invalid value for '{name}': expected an integer from 1 to 255"
                ))
            }),
    }
}
