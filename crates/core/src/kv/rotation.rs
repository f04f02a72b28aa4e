//! Rotation policies of KV v2 secrets (a Ward addition).
//!
//! Set through the metadata endpoint (`POST <mount>/metadata/<path>`):
//! - `rotation_period`: a duration (`"720h"`); `0` removes the policy;
//! - `rotation_generator`: `{"type": "password"|"random_bytes"|"base64"|"hex", "length": N,
//!   "field": "password"}` (defaults: `password`, 32, `value`). `password` makes N
//!   characters from letters, digits and `-_.~!#%^*+=`; `random_bytes` (or `base64`) is N
//!   random bytes in standard base64; `hex` N random bytes in hex;
//! - `webhook_url` (http or https) and `webhook_secret` (needed with a URL): after each
//!   rotation the URL gets a POST whose JSON body names the mount, path, new version and
//!   time (never the value), signed `X-Ward-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
//!
//! A secret is due once its current version is older than the period (as transit keys), so
//! any write postpones the next rotation. A rotation writes a new version holding the
//! current version's fields with `field` replaced by a fresh value; older versions stay
//! (subject to `max_versions`) for rollback. `POST <mount>/rotate/<path>` rotates at once.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use ward_api::format_duration;
use ward_api::time::rfc3339_seconds;
use zeroize::Zeroizing;

use super::record::{Metadata, SealedVersion};
use super::{keys, parse_meta};
use crate::mounts::{MountEntry, MountKeySet};
use crate::params::Params;
use crate::rotation::JobKind;
use crate::webhook::{Webhook, refuse_host};
use crate::{Core, CoreError, CoreResult, Response};

const PASSWORD_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~!#%^*+=";
const MAX_LENGTH: u64 = 4096;

/// How the new value is made.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GeneratorKind {
    Password,
    RandomBytes,
    Base64,
    Hex,
}

/// The generator of a rotation policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Generator {
    #[serde(rename = "type")]
    kind: GeneratorKind,
    length: u64,
    field: String,
}

impl Default for Generator {
    fn default() -> Self {
        Self {
            kind: GeneratorKind::Password,
            length: 32,
            field: "value".into(),
        }
    }
}

impl Generator {
    fn generate(&self) -> CoreResult<Zeroizing<String>> {
        let len = usize::try_from(self.length).unwrap_or(0);
        Ok(Zeroizing::new(match self.kind {
            GeneratorKind::Password => {
                let mut out = String::with_capacity(len);
                // Rejection sampling keeps the characters uniform.
                let limit = 256 - (256 % PASSWORD_CHARS.len());
                while out.len() < len {
                    let bytes = Zeroizing::new(ward_crypto::random_bytes(len * 2)?);
                    for b in bytes.iter().map(|b| usize::from(*b)) {
                        if b < limit && out.len() < len {
                            out.push(char::from(PASSWORD_CHARS[b % PASSWORD_CHARS.len()]));
                        }
                    }
                }
                out
            }
            GeneratorKind::RandomBytes | GeneratorKind::Base64 => {
                B64.encode(Zeroizing::new(ward_crypto::random_bytes(len)?).as_slice())
            }
            GeneratorKind::Hex => {
                hex::encode(Zeroizing::new(ward_crypto::random_bytes(len)?).as_slice())
            }
        }))
    }

    fn parse(value: &Value) -> CoreResult<Self> {
        let bad = |m: &str| CoreError::bad(format!("invalid rotation_generator: {m}"));
        let obj: Map<String, Value> = match value {
            Value::Object(o) => o.clone(),
            Value::String(s) => {
                serde_json::from_str(s).map_err(|_| bad("expected a JSON object"))?
            }
            _ => return Err(bad("expected a JSON object")),
        };
        let p = Params(&obj);
        let mut g = Generator::default();
        if let Some(t) = p.str("type")? {
            g.kind = serde_json::from_value(json!(t))
                .map_err(|_| bad("type must be one of password, random_bytes, base64, hex"))?;
        }
        if let Some(l) = p.u64("length")? {
            g.length = l;
        }
        if !(1..=MAX_LENGTH).contains(&g.length)
            || (g.kind == GeneratorKind::Password && g.length < 8)
        {
            return Err(bad(&format!(
                "length must be between 1 (8 for passwords) and {MAX_LENGTH}"
            )));
        }
        if let Some(f) = p.str("field")? {
            g.field = f;
        }
        if g.field.is_empty() || g.field.len() > 128 {
            return Err(bad("field must be 1 to 128 bytes"));
        }
        if let Some(k) = obj
            .keys()
            .find(|k| !["type", "length", "field"].contains(&k.as_str()))
        {
            return Err(bad(&format!("unknown key {k:?}")));
        }
        Ok(g)
    }
}

