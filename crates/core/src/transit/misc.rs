//! Export, backup and restore of keys, and the keyless helpers `random` and `hash`.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use ward_api::time::now_rfc3339_nanos;
use ward_crypto::kms::HashAlg;
use zeroize::Zeroizing;

use super::keys::{
    HMAC_DEFAULT_SIZE, HMAC_MAX_SIZE, HMAC_MIN_SIZE, VERSION_HMAC_KEY_SIZE, validate_name,
};
use super::policy::{KeyMetadata, KeyPolicy, KeyType, VersionState};
use super::pool::is_rsa;
use super::store::{LoadedKey, Material, material_from_json, material_to_json};
use super::wire::b64;
use crate::mounts::MountEntry;
use crate::params::Params;
use crate::{Core, CoreError, CoreResult, Response};
use ward_store::Expect;

/// Most bytes `random` hands out at once (Vault's limit).
const MAX_RANDOM_BYTES: u64 = 128 * 1024;

/// A backup: the policy and the material, as base64 of this JSON.
#[derive(Serialize, Deserialize)]
struct Backup {
    ward_backup: u32,
    policy: KeyPolicy,
    material: String,
}

fn export_one(key: &LoadedKey, export_type: &str, version: u32) -> CoreResult<String> {
    let t = key.policy.key_type;
    let m = key.material(version)?;
    match export_type {
        "encryption-key" => Ok(B64.encode(m.key.expose())),
        "hmac-key" if t == KeyType::Hmac => Ok(B64.encode(m.key.expose())),
        "hmac-key" => Ok(B64.encode(m.hmac_key.expose())),
        "signing-key" => {
            let signer = key
                .signers
                .get(&version)
                .ok_or_else(|| CoreError::bad("signing not supported for the key"))?;
            let text = signer.export_private(m.key.expose())?;
            String::from_utf8(text.expose().to_vec())
                .map_err(|_| CoreError::Invariant("an exported key is not text"))
        }
        _ => Err(CoreError::bad(format!(
            "invalid export type: {export_type}"
        ))),
    }
}

/// A refusal of a backup that is not one Ward could have written.
fn forged(what: &str) -> CoreError {
    CoreError::bad(format!("invalid backup: {what}"))
}

/// Checks that the public keys a backup shows are those of its private keys (a forged one
/// would be handed out by `export/public-key` and `keys/:name`).
fn check_public_keys(key: &LoadedKey) -> CoreResult<()> {
    for (version, signer) in &key.signers {
        let shown = key
            .policy
            .versions
            .get(version)
            .and_then(|i| i.public_key.as_deref());
        if shown != Some(signer.public_key_text()?.as_str()) {
            return Err(forged(&format!(
                "the public key of version {version} is not that of its private key"
            )));
        }
    }
    Ok(())
}

