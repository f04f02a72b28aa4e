//! Shamir seal: initialisation (root key, keyring, unseal shares) and unsealing.
//!
//! Three bootstrap records live outside the barrier, since they are needed to open it:
//! the seal configuration (share counts and salted share digests; no secret), the root key
//! encrypted under the unseal key, and the keyring encrypted under the root key.

use serde::{Deserialize, Serialize};
use ward_crypto::{
    Aes256GcmKey, Key256, Keyring, SecretBytes, combine_shares, constant_time_eq, random_array,
    sha256, split_secret,
};
use ward_store::Storage;

use crate::{CoreError, CoreResult};

const SEAL_CONFIG_KEY: &str = "core/seal-config";
const ROOT_KEY_KEY: &str = "core/root-key";
const KEYRING_KEY: &str = "core/keyring";
const ROOT_KEY_AAD: &[u8] = b"ward/root-key";
const KEYRING_AAD: &[u8] = b"ward/keyring";

/// The persisted seal configuration. Share digests are SHA-256(salt || share): shares carry
/// 256 bits of entropy, so the digests reveal nothing, yet let Ward reject a wrong share
/// at once instead of after the threshold is reached.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct SealConfig {
    #[serde(rename = "type")]
    pub(crate) seal_type: String,
    pub(crate) secret_shares: u8,
    pub(crate) secret_threshold: u8,
    share_salt: String,
    share_digests: Vec<String>,
}

impl SealConfig {
    fn digest(&self, share: &[u8]) -> CoreResult<[u8; 32]> {
        let salt = hex::decode(&self.share_salt)
            .map_err(|_| CoreError::Internal("seal config salt".into()))?;
        let mut input = salt;
        input.extend_from_slice(share);
        Ok(sha256(&input))
    }

    /// True when `share` is one of the shares this configuration issued.
    pub(crate) fn recognises(&self, share: &[u8]) -> CoreResult<bool> {
        let digest = hex::encode(self.digest(share)?);
        let mut found = false;
        for known in &self.share_digests {
            found |= constant_time_eq(known.as_bytes(), digest.as_bytes());
        }
        Ok(found)
    }
}

/// What `init` hands back once: the unseal key shares. Debug shows no content.
pub(crate) struct NewSeal {
    pub(crate) shares: Vec<SecretBytes>,
    pub(crate) keyring: Keyring,
}

/// Reads the seal configuration; `None` before initialisation.
pub(crate) async fn load_config(storage: &dyn Storage) -> CoreResult<Option<SealConfig>> {
    let Some(bytes) = storage.get(SEAL_CONFIG_KEY).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| CoreError::Internal("seal configuration is corrupt".into()))
}

/// Creates and stores the root key, the first keyring and the seal configuration.
pub(crate) async fn initialise(
    storage: &dyn Storage,
    shares: u8,
    threshold: u8,
    now_unix: i64,
) -> CoreResult<NewSeal> {
    let unseal_key = Key256::generate()?;
    let share_list = split_secret(unseal_key.expose(), shares, threshold)
        .map_err(|e| CoreError::bad(e.to_string()))?;
    let salt = random_array::<16>()?;
    let mut config = SealConfig {
        seal_type: "shamir".into(),
        secret_shares: shares,
        secret_threshold: threshold,
        share_salt: hex::encode(salt),
        share_digests: Vec::new(),
    };
    for share in &share_list {
        config
            .share_digests
            .push(hex::encode(config.digest(share.expose())?));
    }
    let root_key = Key256::generate()?;
    let keyring = Keyring::generate(now_unix)?;
    let wrapped_root = Aes256GcmKey::new(&unseal_key)?.seal(root_key.expose(), ROOT_KEY_AAD)?;
    let wrapped_ring =
        Aes256GcmKey::new(&root_key)?.seal(keyring.to_bytes().expose(), KEYRING_AAD)?;
    let config_json =
        serde_json::to_vec(&config).map_err(|e| CoreError::Internal(e.to_string()))?;
    storage
        .commit(vec![
            put_absent(SEAL_CONFIG_KEY, config_json),
            put_absent(ROOT_KEY_KEY, wrapped_root),
            put_absent(KEYRING_KEY, wrapped_ring),
        ])
        .await
        .map_err(|e| match e {
            ward_store::StoreError::Conflict => CoreError::bad("Vault is already initialized"),
            other => other.into(),
        })?;
    Ok(NewSeal {
        shares: share_list,
        keyring,
    })
}

