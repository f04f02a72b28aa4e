//! An Ed25519 public key that checks signatures: the public half of an audit device's
//! checkpoint key, which `ward audit verify` and `ward report compliance` check checkpoints
//! with (one type for both; the signing half stays in the core, behind the barrier).

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use ward_api::audit::{CheckpointKey, parse_ed25519};

/// An Ed25519 public key (32 bytes), checked with aws-lc-rs. Public: `Debug` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ed25519PublicKey([u8; 32]);

impl Ed25519PublicKey {
    /// The key from its 32 bytes; `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The key from `ed25519:<hex>` (or bare hex), as `sys/audit` shows it; `None` unless
    /// that is 32 bytes of hex.
    pub fn from_text(text: &str) -> Option<Self> {
        Self::from_bytes(&parse_ed25519(text)?)
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

impl CheckpointKey for Ed25519PublicKey {
    fn public_key(&self) -> &[u8] {
        &self.0
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        Ed25519PublicKey::verify(self, message, signature)
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use ward_api::audit::ed25519_text;

    use super::*;

    #[test]
    fn verifies_its_own_signatures_only() {
        let pair = Ed25519KeyPair::generate().unwrap();
        let text = ed25519_text(pair.public_key().as_ref());
        let key = Ed25519PublicKey::from_text(&text).unwrap();
        assert_eq!(CheckpointKey::public_key(&key), pair.public_key().as_ref());
        let signature = pair.sign(b"head");
        assert!(key.verify(b"head", signature.as_ref()));
        assert!(!key.verify(b"head!", signature.as_ref()));
        let other = Ed25519KeyPair::generate().unwrap();
        assert!(!key.verify(b"head", other.sign(b"head").as_ref()));
    }

    #[test]
    fn refuses_anything_but_32_bytes_of_hex() {
        assert!(Ed25519PublicKey::from_text(&format!("ed25519:{}", "ab".repeat(32))).is_some());
        assert!(Ed25519PublicKey::from_text(&"ab".repeat(32)).is_some());
        assert!(Ed25519PublicKey::from_text(&format!("ed25519:{}", "ab".repeat(31))).is_none());
        assert!(Ed25519PublicKey::from_text(&format!("ed25519:{}", "ab".repeat(33))).is_none());
        assert!(Ed25519PublicKey::from_text("ed25519:zz").is_none());
    }
}