impl Core {
    /// Checks every field of a backup against what Ward itself could have produced, so a
    /// restore cannot smuggle in a state that the API would refuse: version numbers that
    /// wrap on rotation, bounds that contradict each other, a key or HMAC key of the wrong
    /// length, options that key creation refuses.
    fn check_restored_key(
        &self,
        policy: &KeyPolicy,
        material: &BTreeMap<u32, Material>,
    ) -> CoreResult<()> {
        let t = policy.key_type;
        let latest = policy.latest_version;
        // Below u32::MAX so that the next rotation has a number to take.
        if latest == 0 || latest == u32::MAX {
            return Err(forged("latest_version out of range"));
        }
        let min_dec = policy.min_decryption_version;
        let min_enc = policy.min_encryption_version;
        let min_avail = policy.min_available_version;
        if min_dec == 0 || min_dec > latest {
            return Err(forged(
                "min_decryption_version must be between 1 and latest_version",
            ));
        }
        if min_enc > latest || (min_enc > 0 && min_enc < min_dec) {
            return Err(forged(
                "min_encryption_version must be 0 or between min_decryption_version and latest_version",
            ));
        }
        // (`config` may set min_encryption_version back to 0 after a trim.)
        if min_avail > min_dec || (min_enc > 0 && min_avail > min_enc) {
            return Err(forged(
                "min_available_version must not exceed the minimum encryption and decryption versions",
            ));
        }
        // Versions are numbered without gaps from the oldest kept one up to the latest.
        let first = min_avail.max(1);
        let expected = u64::from(latest - first) + 1;
        if policy.versions.len() as u64 != expected
            || policy.versions.keys().next() != Some(&first)
            || policy.versions.keys().next_back() != Some(&latest)
        {
            return Err(forged(
                "the versions must run without gaps up to latest_version",
            ));
        }
        if policy.versions.get(&latest).map(|i| i.state) != Some(VersionState::Active) {
            return Err(forged("the latest version must be active"));
        }
        for (version, info) in &policy.versions {
            if chrono::DateTime::parse_from_rfc3339(&info.creation_time).is_err() {
                return Err(forged(&format!(
                    "version {version} has no valid creation time"
                )));
            }
            if info.public_key.is_some() != t.signing().is_some() {
                return Err(forged(&format!(
                    "version {version}: a public key goes with asymmetric keys only"
                )));
            }
        }
        // Every version that is not destroyed comes with its material, and no more.
        let live = policy
            .versions
            .iter()
            .filter(|(_, i)| i.state != VersionState::Destroyed)
            .map(|(v, _)| v);
        if live.ne(material.keys()) {
            return Err(forged(
                "key material must come with exactly the versions not destroyed",
            ));
        }
        let key_size_ok = if t == KeyType::Hmac {
            (HMAC_MIN_SIZE..=HMAC_MAX_SIZE).contains(&policy.key_size)
        } else {
            policy.key_size == HMAC_DEFAULT_SIZE
        };
        if !key_size_ok {
            return Err(forged("key_size out of range"));
        }
        for (version, m) in material {
            if m.hmac_key.len() != VERSION_HMAC_KEY_SIZE {
                return Err(forged(&format!(
                    "version {version} has an HMAC key of the wrong length"
                )));
            }
            let expected_len = match (t.aead(), t) {
                (Some(aead), _) => Some(aead.key_len()),
                (None, KeyType::Hmac) => Some(policy.key_size as usize),
                (None, KeyType::Ed25519) => Some(32),
                // RSA and ECDSA keys are parsed (PKCS#8) when the key is built.
                _ => None,
            };
            if expected_len.is_some_and(|n| n != m.key.len()) || m.key.is_empty() {
                return Err(forged(&format!(
                    "version {version} has key material of the wrong length"
                )));
            }
        }
        if policy.derived && !t.supports_derivation() {
            return Err(forged("key derivation is not supported for the key type"));
        }
        if policy.convergent_encryption && (!policy.derived || t.aead().is_none()) {
            return Err(forged(
                "convergent encryption needs a derived encryption key",
            ));
        }
        self.check_rotation_period("auto rotate period", policy.auto_rotate_period)
            .map_err(|e| forged(&e.to_string()))?;
        // Ward's metadata, under the limits of `keys/:name`.
        let shown = serde_json::to_value(&policy.metadata).map_err(CoreError::Encode)?;
        if let Some(fields) = shown.as_object() {
            KeyMetadata::default()
                .update(&Params(fields))
                .map_err(|e| forged(&e.to_string()))?;
        }
        for info in [&policy.backup_info, &policy.restore_info]
            .into_iter()
            .flatten()
        {
            if !info.is_object() {
                return Err(forged("backup_info and restore_info must be objects"));
            }
        }
        Ok(())
    }

    pub(crate) async fn transit_export(
        &self,
        mount: &MountEntry,
        export_type: &str,
        name: &str,
        version: Option<&str>,
    ) -> CoreResult<Response> {
        let key = self.transit_key(mount, name).await?;
        let t = key.policy.key_type;
        match export_type {
            "encryption-key" if t.aead().is_none() => {
                return Err(CoreError::bad("encryption not supported for the key"));
            }
            "signing-key" | "public-key" if t.signing().is_none() => {
                return Err(CoreError::bad("signing not supported for the key"));
            }
            "encryption-key" | "signing-key" | "hmac-key" | "public-key" => {}
            other => return Err(CoreError::bad(format!("invalid export type: {other}"))),
        }
        if export_type != "public-key" && !key.policy.exportable {
            return Err(CoreError::bad("private key material is not exportable"));
        }
        let versions: Vec<u32> = match version {
            None | Some("") => key
                .policy
                .versions
                .iter()
                .filter(|(_, i)| i.state != VersionState::Destroyed)
                .map(|(v, _)| *v)
                .collect(),
            Some("latest") => vec![key.policy.latest_version],
            Some(v) => {
                let v: u32 = v
                    .parse()
                    .map_err(|_| CoreError::bad("invalid key version"))?;
                if !key.policy.versions.contains_key(&v) {
                    return Err(CoreError::bad("version not found"));
                }
                vec![v]
            }
        };
        let mut keys = Map::new();
        for v in versions {
            let text = if export_type == "public-key" {
                key.policy
                    .versions
                    .get(&v)
                    .and_then(|i| i.public_key.clone())
                    .unwrap_or_default()
            } else {
                export_one(&key, export_type, v)?
            };
            keys.insert(v.to_string(), json!(text));
        }
        Ok(Response::data(json!({
            "name": key.policy.name,
            "type": t.name(),
            "keys": keys,
        })))
    }

    pub(crate) async fn transit_backup(
        &self,
        mount: &MountEntry,
        name: &str,
    ) -> CoreResult<Response> {
        let name = validate_name(name)?;
        let _guard = self.transit_lock(mount, name).await;
        let key = self.transit_key(mount, name).await?;
        if !key.policy.exportable {
            return Err(CoreError::bad("exporting is disallowed on the policy"));
        }
        if !key.policy.allow_plaintext_backup {
            return Err(CoreError::bad(
                "plaintext backup is disallowed on the policy",
            ));
        }
        let mut policy = key.policy.clone();
        policy.backup_info =
            Some(json!({ "time": now_rfc3339_nanos(), "version": policy.latest_version }));
        let material = material_to_json(&key.material)?;
        let backup = Backup {
            ward_backup: 1,
            policy: policy.clone(),
            material: B64.encode(&material[..]),
        };
        let doc = Zeroizing::new(serde_json::to_vec(&backup).map_err(CoreError::Encode)?);
        let encoded = B64.encode(&doc[..]);
        let copy = LoadedKey::new(policy, key.material_copy())?;
        self.transit_save(mount, copy, key.replaced()).await?;
        tracing::info!(mount = %mount.path, key = name, "transit key backed up");
        Ok(Response::data(json!({ "backup": encoded })))
    }

