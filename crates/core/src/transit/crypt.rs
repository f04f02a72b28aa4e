//! Encryption: encrypt, decrypt, rewrap and data keys, single or batched.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use ward_crypto::kms::{AeadKey, HashAlg, hkdf_sha256};
use ward_crypto::{CryptoError, SecretBytes};
use zeroize::Zeroizing;

use super::keys::{NewKey, validate_name};
use super::policy::{KeyType, Use};
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

/// Whether `key` encrypts with RSA-OAEP rather than an AEAD.
fn rsa_key(key: &LoadedKey) -> bool {
    key.policy.key_type.encrypts() && key.policy.key_type.aead().is_none()
}

/// The parsed RSA key of `version`.
fn signer(key: &LoadedKey, version: u32) -> CoreResult<&ward_crypto::kms::SigningKey> {
    key.signers
        .get(&version)
        .ok_or_else(|| CoreError::bad(format!("key version {version} has no key material")))
}

/// RSA-OAEP binds no associated data: asking for it is an error, as in OpenBao.
fn refuse_associated_data(key: &LoadedKey, p: &Params<'_>) -> CoreResult<()> {
    if b64(p, "associated_data")?.is_some_and(|a| !a.is_empty()) {
        return Err(CoreError::bad(format!(
            "'associated_data' provided for non-AEAD cipher suite {}",
            key.policy.key_type.name()
        )));
    }
    Ok(())
}

fn aead_of(key: &LoadedKey) -> CoreResult<ward_crypto::kms::Aead> {
    key.policy.key_type.aead().ok_or_else(|| {
        CoreError::bad(format!(
            "message encryption not supported for key type {}",
            key.policy.key_type.name()
        ))
    })
}

/// Domain label of the nonce key of a convergent encryption with associated data.
const CONVERGENT_AAD_LABEL: &[u8] = b"ward transit convergent nonce with associated data v2";

/// The nonce of a convergent encryption: an HMAC of the plaintext under a key derived from
/// the version's HMAC key and the context, so equal inputs give equal ciphertexts and
/// nothing else does.
///
/// The associated data must take part too: AES-GCM under one key and one nonce for two
/// messages (same plaintext and context, different AAD) gives away the GHASH key, and with
/// it forgeries. With AAD, the nonce key is derived from a label and the length-prefixed
/// context, and the HMAC covers the length-prefixed AAD before the plaintext, so no two
/// (context, aad, plaintext) triples share an input. Without AAD the derivation is the one
/// from before AAD was bound (the context alone as HKDF info), so convergent ciphertexts
/// made then still equal those made now; the two cannot meet, as within one context the
/// labelled info is always longer than the bare one. (Decryption reads the nonce from the
/// ciphertext, so it never depended on the derivation.)
fn convergent_nonce(
    hmac_key: &[u8],
    context: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> CoreResult<[u8; 12]> {
    let mac = if aad.is_empty() {
        let nonce_key = hkdf_sha256(hmac_key, context, 32)?;
        HashAlg::Sha2_256.hmac(nonce_key.expose(), plaintext)?
    } else {
        let mut info = Vec::with_capacity(CONVERGENT_AAD_LABEL.len() + 8 + context.len());
        info.extend_from_slice(CONVERGENT_AAD_LABEL);
        info.extend_from_slice(&(context.len() as u64).to_be_bytes());
        info.extend_from_slice(context);
        let nonce_key = hkdf_sha256(hmac_key, &info, 32)?;
        let mut message = Zeroizing::new(Vec::with_capacity(8 + aad.len() + plaintext.len()));
        message.extend_from_slice(&(aad.len() as u64).to_be_bytes());
        message.extend_from_slice(aad);
        message.extend_from_slice(plaintext);
        HashAlg::Sha2_256.hmac(nonce_key.expose(), &message)?
    };
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&mac[..12]);
    Ok(nonce)
}

