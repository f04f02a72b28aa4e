//! The crate's one error type.

/// What can go wrong in a cryptographic operation. Messages never contain key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authenticated decryption failed: wrong key, wrong associated data, or tampered data.
    #[error("message authentication failed")]
    Authentication,
    /// Input too short or otherwise not in the expected format.
    #[error("malformed ciphertext or encoding")]
    Malformed,
    /// A key of the wrong length was supplied.
    #[error("invalid key length")]
    KeyLength,
    /// Shamir parameters out of range (threshold 1..=shares, shares 1..=255).
    #[error("invalid secret sharing parameters: {0}")]
    SharingParameters(&'static str),
    /// The shares given cannot be combined (too few, duplicates, mixed lengths).
    #[error("shares cannot be combined: {0}")]
    Shares(&'static str),
    /// The keyring has no term with this number.
    #[error("unknown keyring term {0}")]
    UnknownTerm(u32),
    /// The algorithm, or this combination of options, is not supported.
    #[error("unsupported algorithm or option")]
    Unsupported,
    /// The message is longer than the key can encrypt (RSA-OAEP: the modulus less the
    /// padding); the field is the most it can.
    #[error("message too long for the key: at most {0} bytes")]
    MessageTooLong(usize),
    /// The operating system's random number generator failed.
    #[error("random number generator failure")]
    Random,
}