    pub(crate) async fn transit_restore(
        &self,
        mount: &MountEntry,
        name: Option<&str>,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let raw = b64(p, "backup")?
            .filter(|b| !b.is_empty())
            .ok_or_else(|| CoreError::bad("'backup' must be supplied"))?;
        let invalid = || CoreError::bad("invalid backup: not a Ward transit key backup");
        let backup: Backup = serde_json::from_slice(&raw).map_err(|_| invalid())?;
        let material_json = Zeroizing::new(B64.decode(&backup.material).map_err(|_| invalid())?);
        let material = material_from_json(&material_json).ok_or_else(invalid)?;
        let mut policy = backup.policy;
        // The name comes from the path, else the body (vaultrs sends it there), else the backup.
        let body_name = p.str("name")?;
        let chosen = name
            .map(str::to_owned)
            .or(body_name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| policy.name.clone());
        let name = validate_name(&chosen)?.to_owned();
        if backup.ward_backup != 1 {
            return Err(invalid());
        }
        self.check_restored_key(&policy, &material)?;
        policy.name = name.clone();
        policy.restore_info =
            Some(json!({ "time": now_rfc3339_nanos(), "version": policy.latest_version }));
        let force = p.bool("force")?.unwrap_or(false);
        let _guard = self.transit_lock(mount, &name).await;
        let existing = self.transit_load(mount, &name).await?;
        if existing.is_some() && !force {
            return Err(CoreError::bad(format!("key \"{name}\" already exists")));
        }
        let replaced = existing.map_or(Expect::Absent, |k| k.replaced());
        // Parsing RSA private keys costs milliseconds each: off the async workers.
        let key = if is_rsa(policy.key_type) {
            self.transit_offload(move || LoadedKey::new(policy, material))
                .await
        } else {
            LoadedKey::new(policy, material)
        }
        .map_err(|_| invalid())?;
        check_public_keys(&key)?;
        self.transit_save(mount, key, replaced).await?;
        tracing::info!(mount = %mount.path, key = %name, "transit key restored");
        Ok(Response::empty())
    }

    pub(crate) fn transit_random(&self, segments: &[&str], p: &Params<'_>) -> CoreResult<Response> {
        let mut bytes = p.u64("bytes")?;
        let mut source = p.str("source")?;
        for s in segments.iter().filter(|s| !s.is_empty()) {
            if let Ok(n) = s.parse::<u64>() {
                bytes = Some(n);
            } else {
                source = Some((*s).to_owned());
            }
        }
        match source.as_deref() {
            None | Some("" | "platform" | "seal" | "all") => {}
            Some(other) => {
                return Err(CoreError::bad(format!(
                    "unsupported entropy source \"{other}\"; must be \"platform\" or \"seal\", or \"all\""
                )));
            }
        }
        let bytes = bytes.unwrap_or(32);
        if bytes == 0 {
            return Err(CoreError::bad("'bytes' cannot be less than 1"));
        }
        if bytes > MAX_RANDOM_BYTES {
            return Err(CoreError::bad(format!(
                "'bytes' cannot be greater than {MAX_RANDOM_BYTES}"
            )));
        }
        let data = ward_crypto::random_bytes(usize::try_from(bytes).unwrap_or(32))?;
        let text = match p.str("format")?.as_deref() {
            None | Some("" | "base64") => B64.encode(&data),
            Some("hex") => hex::encode(&data),
            Some(other) => {
                return Err(CoreError::bad(format!(
                    "unsupported encoding format {other}; must be \"hex\" or \"base64\""
                )));
            }
        };
        Ok(Response::data(json!({ "random_bytes": text })))
    }

    pub(crate) fn transit_hash(
        &self,
        url_alg: Option<&str>,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let name = match url_alg {
            Some(a) => a.to_owned(),
            None => p
                .str("algorithm")?
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "sha2-256".into()),
        };
        let alg = HashAlg::from_name(&name)
            .ok_or_else(|| CoreError::bad(format!("unsupported algorithm {name}")))?;
        let input = b64(p, "input")?.ok_or_else(|| CoreError::bad("missing input to hash"))?;
        let sum = alg.digest(&input);
        let text = match p.str("format")?.as_deref() {
            None | Some("" | "hex") => hex::encode(sum),
            Some("base64") => B64.encode(sum),
            Some(other) => {
                return Err(CoreError::bad(format!(
                    "unsupported encoding format {other}; must be \"hex\" or \"base64\""
                )));
            }
        };
        Ok(Response::data(json!({ "sum": text })))
    }
}
