//! Signatures and MACs: sign, verify (signatures and HMACs) and hmac, single or batched.
//! Batches of these answer 200 with per-item errors, as Vault does.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use serde_json::json;
use ward_crypto::kms::{
    HashAlg, Marshaling, PssSalt, RsaPadding, SignOptions, SigningKey, SigningKind, hkdf_sha256,
};

use super::policy::{KeyType, Use};
use super::store::LoadedKey;
use super::wire::{b64, batch_items, batch_results, parse_versioned, versioned};
use crate::mounts::MountEntry;
use crate::params::Params;
use crate::{CoreError, CoreResult, Response};

fn hash_param(p: &Params<'_>, url_alg: Option<&str>, names: &[&str]) -> CoreResult<HashAlg> {
    let mut name = url_alg.map(str::to_owned);
    for n in names {
        if name.as_deref().is_none_or(str::is_empty) {
            name = p.str(n)?;
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "sha2-256".into());
    HashAlg::from_name(&name)
        .ok_or_else(|| CoreError::bad(format!("invalid hash algorithm \"{name}\"")))
}

fn sign_options(key: &LoadedKey, p: &Params<'_>, url_alg: Option<&str>) -> CoreResult<SignOptions> {
    let hash = hash_param(p, url_alg, &["hash_algorithm", "algorithm"])?;
    let marshaling = match p.str("marshaling_algorithm")?.as_deref() {
        None | Some("" | "asn1") => Marshaling::Asn1,
        Some("jws") => Marshaling::Jws,
        Some(other) => {
            return Err(CoreError::bad(format!(
                "unsupported marshaling algorithm {other}"
            )));
        }
    };
    let padding = match p.str("signature_algorithm")?.as_deref() {
        None | Some("" | "pss") => RsaPadding::Pss,
        Some("pkcs1v15") => RsaPadding::Pkcs1v15,
        Some(other) => {
            return Err(CoreError::bad(format!(
                "unsupported rsa signature algorithm {other}"
            )));
        }
    };
    let salt = match p.str("salt_length")?.as_deref() {
        None | Some("" | "auto") => PssSalt::Auto,
        Some("hash") => PssSalt::Hash,
        Some(other) => {
            return Err(CoreError::bad(format!(
                "unsupported salt_length {other}: Ward takes 'auto' or 'hash'"
            )));
        }
    };
    let t = key.policy.key_type;
    if marshaling == Marshaling::Jws && (t.signing().is_none() || t == KeyType::Ed25519) {
        return Err(CoreError::bad(
            "marshaling algorithm jws is only valid for ECDSA and RSA keys",
        ));
    }
    Ok(SignOptions {
        hash,
        prehashed: p.bool("prehashed")?.unwrap_or(false),
        marshaling,
        padding,
        salt,
    })
}

fn unsupported(e: ward_crypto::CryptoError, o: &SignOptions) -> CoreError {
    match e {
        ward_crypto::CryptoError::Unsupported => CoreError::bad(format!(
            "unsupported combination of options for this key type (hash {}, prehashed {})",
            o.hash.name(),
            o.prehashed
        )),
        ward_crypto::CryptoError::Malformed => CoreError::bad(
            "input is not valid for this operation (a prehashed input must be a hash of the chosen algorithm)",
        ),
        other => other.into(),
    }
}

/// The signer of `version`, derived from `context` for derived Ed25519 keys.
fn signer<'a>(
    key: &'a LoadedKey,
    version: u32,
    p: &Params<'_>,
    derived: &'a mut Option<SigningKey>,
) -> CoreResult<&'a SigningKey> {
    if key.policy.derived {
        let context = b64(p, "context")?
            .filter(|c| !c.is_empty())
            .ok_or_else(|| CoreError::bad("missing 'context' for key derivation"))?;
        let seed = hkdf_sha256(key.material(version)?.key.expose(), &context, 32)?;
        return Ok(derived.insert(SigningKey::from_private(
            SigningKind::Ed25519,
            seed.expose(),
        )?));
    }
    key.signers
        .get(&version)
        .ok_or_else(|| CoreError::bad(format!("key version {version} has no key material")))
}

fn encode_sig(sig: &[u8], o: &SignOptions) -> String {
    match o.marshaling {
        Marshaling::Asn1 => B64.encode(sig),
        Marshaling::Jws => B64URL.encode(sig),
    }
}

fn sign_one(key: &LoadedKey, p: &Params<'_>, url_alg: Option<&str>) -> CoreResult<(String, u32)> {
    if key.policy.key_type.signing().is_none() {
        return Err(CoreError::bad(format!(
            "key type {} does not support signing",
            key.policy.key_type.name()
        )));
    }
    let o = sign_options(key, p, url_alg)?;
    let version = key
        .policy
        .producing_version(u32::try_from(p.u64("key_version")?.unwrap_or(0)).unwrap_or(u32::MAX))?;
    key.policy.check_use(version, Use::Produce)?;
    let input = b64(p, "input")?.unwrap_or_default();
    let mut derived = None;
    let s = signer(key, version, p, &mut derived)?;
    let sig = s.sign(&input, &o).map_err(|e| unsupported(e, &o))?;
    Ok((versioned(version, &encode_sig(&sig, &o)), version))
}

fn hmac_key(key: &LoadedKey, version: u32) -> CoreResult<&[u8]> {
    let m = key.material(version)?;
    Ok(if key.policy.key_type == KeyType::Hmac {
        m.key.expose()
    } else {
        m.hmac_key.expose()
    })
}