/// A secret's rotation policy, kept in its metadata.
#[derive(Serialize, Deserialize, Clone, Default)]
pub(crate) struct RotationPolicy {
    /// Seconds.
    period: u64,
    generator: Generator,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    webhook_url: String,
    /// Wiped when the policy drops.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    webhook_secret: Zeroizing<String>,
}

impl std::fmt::Debug for RotationPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationPolicy")
            .field("period", &self.period)
            .field("generator", &self.generator)
            .field("webhook_url", &self.webhook_url)
            .finish_non_exhaustive()
    }
}

impl RotationPolicy {
    /// The fields `metadata/<path>` shows (never the webhook secret).
    pub(crate) fn to_json(&self, meta: &Metadata) -> Value {
        json!({
            "rotation_period": format_duration(self.period),
            "rotation_generator": self.generator,
            "webhook_url": self.webhook_url,
            "webhook_secret_set": !self.webhook_secret.is_empty(),
            "next_rotation": rfc3339_seconds(next_due(meta, self)).unwrap_or_default(),
        })
    }
}

/// Refuses a `webhook_url` whose host name resolves to an internal address (the checks
/// that need no lookup are in [`policy_update`]). Runs before the metadata write's
/// compare-and-set loop, so the lookup happens once.
pub(crate) async fn check_webhook_name(core: &Core, p: &Params<'_>) -> CoreResult<()> {
    let Some(url) = p.str("webhook_url")?.filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    // A URL that does not parse is refused by `policy_update`, with its message.
    let Ok(parsed) = url::Url::parse(&url) else {
        return Ok(());
    };
    let Some(url::Host::Domain(name)) = parsed.host() else {
        return Ok(());
    };
    let allow = core.config.rotation.webhook_allow_internal;
    match core.webhook_sender().refuse_name(name, allow).await {
        Some(why) => Err(CoreError::BadRequest(why)),
        None => Ok(()),
    }
}

/// Applies a metadata write's rotation parameters to `current` (None: no change asked).
pub(crate) fn policy_update(
    core: &Core,
    p: &Params<'_>,
    current: Option<&RotationPolicy>,
) -> CoreResult<Option<Option<RotationPolicy>>> {
    let period = p.duration("rotation_period")?;
    let generator = p.0.get("rotation_generator").filter(|v| !v.is_null());
    let url = p.str("webhook_url")?;
    let secret = p.str("webhook_secret")?;
    if period.is_none() && generator.is_none() && url.is_none() && secret.is_none() {
        return Ok(None);
    }
    if period == Some(0) {
        return Ok(Some(None));
    }
    let mut policy = match (current, period) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => RotationPolicy::default(),
        (None, None) => {
            return Err(CoreError::bad(
                "rotation_generator and webhook settings need a rotation_period",
            ));
        }
    };
    if let Some(period) = period {
        core.check_rotation_period("rotation_period", period)?;
        policy.period = period;
    }
    if let Some(g) = generator {
        policy.generator = Generator::parse(g)?;
    }
    if let Some(url) = url {
        if !url.is_empty() {
            let parsed = url::Url::parse(&url)
                .map_err(|_| CoreError::bad("webhook_url is not a valid URL"))?;
            let Some(host) = parsed
                .host()
                .filter(|_| matches!(parsed.scheme(), "http" | "https"))
            else {
                return Err(CoreError::bad("webhook_url must be an http or https URL"));
            };
            let allow = core.config.rotation.webhook_allow_internal;
            if let Some(why) = refuse_host(&host, allow) {
                return Err(CoreError::BadRequest(why));
            }
        }
        policy.webhook_url = url;
    }
    if let Some(secret) = secret {
        policy.webhook_secret = Zeroizing::new(secret);
    }
    if !policy.webhook_url.is_empty() && policy.webhook_secret.len() < 16 {
        return Err(CoreError::bad(
            "webhook_url needs a webhook_secret of at least 16 bytes to sign the notifications",
        ));
    }
    Ok(Some(Some(policy)))
}

