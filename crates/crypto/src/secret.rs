//! Newtypes for secret bytes: wiped on drop, never printed.

use zeroize::{Zeroize, ZeroizeOnDrop};

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

/// Secret bytes of any length (a decrypted value, a share, an unseal key). Wiped on drop,
/// spare capacity included; `Debug` prints only the length. Not `Clone` (use
/// [`SecretBytes::duplicate`], so every copy of a secret is visible in the code); `==`
/// compares in constant time for equal lengths.
#[derive(Default)]
pub struct SecretBytes(Vec<u8>);

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        crate::constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for SecretBytes {}

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when this value drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret content.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// An explicit copy (into a new wiping buffer).
    pub fn duplicate(&self) -> Self {
        Self(self.0.clone())
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

impl Drop for SecretBytes {
    fn drop(&mut self) {
        wipe_vec(&mut self.0);
    }
}

/// Wipes a buffer's whole allocation (its length and its spare capacity) and empties it.
pub(crate) fn wipe_vec(buf: &mut Vec<u8>) {
    // Make the spare capacity part of the slice so that it is wiped too (old contents can
    // sit there after a truncate or a shrinking decrypt).
    buf.resize(buf.capacity(), 0);
    wipe(buf);
    buf.clear();
}

/// Overwrites `bytes` with zeros in a way the compiler may not elide (zeroize's volatile
/// writes). Word-sized writes over the aligned middle: a byte-wise volatile loop costs about
/// 0.3 µs per KiB, as much as decrypting it.
pub(crate) fn wipe(bytes: &mut [u8]) {
    let (head, words, tail) = bytemuck::pod_align_to_mut::<u8, u64>(bytes);
    head.zeroize();
    words.zeroize();
    tail.zeroize();
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
    fn wipe_zeroes_every_byte_whatever_the_alignment() {
        for (offset, len) in [(0, 0), (0, 1), (1, 7), (3, 64), (5, 1031), (0, 1024)] {
            let mut buf = vec![0xA5u8; offset + len + 9];
            wipe(&mut buf[offset..offset + len]);
            assert!(buf[..offset].iter().all(|&b| b == 0xA5));
            assert!(buf[offset..offset + len].iter().all(|&b| b == 0));
            assert!(buf[offset + len..].iter().all(|&b| b == 0xA5));
        }
    }

    #[test]
    fn wipe_vec_empties_the_buffer_in_place() {
        let mut buf = Vec::with_capacity(100);
        buf.extend_from_slice(&[0x5A; 100]);
        buf.truncate(10);
        let pointer = buf.as_ptr();
        wipe_vec(&mut buf);
        assert!(buf.is_empty());
        assert_eq!(buf.capacity(), 100);
        assert_eq!(buf.as_ptr(), pointer);
    }

    #[test]
    fn equality_compares_content_and_copies_are_explicit() {
        let a = SecretBytes::new(b"same".to_vec());
        let b = a.duplicate();
        assert_eq!(a, b);
        assert_ne!(a, SecretBytes::new(b"samf".to_vec()));
        assert_ne!(a, SecretBytes::new(b"sam".to_vec()));
        assert_eq!(SecretBytes::default(), SecretBytes::new(Vec::new()));
    }

    #[test]
    fn wrong_key_length_is_an_error() {
        assert_eq!(
            Key256::from_slice(&[0; 31]).unwrap_err(),
            CryptoError::KeyLength
        );
    }
}
