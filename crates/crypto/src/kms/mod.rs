//! Primitives for the transit engine (Ward's KMS): AEADs with Vault's ciphertext layout,
//! hashes and HMACs by Vault's algorithm names, HKDF key derivation, and signing keys.
//!
//! Everything here is pure computation over bytes; key storage, versions and policy live in
//! the engine. Key bytes are held in wiping types and never appear in `Debug` output.

mod aead;
mod der;
mod sign;

pub(crate) use aead::AEAD_OVERHEAD;
pub use aead::{Aead, AeadKey};
pub use sign::{
    Marshaling, PssSalt, RsaPadding, SignOptions, SigningKey, SigningKind, der_to_pem,
    verify_public,
};

use aws_lc_rs::{digest, hkdf, hmac};

use crate::{CryptoError, SecretBytes};

/// Hash algorithms by their Vault names (`sha2-256`, `sha3-512`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-224.
    Sha2_224,
    /// SHA-256.
    Sha2_256,
    /// SHA-384.
    Sha2_384,
    /// SHA-512.
    Sha2_512,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

impl HashAlg {
    /// Parses a Vault algorithm name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sha2-224" => Self::Sha2_224,
            "sha2-256" => Self::Sha2_256,
            "sha2-384" => Self::Sha2_384,
            "sha2-512" => Self::Sha2_512,
            "sha3-256" => Self::Sha3_256,
            "sha3-384" => Self::Sha3_384,
            "sha3-512" => Self::Sha3_512,
            _ => return None,
        })
    }

    /// The Vault name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha2_224 => "sha2-224",
            Self::Sha2_256 => "sha2-256",
            Self::Sha2_384 => "sha2-384",
            Self::Sha2_512 => "sha2-512",
            Self::Sha3_256 => "sha3-256",
            Self::Sha3_384 => "sha3-384",
            Self::Sha3_512 => "sha3-512",
        }
    }

    pub(crate) fn digest_alg(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha2_224 => &digest::SHA224,
            Self::Sha2_256 => &digest::SHA256,
            Self::Sha2_384 => &digest::SHA384,
            Self::Sha2_512 => &digest::SHA512,
            Self::Sha3_256 => &digest::SHA3_256,
            Self::Sha3_384 => &digest::SHA3_384,
            Self::Sha3_512 => &digest::SHA3_512,
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        self.digest_alg().output_len()
    }

    /// The hash of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_alg(), data).as_ref().to_vec()
    }

    fn hmac_alg(self) -> Option<hmac::Algorithm> {
        match self {
            Self::Sha2_224 => Some(hmac::HMAC_SHA224),
            Self::Sha2_256 => Some(hmac::HMAC_SHA256),
            Self::Sha2_384 => Some(hmac::HMAC_SHA384),
            Self::Sha2_512 => Some(hmac::HMAC_SHA512),
            _ => None,
        }
    }

    /// HMAC of `data` under `key` (SHA-2 family only).
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let alg = self.hmac_alg().ok_or(CryptoError::Unsupported)?;
        Ok(hmac::sign(&hmac::Key::new(alg, key), data)
            .as_ref()
            .to_vec())
    }

    /// Checks an HMAC in constant time.
    pub fn hmac_verify(self, key: &[u8], data: &[u8], tag: &[u8]) -> Result<bool, CryptoError> {
        let alg = self.hmac_alg().ok_or(CryptoError::Unsupported)?;
        Ok(hmac::verify(&hmac::Key::new(alg, key), data, tag).is_ok())
    }
}

/// HKDF-SHA256 with an empty salt and `info` as context: Vault's `hkdf_sha256` key
/// derivation for derived transit keys.
pub fn hkdf_sha256(secret: &[u8], info: &[u8], len: usize) -> Result<SecretBytes, CryptoError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(secret);
    let info = [info];
    let okm = prk
        .expand(&info, Len(len))
        .map_err(|_| CryptoError::KeyLength)?;
    let mut out = SecretBytes::new(vec![0u8; len]);
    okm.fill(out.as_mut_vec())
        .map_err(|_| CryptoError::KeyLength)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_names_round_trip() {
        for n in [
            "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-256", "sha3-384", "sha3-512",
        ] {
            assert_eq!(HashAlg::from_name(n).unwrap().name(), n);
        }
        assert!(HashAlg::from_name("md5").is_none());
        assert!(HashAlg::Sha3_256.hmac(b"k", b"d").is_err());
    }

    #[test]
    fn hkdf_rfc5869_case_3() {
        // RFC 5869 A.3: SHA-256, zero-length salt and info.
        let ikm = [0x0bu8; 22];
        let okm = hkdf_sha256(&ikm, &[], 42).unwrap();
        assert_eq!(
            hex::encode(okm.expose()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
    }
}
