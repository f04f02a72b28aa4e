//! Signing keys of the transit engine: Ed25519, ECDSA (P-256, P-384, P-521) and RSA
//! (2048, 3072, 4096), with Vault's options (hash algorithm, prehashed input, ASN.1 or JWS
//! marshaling, PSS or PKCS#1 v1.5 padding).

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey,
};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, Ed25519KeyPair, KeyPair,
    RsaEncoding, RsaKeyPair, RsaParameters, RsaPssSaltLength, RsaSignatureEncoding,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::HashAlg;
use super::der::{ecdsa_der_to_fixed, pkcs8_inner_key};
use crate::{CryptoError, SecretBytes};

/// Asymmetric key types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKind {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA over NIST P-256.
    EcdsaP256,
    /// ECDSA over NIST P-384.
    EcdsaP384,
    /// ECDSA over NIST P-521.
    EcdsaP521,
    /// RSA, 2048-bit modulus.
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// RSA, 4096-bit modulus.
    Rsa4096,
}

/// How a signature is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Marshaling {
    /// DER `ECDSA-Sig-Value` (ECDSA); the raw signature otherwise.
    #[default]
    Asn1,
    /// JWS: fixed-width `r || s` for ECDSA.
    Jws,
}

/// RSA signature padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RsaPadding {
    /// RSASSA-PSS (Vault's default).
    #[default]
    Pss,
    /// RSASSA-PKCS1-v1_5.
    Pkcs1v15,
}

/// PSS salt length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PssSalt {
    /// Vault's `auto`: sign with the largest salt; verify accepting the largest or the
    /// hash-length salt.
    #[default]
    Auto,
    /// Salt as long as the hash.
    Hash,
}

/// Options of one sign or verify operation.
#[derive(Debug, Clone, Copy)]
pub struct SignOptions {
    /// Hash applied to the input (ignored by Ed25519).
    pub hash: HashAlg,
    /// The input already is the hash.
    pub prehashed: bool,
    /// Signature encoding.
    pub marshaling: Marshaling,
    /// RSA padding.
    pub padding: RsaPadding,
    /// RSA-PSS salt length.
    pub salt: PssSalt,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self {
            hash: HashAlg::Sha2_256,
            prehashed: false,
            marshaling: Marshaling::Asn1,
            padding: RsaPadding::Pss,
            salt: PssSalt::Auto,
        }
    }
}

enum Inner {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private signing key. aws-lc-rs wipes the key material on drop; `Debug` shows only
/// the kind.
pub struct SigningKey {
    kind: SigningKind,
    inner: Inner,
    /// For RSA, the same private key for RSA-OAEP (aws-lc-rs keeps signing and encrypting
    /// keys apart).
    decrypting: Option<PrivateDecryptingKey>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?}, <redacted>)", self.kind)
    }
}

/// ECDSA parameters per curve: the signing algorithm with the curve's natural hash, the
/// verification algorithms (ASN.1, fixed) and the field size in bytes.
struct Curve {
    signing: &'static EcdsaSigningAlgorithm,
    asn1: &'static EcdsaVerificationAlgorithm,
    fixed: &'static EcdsaVerificationAlgorithm,
    digest: &'static digest::Algorithm,
    field_len: usize,
}

fn curve(kind: SigningKind) -> Option<Curve> {
    Some(match kind {
        SigningKind::EcdsaP256 => Curve {
            signing: &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            asn1: &signature::ECDSA_P256_SHA256_ASN1,
            fixed: &signature::ECDSA_P256_SHA256_FIXED,
            digest: &digest::SHA256,
            field_len: 32,
        },
        SigningKind::EcdsaP384 => Curve {
            signing: &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            asn1: &signature::ECDSA_P384_SHA384_ASN1,
            fixed: &signature::ECDSA_P384_SHA384_FIXED,
            digest: &digest::SHA384,
            field_len: 48,
        },
        SigningKind::EcdsaP521 => Curve {
            signing: &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            asn1: &signature::ECDSA_P521_SHA512_ASN1,
            fixed: &signature::ECDSA_P521_SHA512_FIXED,
            digest: &digest::SHA512,
            field_len: 66,
        },
        _ => return None,
    })
}

static PSS_SHA256_MAX: RsaSignatureEncoding =
    signature::RSA_PSS_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);
static PSS_SHA384_MAX: RsaSignatureEncoding =
    signature::RSA_PSS_SHA384.with_pss_salt_length(RsaPssSaltLength::Max);
static PSS_SHA512_MAX: RsaSignatureEncoding =
    signature::RSA_PSS_SHA512.with_pss_salt_length(RsaPssSaltLength::Max);