fn put_absent(key: &str, value: Vec<u8>) -> ward_store::Op {
    ward_store::Op {
        key: key.into(),
        expect: ward_store::Expect::Absent,
        action: ward_store::Action::Put(value),
    }
}

/// Recovers the root key and keyring from enough shares. Fails cleanly (never with the
/// wrong keys) when the shares do not belong together.
pub(crate) async fn open(
    storage: &dyn Storage,
    config: &SealConfig,
    shares: &[SecretBytes],
) -> CoreResult<(Key256, Keyring)> {
    let unseal_key = combine_shares(shares, config.secret_threshold)
        .map_err(|_| CoreError::bad("the unseal keys given do not combine into a valid key"))?;
    let unseal_key = Key256::from_slice(unseal_key.expose())
        .map_err(|_| CoreError::bad("the unseal keys given do not combine into a valid key"))?;
    let wrapped_root = storage
        .get(ROOT_KEY_KEY)
        .await?
        .ok_or_else(|| CoreError::Internal("root key record missing".into()))?;
    let root = Aes256GcmKey::new(&unseal_key)?
        .open(&wrapped_root, ROOT_KEY_AAD)
        .map_err(|_| CoreError::bad("the unseal keys given do not combine into a valid key"))?;
    let root_key = Key256::from_slice(root.expose())?;
    let keyring = load_keyring(storage, &root_key).await?;
    Ok((root_key, keyring))
}

async fn load_keyring(storage: &dyn Storage, root_key: &Key256) -> CoreResult<Keyring> {
    let wrapped = storage
        .get(KEYRING_KEY)
        .await?
        .ok_or_else(|| CoreError::Internal("keyring record missing".into()))?;
    let plain = Aes256GcmKey::new(root_key)?.open(&wrapped, KEYRING_AAD)?;
    Ok(Keyring::from_bytes(plain.expose())?)
}

/// Stores a rotated keyring, encrypted under the root key.
pub(crate) async fn store_keyring(
    storage: &dyn Storage,
    root_key: &Key256,
    keyring: &Keyring,
) -> CoreResult<()> {
    let wrapped = Aes256GcmKey::new(root_key)?.seal(keyring.to_bytes().expose(), KEYRING_AAD)?;
    storage.put(KEYRING_KEY, &wrapped).await?;
    Ok(())
}

/// Unseal progress: the distinct, recognised shares submitted so far.
#[derive(Default)]
pub(crate) struct Progress {
    pub(crate) shares: Vec<SecretBytes>,
    pub(crate) nonce: String,
}

impl Progress {
    /// Adds a share unless it was already given; returns how many are held.
    pub(crate) fn add(&mut self, share: SecretBytes) -> usize {
        if self.nonce.is_empty() {
            self.nonce = uuid::Uuid::new_v4().to_string();
        }
        if !self
            .shares
            .iter()
            .any(|s| constant_time_eq(s.expose(), share.expose()))
        {
            self.shares.push(share);
        }
        self.shares.len()
    }

    /// Forgets every share (wiped on drop).
    pub(crate) fn reset(&mut self) {
        self.shares.clear();
        self.nonce.clear();
    }
}

/// Decodes an unseal key as Vault accepts it: base64 or hex.
pub(crate) fn decode_share(text: &str) -> CoreResult<SecretBytes> {
    use base64::Engine;
    let text = text.trim();
    let bytes = hex::decode(text)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .ok_or_else(|| CoreError::bad("'key' must be a valid hex or base64 string"))?;
    Ok(SecretBytes::new(bytes))
}