/// Unix seconds at which the secret is next due: its current version's age reaching the
/// period (at once when it has no version yet).
fn next_due(meta: &Metadata, policy: &RotationPolicy) -> i64 {
    let created = meta
        .versions
        .get(&meta.current_version)
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(&v.created_time).ok())
        .map_or(0, |t| t.timestamp());
    created.saturating_add(i64::try_from(policy.period).unwrap_or(i64::MAX))
}

impl Core {
    /// Files the secret's next due time with the scheduler (or removes its job).
    pub(crate) async fn kv_schedule(
        &self,
        mount: &MountEntry,
        path: &str,
        meta: Option<&Metadata>,
    ) -> CoreResult<()> {
        let due = meta.and_then(|m| m.rotation.as_ref().map(|p| next_due(m, p)));
        self.schedule(JobKind::Kv, &mount.uuid, path, due).await
    }

    /// `POST <mount>/rotate/<path>`: rotates now.
    pub(crate) async fn kv_rotate_now(
        &self,
        mount: &MountEntry,
        path: &str,
    ) -> CoreResult<Response> {
        self.kv_rotate(mount, path, None).await
    }

    /// The scheduler's run for secret `path`.
    pub(crate) async fn kv_scheduled_rotation(
        &self,
        mount: &MountEntry,
        path: &str,
        now: i64,
    ) -> CoreResult<Option<Response>> {
        match self.kv_rotate(mount, path, Some(now)).await {
            Ok(r) => Ok(r.data.is_some().then_some(r)),
            Err(e) => {
                // Keep the job from firing every tick: try again a period later.
                let meta = self.barrier.get(&keys(mount, path).meta).await?;
                let meta = meta.map(|m| parse_meta(m.expose())).transpose()?;
                if let Some(m) = meta.as_ref()
                    && let Some(p) = &m.rotation
                {
                    let retry = now + i64::try_from(p.period).unwrap_or(i64::MAX / 2);
                    self.schedule(JobKind::Kv, &mount.uuid, path, Some(retry))
                        .await?;
                }
                Err(e)
            }
        }
    }