static VERIFY_PSS_SHA256_MAX: RsaParameters =
    signature::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);
static VERIFY_PSS_SHA384_MAX: RsaParameters =
    signature::RSA_PSS_2048_8192_SHA384.with_pss_salt_length(RsaPssSaltLength::Max);
static VERIFY_PSS_SHA512_MAX: RsaParameters =
    signature::RSA_PSS_2048_8192_SHA512.with_pss_salt_length(RsaPssSaltLength::Max);

fn rsa_sign_encoding(o: &SignOptions) -> Result<&'static dyn RsaEncoding, CryptoError> {
    Ok(match (o.padding, o.salt, o.hash) {
        (RsaPadding::Pkcs1v15, _, HashAlg::Sha2_256) => &signature::RSA_PKCS1_SHA256,
        (RsaPadding::Pkcs1v15, _, HashAlg::Sha2_384) => &signature::RSA_PKCS1_SHA384,
        (RsaPadding::Pkcs1v15, _, HashAlg::Sha2_512) => &signature::RSA_PKCS1_SHA512,
        (RsaPadding::Pss, PssSalt::Auto, HashAlg::Sha2_256) => &PSS_SHA256_MAX,
        (RsaPadding::Pss, PssSalt::Auto, HashAlg::Sha2_384) => &PSS_SHA384_MAX,
        (RsaPadding::Pss, PssSalt::Auto, HashAlg::Sha2_512) => &PSS_SHA512_MAX,
        (RsaPadding::Pss, PssSalt::Hash, HashAlg::Sha2_256) => &signature::RSA_PSS_SHA256,
        (RsaPadding::Pss, PssSalt::Hash, HashAlg::Sha2_384) => &signature::RSA_PSS_SHA384,
        (RsaPadding::Pss, PssSalt::Hash, HashAlg::Sha2_512) => &signature::RSA_PSS_SHA512,
        _ => return Err(CryptoError::Unsupported),
    })
}

/// The verification algorithms to try, in order (PSS `auto` accepts two salt lengths).
fn rsa_verify_params(o: &SignOptions) -> Result<Vec<&'static RsaParameters>, CryptoError> {
    Ok(match (o.padding, o.salt, o.hash) {
        (RsaPadding::Pkcs1v15, _, HashAlg::Sha2_256) => {
            vec![&signature::RSA_PKCS1_2048_8192_SHA256]
        }
        (RsaPadding::Pkcs1v15, _, HashAlg::Sha2_384) => {
            vec![&signature::RSA_PKCS1_2048_8192_SHA384]
        }
        (RsaPadding::Pkcs1v15, _, HashAlg::Sha2_512) => {
            vec![&signature::RSA_PKCS1_2048_8192_SHA512]
        }
        (RsaPadding::Pss, PssSalt::Auto, HashAlg::Sha2_256) => {
            vec![&VERIFY_PSS_SHA256_MAX, &signature::RSA_PSS_2048_8192_SHA256]
        }
        (RsaPadding::Pss, PssSalt::Auto, HashAlg::Sha2_384) => {
            vec![&VERIFY_PSS_SHA384_MAX, &signature::RSA_PSS_2048_8192_SHA384]
        }
        (RsaPadding::Pss, PssSalt::Auto, HashAlg::Sha2_512) => {
            vec![&VERIFY_PSS_SHA512_MAX, &signature::RSA_PSS_2048_8192_SHA512]
        }
        (RsaPadding::Pss, PssSalt::Hash, HashAlg::Sha2_256) => {
            vec![&signature::RSA_PSS_2048_8192_SHA256]
        }
        (RsaPadding::Pss, PssSalt::Hash, HashAlg::Sha2_384) => {
            vec![&signature::RSA_PSS_2048_8192_SHA384]
        }
        (RsaPadding::Pss, PssSalt::Hash, HashAlg::Sha2_512) => {
            vec![&signature::RSA_PSS_2048_8192_SHA512]
        }
        _ => return Err(CryptoError::Unsupported),
    })
}

/// The hash of the input (or the input itself when prehashed, which must then have the
/// hash's length).
fn input_hash(input: &[u8], o: &SignOptions) -> Result<Vec<u8>, CryptoError> {
    if o.prehashed {
        if input.len() != o.hash.output_len() {
            return Err(CryptoError::Malformed);
        }
        Ok(input.to_vec())
    } else {
        Ok(o.hash.digest(input))
    }
}

