//! A transit key's public state: type, flags, versions and their lifecycle states, Ward's
//! metadata. Key material lives apart (see `store`), sealed under the mount's KEK.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use ward_crypto::kms::{Aead, SigningKind};

use crate::params::Params;
use crate::{CoreError, CoreResult};

/// The key types Vault's transit knows (minus managed keys and AES-CMAC).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    #[serde(rename = "aes128-gcm96")]
    Aes128Gcm96,
    #[serde(rename = "aes256-gcm96")]
    Aes256Gcm96,
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
    #[serde(rename = "ed25519")]
    Ed25519,
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    #[serde(rename = "ecdsa-p521")]
    EcdsaP521,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    #[serde(rename = "hmac")]
    Hmac,
}

const ALL_TYPES: [KeyType; 11] = [
    KeyType::Aes128Gcm96,
    KeyType::Aes256Gcm96,
    KeyType::ChaCha20Poly1305,
    KeyType::Ed25519,
    KeyType::EcdsaP256,
    KeyType::EcdsaP384,
    KeyType::EcdsaP521,
    KeyType::Rsa2048,
    KeyType::Rsa3072,
    KeyType::Rsa4096,
    KeyType::Hmac,
];

impl KeyType {
    pub(crate) fn parse(name: &str) -> CoreResult<Self> {
        ALL_TYPES
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| CoreError::bad(format!("unknown key type {name}")))
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Aes128Gcm96 => "aes128-gcm96",
            Self::Aes256Gcm96 => "aes256-gcm96",
            Self::ChaCha20Poly1305 => "chacha20-poly1305",
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::EcdsaP521 => "ecdsa-p521",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::Hmac => "hmac",
        }
    }

    pub(crate) fn aead(self) -> Option<Aead> {
        match self {
            Self::Aes128Gcm96 => Some(Aead::Aes128Gcm),
            Self::Aes256Gcm96 => Some(Aead::Aes256Gcm),
            Self::ChaCha20Poly1305 => Some(Aead::ChaCha20Poly1305),
            _ => None,
        }
    }

    pub(crate) fn signing(self) -> Option<SigningKind> {
        Some(match self {
            Self::Ed25519 => SigningKind::Ed25519,
            Self::EcdsaP256 => SigningKind::EcdsaP256,
            Self::EcdsaP384 => SigningKind::EcdsaP384,
            Self::EcdsaP521 => SigningKind::EcdsaP521,
            Self::Rsa2048 => SigningKind::Rsa2048,
            Self::Rsa3072 => SigningKind::Rsa3072,
            Self::Rsa4096 => SigningKind::Rsa4096,
            _ => return None,
        })
    }

    /// Whether keys of this type encrypt and decrypt: the AEADs, and RSA with OAEP.
    pub(crate) fn encrypts(self) -> bool {
        self.aead().is_some() || matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    /// Whether keys of this type may be derived from a context.
    pub(crate) fn supports_derivation(self) -> bool {
        self.aead().is_some() || self == Self::Ed25519
    }
}

/// Ward's lifecycle of one key version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum VersionState {
    /// Encrypts, decrypts, signs, verifies.
    #[default]
    Active,
    /// Decrypt-only: no new ciphertexts or signatures.
    Deactivated,
    /// Suspected leaked: no new ciphertexts or signatures; decryption only when the key's
    /// `allow_compromised_decrypt` is set, for recovery.
    Compromised,
    /// Key material erased; nothing works with this version any more.
    Destroyed,
}

impl VersionState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Compromised => "compromised",
            Self::Destroyed => "destroyed",
        }
    }
}

/// What the engine knows of one version besides its material.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct VersionInfo {
    /// Creation time, seconds since the epoch.
    pub(crate) time: i64,
    /// Creation time, RFC 3339 (shown for asymmetric keys).
    pub(crate) creation_time: String,
    #[serde(default)]
    pub(crate) state: VersionState,
    /// The public key as Vault shows it (asymmetric types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) public_key: Option<String>,
}

/// Ward's key metadata (beyond Vault): who owns a key and what it is for.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct KeyMetadata {
    pub(crate) owner: String,
    pub(crate) purpose: String,
    pub(crate) security_level: String,
    /// RFC 3339; empty for none. After it, the key no longer encrypts or signs.
    pub(crate) expires_at: String,
    pub(crate) labels: Map<String, Value>,
}