/// One encryption: `vault:v<N>:base64(nonce || ciphertext || tag)`.
pub(crate) fn encrypt_one(
    key: &LoadedKey,
    plaintext: &[u8],
    p: &Params<'_>,
) -> CoreResult<(String, u32)> {
    // Refuses key types that do not encrypt before anything else.
    let rsa = rsa_key(key);
    if !rsa {
        aead_of(key)?;
    }
    let version = key
        .policy
        .producing_version(u32::try_from(p.u64("key_version")?.unwrap_or(0)).unwrap_or(u32::MAX))?;
    key.policy.check_use(version, Use::Produce)?;
    if rsa {
        refuse_associated_data(key, p)?;
        let sealed = signer(key, version)?
            .oaep_encrypt(plaintext)
            .map_err(|e| match e {
                CryptoError::MessageTooLong(most) => CoreError::bad(format!(
                    "plaintext too long for the key: RSA-OAEP with SHA-256 takes at most {most} \
                     bytes"
                )),
                other => other.into(),
            })?;
        return Ok((versioned(version, &B64.encode(sealed)), version));
    }
    let context = b64(p, "context")?;
    let aad = b64(p, "associated_data")?;
    let aad = aad.as_deref().map(|a| &a[..]).unwrap_or_default();
    let nonce = if key.policy.convergent_encryption {
        let ctx = context.as_deref().map(|c| &c[..]).unwrap_or_default();
        Some(convergent_nonce(
            key.material(version)?.hmac_key.expose(),
            ctx,
            aad,
            plaintext,
        )?)
    } else {
        None
    };
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
    let rsa = rsa_key(key);
    let aead = if rsa { None } else { Some(aead_of(key)?) };
    let (version, body) = parse_versioned(ciphertext.trim(), "ciphertext")?;
    key.policy.check_use(version, Use::Consume)?;
    let sealed = B64
        .decode(body)
        .map_err(|_| CoreError::bad("invalid ciphertext: could not decode base64"))?;
    let Some(aead) = aead else {
        refuse_associated_data(key, p)?;
        // OpenBao answers 500 here; a ciphertext that does not open is the client's.
        let plain = signer(key, version)?
            .oaep_decrypt(&sealed)
            .map_err(|_| CoreError::bad("failed to RSA decrypt the ciphertext"))?;
        return Ok((plain, version));
    };
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

/// The options of a key that an encrypt creates (OpenBao's `pathEncryptWrite`): `type`
/// among the encryption types, `convergent_encryption` only with a context, `derived` when
/// the (first) item has a context; then the same checks as `keys/:name`.
fn new_key_for_encrypt(p: &Params<'_>) -> CoreResult<NewKey> {
    let has_context = p.str("context")?.is_some_and(|c| !c.is_empty())
        || p.0
            .get("batch_input")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|i| i.get("context"))
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty());
    let convergent = p.bool("convergent_encryption")?.unwrap_or(false);
    if convergent && !has_context {
        return Err(CoreError::bad(
            "convergent encryption requires derivation to be enabled, so context is required",
        ));
    }
    let key_type = match p.str("type")?.as_deref() {
        None | Some("") => KeyType::Aes256Gcm96,
        Some(t @ ("ecdsa-p256" | "ecdsa-p384" | "ecdsa-p521")) => {
            return Err(CoreError::bad(format!(
                "key type {t} not supported for this operation"
            )));
        }
        Some(t) => KeyType::parse(t)
            .ok()
            .filter(|k| k.aead().is_some())
            .ok_or_else(|| CoreError::bad(format!("unknown key type {t}")))?,
    };
    let mut fields = serde_json::Map::new();
    fields.insert("type".into(), json!(key_type.name()));
    fields.insert("derived".into(), json!(has_context));
    fields.insert("convergent_encryption".into(), json!(convergent));
    NewKey::from_params(&Params(&fields))
}

fn encrypt_batch(key: &LoadedKey, p: &Params<'_>) -> CoreResult<Response> {
    let items = batch_items(p)?.unwrap_or_default();
    let (results, failures) = batch_results(p, &items, json!({}), |ip| {
        let plain =
            b64(ip, "plaintext")?.ok_or_else(|| CoreError::bad("missing plaintext to encrypt"))?;
        let (ciphertext, version) = encrypt_one(key, &plain, ip)?;
        Ok(json!({ "ciphertext": ciphertext, "key_version": version }))
    });
    batch_response(p, results, failures)
}