/// ECDSA signs `bits2int(H)`: a hash longer than the curve's natural digest is truncated to
/// its leftmost bytes, a shorter one is left-padded with zeros (the same integer). Either
/// way it then has the length of the natural digest the aws-lc-rs key is bound to.
fn ecdsa_digest(c: &Curve, hash: &[u8]) -> Result<Digest, CryptoError> {
    let n = c.digest.output_len();
    let fitted: Vec<u8> = if hash.len() >= n {
        hash[..n].to_vec()
    } else {
        let mut v = vec![0u8; n - hash.len()];
        v.extend_from_slice(hash);
        v
    };
    Digest::import_less_safe(&fitted, c.digest).map_err(|_| CryptoError::Malformed)
}

impl SigningKey {
    /// A fresh key and the private bytes to store (Ed25519: the 32-byte seed; others PKCS#8).
    pub fn generate(kind: SigningKind) -> Result<(Self, SecretBytes), CryptoError> {
        let private = match kind {
            SigningKind::Ed25519 => SecretBytes::new(crate::random_bytes(32)?),
            SigningKind::Rsa2048 | SigningKind::Rsa3072 | SigningKind::Rsa4096 => {
                let size = match kind {
                    SigningKind::Rsa2048 => KeySize::Rsa2048,
                    SigningKind::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let kp = RsaKeyPair::generate(size).map_err(|_| CryptoError::Random)?;
                let der = kp.as_der().map_err(|_| CryptoError::Random)?;
                SecretBytes::new(der.as_ref().to_vec())
            }
            _ => {
                let c = curve(kind).ok_or(CryptoError::Unsupported)?;
                let kp = EcdsaKeyPair::generate(c.signing).map_err(|_| CryptoError::Random)?;
                let der = kp.to_pkcs8v1().map_err(|_| CryptoError::Random)?;
                SecretBytes::new(der.as_ref().to_vec())
            }
        };
        let key = Self::from_private(kind, private.expose())?;
        Ok((key, private))
    }

    /// Loads a key from the bytes [`generate`](Self::generate) returned.
    pub fn from_private(kind: SigningKind, private: &[u8]) -> Result<Self, CryptoError> {
        let mut decrypting = None;
        let inner = match kind {
            SigningKind::Ed25519 => Inner::Ed(
                Ed25519KeyPair::from_seed_unchecked(private).map_err(|_| CryptoError::KeyLength)?,
            ),
            SigningKind::Rsa2048 | SigningKind::Rsa3072 | SigningKind::Rsa4096 => {
                decrypting = Some(
                    PrivateDecryptingKey::from_pkcs8(private)
                        .map_err(|_| CryptoError::KeyLength)?,
                );
                Inner::Rsa(RsaKeyPair::from_pkcs8(private).map_err(|_| CryptoError::KeyLength)?)
            }
            _ => {
                let c = curve(kind).ok_or(CryptoError::Unsupported)?;
                Inner::Ec(
                    EcdsaKeyPair::from_pkcs8(c.signing, private)
                        .map_err(|_| CryptoError::KeyLength)?,
                )
            }
        };
        Ok(Self {
            kind,
            inner,
            decrypting,
        })
    }

    /// Encrypts with RSA-OAEP, SHA-256 for both the hash and MGF1, no label: what Vault's
    /// transit does with an RSA key (Go's `rsa.EncryptOAEP(sha256.New(), ...)`).
    pub fn oaep_encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let private = self.decrypting.as_ref().ok_or(CryptoError::Unsupported)?;
        let public = OaepPublicEncryptingKey::new(private.public_key())
            .map_err(|_| CryptoError::Unsupported)?;
        let most = public.max_plaintext_size(&OAEP_SHA256_MGF1SHA256);
        if plaintext.len() > most {
            return Err(CryptoError::MessageTooLong(most));
        }
        let mut out = vec![0u8; public.ciphertext_size()];
        let written = public
            .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, None)
            .map_err(|_| CryptoError::Random)?
            .len();
        out.truncate(written);
        Ok(out)
    }

    /// Decrypts what [`oaep_encrypt`](Self::oaep_encrypt) (or Vault, or OpenSSL with
    /// `rsa_padding_mode:oaep`, `rsa_oaep_md:sha256`) encrypted under this key.
    pub fn oaep_decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        let private = self.decrypting.as_ref().ok_or(CryptoError::Unsupported)?;
        let oaep =
            OaepPrivateDecryptingKey::new(private.clone()).map_err(|_| CryptoError::Unsupported)?;
        let mut out = SecretBytes::new(vec![0u8; oaep.min_output_size()]);
        let buffer = out.as_mut_vec();
        let written = oaep
            .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, buffer, None)
            .map_err(|_| CryptoError::Authentication)?
            .len();
        buffer.truncate(written);
        Ok(out)
    }

    /// The key's kind.
    pub fn kind(&self) -> SigningKind {
        self.kind
    }

    /// The public key as Vault shows it: base64 of the raw 32 bytes for Ed25519, a PEM
    /// `PUBLIC KEY` (SubjectPublicKeyInfo) for ECDSA and RSA.
    pub fn public_key_text(&self) -> Result<String, CryptoError> {
        let der = match &self.inner {
            Inner::Ed(kp) => return Ok(B64.encode(kp.public_key().as_ref())),
            Inner::Ec(kp) => kp.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Inner::Rsa(kp) => kp.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| CryptoError::Malformed)?;
        Ok(der_to_pem("PUBLIC KEY", &der))
    }

    /// The private key as Vault exports it: base64 of seed || public key for Ed25519, PEM
    /// `EC PRIVATE KEY` (SEC 1) for ECDSA, PEM `RSA PRIVATE KEY` (PKCS#1) for RSA.
    pub fn export_private(&self, stored: &[u8]) -> Result<SecretBytes, CryptoError> {
        let text = match &self.inner {
            Inner::Ed(kp) => {
                let mut both = zeroize::Zeroizing::new(stored.to_vec());
                both.extend_from_slice(kp.public_key().as_ref());
                B64.encode(&both)
            }
            Inner::Ec(kp) => {
                let der = kp
                    .private_key()
                    .as_der()
                    .map_err(|_| CryptoError::Malformed)?;
                der_to_pem("EC PRIVATE KEY", der.as_ref())
            }
            Inner::Rsa(_) => der_to_pem("RSA PRIVATE KEY", pkcs8_inner_key(stored)?),
        };
        Ok(SecretBytes::new(text.into_bytes()))
    }

    /// Signs `input` (the message, or its hash when `prehashed`).
    pub fn sign(&self, input: &[u8], o: &SignOptions) -> Result<Vec<u8>, CryptoError> {
        match &self.inner {
            Inner::Ed(kp) => {
                if o.prehashed {
                    return Err(CryptoError::Unsupported);
                }
                Ok(kp.sign(input).as_ref().to_vec())
            }
            Inner::Ec(kp) => {
                let c = curve(self.kind).ok_or(CryptoError::Unsupported)?;
                let d = ecdsa_digest(&c, &input_hash(input, o)?)?;
                let sig = kp.sign_digest(&d).map_err(|_| CryptoError::Malformed)?;
                match o.marshaling {
                    Marshaling::Asn1 => Ok(sig.as_ref().to_vec()),
                    Marshaling::Jws => ecdsa_der_to_fixed(sig.as_ref(), c.field_len),
                }
            }
            Inner::Rsa(kp) => {
                let encoding = rsa_sign_encoding(o)?;
                let mut sig = vec![0u8; kp.public_modulus_len()];
                if o.prehashed {
                    let d = Digest::import_less_safe(input, o.hash.digest_alg())
                        .map_err(|_| CryptoError::Malformed)?;
                    kp.sign_digest(encoding, &d, &mut sig)
                } else {
                    kp.sign(encoding, &SystemRandom::new(), input, &mut sig)
                }
                .map_err(|_| CryptoError::Malformed)?;
                Ok(sig)
            }
        }
    }

    /// Verifies `sig` over `input`. `Ok(false)` for a signature that does not verify;
    /// `Err` only for an unsupported combination of options.
    pub fn verify(&self, input: &[u8], sig: &[u8], o: &SignOptions) -> Result<bool, CryptoError> {
        let public: &[u8] = match &self.inner {
            Inner::Ed(kp) => kp.public_key().as_ref(),
            Inner::Ec(kp) => kp.public_key().as_ref(),
            Inner::Rsa(kp) => kp.public_key().as_ref(),
        };
        verify_public(self.kind, public, input, sig, o)
    }
}

