//! What a quorum of unseal-key holders authorises on a running server, as Vault has it:
//! `sys/rekey/*` (new shares for the same root key) and `sys/generate-root/*` (a new root
//! token, when the old one is lost). Shares are collected as unseal collects them, under the
//! same lock ([`Core::progress`]), so neither interleaves with unseal, seal, keyring rotation
//! or the other. Both are served without a token, as Vault serves them: the shares are the
//! authority. OpenBao's `sys/rotate/root/*` and `sys/generate-root-token/*`, which
//! `bao operator rotate-keys` and `bao operator generate-root` call, are the same operations
//! behind a token with `sudo`, answered in the envelope.

use serde_json::Value;
use ward_api::{GenerateRootStatus, RekeyResult, RekeyStatus, token_format};
use ward_crypto::{SecretBytes, constant_time_eq, random_chars};
use zeroize::Zeroizing;

use super::SysRoute;
use crate::params::Params;
use crate::seal::{SealConfig, decode_share, load_config};
use crate::{Bare, Core, CoreError, CoreResult, Operation, Response};

/// Shares given to one operation, and the nonce each must come with.
struct Attempt {
    nonce: String,
    shares: Vec<SecretBytes>,
}

impl Attempt {
    fn new() -> Self {
        Self {
            nonce: uuid::Uuid::new_v4().to_string(),
            shares: Vec::new(),
        }
    }

    /// Adds `share` given with `nonce`; returns how many are held. `what` names the
    /// operation in the error for a wrong nonce.
    fn give(&mut self, nonce: &str, share: SecretBytes, what: &str) -> CoreResult<usize> {
        if !constant_time_eq(nonce.as_bytes(), self.nonce.as_bytes()) {
            return Err(CoreError::bad(format!(
                "incorrect nonce supplied; nonce for this {what} operation is \"{}\"",
                self.nonce
            )));
        }
        // `SecretBytes` compares in constant time.
        if self.shares.contains(&share) {
            return Err(CoreError::bad(
                "given key has already been provided during this generation operation",
            ));
        }
        self.shares.push(share);
        Ok(self.shares.len())
    }

    fn progress(&self) -> u32 {
        u32::try_from(self.shares.len()).unwrap_or(u32::MAX)
    }
}

/// A rekey under way: the new split asked for.
struct Rekey {
    attempt: Attempt,
    /// Of the recovery key (an automatic seal's), not of the unseal key.
    recovery: bool,
    shares: u8,
    threshold: u8,
}

/// A root token generation under way, with the OTP the new token will be XORed with.
struct RootGeneration {
    attempt: Attempt,
    otp: Zeroizing<String>,
}

/// The rekey and root generation under way, if any (kept in [`crate::seal::Progress`]).
#[derive(Default)]
pub(crate) struct Attempts {
    rekey: Option<Rekey>,
    root: Option<RootGeneration>,
}

/// The length of a root token, which an OTP must have.
const OTP_LENGTH: usize = token_format::LEN;