fn hmac_one(key: &LoadedKey, p: &Params<'_>, url_alg: Option<&str>) -> CoreResult<String> {
    let alg = hash_param(p, url_alg, &["algorithm", "hash_algorithm"])?;
    let version = key
        .policy
        .producing_version(u32::try_from(p.u64("key_version")?.unwrap_or(0)).unwrap_or(u32::MAX))?;
    key.policy.check_use(version, Use::Produce)?;
    let input = b64(p, "input")?.unwrap_or_default();
    let mac = alg
        .hmac(hmac_key(key, version)?, &input)
        .map_err(|_| CoreError::bad(format!("unsupported HMAC algorithm {}", alg.name())))?;
    Ok(versioned(version, &B64.encode(mac)))
}

/// Verifies a signature or (when `hmac` is given) an HMAC.
fn verify_one(key: &LoadedKey, p: &Params<'_>, url_alg: Option<&str>) -> CoreResult<bool> {
    let input = b64(p, "input")?.unwrap_or_default();
    if let Some(mac) = p.str("hmac")? {
        let alg = hash_param(p, url_alg, &["algorithm", "hash_algorithm"])?;
        let (version, body) = parse_versioned(mac.trim(), "HMAC to verify")?;
        key.policy.check_use(version, Use::Consume)?;
        let Ok(tag) = B64.decode(body) else {
            return Err(CoreError::bad("invalid hmac: could not decode base64"));
        };
        return alg
            .hmac_verify(hmac_key(key, version)?, &input, &tag)
            .map_err(|_| CoreError::bad(format!("unsupported HMAC algorithm {}", alg.name())));
    }
    let sig = p.str("signature")?.ok_or_else(|| {
        CoreError::bad("neither a 'signature' nor an 'hmac' were given to verify")
    })?;
    if key.policy.key_type.signing().is_none() {
        return Err(CoreError::bad(format!(
            "key type {} does not support verification",
            key.policy.key_type.name()
        )));
    }
    let o = sign_options(key, p, url_alg)?;
    let (version, body) = parse_versioned(sig.trim(), "signature")?;
    key.policy.check_use(version, Use::Consume)?;
    let decoded = match o.marshaling {
        Marshaling::Asn1 => B64.decode(body),
        Marshaling::Jws => B64URL.decode(body.trim_end_matches('=')),
    };
    let Ok(raw) = decoded else {
        return Err(CoreError::bad("invalid signature: could not decode base64"));
    };
    let mut derived = None;
    let s = signer(key, version, p, &mut derived)?;
    s.verify(&input, &raw, &o).map_err(|e| unsupported(e, &o))
}

pub(super) fn sign_reply(
    key: &LoadedKey,
    p: &Params<'_>,
    url_alg: Option<&str>,
) -> CoreResult<Response> {
    let Some(items) = batch_items(p)? else {
        let (signature, version) = sign_one(key, p, url_alg)?;
        return Ok(Response::data(
            json!({ "signature": signature, "key_version": version }),
        ));
    };
    let (results, _) = batch_results(p, &items, json!({ "key_version": 0 }), |ip| {
        let (signature, version) = sign_one(key, ip, url_alg)?;
        Ok(json!({ "signature": signature, "key_version": version }))
    });
    Ok(Response::data(json!({ "batch_results": results })))
}

pub(super) fn verify_reply(
    key: &LoadedKey,
    p: &Params<'_>,
    url_alg: Option<&str>,
) -> CoreResult<Response> {
    let Some(items) = batch_items(p)? else {
        let valid = verify_one(key, p, url_alg)?;
        return Ok(Response::data(json!({ "valid": valid })));
    };
    let (results, _) = batch_results(p, &items, json!({}), |ip| {
        // Vault leaves `valid` out of a batch item when it is false.
        Ok(match verify_one(key, ip, url_alg)? {
            true => json!({ "valid": true }),
            false => json!({}),
        })
    });
    Ok(Response::data(json!({ "batch_results": results })))
}

pub(super) fn hmac_reply(
    key: &LoadedKey,
    p: &Params<'_>,
    url_alg: Option<&str>,
) -> CoreResult<Response> {
    let Some(items) = batch_items(p)? else {
        return Ok(Response::data(
            json!({ "hmac": hmac_one(key, p, url_alg)? }),
        ));
    };
    let (results, _) = batch_results(p, &items, json!({}), |ip| {
        Ok(json!({ "hmac": hmac_one(key, ip, url_alg)? }))
    });
    Ok(Response::data(json!({ "batch_results": results })))
}

/// The number of operations a request asks for: its batch's length, else 1.
fn item_count(p: &Params<'_>) -> CoreResult<usize> {
    Ok(batch_items(p)?.map_or(1, |items| items.len()))
}

/// A sign, verify or HMAC reply, given the hash algorithm from the path when it names one.
pub(super) type KeyedReply = fn(&LoadedKey, &Params<'_>, Option<&str>) -> CoreResult<Response>;

impl crate::Core {
    /// Signs, verifies or HMACs (`reply`) with the key `name`.
    pub(crate) async fn transit_keyed(
        &self,
        mount: &MountEntry,
        name: &str,
        url_alg: Option<&str>,
        p: &Params<'_>,
        reply: KeyedReply,
    ) -> CoreResult<Response> {
        let items = item_count(p)?;
        let key = self.transit_key(mount, name).await?;
        let url_alg = url_alg.map(str::to_owned);
        self.transit_run(key, p, items, move |key, p| {
            reply(key, p, url_alg.as_deref())
        })
        .await
    }
}
