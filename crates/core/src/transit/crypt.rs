//! Encryption: encrypt, decrypt, rewrap and data keys, single or batched.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use ward_crypto::SecretBytes;
use ward_crypto::kms::{AeadKey, HashAlg, hkdf_sha256};
use zeroize::Zeroizing;

use super::keys::{NewKey, validate_name};
use super::policy::Use;
use super::store::LoadedKey;
use super::wire::{
    b64, base64_reply, batch_items, batch_response, batch_results, parse_versioned, versioned,
};
use crate::mounts::MountEntry;
use crate::params::Params;
use crate::{Core, CoreError, CoreResult, Response};

/// Runs `f` with the prepared key of `version`: the cached one, or for a derived key one
/// derived from `context` (HKDF-SHA256, as Vault).
fn with_key<T>(
    key: &LoadedKey,
    version: u32,
    context: Option<&[u8]>,
    f: impl FnOnce(&AeadKey) -> CoreResult<T>,
) -> CoreResult<T> {
    if !key.policy.derived {
        let prepared = key
            .aead_keys
            .get(&version)
            .ok_or_else(|| CoreError::bad(format!("key version {version} has no key material")))?;
        return f(prepared);
    }
    let m = key.material(version)?;
    let context = context.filter(|c| !c.is_empty()).ok_or_else(|| {
        CoreError::bad(
            "missing 'context' for key derivation; the key was created using a derived key, \
             which means additional, per-request information must be included in order to \
             perform operations with the key",
        )
    })?;
    let derived = hkdf_sha256(m.key.expose(), context, m.key.len())?;
    f(&aead_of(key)?.prepare(derived.expose())?)
}

fn aead_of(key: &LoadedKey) -> CoreResult<ward_crypto::kms::Aead> {
    key.policy.key_type.aead().ok_or_else(|| {
        CoreError::bad(format!(
            "message encryption not supported for key type {}",
            key.policy.key_type.name()
        ))
    })
}

/// One encryption: `vault:v<N>:base64(nonce || ciphertext || tag)`.
pub(crate) fn encrypt_one(
    key: &LoadedKey,
    plaintext: &[u8],
    p: &Params<'_>,
) -> CoreResult<(String, u32)> {
    // Refuses key types that do not encrypt before anything else.
    aead_of(key)?;
    let version = key
        .policy
        .producing_version(u32::try_from(p.u64("key_version")?.unwrap_or(0)).unwrap_or(u32::MAX))?;
    key.policy.check_use(version, Use::Produce)?;
    let context = b64(p, "context")?;
    let aad = b64(p, "associated_data")?;
    let nonce = if key.policy.convergent_encryption {
        // Convergent: the nonce is an HMAC of the plaintext under a context-derived key,
        // so equal plaintexts in one context give equal ciphertexts and nothing else does.
        let m = key.material(version)?;
        let ctx = context.as_deref().map(|c| &c[..]).unwrap_or_default();
        let nonce_key = hkdf_sha256(m.hmac_key.expose(), ctx, 32)?;
        let mac = HashAlg::Sha2_256.hmac(nonce_key.expose(), plaintext)?;
        let mut n = [0u8; 12];
        n.copy_from_slice(&mac[..12]);
        Some(n)
    } else {
        None
    };
    let aad = aad.as_deref().map(|a| &a[..]).unwrap_or_default();
    let sealed = with_key(key, version, context.as_deref().map(|c| &c[..]), |k| {
        Ok(k.seal(nonce, plaintext, aad)?)
    })?;
    Ok((versioned(version, &B64.encode(sealed)), version))
}

/// One decryption; returns the plaintext and the version that encrypted it.
pub(crate) fn decrypt_one(
    key: &LoadedKey,
    ciphertext: &str,
    p: &Params<'_>,
) -> CoreResult<(SecretBytes, u32)> {
    let aead = aead_of(key)?;
    let (version, body) = parse_versioned(ciphertext.trim(), "ciphertext")?;
    key.policy.check_use(version, Use::Consume)?;
    let sealed = B64
        .decode(body)
        .map_err(|_| CoreError::bad("invalid ciphertext: could not decode base64"))?;
    if sealed.len() < aead.nonce_len() + 16 {
        return Err(CoreError::bad("invalid ciphertext length"));
    }
    let context = b64(p, "context")?;
    let aad = b64(p, "associated_data")?;
    let aad = aad.as_deref().map(|a| &a[..]).unwrap_or_default();
    let plain = with_key(key, version, context.as_deref().map(|c| &c[..]), |k| {
        k.open(&sealed, aad)
            .map_err(|_| CoreError::bad("cipher: message authentication failed"))
    })?;
    Ok((plain, version))
}

fn required_str(p: &Params<'_>, name: &str, missing: &str) -> CoreResult<String> {
    p.str(name)?
        .ok_or_else(|| CoreError::bad(missing.to_owned()))
}