impl Core {
    /// Answers `sys/rekey/*`, `sys/rekey-recovery-key/*` and `sys/generate-root*/`.
    pub(crate) async fn sys_quorum(
        &self,
        route: SysRoute,
        op: Operation,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let recovery = matches!(
            route,
            SysRoute::RekeyInit { recovery: true, .. }
                | SysRoute::RekeyUpdate { recovery: true, .. }
        );
        if self.is_sealed() {
            return Err(CoreError::Sealed);
        }
        let config = load_config(self.barrier.raw_storage().as_ref())
            .await?
            .ok_or(CoreError::NotInitialized)?;
        if recovery && !config.is_recovery() {
            return Err(CoreError::bad(
                "recovery rekeying not supported: recovery keys exist only with an auto-unseal \
                 seal, and this server's seal is shamir",
            ));
        }
        if !recovery
            && config.is_recovery()
            && matches!(
                route,
                SysRoute::RekeyInit { .. } | SysRoute::RekeyUpdate { .. }
            )
            && op != Operation::Read
        {
            return Err(CoreError::bad(format!(
                "this server's seal is {}: it has no unseal keys to rekey; rekey the recovery \
                 key instead (sys/rekey-recovery-key)",
                config.seal_type
            )));
        }
        let bare = match (route, op) {
            (SysRoute::RekeyInit { .. }, Operation::Read) => {
                Bare::Rekey(self.rekey_status(&config, recovery).await)
            }
            (SysRoute::RekeyInit { .. }, Operation::Write) => {
                Bare::Rekey(self.rekey_start(&config, p, recovery).await?)
            }
            (SysRoute::RekeyInit { .. }, Operation::Delete) => {
                let mut progress = self.progress.lock().await;
                if progress
                    .quorum
                    .rekey
                    .as_ref()
                    .is_some_and(|r| r.recovery == recovery)
                {
                    progress.quorum.rekey = None;
                }
                return Ok(Response::empty());
            }
            (SysRoute::GenerateRoot { .. }, Operation::Delete) => {
                self.progress.lock().await.quorum.root = None;
                return Ok(Response::empty());
            }
            (SysRoute::RekeyUpdate { .. }, _) => self.rekey_update(&config, p, recovery).await?,
            (SysRoute::GenerateRoot { .. }, Operation::Read) => {
                Bare::GenerateRoot(self.root_status(&config).await)
            }
            (SysRoute::GenerateRoot { .. }, Operation::Write) => {
                Bare::GenerateRoot(self.root_start(&config, p).await?)
            }
            (SysRoute::GenerateRootUpdate { .. }, _) => {
                Bare::GenerateRoot(self.root_update(&config, p).await?)
            }
            _ => return Err(CoreError::UnsupportedOperation),
        };
        let envelope = matches!(
            route,
            SysRoute::RekeyInit { envelope: true, .. }
                | SysRoute::RekeyUpdate { envelope: true, .. }
                | SysRoute::GenerateRoot { envelope: true }
                | SysRoute::GenerateRootUpdate { envelope: true }
        );
        if !envelope {
            return Ok(Response::bare(bare));
        }
        // OpenBao's authenticated routes answer with the same fields in the envelope.
        let data = match &bare {
            Bare::Rekey(status) => serde_json::to_value(status),
            Bare::Rekeyed(result) => serde_json::to_value(result),
            Bare::GenerateRoot(status) => serde_json::to_value(status),
            _ => return Err(CoreError::UnsupportedOperation),
        };
        Ok(Response::data(data.map_err(CoreError::Encode)?))
    }

    async fn rekey_status(&self, config: &SealConfig, recovery: bool) -> RekeyStatus {
        let progress = self.progress.lock().await;
        let rekey = progress.quorum.rekey.as_ref();
        rekey_status(config, rekey.filter(|r| r.recovery == recovery))
    }