    /// Rotates `path`: now (`scheduled` None) or, for the scheduler, only when due at
    /// `scheduled` and claimed. Answers the new version's metadata (empty when nothing ran).
    async fn kv_rotate(
        &self,
        mount: &MountEntry,
        path: &str,
        scheduled: Option<i64>,
    ) -> CoreResult<Response> {
        let k = keys(mount, path);
        let meta = match self.barrier.get(&k.meta).await? {
            Some(m) => parse_meta(m.expose())?,
            None if scheduled.is_some() => {
                self.kv_schedule(mount, path, None).await?;
                return Ok(Response::empty());
            }
            None => return Err(CoreError::NotFound(String::new())),
        };
        let Some(policy) = meta.rotation.clone() else {
            if scheduled.is_some() {
                self.kv_schedule(mount, path, None).await?;
                return Ok(Response::empty());
            }
            return Err(CoreError::bad(
                "this secret has no rotation policy: set rotation_period on its metadata",
            ));
        };
        if let Some(now) = scheduled {
            if next_due(&meta, &policy) > now {
                self.kv_schedule(mount, path, Some(&meta)).await?;
                return Ok(Response::empty());
            }
            let id = Core::job_claim_id(JobKind::Kv, &mount.uuid, path);
            if !self.claim(&id, meta.current_version).await? {
                return Ok(Response::empty());
            }
        }
        if let Some(v) = meta.versions.get(&meta.current_version)
            && (v.destroyed || meta.is_deleted(v, &chrono::Utc::now()))
        {
            return Err(CoreError::bad(
                "the current version is deleted or destroyed: undelete it or write a new one before rotating",
            ));
        }
        let value = policy.generator.generate()?;
        let field = policy.generator.field.clone();
        let resp = self
            .kv_write(mount, path, Some(meta.current_version), |current| {
                let mut doc = match current {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                doc.insert(field.clone(), Value::String(value.to_string()));
                Ok(Value::Object(doc))
            })
            .await?;
        let version = resp
            .data_tree()
            .and_then(|d| d.get("version"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        // The log names the secret by its job id, not its path (paths can be secrets too).
        let job = Core::job_claim_id(JobKind::Kv, &mount.uuid, path);
        tracing::info!(mount = %mount.path, %job, version, scheduled = scheduled.is_some(), "kv secret rotated");
        let after = self.barrier.get(&k.meta).await?;
        let after = after.map(|m| parse_meta(m.expose())).transpose()?;
        self.kv_schedule(mount, path, after.as_ref()).await?;
        if !policy.webhook_url.is_empty() {
            self.notify_rotation(&policy, mount, path, version);
        }
        Ok(resp)
    }

    /// Sends the signed webhook in the background (retried with back-off, failures logged).
    fn notify_rotation(
        &self,
        policy: &RotationPolicy,
        mount: &MountEntry,
        path: &str,
        version: u64,
    ) {
        let body = json!({
            "event": "kv.rotated",
            "mount": mount.path,
            "path": path,
            "version": version,
            "time": rfc3339_seconds(crate::core::now()).unwrap_or_default(),
        })
        .to_string();
        let signature = format!(
            "sha256={}",
            hex::encode(ward_crypto::hmac_sha256(
                policy.webhook_secret.as_bytes(),
                body.as_bytes()
            ))
        );
        let allow_internal = self.config.rotation.webhook_allow_internal;
        // Checked again: the URL may have been set while the operator allowed internal
        // destinations. Names are checked as they resolve (see `crate::webhook`).
        let refused = url::Url::parse(&policy.webhook_url)
            .ok()
            .and_then(|u| u.host().and_then(|h| refuse_host(&h, allow_internal)));
        let job = Core::job_claim_id(JobKind::Kv, &mount.uuid, path);
        if let Some(why) = refused {
            tracing::warn!(mount = %mount.path, %job, reason = %why, "rotation webhook not sent");
            return;
        }
        let webhook = Webhook {
            url: policy.webhook_url.clone(),
            event: "kv.rotated",
            body,
            signature,
            mount: mount.path.clone(),
            job,
        };
        self.webhook_sender().deliver(webhook, allow_internal);
    }

    /// Rewraps the data keys of `mount`'s KV versions that an older KEK than `keys.latest`
    /// wraps. Returns how many records it moved.
    pub(crate) async fn kv_rewrap(&self, mount: &MountEntry, mk: &MountKeySet) -> CoreResult<u64> {
        let meta_prefix = format!("{}meta/", mount.storage_prefix());
        let mut moved = 0;
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            for child in self.barrier.list(&format!("{meta_prefix}{folder}")).await? {
                let path = format!("{folder}{child}");
                if child.ends_with('/') {
                    folders.push(path);
                    continue;
                }
                let k = keys(mount, &path);
                let Some(meta) = self.barrier.get(&k.meta).await? else {
                    continue;
                };
                let meta = parse_meta(meta.expose())?;
                for version in meta.versions.keys() {
                    let key = k.version(*version);
                    let changed = crate::rotation::rewrap_record(&self.barrier, &key, |bytes| {
                        let mut sealed: SealedVersion = serde_json::from_slice(bytes)
                            .map_err(CoreError::corrupt_json("kv version record"))?;
                        if !sealed.rewrap(mk, &mount.uuid, &path, *version)? {
                            return Ok(None);
                        }
                        serde_json::to_vec(&sealed)
                            .map(Some)
                            .map_err(CoreError::Encode)
                    })
                    .await?;
                    moved += u64::from(changed);
                }
            }
        }
        Ok(moved)
    }
}