fn decrypt_batch(key: &LoadedKey, p: &Params<'_>) -> CoreResult<Response> {
    let items = batch_items(p)?.unwrap_or_default();
    let (results, failures) = batch_results(p, &items, json!({ "plaintext": "" }), |ip| {
        let ct = required_str(ip, "ciphertext", "missing ciphertext to decrypt")?;
        let (plain, _) = decrypt_one(key, &ct, ip)?;
        Ok(json!({ "plaintext": B64.encode(plain.expose()) }))
    });
    batch_response(p, results, failures)
}

fn rewrap_one(key: &LoadedKey, p: &Params<'_>) -> CoreResult<(String, u32)> {
    let ct = required_str(p, "ciphertext", "missing ciphertext to rewrap")?;
    let (plain, _) = decrypt_one(key, &ct, p)?;
    encrypt_one(key, plain.expose(), p)
}

fn rewrap_batch(key: &LoadedKey, p: &Params<'_>) -> CoreResult<Response> {
    let items = batch_items(p)?.unwrap_or_default();
    // Unlike encrypt and decrypt, Vault's rewrap answers 200 whatever the items' fate.
    let (results, _) = batch_results(p, &items, json!({}), |ip| {
        let (ciphertext, version) = rewrap_one(key, ip)?;
        Ok(json!({ "ciphertext": ciphertext, "key_version": version }))
    });
    Ok(Response::data(json!({ "batch_results": results })))
}

impl Core {
    /// The key for an encrypt, created on demand as Vault does. A caller may need only
    /// `create` on `encrypt/:name` for this, so the request chooses no more than Vault lets
    /// it there: an encryption `type`, and `convergent_encryption` (which needs a context);
    /// a context makes the key derived. Every other option (exportable, plaintext backup,
    /// rotation period, deletion, metadata) keeps its default, whatever the body says: those
    /// belong to `keys/:name`, under its own capability.
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
        let new = new_key_for_encrypt(p)?;
        let _guard = self.transit_lock(mount, name).await;
        if let Some(k) = self.transit_load(mount, name).await? {
            return Ok(k);
        }
        let key = self
            .transit_save(mount, new.build(name)?, ward_store::Expect::Absent)
            .await?;
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
        self.transit_run(key, p, items.len(), encrypt_batch).await
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
        self.transit_run(key, p, items.len(), decrypt_batch).await
    }

    pub(crate) async fn transit_rewrap(
        &self,
        mount: &MountEntry,
        name: &str,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let batch = batch_items(p)?;
        let key = self.transit_key(mount, name).await?;
        let Some(items) = batch else {
            let (ciphertext, version) = rewrap_one(&key, p)?;
            return Ok(Response::data(
                json!({ "ciphertext": ciphertext, "key_version": version }),
            ));
        };
        self.transit_run(key, p, items.len(), rewrap_batch).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convergent_nonces_separate_context_aad_and_plaintext() {
        let key = [7u8; 32];
        let n = |ctx: &[u8], aad: &[u8], pt: &[u8]| convergent_nonce(&key, ctx, aad, pt).unwrap();
        // Equal inputs converge; the AAD changes the nonce.
        assert_eq!(n(b"ctx", b"a", b"p"), n(b"ctx", b"a", b"p"));
        assert_ne!(n(b"ctx", b"a", b"p"), n(b"ctx", b"b", b"p"));
        assert_ne!(n(b"ctx", b"", b"p"), n(b"ctx", b"a", b"p"));
        // Bytes cannot move between context, AAD and plaintext.
        assert_ne!(n(b"ab", b"c", b"p"), n(b"a", b"bc", b"p"));
        assert_ne!(n(b"ctx", b"ab", b"c"), n(b"ctx", b"a", b"bc"));
        assert_ne!(
            n(b"ctx", b"", b"\0\0\0\0\0\0\0\x01ap"),
            n(b"ctx", b"a", b"p")
        );
        // Without AAD, the derivation from before AAD was bound (ciphertexts still converge).
        let before = {
            let nonce_key = hkdf_sha256(&key, b"ctx", 32).unwrap();
            HashAlg::Sha2_256.hmac(nonce_key.expose(), b"p").unwrap()[..12].to_vec()
        };
        assert_eq!(n(b"ctx", b"", b"p").to_vec(), before);
    }
}