    async fn rekey_start(
        &self,
        config: &SealConfig,
        p: &Params<'_>,
        recovery: bool,
    ) -> CoreResult<RekeyStatus> {
        let unsupported = |name: &str| {
            CoreError::bad(format!(
                "{name} is not supported: Ward returns the new shares in clear, to the caller only"
            ))
        };
        if p.0
            .get("pgp_keys")
            .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Err(unsupported("pgp_keys"));
        }
        if p.bool("backup")?.unwrap_or(false) {
            return Err(unsupported("backup"));
        }
        if p.bool("require_verification")?.unwrap_or(false) {
            return Err(unsupported("require_verification"));
        }
        let shares = p.u64("secret_shares")?.unwrap_or(0);
        let threshold = p.u64("secret_threshold")?.unwrap_or(0);
        let (shares, threshold) = new_split(shares, threshold)
            .map_err(|why| CoreError::bad(format!("invalid rekey seal configuration: {why}")))?;
        let mut progress = self.progress.lock().await;
        if progress.quorum.rekey.is_some() {
            return Err(CoreError::bad("rekey already in progress"));
        }
        let rekey = Rekey {
            attempt: Attempt::new(),
            recovery,
            shares,
            threshold,
        };
        tracing::info!(
            nonce = rekey.attempt.nonce,
            shares,
            threshold,
            recovery,
            "rekey started"
        );
        let status = rekey_status(config, Some(&rekey));
        progress.quorum.rekey = Some(rekey);
        Ok(status)
    }

    async fn rekey_update(
        &self,
        config: &SealConfig,
        p: &Params<'_>,
        recovery: bool,
    ) -> CoreResult<Bare> {
        let (share, nonce) = given_share(config, p)?;
        let mut progress = self.progress.lock().await;
        let missing = || {
            CoreError::bad(if recovery {
                "no recovery rekey in progress"
            } else {
                "no barrier rekey in progress"
            })
        };
        let rekey = progress
            .quorum
            .rekey
            .as_mut()
            .filter(|r| r.recovery == recovery)
            .ok_or_else(missing)?;
        if rekey.attempt.give(nonce, share, "rekey")? < usize::from(config.secret_threshold) {
            return Ok(Bare::Rekey(rekey_status(config, Some(rekey))));
        }
        // The attempt ends here, done or failed: its shares are wiped as it drops.
        let Some(rekey) = progress.quorum.rekey.take() else {
            return Err(missing());
        };
        let storage = self.barrier.raw_storage().as_ref();
        let (shares, threshold) = (rekey.shares, rekey.threshold);
        let new_shares = if recovery {
            crate::seal::rekey_recovery(storage, &rekey.attempt.shares, shares, threshold).await?
        } else {
            crate::seal::rekey(storage, &rekey.attempt.shares, shares, threshold).await?
        };
        tracing::info!(
            nonce = rekey.attempt.nonce,
            shares,
            threshold,
            recovery,
            "rekey complete: the old shares no longer work"
        );
        Ok(Bare::Rekeyed(RekeyResult {
            nonce: rekey.attempt.nonce.clone(),
            complete: true,
            keys: new_shares.iter().map(|k| hex::encode(k.expose())).collect(),
            keys_base64: new_shares
                .iter()
                .map(|k| base64_encode(k.expose()))
                .collect(),
            ..RekeyResult::default()
        }))
    }

    async fn root_status(&self, config: &SealConfig) -> GenerateRootStatus {
        let progress = self.progress.lock().await;
        root_status(config, progress.quorum.root.as_ref())
    }

    async fn root_start(
        &self,
        config: &SealConfig,
        p: &Params<'_>,
    ) -> CoreResult<GenerateRootStatus> {
        if p.0
            .get("pgp_key")
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
        {
            return Err(CoreError::bad(
                "pgp_key is not supported: start without one, and Ward returns a one-time \
                 password (otp) to decode the new token with",
            ));
        }
        let given = match p.0.get("otp") {
            Some(Value::String(otp)) if !otp.is_empty() => Some(otp.as_str()),
            None | Some(Value::Null | Value::String(_)) => None,
            Some(_) => return Err(CoreError::bad("'otp' must be a string")),
        };
        if given.is_some_and(|otp| otp.len() != OTP_LENGTH) {
            return Err(CoreError::bad("OTP string has incorrect length"));
        }
        let mut progress = self.progress.lock().await;
        if progress.quorum.root.is_some() {
            return Err(CoreError::bad("root generation already in progress"));
        }
        let otp = match given {
            Some(otp) => Zeroizing::new(otp.to_owned()),
            None => Zeroizing::new(random_chars(token_format::BASE62, OTP_LENGTH)?),
        };
        let root = RootGeneration {
            attempt: Attempt::new(),
            otp,
        };
        tracing::info!(nonce = root.attempt.nonce, "root token generation started");
        let mut status = root_status(config, Some(&root));
        // The OTP is shown once, and only when Ward made it.
        if given.is_none() {
            status.otp = root.otp.to_string();
        }
        progress.quorum.root = Some(root);
        Ok(status)
    }

    async fn root_update(
        &self,
        config: &SealConfig,
        p: &Params<'_>,
    ) -> CoreResult<GenerateRootStatus> {
        let (share, nonce) = given_share(config, p)?;
        let mut progress = self.progress.lock().await;
        let root = progress
            .quorum
            .root
            .as_mut()
            .ok_or_else(|| CoreError::bad("no root generation in progress"))?;
        if root.attempt.give(nonce, share, "root generation")?
            < usize::from(config.secret_threshold)
        {
            let mut status = root_status(config, Some(root));
            status.otp_length = 0;
            return Ok(status);
        }
        let Some(root) = progress.quorum.root.take() else {
            return Err(CoreError::bad("no root generation in progress"));
        };
        crate::seal::check_quorum(
            self.barrier.raw_storage().as_ref(),
            config,
            &root.attempt.shares,
        )
        .await?;
        let token = crate::Token::new(self.create_root_token(None).await?);
        let encoded = ward_api::encode_root_token(token.expose(), &root.otp)
            .ok_or_else(|| CoreError::bad("OTP string has incorrect length"))?;
        tracing::info!(
            nonce = root.attempt.nonce,
            "root token generated by a quorum"
        );
        Ok(GenerateRootStatus {
            nonce: root.attempt.nonce.clone(),
            started: true,
            progress: root.attempt.progress(),
            required: config.secret_threshold.into(),
            complete: true,
            encoded_root_token: encoded.clone(),
            encoded_token: encoded,
            ..GenerateRootStatus::default()
        })
    }
}