/// Verifies `sig` over `input` with a bare public key: the raw 32 bytes (Ed25519), the
/// uncompressed point (ECDSA) or a DER `RSAPublicKey` / SubjectPublicKeyInfo (RSA).
pub fn verify_public(
    kind: SigningKind,
    public: &[u8],
    input: &[u8],
    sig: &[u8],
    o: &SignOptions,
) -> Result<bool, CryptoError> {
    match kind {
        SigningKind::Ed25519 => {
            if o.prehashed {
                return Err(CryptoError::Unsupported);
            }
            let pk = UnparsedPublicKey::new(&signature::ED25519, public);
            Ok(pk.verify(input, sig).is_ok())
        }
        SigningKind::Rsa2048 | SigningKind::Rsa3072 | SigningKind::Rsa4096 => {
            let params = rsa_verify_params(o)?;
            let ok = params.into_iter().any(|p| {
                let pk = UnparsedPublicKey::new(p, public);
                if o.prehashed {
                    Digest::import_less_safe(input, o.hash.digest_alg())
                        .is_ok_and(|d| pk.verify_digest(&d, sig).is_ok())
                } else {
                    pk.verify(input, sig).is_ok()
                }
            });
            Ok(ok)
        }
        _ => {
            let c = curve(kind).ok_or(CryptoError::Unsupported)?;
            let Ok(hash) = input_hash(input, o) else {
                return Ok(false);
            };
            let d = ecdsa_digest(&c, &hash)?;
            let alg = match o.marshaling {
                Marshaling::Asn1 => c.asn1,
                Marshaling::Jws => c.fixed,
            };
            let pk = UnparsedPublicKey::new(alg, public);
            Ok(pk.verify_digest(&d, sig).is_ok())
        }
    }
}