impl Core {
    /// The key for an encrypt, created on demand as Vault does (`type`, and `derived` when
    /// a context is given).
    async fn transit_key_or_create(
        &self,
        mount: &MountEntry,
        name: &str,
        p: &Params<'_>,
    ) -> CoreResult<Arc<LoadedKey>> {
        let name = validate_name(name)?;
        if let Some(k) = self.transit_load(mount, name).await? {
            return Ok(k);
        }
        let _guard = self.transit_lock(mount, name).await;
        if let Some(k) = self.transit_load(mount, name).await? {
            return Ok(k);
        }
        let mut fields = p.0.clone();
        let has_context = p.has("context")
            || p.0
                .get("batch_input")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|i| i.get("context"))
                .is_some_and(|c| !c.is_null());
        if has_context {
            fields.insert("derived".into(), json!(true));
        }
        for drop in [
            "owner",
            "purpose",
            "security_level",
            "expires_at",
            "labels",
            "key_size",
        ] {
            fields.remove(drop);
        }
        let new = NewKey::from_params(&Params(&fields))?;
        let key = self.transit_save(mount, new.build(name)?).await?;
        tracing::info!(mount = %mount.path, key = name, "transit key created by encrypt");
        Ok(key)
    }

    pub(crate) async fn transit_encrypt(
        &self,
        mount: &MountEntry,
        name: &str,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let batch = batch_items(p)?;
        if batch.is_none() && !p.has("plaintext") {
            return Err(CoreError::bad("missing plaintext to encrypt"));
        }
        let key = self.transit_key_or_create(mount, name, p).await?;
        let Some(items) = batch else {
            let plain = b64(p, "plaintext")?.unwrap_or_default();
            let (ciphertext, version) = encrypt_one(&key, &plain, p)?;
            return base64_reply("ciphertext", &ciphertext, Some(version));
        };
        let (results, failures) = batch_results(p, &items, json!({}), |ip| {
            let plain = b64(ip, "plaintext")?
                .ok_or_else(|| CoreError::bad("missing plaintext to encrypt"))?;
            let (ciphertext, version) = encrypt_one(&key, &plain, ip)?;
            Ok(json!({ "ciphertext": ciphertext, "key_version": version }))
        });
        batch_response(p, results, failures)
    }

    pub(crate) async fn transit_decrypt(
        &self,
        mount: &MountEntry,
        name: &str,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let batch = batch_items(p)?;
        let key = self.transit_key(mount, name).await?;
        let Some(items) = batch else {
            let ct = required_str(p, "ciphertext", "missing ciphertext to decrypt")?;
            let (plain, _) = decrypt_one(&key, &ct, p)?;
            let encoded = Zeroizing::new(B64.encode(plain.expose()));
            return base64_reply("plaintext", &encoded, None);
        };
        let (results, failures) = batch_results(p, &items, json!({ "plaintext": "" }), |ip| {
            let ct = required_str(ip, "ciphertext", "missing ciphertext to decrypt")?;
            let (plain, _) = decrypt_one(&key, &ct, ip)?;
            Ok(json!({ "plaintext": B64.encode(plain.expose()) }))
        });
        batch_response(p, results, failures)
    }

    pub(crate) async fn transit_rewrap(
        &self,
        mount: &MountEntry,
        name: &str,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let batch = batch_items(p)?;
        let key = self.transit_key(mount, name).await?;
        let rewrap = |ip: &Params<'_>| -> CoreResult<(String, u32)> {
            let ct = required_str(ip, "ciphertext", "missing ciphertext to rewrap")?;
            let (plain, _) = decrypt_one(&key, &ct, ip)?;
            encrypt_one(&key, plain.expose(), ip)
        };
        let Some(items) = batch else {
            let (ciphertext, version) = rewrap(p)?;
            return Ok(Response::data(
                json!({ "ciphertext": ciphertext, "key_version": version }),
            ));
        };
        // Unlike encrypt and decrypt, Vault's rewrap answers 200 whatever the items' fate.
        let (results, _) = batch_results(p, &items, json!({}), |ip| {
            let (ciphertext, version) = rewrap(ip)?;
            Ok(json!({ "ciphertext": ciphertext, "key_version": version }))
        });
        Ok(Response::data(json!({ "batch_results": results })))
    }

    pub(crate) async fn transit_datakey(
        &self,
        mount: &MountEntry,
        kind: &str,
        name: &str,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let with_plaintext = match kind {
            "plaintext" => true,
            "wrapped" => false,
            _ => {
                return Err(CoreError::bad(
                    "invalid type: must be 'plaintext' or 'wrapped'",
                ));
            }
        };
        let bits = p.u64("bits")?.unwrap_or(256);
        if !matches!(bits, 128 | 256 | 512) {
            return Err(CoreError::bad("invalid bit length"));
        }
        let key = self.transit_key(mount, name).await?;
        let len = usize::try_from(bits / 8).unwrap_or(32);
        let new_key = Zeroizing::new(ward_crypto::random_bytes(len)?);
        let (ciphertext, version) = encrypt_one(&key, &new_key, p)?;
        let mut data = json!({ "ciphertext": ciphertext, "key_version": version });
        if with_plaintext && let Some(obj) = data.as_object_mut() {
            obj.insert("plaintext".into(), json!(B64.encode(&new_key[..])));
        }
        Ok(Response::data(data))
    }
}