impl KeyMetadata {
    /// Applies the metadata fields present in a create or config request.
    pub(crate) fn update(&mut self, p: &Params<'_>) -> CoreResult<()> {
        for (field, slot) in [
            ("owner", &mut self.owner),
            ("purpose", &mut self.purpose),
            ("security_level", &mut self.security_level),
        ] {
            if let Some(v) = p.str(field)? {
                if v.len() > 256 {
                    return Err(CoreError::bad(format!(
                        "invalid value for '{field}': at most 256 bytes"
                    )));
                }
                *slot = v;
            }
        }
        if let Some(v) = p.str("expires_at")? {
            if !v.is_empty() && chrono::DateTime::parse_from_rfc3339(&v).is_err() {
                return Err(CoreError::bad(
                    "invalid value for 'expires_at': expected an RFC 3339 time such as 2030-01-31T00:00:00Z",
                ));
            }
            self.expires_at = v;
        }
        if let Some(labels) = p.str_map("labels")? {
            if labels.len() > 64
                || labels
                    .iter()
                    .any(|(k, v)| k.len() > 128 || v.as_str().map_or(0, str::len) > 512)
            {
                return Err(CoreError::bad(
                    "labels: at most 64 keys, keys up to 128 bytes, values up to 512 bytes",
                ));
            }
            self.labels = labels;
        }
        Ok(())
    }

    /// Whether the key has passed its expiry.
    pub(crate) fn expired(&self) -> bool {
        !self.expires_at.is_empty()
            && chrono::DateTime::parse_from_rfc3339(&self.expires_at)
                .is_ok_and(|t| t <= chrono::Utc::now())
    }
}

/// A key's policy: everything but the key bytes.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct KeyPolicy {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) key_type: KeyType,
    pub(crate) derived: bool,
    pub(crate) convergent_encryption: bool,
    pub(crate) exportable: bool,
    pub(crate) allow_plaintext_backup: bool,
    pub(crate) deletion_allowed: bool,
    pub(crate) min_decryption_version: u32,
    pub(crate) min_encryption_version: u32,
    pub(crate) min_available_version: u32,
    pub(crate) latest_version: u32,
    /// Seconds; 0 for none. Stored and shown; the rotation scheduler acts on it.
    pub(crate) auto_rotate_period: u64,
    /// Bytes of an HMAC key.
    pub(crate) key_size: u32,
    pub(crate) versions: BTreeMap<u32, VersionInfo>,
    #[serde(default)]
    pub(crate) metadata: KeyMetadata,
    /// Recovery switch: lets compromised versions decrypt and verify again.
    #[serde(default)]
    pub(crate) allow_compromised_decrypt: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) backup_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) restore_info: Option<Value>,
}

/// What an operation wants to do with a version.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Encrypt, sign, compute an HMAC, make a data key.
    Produce,
    /// Decrypt, verify a signature or an HMAC.
    Consume,
}

impl KeyPolicy {
    /// The version to produce with: `requested`, or the latest when 0.
    pub(crate) fn producing_version(&self, requested: u32) -> CoreResult<u32> {
        if requested == 0 {
            return Ok(self.latest_version);
        }
        if requested > self.latest_version {
            return Err(CoreError::bad(
                "requested version for encryption is higher than the latest key version",
            ));
        }
        if requested < self.min_encryption_version {
            return Err(CoreError::bad(
                "requested version for encryption is less than the minimum encryption key version",
            ));
        }
        Ok(requested)
    }

    /// Checks that `version` may be used for `what`; the error is the client's message.
    pub(crate) fn check_use(&self, version: u32, what: Use) -> CoreResult<()> {
        if version > self.latest_version {
            return Err(CoreError::bad(
                "invalid ciphertext: version is too new".to_owned(),
            ));
        }
        if what == Use::Consume && version < self.min_decryption_version {
            return Err(CoreError::bad(
                "ciphertext or signature version is disallowed by policy (too old)",
            ));
        }
        let Some(info) = self.versions.get(&version) else {
            return Err(CoreError::bad(format!(
                "key version {version} is no longer available (trimmed)"
            )));
        };
        match (info.state, what) {
            (VersionState::Destroyed, _) => Err(CoreError::bad(format!(
                "key version {version} is destroyed"
            ))),
            (VersionState::Compromised, Use::Produce) => Err(CoreError::bad(format!(
                "key version {version} is compromised and cannot encrypt or sign"
            ))),
            (VersionState::Compromised, Use::Consume) if !self.allow_compromised_decrypt => {
                Err(CoreError::bad(format!(
                    "key version {version} is compromised: decryption and verification with it \
                     are refused unless the key's allow_compromised_decrypt is set"
                )))
            }
            (VersionState::Deactivated, Use::Produce) => Err(CoreError::bad(format!(
                "key version {version} is deactivated (decrypt-only)"
            ))),
            _ if what == Use::Produce && self.metadata.expired() => Err(CoreError::bad(format!(
                "key expired at {}: it can only decrypt and verify",
                self.metadata.expires_at
            ))),
            _ => Ok(()),
        }
    }

