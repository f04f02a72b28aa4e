//! Newtypes for secret bytes: wiped on drop, never printed.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;

/// A 256-bit symmetric key. Zeroized on drop; `Debug` prints no content; not `Clone`
/// (use [`Key256::duplicate`] where a second owner is really needed).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Key256([u8; 32]);

impl Key256 {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(crate::random_array::<32>()?))
    }

    /// Wraps existing key bytes (copied from `bytes`, which the caller should wipe).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::KeyLength)?;
        Ok(Self(array))
    }

    /// The raw key bytes, for handing to a cipher.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// An explicit copy, so every duplication of key material is visible in the code.
    pub fn duplicate(&self) -> Self {
        Self(self.0)
    }
}

impl std::fmt::Debug for Key256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key256(<redacted>)")
    }
}

/// Secret bytes of any length (a decrypted value, a share, an unseal key). Zeroized on drop;
/// `Debug` prints only the length.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when this value drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret content.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The buffer itself, for in-place decryption inside the wiping wrapper.
    pub(crate) fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_content() {
        let key = Key256::from_slice(&[0xAB; 32]).unwrap();
        let secret = SecretBytes::new(b"hunter2-marker".to_vec());
        let shown = format!("{key:?} {secret:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.to_lowercase().contains("ab, ab") && !shown.contains("171"));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn wrong_key_length_is_an_error() {
        assert_eq!(
            Key256::from_slice(&[0; 31]).unwrap_err(),
            CryptoError::KeyLength
        );
    }
}
