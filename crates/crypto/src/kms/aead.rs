//! The transit AEADs, with Vault's layout: `nonce (12) || ciphertext || tag (16)`.

use aws_lc_rs::aead::{
    AES_128_GCM, AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce,
    UnboundKey,
};

use crate::{CryptoError, SecretBytes};

/// Bytes of authentication tag the AEADs append.
const TAG_LEN: usize = 16;

/// Bytes that sealing adds to a plaintext: nonce plus tag.
pub(crate) const AEAD_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// An AEAD cipher of the transit engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aead {
    /// AES-128-GCM, 96-bit nonce.
    Aes128Gcm,
    /// AES-256-GCM, 96-bit nonce.
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 8439).
    ChaCha20Poly1305,
}

impl Aead {
    fn algorithm(self) -> &'static Algorithm {
        match self {
            Self::Aes128Gcm => &AES_128_GCM,
            Self::Aes256Gcm => &AES_256_GCM,
            Self::ChaCha20Poly1305 => &CHACHA20_POLY1305,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        self.algorithm().key_len()
    }

    /// Nonce length in bytes (12 for all three).
    pub fn nonce_len(self) -> usize {
        NONCE_LEN
    }

    fn key(self, key: &[u8]) -> Result<LessSafeKey, CryptoError> {
        let unbound = UnboundKey::new(self.algorithm(), key).map_err(|_| CryptoError::KeyLength)?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Prepares `key` (expands its schedule once) for many operations.
    pub fn prepare(self, key: &[u8]) -> Result<AeadKey, CryptoError> {
        Ok(AeadKey {
            aead: self,
            key: self.key(key)?,
        })
    }

    /// Encrypts `plaintext` under `key` with `nonce` (random when `None`; a caller-chosen
    /// nonce is only for convergent encryption, where it is derived from the plaintext).
    pub fn seal(
        self,
        key: &[u8],
        nonce: Option<[u8; NONCE_LEN]>,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.prepare(key)?.seal(nonce, plaintext, aad)
    }

    /// Decrypts what [`seal`](Self::seal) produced; any tampering is
    /// [`CryptoError::Authentication`], a too-short input [`CryptoError::Malformed`].
    pub fn open(self, key: &[u8], sealed: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.prepare(key)?.open(sealed, aad)
    }
}

/// A key prepared for one AEAD. aws-lc-rs wipes the expanded key on drop; `Debug` shows
/// only the algorithm.
pub struct AeadKey {
    aead: Aead,
    key: LessSafeKey,
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AeadKey({:?}, <redacted>)", self.aead)
    }
}

impl AeadKey {
    /// See [`Aead::seal`].
    pub fn seal(
        &self,
        nonce: Option<[u8; NONCE_LEN]>,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes = match nonce {
            Some(n) => n,
            None => crate::random::random_nonce::<NONCE_LEN>()?,
        };
        let mut out = Vec::with_capacity(plaintext.len() + AEAD_OVERHEAD);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Malformed)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// See [`Aead::open`].
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        if sealed.len() < AEAD_OVERHEAD {
            return Err(CryptoError::Malformed);
        }
        let (nonce_bytes, rest) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| CryptoError::Malformed)?;
        // Decrypt in place inside the wiping buffer, so no clear copy is left in freed memory.
        let mut buf = SecretBytes::new(rest.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_vec())
            .map_err(|_| CryptoError::Authentication)?
            .len();
        buf.as_mut_vec().truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_for_each_cipher() {
        for aead in [Aead::Aes128Gcm, Aead::Aes256Gcm, Aead::ChaCha20Poly1305] {
            let key = vec![7u8; aead.key_len()];
            let sealed = aead.seal(&key, None, b"hello", b"ad").unwrap();
            assert_eq!(sealed.len(), 12 + 5 + 16);
            assert_eq!(aead.open(&key, &sealed, b"ad").unwrap().expose(), b"hello");
            assert_eq!(
                aead.open(&key, &sealed, b"other").unwrap_err(),
                CryptoError::Authentication
            );
            let mut bad = sealed.clone();
            bad[14] ^= 1;
            assert!(aead.open(&key, &bad, b"ad").is_err());
            assert_eq!(
                aead.open(&key, &sealed[..20], b"ad").unwrap_err(),
                CryptoError::Malformed
            );
            assert!(aead.seal(&key[1..], None, b"x", b"").is_err());
        }
    }
}