/// PEM armour with 64-character lines, as Go's `pem.Encode`.
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SigningKind; 7] = [
        SigningKind::Ed25519,
        SigningKind::EcdsaP256,
        SigningKind::EcdsaP384,
        SigningKind::EcdsaP521,
        SigningKind::Rsa2048,
        SigningKind::Rsa3072,
        SigningKind::Rsa4096,
    ];

    #[test]
    fn every_kind_signs_verifies_and_reloads() {
        for kind in ALL {
            let (key, private) = SigningKey::generate(kind).unwrap();
            let o = SignOptions::default();
            let sig = key.sign(b"msg", &o).unwrap();
            assert!(key.verify(b"msg", &sig, &o).unwrap(), "{kind:?}");
            assert!(!key.verify(b"other", &sig, &o).unwrap(), "{kind:?}");
            let again = SigningKey::from_private(kind, private.expose()).unwrap();
            assert!(again.verify(b"msg", &sig, &o).unwrap());
            assert!(key.public_key_text().unwrap().len() > 40);
            assert!(key.export_private(private.expose()).is_ok());
            assert!(!format!("{key:?}").contains(&hex::encode(&private.expose()[..8])));
        }
    }

    #[test]
    fn ecdsa_and_rsa_options() {
        for kind in [
            SigningKind::EcdsaP256,
            SigningKind::EcdsaP384,
            SigningKind::EcdsaP521,
        ] {
            let (key, _) = SigningKey::generate(kind).unwrap();
            for hash in [
                HashAlg::Sha2_224,
                HashAlg::Sha2_256,
                HashAlg::Sha2_384,
                HashAlg::Sha2_512,
            ] {
                for marshaling in [Marshaling::Asn1, Marshaling::Jws] {
                    let o = SignOptions {
                        hash,
                        marshaling,
                        ..SignOptions::default()
                    };
                    let sig = key.sign(b"m", &o).unwrap();
                    assert!(
                        key.verify(b"m", &sig, &o).unwrap(),
                        "{kind:?} {hash:?} {marshaling:?}"
                    );
                    let prehashed = SignOptions {
                        prehashed: true,
                        ..o
                    };
                    assert!(key.verify(&hash.digest(b"m"), &sig, &prehashed).unwrap());
                }
            }
        }
        let (key, _) = SigningKey::generate(SigningKind::Rsa2048).unwrap();
        for padding in [RsaPadding::Pss, RsaPadding::Pkcs1v15] {
            for salt in [PssSalt::Auto, PssSalt::Hash] {
                for hash in [HashAlg::Sha2_256, HashAlg::Sha2_384, HashAlg::Sha2_512] {
                    let o = SignOptions {
                        hash,
                        padding,
                        salt,
                        ..SignOptions::default()
                    };
                    let sig = key.sign(b"m", &o).unwrap();
                    assert_eq!(sig.len(), 256);
                    assert!(key.verify(b"m", &sig, &o).unwrap());
                    let prehashed = SignOptions {
                        prehashed: true,
                        ..o
                    };
                    let sig2 = key.sign(&hash.digest(b"m"), &prehashed).unwrap();
                    assert!(key.verify(b"m", &sig2, &o).unwrap());
                }
            }
        }
        let o = SignOptions {
            hash: HashAlg::Sha3_256,
            ..SignOptions::default()
        };
        assert_eq!(key.sign(b"m", &o).unwrap_err(), CryptoError::Unsupported);
    }
}