fn rekey_status(config: &SealConfig, rekey: Option<&Rekey>) -> RekeyStatus {
    RekeyStatus {
        nonce: rekey.map(|r| r.attempt.nonce.clone()).unwrap_or_default(),
        started: rekey.is_some(),
        t: rekey.map_or(0, |r| r.threshold.into()),
        n: rekey.map_or(0, |r| r.shares.into()),
        progress: rekey.map_or(0, |r| r.attempt.progress()),
        required: config.secret_threshold.into(),
        ..RekeyStatus::default()
    }
}

fn root_status(config: &SealConfig, root: Option<&RootGeneration>) -> GenerateRootStatus {
    GenerateRootStatus {
        nonce: root.map(|r| r.attempt.nonce.clone()).unwrap_or_default(),
        started: root.is_some(),
        progress: root.map_or(0, |r| r.attempt.progress()),
        required: config.secret_threshold.into(),
        otp_length: u32::try_from(OTP_LENGTH).unwrap_or(u32::MAX),
        ..GenerateRootStatus::default()
    }
}

/// The share and nonce of an update: the share decoded, and one this seal issued (a share
/// it never issued is refused before it counts, as unseal refuses it).
fn given_share<'p>(config: &SealConfig, p: &'p Params<'_>) -> CoreResult<(SecretBytes, &'p str)> {
    let key = match p.0.get("key") {
        Some(Value::String(key)) if !key.is_empty() => key,
        _ => {
            return Err(CoreError::bad(
                "'key' must be specified in request body as JSON",
            ));
        }
    };
    let share = decode_share(key)?;
    if !config.recognises(share.expose())? {
        return Err(CoreError::bad(
            "invalid unseal key: it does not belong to this server's seal",
        ));
    }
    let nonce = p.0.get("nonce").and_then(Value::as_str).unwrap_or_default();
    Ok((share, nonce))
}

/// The new split asked for, checked by Vault's rules (with Vault's words for what is wrong).
fn new_split(shares: u64, threshold: u64) -> Result<(u8, u8), &'static str> {
    if shares < 1 {
        return Err("shares must be at least one");
    }
    if threshold < 1 {
        return Err("threshold must be at least one");
    }
    if shares > 1 && threshold == 1 {
        return Err("threshold must be greater than one for multiple shares");
    }
    if threshold > shares {
        return Err("threshold cannot be larger than shares");
    }
    let shares = u8::try_from(shares).map_err(|_| "shares must be less than 256")?;
    let threshold = u8::try_from(threshold).map_err(|_| "threshold must be less than 256")?;
    Ok((shares, threshold))
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
