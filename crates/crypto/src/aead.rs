//! AES-256-GCM with random 96-bit nonces, the one AEAD of the key hierarchy. It is the transit
//! engine's [`Aead::Aes256Gcm`] with a random nonce, so both write one layout:
//! `nonce (12) || ciphertext || tag (16)`. Random nonces are safe here because every key
//! encrypts far fewer than 2^32 messages before it is rotated (keyring terms, per-version data
//! keys).

use crate::kms::{Aead, AeadKey};
use crate::{CryptoError, Key256, SecretBytes};

/// Bytes that [`Aes256GcmKey::seal`] adds to a plaintext: nonce plus tag.
pub const AES_GCM_OVERHEAD: usize = crate::kms::AEAD_OVERHEAD;

/// An AES-256-GCM key ready for use. aws-lc-rs holds the expanded key and wipes it on drop.
pub struct Aes256GcmKey(AeadKey);

impl Aes256GcmKey {
    /// Prepares `key` for encryption and decryption.
    pub fn new(key: &Key256) -> Result<Self, CryptoError> {
        Aead::Aes256Gcm.prepare(key.expose()).map(Self)
    }

    /// Encrypts `plaintext` under a random nonce, binding `aad` (authenticated, not encrypted).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(None, plaintext, aad)
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.0.open(sealed, aad)
    }
}

impl std::fmt::Debug for Aes256GcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aes256GcmKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Aes256GcmKey {
        Aes256GcmKey::new(&Key256::generate().unwrap()).unwrap()
    }

    #[test]
    fn round_trip_with_aad() {
        let k = key();
        let sealed = k.seal(b"value", b"path/a").unwrap();
        assert_eq!(sealed.len(), 5 + AES_GCM_OVERHEAD);
        assert_eq!(k.open(&sealed, b"path/a").unwrap().expose(), b"value");
    }

    #[test]
    fn wrong_aad_tamper_or_key_fail_authentication() {
        let k = key();
        let mut sealed = k.seal(b"value", b"path/a").unwrap();
        assert_eq!(
            k.open(&sealed, b"path/b").unwrap_err(),
            CryptoError::Authentication
        );
        assert_eq!(
            key().open(&sealed, b"path/a").unwrap_err(),
            CryptoError::Authentication
        );
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(
            k.open(&sealed, b"path/a").unwrap_err(),
            CryptoError::Authentication
        );
        assert_eq!(
            k.open(&sealed[..10], b"path/a").unwrap_err(),
            CryptoError::Malformed
        );
    }

    #[test]
    fn nonces_differ_between_seals() {
        let k = key();
        assert_ne!(k.seal(b"v", b"").unwrap(), k.seal(b"v", b"").unwrap());
    }

    #[test]
    fn nist_gcm_known_answer() {
        // NIST GCM test vector (gcmEncryptExtIV256, Count 0 with 128-bit plaintext):
        // Key feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308,
        // IV cafebabefacedbaddecaf888, from the GCM specification's test case 15 (prefix).
        let key = Key256::from_slice(
            &hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
                .unwrap(),
        )
        .unwrap();
        let k = Aes256GcmKey::new(&key).unwrap();
        let pt = hex::decode(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
        )
        .unwrap();
        let ct = hex::decode(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
        )
        .unwrap();
        let tag = hex::decode("b094dac5d93471bdec1a502270e3cc6c").unwrap();
        let mut sealed = hex::decode("cafebabefacedbaddecaf888").unwrap();
        sealed.extend_from_slice(&ct);
        sealed.extend_from_slice(&tag);
        assert_eq!(k.open(&sealed, b"").unwrap().expose(), pt.as_slice());
    }
}
