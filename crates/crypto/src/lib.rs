//! Ward's cryptographic core: the few primitives the key hierarchy needs, from audited
//! libraries only (aws-lc-rs for AES-GCM, SHA-2 and HMAC; RustCrypto's AES-SIV for
//! deterministic path encryption; blahaj for Shamir's secret sharing over GF(256)).
//!
//! No I/O, no clocks beyond what callers pass in, no unsafe code. Every type that holds key
//! material wipes it on drop and has a `Debug` that shows no content.

mod aead;
mod ed25519;
mod error;
mod hash;
mod keyring;
pub mod kms;
mod random;
mod secret;
mod shamir;
mod siv;

pub use aead::{AES_GCM_OVERHEAD, Aes256GcmKey};
pub use ed25519::Ed25519PublicKey;
pub use error::CryptoError;
pub use hash::{
    HmacSha256Key, Sha256Stream, constant_time_eq, hmac_sha256, lower_hex, push_lower_hex, sha256,
    sha256_hex,
};
pub use keyring::{Keyring, Term};
pub use random::{fill_random, random_array, random_bytes, random_chars, random_nonce};
pub use secret::{Key256, SecretBytes};
pub use shamir::{combine_shares, split_secret};
pub use siv::PathCipher;