    /// Vault's key read response, plus Ward's metadata and version states.
    pub(crate) fn to_json(&self) -> Value {
        let asymmetric = self.key_type.signing().is_some();
        // Vault lists the versions that can still decrypt (it archives those below
        // `min_decryption_version`); their states are all in `version_states`.
        let keys: Map<String, Value> = self
            .versions
            .iter()
            .filter(|(v, _)| **v >= self.min_decryption_version)
            .map(|(v, info)| {
                let value = if asymmetric {
                    let name = match self.key_type {
                        KeyType::EcdsaP256 => "P-256",
                        KeyType::EcdsaP384 => "P-384",
                        KeyType::EcdsaP521 => "P-521",
                        other => other.name(),
                    };
                    json!({
                        "certificate_chain": "",
                        "creation_time": info.creation_time,
                        "name": name,
                        "public_key": info.public_key.clone().unwrap_or_default(),
                    })
                } else {
                    json!(info.time)
                };
                (v.to_string(), value)
            })
            .collect();
        let states: Map<String, Value> = self
            .versions
            .iter()
            .map(|(v, info)| (v.to_string(), json!(info.state.name())))
            .collect();
        let t = self.key_type;
        let mut data = json!({
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "auto_rotate_period": self.auto_rotate_period,
            "deletion_allowed": self.deletion_allowed,
            "derived": self.derived,
            "exportable": self.exportable,
            "imported_key": false,
            "keys": keys,
            "latest_version": self.latest_version,
            "min_available_version": self.min_available_version,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "name": self.name,
            "soft_deleted": false,
            "supports_decryption": t.encrypts(),
            "supports_derivation": t.supports_derivation(),
            "supports_encryption": t.encrypts(),
            "supports_signing": t.signing().is_some(),
            "type": t.name(),
            "owner": self.metadata.owner,
            "purpose": self.metadata.purpose,
            "security_level": self.metadata.security_level,
            "expires_at": self.metadata.expires_at,
            "labels": self.metadata.labels,
            "version_states": states,
            "allow_compromised_decrypt": self.allow_compromised_decrypt,
        });
        if let Some(obj) = data.as_object_mut() {
            if self.derived {
                obj.insert("kdf".into(), json!("hkdf_sha256"));
                obj.insert(
                    "convergent_encryption".into(),
                    json!(self.convergent_encryption),
                );
                if self.convergent_encryption {
                    obj.insert("convergent_encryption_version".into(), json!(3));
                }
            }
            if t == KeyType::Hmac {
                obj.insert("key_size".into(), json!(self.key_size));
            }
            if let Some(b) = &self.backup_info {
                obj.insert("backup_info".into(), b.clone());
            }
            if let Some(r) = &self.restore_info {
                obj.insert("restore_info".into(), r.clone());
            }
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::transit::keys::NewKey;

    fn policy() -> KeyPolicy {
        let fields = serde_json::json!({});
        let key = NewKey::from_params(&Params(fields.as_object().unwrap()))
            .unwrap()
            .build("p")
            .unwrap();
        let mut p = key.policy.clone();
        for v in 2..=4 {
            p.versions.insert(v, p.versions[&1].clone());
        }
        p.latest_version = 4;
        p
    }

    #[test]
    fn version_states_gate_use() {
        let mut p = policy();
        p.versions.get_mut(&1).unwrap().state = VersionState::Deactivated;
        p.versions.get_mut(&2).unwrap().state = VersionState::Compromised;
        p.versions.get_mut(&3).unwrap().state = VersionState::Destroyed;
        assert!(p.check_use(1, Use::Consume).is_ok());
        assert!(p.check_use(1, Use::Produce).is_err());
        assert!(p.check_use(2, Use::Produce).is_err());
        assert!(p.check_use(2, Use::Consume).is_err());
        p.allow_compromised_decrypt = true;
        assert!(p.check_use(2, Use::Consume).is_ok());
        assert!(p.check_use(2, Use::Produce).is_err());
        assert!(p.check_use(3, Use::Consume).is_err());
        assert!(p.check_use(4, Use::Produce).is_ok());
        assert!(p.check_use(5, Use::Consume).is_err());
        p.min_decryption_version = 4;
        assert!(p.check_use(1, Use::Consume).is_err());
        p.metadata.expires_at = "2000-01-01T00:00:00Z".into();
        assert!(p.check_use(4, Use::Produce).is_err());
        assert!(p.check_use(4, Use::Consume).is_ok());
    }

    #[test]
    fn producing_version_respects_bounds() {
        let mut p = policy();
        assert_eq!(p.producing_version(0).unwrap(), 4);
        assert_eq!(p.producing_version(2).unwrap(), 2);
        assert!(p.producing_version(5).is_err());
        p.min_encryption_version = 3;
        assert!(p.producing_version(2).is_err());
    }

    #[test]
    fn type_names_round_trip() {
        for t in ALL_TYPES {
            assert_eq!(KeyType::parse(t.name()).unwrap(), t);
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(json, serde_json::json!(t.name()));
        }
        assert!(KeyType::parse("aes-cbc").is_err());
    }
}
