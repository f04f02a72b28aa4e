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
        // The seal configuration is read under the lock that rekey changes it under, so an
        // update racing the one that completes a rekey sees either the attempt or its end,
        // never the new shares' configuration with the old attempt's shares.
        let mut progress = self.progress.lock().await;
        if self.is_sealed() {
            return Err(CoreError::Sealed);
        }
        let attempts = &mut progress.quorum;
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
                let rekey = attempts.rekey.as_ref().filter(|r| r.recovery == recovery);
                Bare::Rekey(rekey_status(&config, rekey))
            }
            (SysRoute::RekeyInit { .. }, Operation::Write) => {
                Bare::Rekey(rekey_start(attempts, &config, p, recovery)?)
            }
            (SysRoute::RekeyInit { .. }, Operation::Delete) => {
                if attempts
                    .rekey
                    .as_ref()
                    .is_some_and(|r| r.recovery == recovery)
                {
                    attempts.rekey = None;
                }
                return Ok(Response::empty());
            }
            (SysRoute::GenerateRoot { .. }, Operation::Delete) => {
                attempts.root = None;
                return Ok(Response::empty());
            }
            (SysRoute::RekeyUpdate { .. }, _) => {
                self.rekey_update(attempts, &config, p, recovery).await?
            }
            (SysRoute::GenerateRoot { .. }, Operation::Read) => {
                Bare::GenerateRoot(root_status(&config, attempts.root.as_ref()))
            }
            (SysRoute::GenerateRoot { .. }, Operation::Write) => {
                Bare::GenerateRoot(root_start(attempts, &config, p)?)
            }
            (SysRoute::GenerateRootUpdate { .. }, _) => {
                Bare::GenerateRoot(self.root_update(attempts, &config, p).await?)
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

    async fn rekey_update(
        &self,
        attempts: &mut Attempts,
        config: &SealConfig,
        p: &Params<'_>,
        recovery: bool,
    ) -> CoreResult<Bare> {
        let missing = || {
            CoreError::bad(if recovery {
                "no recovery rekey in progress"
            } else {
                "no barrier rekey in progress"
            })
        };
        let (share, nonce) = given_share(p)?;
        let rekey = attempts
            .rekey
            .as_mut()
            .filter(|r| r.recovery == recovery)
            .ok_or_else(missing)?;
        check_recognised(config, &share)?;
        if rekey.attempt.give(nonce, share, "rekey")? < usize::from(config.secret_threshold) {
            return Ok(Bare::Rekey(rekey_status(config, Some(rekey))));
        }
        // The attempt ends here, done or failed: its shares are wiped as it drops.
        let Some(rekey) = attempts.rekey.take() else {
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

    async fn root_update(
        &self,
        attempts: &mut Attempts,
        config: &SealConfig,
        p: &Params<'_>,
    ) -> CoreResult<GenerateRootStatus> {
        let (share, nonce) = given_share(p)?;
        let root = attempts
            .root
            .as_mut()
            .ok_or_else(|| CoreError::bad("no root generation in progress"))?;
        check_recognised(config, &share)?;
        if root.attempt.give(nonce, share, "root generation")?
            < usize::from(config.secret_threshold)
        {
            let mut status = root_status(config, Some(root));
            status.otp_length = 0;
            return Ok(status);
        }
        let Some(root) = attempts.root.take() else {
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

fn rekey_start(
    attempts: &mut Attempts,
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
    if attempts.rekey.is_some() {
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
    attempts.rekey = Some(rekey);
    Ok(status)
}

fn root_start(
    attempts: &mut Attempts,
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
    if attempts.root.is_some() {
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
    attempts.root = Some(root);
    Ok(status)
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

/// The share and nonce of an update, the share decoded.
fn given_share<'p>(p: &'p Params<'_>) -> CoreResult<(SecretBytes, &'p str)> {
    let key = match p.0.get("key") {
        Some(Value::String(key)) if !key.is_empty() => key,
        _ => {
            return Err(CoreError::bad(
                "'key' must be specified in request body as JSON",
            ));
        }
    };
    let share = decode_share(key)?;
    let nonce = p.0.get("nonce").and_then(Value::as_str).unwrap_or_default();
    Ok((share, nonce))
}

/// Refuses a share this seal never issued before it counts, as unseal refuses it. Checked
/// after the attempt is found, as Vault orders it: an update arriving after a rekey finished
/// hears that no rekey is under way, not that its (now retired) share is unknown.
fn check_recognised(config: &SealConfig, share: &SecretBytes) -> CoreResult<()> {
    if config.recognises(share.expose())? {
        Ok(())
    } else {
        Err(CoreError::bad(
            "invalid unseal key: it does not belong to this server's seal",
        ))
    }
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
