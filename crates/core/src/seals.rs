//! The seal: what wraps the root key. [`Seal`] is the one interface; [`ShamirSeal`] (a key
//! the operators' shares combine into), [`DevSeal`] (a key held in the process, for tests)
//! and `ward-hsm`'s PKCS#11 seal implement it. A cloud KMS or an enclave-backed seal is one
//! more implementation: wrap and unwrap 32 bytes with a key that never leaves its keeper.
//!
//! The core keeps no I/O of its own: a seal that talks to a device or a service is built by
//! the server from its configuration and handed in as a value ([`crate::Core::set_seal`]).

use ward_crypto::{Aes256GcmKey, Key256, SecretBytes};

/// Why a seal could not wrap or unwrap. The messages name what failed, never key material
/// or a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The seal's key cannot be reached now (library absent, token missing, service down):
    /// retrying later may succeed.
    #[error("the {seal} seal is unreachable")]
    Unreachable {
        /// The seal's type, e.g. `pkcs11`.
        seal: String,
        /// What failed, from the seal's own library.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The seal was reached and refused this server's credentials (a wrong, expired or
    /// locked PIN). Retrying would not help and may harm: each try counts as one more failed
    /// login, and a hardware HSM locks its PIN after a few. The configuration must be fixed
    /// and the server restarted.
    #[error("the {seal} seal refused this server's credentials")]
    CredentialsRefused {
        /// The seal's type.
        seal: String,
        /// What the seal said, from its own library (never the credentials themselves).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The seal was reached but refused the wrapped value (another key, or tampered).
    #[error("the {seal} seal could not unwrap the root key")]
    Refused {
        /// The seal's type.
        seal: String,
        /// The seal's own reason, when it gives one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Wraps and unwraps the root key with a key the seal keeps. Implementations are called from
/// a blocking thread (a device may take its time) and must be safe to share.
pub trait Seal: Send + Sync {
    /// The type `sys/seal-status` reports: `shamir`, `pkcs11`, `dev`, ...
    fn seal_type(&self) -> &str;

    /// Wraps `plaintext` (the root key), binding `aad` to the result.
    fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError>;

    /// Unwraps what [`Seal::wrap`] gave with the same `aad`.
    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<SecretBytes, SealError>;
}

/// The Shamir seal: the root key wrapped (AES-256-GCM) under the unseal key that a quorum of
/// shares combines into. Built for one unseal and dropped (the key is wiped on drop).
pub struct ShamirSeal {
    unseal_key: Aes256GcmKey,
}

impl ShamirSeal {
    /// The seal of `unseal_key`.
    pub fn new(unseal_key: &Key256) -> Result<Self, ward_crypto::CryptoError> {
        Ok(Self {
            unseal_key: Aes256GcmKey::new(unseal_key)?,
        })
    }
}

impl Seal for ShamirSeal {
    fn seal_type(&self) -> &str {
        "shamir"
    }

    fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        self.unseal_key
            .seal(plaintext, aad)
            .map_err(|e| SealError::Refused {
                seal: "shamir".into(),
                source: Some(Box::new(e)),
            })
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<SecretBytes, SealError> {
        self.unseal_key
            .open(wrapped, aad)
            .map_err(|e| SealError::Refused {
                seal: "shamir".into(),
                source: Some(Box::new(e)),
            })
    }
}

/// A seal whose key lives in this process only: it unseals by itself like an HSM seal, and
/// lets the automatic-seal paths be tested without a device. Never for production: the key
/// dies with the process, and the data with it.
pub struct DevSeal {
    key: Aes256GcmKey,
}

impl DevSeal {
    /// A seal with a fresh random key.
    pub fn generate() -> Result<Self, ward_crypto::CryptoError> {
        Ok(Self {
            key: Aes256GcmKey::new(&Key256::generate()?)?,
        })
    }
}

impl Seal for DevSeal {
    fn seal_type(&self) -> &str {
        "dev"
    }

    fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        self.key
            .seal(plaintext, aad)
            .map_err(|e| SealError::Refused {
                seal: "dev".into(),
                source: Some(Box::new(e)),
            })
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<SecretBytes, SealError> {
        self.key.open(wrapped, aad).map_err(|e| SealError::Refused {
            seal: "dev".into(),
            source: Some(Box::new(e)),
        })
    }
}

/// The seal the server was configured with, when it is not Shamir. `disabled` is Vault's
/// `disabled = "true"`: the seal is being migrated away from (back to Shamir), and is kept
/// only to unwrap the root key once more.
#[derive(Clone)]
pub struct ConfiguredSeal {
    /// The seal.
    pub seal: std::sync::Arc<dyn Seal>,
    /// Migrating away from this seal.
    pub disabled: bool,
}

impl std::fmt::Debug for ConfiguredSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredSeal")
            .field("type", &self.seal.seal_type())
            .field("disabled", &self.disabled)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shamir_and_dev_seals_round_trip_and_bind_the_aad() -> Result<(), Box<dyn std::error::Error>>
    {
        let seals: Vec<Box<dyn Seal>> = vec![
            Box::new(ShamirSeal::new(&Key256::generate()?)?),
            Box::new(DevSeal::generate()?),
        ];
        for seal in seals {
            let wrapped = seal.wrap(b"root key bytes", b"aad")?;
            assert_eq!(seal.unwrap(&wrapped, b"aad")?.expose(), b"root key bytes");
            assert!(matches!(
                seal.unwrap(&wrapped, b"other"),
                Err(SealError::Refused { .. })
            ));
        }
        Ok(())
    }
}
