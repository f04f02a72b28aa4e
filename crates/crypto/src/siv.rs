//! Deterministic encryption of storage path segments (AES-SIV, RFC 5297).
//!
//! The barrier must hide path names from the database, yet still find an entry by its path
//! and list a folder's children. Encrypting each segment deterministically, with the parent
//! path as associated data, keeps lookups and prefix listing possible while revealing only
//! which entries share a parent (the tree's shape), not any name.

use aes_siv::{KeyInit, siv::Aes256Siv};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Encrypts and decrypts path segments under a 512-bit AES-SIV key.
pub struct PathCipher {
    key: Zeroizing<[u8; 64]>,
}

impl PathCipher {
    /// Builds the cipher from 64 key bytes.
    pub fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; 64] = key.try_into().map_err(|_| CryptoError::KeyLength)?;
        Ok(Self {
            key: Zeroizing::new(array),
        })
    }

    /// A fresh random key, for a new keyring.
    pub fn generate_key() -> Result<Zeroizing<[u8; 64]>, CryptoError> {
        Ok(Zeroizing::new(crate::random_array::<64>()?))
    }

    /// The raw key, for persisting inside the (encrypted) keyring.
    pub fn key_bytes(&self) -> &[u8; 64] {
        &self.key
    }

    fn cipher(&self) -> Aes256Siv {
        Aes256Siv::new((&*self.key).into())
    }

    /// Encrypts one segment under its parent; the result is URL-safe base64 with no `/`.
    pub fn encrypt_segment(&self, parent: &str, segment: &str) -> Result<String, CryptoError> {
        let sealed = self
            .cipher()
            .encrypt([parent.as_bytes()], segment.as_bytes())
            .map_err(|_| CryptoError::Malformed)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Reverses [`encrypt_segment`](Self::encrypt_segment).
    pub fn decrypt_segment(&self, parent: &str, encoded: &str) -> Result<String, CryptoError> {
        let sealed = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| CryptoError::Malformed)?;
        let plain = self
            .cipher()
            .decrypt([parent.as_bytes()], &sealed)
            .map_err(|_| CryptoError::Authentication)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Malformed)
    }
}

impl std::fmt::Debug for PathCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PathCipher(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_deterministically_and_depend_on_parent() {
        let key = PathCipher::generate_key().unwrap();
        let c = PathCipher::new(&key[..]).unwrap();
        let a = c.encrypt_segment("logical/", "app").unwrap();
        assert_eq!(a, c.encrypt_segment("logical/", "app").unwrap());
        assert_ne!(a, c.encrypt_segment("other/", "app").unwrap());
        assert!(!a.contains('/') && !a.contains("app"));
        assert_eq!(c.decrypt_segment("logical/", &a).unwrap(), "app");
        assert!(c.decrypt_segment("other/", &a).is_err());
        assert!(c.decrypt_segment("logical/", "!!").is_err());
    }

    #[test]
    fn instances_with_the_same_key_agree() {
        let c1 = PathCipher::new(&[7u8; 64]).unwrap();
        let c2 = PathCipher::new(&[7u8; 64]).unwrap();
        assert_eq!(
            c1.encrypt_segment("", "x").unwrap(),
            c2.encrypt_segment("", "x").unwrap()
        );
    }
}
