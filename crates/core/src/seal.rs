//! The seal: initialisation (root key, keyring, unseal shares), unseal progress, sealing,
//! and the keyring's rotation. Everything that touches the root key lives here; the
//! transport only translates requests into these calls (see `sys/open.rs`).
//!
//! Three bootstrap records live outside the barrier, since they are needed to open it:
//! the seal configuration (share counts and salted share digests; no secret), the root key
//! wrapped by the seal ([`crate::seals`]: under the unseal key for Shamir, by the HSM's key
//! for PKCS#11), and the keyring encrypted under the root key. An automatic seal adds a
//! fourth: a check value under the recovery key, which proves a quorum of recovery shares
//! without letting them open anything (as in Vault, recovery shares authorise, they do not
//! decrypt).

use serde::{Deserialize, Serialize};
use serde_json::json;
use ward_crypto::{
    Aes256GcmKey, Key256, Keyring, SecretBytes, combine_shares, constant_time_eq, random_array,
    sha256, split_secret,
};
use ward_store::Storage;

use std::sync::Arc;

use crate::core::now;
use crate::seals::{ConfiguredSeal, Seal, ShamirSeal};
use crate::{Core, CoreError, CoreResult, Response};

/// The outcome of initialisation: shown to the operator once, never stored.
pub struct InitOutput {
    /// The unseal key shares (none with an automatic seal).
    pub keys: Vec<SecretBytes>,
    /// The recovery key shares (automatic seals only).
    pub recovery_keys: Vec<SecretBytes>,
    /// The initial root token.
    pub root_token: crate::Token,
}

impl std::fmt::Debug for InitOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitOutput")
            .field("keys", &self.keys.len())
            .field("recovery_keys", &self.recovery_keys.len())
            .finish_non_exhaustive()
    }
}

const SEAL_CONFIG_KEY: &str = "core/seal-config";
const ROOT_KEY_KEY: &str = "core/root-key";
const KEYRING_KEY: &str = "core/keyring";
const RECOVERY_CHECK_KEY: &str = "core/recovery-check";
/// The cluster's id (a UUID as text), in the barrier: made at the first unseal, so every
/// server of a cluster shows the same one and a snapshot carries it.
const CLUSTER_ID_KEY: &str = "core/cluster-id";
const ROOT_KEY_AAD: &[u8] = b"ward/root-key";
const KEYRING_AAD: &[u8] = b"ward/keyring";
const RECOVERY_CHECK_AAD: &[u8] = b"ward/recovery-check";
/// What the recovery check encrypts: a known value, so that opening it proves the key.
const RECOVERY_CHECK_PLAINTEXT: &[u8] = b"ward recovery key";
const SHAMIR: &str = "shamir";

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
            .map_err(|_| CoreError::corrupt("seal configuration (salt)"))?;
        let mut input = salt;
        input.extend_from_slice(share);
        Ok(sha256(&input))
    }

    /// True when the shares are recovery shares (an automatic seal holds the root key).
    pub(crate) fn is_recovery(&self) -> bool {
        self.seal_type != SHAMIR
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
        .map_err(CoreError::corrupt_json("seal configuration"))
}

/// A fresh unseal key, its shares, and the seal configuration that recognises them.
fn split_unseal_key(
    shares: u8,
    threshold: u8,
) -> CoreResult<(Key256, Vec<SecretBytes>, SealConfig)> {
    split_key(shares, threshold, SHAMIR)
}

/// A fresh key (unseal or recovery), its shares, and a configuration of `seal_type` that
/// recognises them.
fn split_key(
    shares: u8,
    threshold: u8,
    seal_type: &str,
) -> CoreResult<(Key256, Vec<SecretBytes>, SealConfig)> {
    let unseal_key = Key256::generate()?;
    let share_list = split_secret(unseal_key.expose(), shares, threshold)
        .map_err(|e| CoreError::bad(e.to_string()))?;
    let salt = random_array::<16>()?;
    let mut config = SealConfig {
        seal_type: seal_type.into(),
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
    Ok((unseal_key, share_list, config))
}

/// Creates and stores the root key, the first keyring and the seal configuration.
pub(crate) async fn initialise(
    storage: &dyn Storage,
    shares: u8,
    threshold: u8,
    now_unix: i64,
) -> CoreResult<NewSeal> {
    let (unseal_key, share_list, config) = split_unseal_key(shares, threshold)?;
    let root_key = Key256::generate()?;
    let keyring = Keyring::generate(now_unix)?;
    let wrapped_root = Aes256GcmKey::new(&unseal_key)?.seal(root_key.expose(), ROOT_KEY_AAD)?;
    let wrapped_ring =
        Aes256GcmKey::new(&root_key)?.seal(keyring.to_bytes().expose(), KEYRING_AAD)?;
    let config_json = serde_json::to_vec(&config).map_err(CoreError::Encode)?;
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

/// Rekeys: `old_shares` (a quorum of the current ones) unlock the root key, which is then
/// wrapped under a fresh unseal key split into `shares` of which `threshold` unseal. The root
/// key and keyring stay as they are; the seal configuration and the wrapped root key are
/// replaced together, and only if no one changed them meanwhile, so the old shares stop
/// working the moment the new ones are handed out.
pub(crate) async fn rekey(
    storage: &dyn Storage,
    old_shares: &[SecretBytes],
    shares: u8,
    threshold: u8,
) -> CoreResult<Vec<SecretBytes>> {
    let stored = read_stored(storage).await?;
    let old_config: SealConfig = serde_json::from_slice(&stored.config_json)
        .map_err(CoreError::corrupt_json("seal configuration"))?;
    if old_config.is_recovery() {
        return Err(CoreError::bad(format!(
            "this server's seal is {}: it has no unseal keys to rekey; rekey the recovery key \
             instead (sys/rekey-recovery-key)",
            old_config.seal_type
        )));
    }
    let root_key = open_root_key(&old_config, old_shares, &stored.wrapped_root)?;
    let (unseal_key, share_list, config) = split_unseal_key(shares, threshold)?;
    let wrapped_root = Aes256GcmKey::new(&unseal_key)?.seal(root_key.expose(), ROOT_KEY_AAD)?;
    replace_seal(
        storage,
        stored,
        &config,
        Some(wrapped_root),
        None,
        |e| match e {
            ward_store::StoreError::Conflict => {
                CoreError::bad("the seal changed during the rekey; start it again")
            }
            other => other.into(),
        },
    )
    .await?;
    Ok(share_list)
}

/// The root key, unwrapped with the unseal key `shares` combine into.
fn open_root_key(
    config: &SealConfig,
    shares: &[SecretBytes],
    wrapped_root: &[u8],
) -> CoreResult<Key256> {
    let unseal_key = combine_key(config, shares)?;
    let root = ShamirSeal::new(&unseal_key)?
        .unwrap(wrapped_root, ROOT_KEY_AAD)
        .map_err(|_| invalid_shares())?;
    Ok(Key256::from_slice(root.expose())?)
}

fn invalid_shares() -> CoreError {
    CoreError::bad("the unseal keys given do not combine into a valid key")
}

/// The key (unseal or recovery) that `shares` combine into; not yet proved right.
fn combine_key(config: &SealConfig, shares: &[SecretBytes]) -> CoreResult<Key256> {
    let key = combine_shares(shares, config.secret_threshold).map_err(|_| invalid_shares())?;
    Key256::from_slice(key.expose()).map_err(|_| invalid_shares())
}

/// The recovery check: a known value encrypted under the recovery key.
fn recovery_check(recovery_key: &Key256) -> CoreResult<Vec<u8>> {
    Ok(Aes256GcmKey::new(recovery_key)?.seal(RECOVERY_CHECK_PLAINTEXT, RECOVERY_CHECK_AAD)?)
}

/// The recovery key `shares` combine into, proved by the stored recovery check.
async fn open_recovery_key(
    storage: &dyn Storage,
    config: &SealConfig,
    shares: &[SecretBytes],
) -> CoreResult<(Key256, Vec<u8>)> {
    let check = storage
        .get(RECOVERY_CHECK_KEY)
        .await?
        .ok_or_else(|| CoreError::corrupt("recovery key check (missing)"))?;
    let key = combine_key(config, shares)?;
    let plain = Aes256GcmKey::new(&key)?
        .open(&check, RECOVERY_CHECK_AAD)
        .map_err(|_| invalid_shares())?;
    if !constant_time_eq(plain.expose(), RECOVERY_CHECK_PLAINTEXT) {
        return Err(invalid_shares());
    }
    Ok((key, check))
}

/// Runs an automatic seal's `unwrap` on a blocking thread: a device may take its time.
async fn seal_unwrap(seal: Arc<dyn Seal>, wrapped: Vec<u8>) -> CoreResult<Key256> {
    let plain = tokio::task::spawn_blocking(move || seal.unwrap(&wrapped, ROOT_KEY_AAD))
        .await
        .map_err(|_| CoreError::Invariant("the seal's thread panicked"))??;
    Ok(Key256::from_slice(plain.expose())?)
}

/// Runs an automatic seal's `wrap` of the root key on a blocking thread, then unwraps the
/// result once, so that a wrapping the seal cannot undo is never stored.
async fn seal_wrap(seal: Arc<dyn Seal>, root_key: &Key256) -> CoreResult<Vec<u8>> {
    let root = root_key.duplicate();
    let wrapper = seal.clone();
    let wrapped = tokio::task::spawn_blocking(move || wrapper.wrap(root.expose(), ROOT_KEY_AAD))
        .await
        .map_err(|_| CoreError::Invariant("the seal's thread panicked"))??;
    let back = seal_unwrap(seal, wrapped.clone()).await?;
    if !constant_time_eq(back.expose(), root_key.expose()) {
        return Err(CoreError::Invariant(
            "the seal unwrapped the root key into something else",
        ));
    }
    Ok(wrapped)
}

/// Initialisation under an automatic seal: the root key wrapped by `seal`, and a recovery
/// key split into `shares` recovery shares of which `threshold` authorise.
pub(crate) async fn initialise_auto(
    storage: &dyn Storage,
    seal: Arc<dyn Seal>,
    shares: u8,
    threshold: u8,
    now_unix: i64,
) -> CoreResult<NewSeal> {
    let (recovery_key, share_list, config) = split_key(shares, threshold, seal.seal_type())?;
    let root_key = Key256::generate()?;
    let keyring = Keyring::generate(now_unix)?;
    let wrapped_root = seal_wrap(seal, &root_key).await?;
    let wrapped_ring =
        Aes256GcmKey::new(&root_key)?.seal(keyring.to_bytes().expose(), KEYRING_AAD)?;
    let config_json = serde_json::to_vec(&config).map_err(CoreError::Encode)?;
    storage
        .commit(vec![
            put_absent(SEAL_CONFIG_KEY, config_json),
            put_absent(ROOT_KEY_KEY, wrapped_root),
            put_absent(KEYRING_KEY, wrapped_ring),
            put_absent(RECOVERY_CHECK_KEY, recovery_check(&recovery_key)?),
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

/// The bootstrap records as read, for a compare-and-set that replaces them.
struct Stored {
    config_json: Vec<u8>,
    wrapped_root: Vec<u8>,
}

async fn read_stored(storage: &dyn Storage) -> CoreResult<Stored> {
    let config_json = storage
        .get(SEAL_CONFIG_KEY)
        .await?
        .ok_or(CoreError::NotInitialized)?;
    let wrapped_root = storage
        .get(ROOT_KEY_KEY)
        .await?
        .ok_or_else(|| CoreError::corrupt("root key record (missing)"))?;
    Ok(Stored {
        config_json,
        wrapped_root,
    })
}

/// Replaces the seal configuration, as read in `stored`, by `config`, together with what
/// changes with it (the wrapped root key, when given; the recovery check's change, when
/// given), in one compare-and-set against the records as read: the one commit behind rekey,
/// recovery rekey and both seal migrations. A failed commit (`Conflict`: someone changed
/// the seal meanwhile) is worded by `commit_failed`.
async fn replace_seal(
    storage: &dyn Storage,
    stored: Stored,
    config: &SealConfig,
    wrapped_root: Option<Vec<u8>>,
    recovery_check: Option<ward_store::Op>,
    commit_failed: impl FnOnce(ward_store::StoreError) -> CoreError,
) -> CoreResult<()> {
    let config_json = serde_json::to_vec(config).map_err(CoreError::Encode)?;
    let mut ops = vec![ward_store::Op::put(
        SEAL_CONFIG_KEY,
        ward_store::Expect::Value(stored.config_json),
        config_json,
    )];
    ops.extend(wrapped_root.map(|wrapped| {
        ward_store::Op::put(
            ROOT_KEY_KEY,
            ward_store::Expect::Value(stored.wrapped_root),
            wrapped,
        )
    }));
    ops.extend(recovery_check);
    storage.commit(ops).await.map_err(commit_failed)
}

fn seal_changed(e: ward_store::StoreError) -> CoreError {
    match e {
        ward_store::StoreError::Conflict => {
            CoreError::bad("the seal changed meanwhile; start again")
        }
        other => other.into(),
    }
}

/// Seal migration Shamir → automatic, as Vault does it: the root key, opened with a quorum
/// of unseal shares, is wrapped by `seal`, and the unseal key becomes the recovery key (the
/// same shares now authorise as recovery shares). Returns the root key.
pub(crate) async fn migrate_to_auto(
    storage: &dyn Storage,
    config: &SealConfig,
    shares: &[SecretBytes],
    seal: Arc<dyn Seal>,
) -> CoreResult<Key256> {
    let stored = read_stored(storage).await?;
    let unseal_key = combine_key(config, shares)?;
    let root_key = ShamirSeal::new(&unseal_key)?
        .unwrap(&stored.wrapped_root, ROOT_KEY_AAD)
        .map(|root| Key256::from_slice(root.expose()))
        .map_err(|_| invalid_shares())??;
    let auto = SealConfig {
        seal_type: seal.seal_type().to_owned(),
        ..config.clone()
    };
    let wrapped_root = seal_wrap(seal, &root_key).await?;
    let check = recovery_check(&unseal_key)?;
    let put_check = ward_store::Op::put(RECOVERY_CHECK_KEY, ward_store::Expect::Any, check);
    replace_seal(
        storage,
        stored,
        &auto,
        Some(wrapped_root),
        Some(put_check),
        seal_changed,
    )
    .await?;
    Ok(root_key)
}

/// Seal migration automatic → Shamir, as Vault does it: a quorum of recovery shares
/// authorises, the (disabled) automatic seal unwraps the root key a last time, and the
/// recovery key becomes the unseal key (the recovery shares now unseal). Returns the root key.
pub(crate) async fn migrate_to_shamir(
    storage: &dyn Storage,
    config: &SealConfig,
    shares: &[SecretBytes],
    seal: Arc<dyn Seal>,
) -> CoreResult<Key256> {
    let stored = read_stored(storage).await?;
    let (recovery_key, check) = open_recovery_key(storage, config, shares).await?;
    let root_key = seal_unwrap(seal, stored.wrapped_root.clone()).await?;
    let wrapped_root = ShamirSeal::new(&recovery_key)?.wrap(root_key.expose(), ROOT_KEY_AAD)?;
    let shamir = SealConfig {
        seal_type: SHAMIR.into(),
        ..config.clone()
    };
    let drop_check = ward_store::Op::delete(RECOVERY_CHECK_KEY, ward_store::Expect::Value(check));
    replace_seal(
        storage,
        stored,
        &shamir,
        Some(wrapped_root),
        Some(drop_check),
        seal_changed,
    )
    .await?;
    Ok(root_key)
}

/// Rekeys the recovery key: `old_shares` (a quorum of the current recovery shares) prove
/// themselves, and a fresh recovery key split into `shares` of which `threshold` authorise
/// replaces it; the old recovery shares stop working at once.
pub(crate) async fn rekey_recovery(
    storage: &dyn Storage,
    old_shares: &[SecretBytes],
    shares: u8,
    threshold: u8,
) -> CoreResult<Vec<SecretBytes>> {
    let stored = read_stored(storage).await?;
    let old_config: SealConfig = serde_json::from_slice(&stored.config_json)
        .map_err(CoreError::corrupt_json("seal configuration"))?;
    if !old_config.is_recovery() {
        return Err(CoreError::bad(
            "recovery rekeying not supported: this server's seal is shamir",
        ));
    }
    let (_, old_check) = open_recovery_key(storage, &old_config, old_shares).await?;
    let (recovery_key, share_list, config) = split_key(shares, threshold, &old_config.seal_type)?;
    let check = recovery_check(&recovery_key)?;
    let new_check = ward_store::Op::put(
        RECOVERY_CHECK_KEY,
        ward_store::Expect::Value(old_check),
        check,
    );
    replace_seal(
        storage,
        stored,
        &config,
        None,
        Some(new_check),
        seal_changed,
    )
    .await?;
    Ok(share_list)
}

fn put_absent(key: &str, value: Vec<u8>) -> ward_store::Op {
    ward_store::Op::put(key, ward_store::Expect::Absent, value)
}

/// Recovers the root key and keyring from enough shares. Fails cleanly (never with the
/// wrong keys) when the shares do not belong together.
pub(crate) async fn open(
    storage: &dyn Storage,
    config: &SealConfig,
    shares: &[SecretBytes],
) -> CoreResult<(Key256, Keyring)> {
    let wrapped_root = storage
        .get(ROOT_KEY_KEY)
        .await?
        .ok_or_else(|| CoreError::corrupt("root key record (missing)"))?;
    let root_key = open_root_key(config, shares, &wrapped_root)?;
    let keyring = load_keyring(storage, &root_key).await?;
    Ok((root_key, keyring))
}

/// Checks that `shares` combine into this seal's unseal key (they unwrap the root key), or
/// with an automatic seal into its recovery key (they open the recovery check).
pub(crate) async fn check_quorum(
    storage: &dyn Storage,
    config: &SealConfig,
    shares: &[SecretBytes],
) -> CoreResult<()> {
    if config.is_recovery() {
        return open_recovery_key(storage, config, shares).await.map(drop);
    }
    let wrapped_root = storage
        .get(ROOT_KEY_KEY)
        .await?
        .ok_or_else(|| CoreError::corrupt("root key record (missing)"))?;
    open_root_key(config, shares, &wrapped_root).map(drop)
}

pub(crate) async fn load_keyring(storage: &dyn Storage, root_key: &Key256) -> CoreResult<Keyring> {
    Ok(load_keyring_entry(storage, root_key).await?.0)
}

/// The stored keyring with the bytes it was read from (for a compare-and-set).
async fn load_keyring_entry(
    storage: &dyn Storage,
    root_key: &Key256,
) -> CoreResult<(Keyring, Vec<u8>)> {
    let wrapped = storage
        .get(KEYRING_KEY)
        .await?
        .ok_or_else(|| CoreError::corrupt("keyring record (missing)"))?;
    let plain = Aes256GcmKey::new(root_key)?.open(&wrapped, KEYRING_AAD)?;
    Ok((Keyring::from_bytes(plain.expose())?, wrapped))
}

/// Replaces the stored keyring, read as `expected`, by `keyring` (encrypted under the root
/// key): `Conflict` if another server replaced it meanwhile.
async fn replace_keyring(
    storage: &dyn Storage,
    root_key: &Key256,
    expected: Vec<u8>,
    keyring: &Keyring,
) -> CoreResult<()> {
    let wrapped = Aes256GcmKey::new(root_key)?.seal(keyring.to_bytes().expose(), KEYRING_AAD)?;
    let op = ward_store::Op::put(KEYRING_KEY, ward_store::Expect::Value(expected), wrapped);
    storage.commit(vec![op]).await?;
    Ok(())
}

/// Whether `physical` is the stored keyring (another server rotated it).
pub(crate) fn is_keyring_key(physical: &str) -> bool {
    physical == KEYRING_KEY
}

/// Where the shares given to `sys/unseal` lead.
enum UnsealPath {
    /// The stored Shamir seal: the shares unwrap the root key.
    Shamir,
    /// Migration to the configured automatic seal: the shares unwrap the root key, which
    /// the seal then wraps.
    ToAuto(Arc<dyn Seal>),
    /// Migration from the (disabled) automatic seal: the recovery shares authorise, the seal
    /// unwraps the root key, and the recovery key becomes the unseal key.
    ToShamir(Arc<dyn Seal>),
}

/// Unseal progress: the distinct, recognised shares submitted so far.
#[derive(Default)]
pub(crate) struct Progress {
    pub(crate) shares: Vec<SecretBytes>,
    pub(crate) nonce: String,
    /// The rekey and root generation under way: guarded by the same lock, so that neither
    /// interleaves with unseal, seal, keyring rotation or the other.
    pub(crate) quorum: crate::sys::Attempts,
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

impl Core {
    /// True once `init` has run against this storage.
    pub async fn is_initialized(&self) -> CoreResult<bool> {
        Ok(load_config(self.barrier.raw_storage().as_ref())
            .await?
            .is_some())
    }

    /// Initialises the storage: root key, keyring, `shares` unseal shares of which
    /// `threshold` unseal, and a root token. Leaves the server sealed, as Vault does.
    pub async fn init(&self, shares: u8, threshold: u8) -> CoreResult<InitOutput> {
        let _guard = self.progress.lock().await;
        if self.is_initialized().await? {
            return Err(CoreError::bad("Vault is already initialized"));
        }
        let new = initialise(
            self.barrier.raw_storage().as_ref(),
            shares,
            threshold,
            now(),
        )
        .await?;
        let root_token = self.first_root_token(new.keyring).await?;
        Ok(InitOutput {
            keys: new.shares,
            recovery_keys: Vec::new(),
            root_token,
        })
    }

    /// Initialises under the configured automatic seal: the root key wrapped by the seal,
    /// `shares` recovery shares of which `threshold` authorise generate-root and recovery
    /// rekeys, and a root token. Then the server unseals itself, as Vault does.
    pub async fn init_auto(&self, shares: u8, threshold: u8) -> CoreResult<InitOutput> {
        let seal = self
            .enabled_auto_seal()
            .ok_or(CoreError::Invariant("init_auto without an automatic seal"))?;
        let out = {
            let _guard = self.progress.lock().await;
            if self.is_initialized().await? {
                return Err(CoreError::bad("Vault is already initialized"));
            }
            let new = initialise_auto(
                self.barrier.raw_storage().as_ref(),
                seal,
                shares,
                threshold,
                now(),
            )
            .await?;
            let root_token = self.first_root_token(new.keyring).await?;
            InitOutput {
                keys: Vec::new(),
                recovery_keys: new.shares,
                root_token,
            }
        };
        self.auto_unseal().await?;
        Ok(out)
    }

    /// The default policy, the mount table and the first root token, written with `keyring`
    /// open; sealed again afterwards.
    async fn first_root_token(&self, keyring: Keyring) -> CoreResult<crate::Token> {
        self.barrier.unseal(Arc::new(keyring));
        let result = async {
            self.policies.install_default(&self.barrier).await?;
            self.mounts.load(&self.barrier).await?;
            self.create_root_token(None).await
        }
        .await;
        self.barrier.seal();
        self.clear_caches();
        Ok(crate::Token::new(result?))
    }

    /// Gives the core the seal the server was configured with, when it is not Shamir (the
    /// first one given stays).
    pub fn set_seal(&self, seal: ConfiguredSeal) {
        let _ = self.seal.set(seal);
    }

    /// The configured automatic seal, unless it is disabled (being migrated away from).
    pub fn enabled_auto_seal(&self) -> Option<Arc<dyn Seal>> {
        self.seal
            .get()
            .filter(|c| !c.disabled)
            .map(|c| c.seal.clone())
    }

    /// How shares given to `sys/unseal` are used, given what is stored and what is configured.
    fn unseal_path(&self, config: &SealConfig) -> CoreResult<UnsealPath> {
        let configured = self.seal.get();
        match configured {
            None if !config.is_recovery() => Ok(UnsealPath::Shamir),
            Some(c) if !config.is_recovery() && c.disabled => Ok(UnsealPath::Shamir),
            Some(c) if !config.is_recovery() => Ok(UnsealPath::ToAuto(c.seal.clone())),
            Some(c) if c.seal.seal_type() == config.seal_type && c.disabled => {
                Ok(UnsealPath::ToShamir(c.seal.clone()))
            }
            Some(c) if c.seal.seal_type() == config.seal_type => Err(CoreError::bad(format!(
                "this server unseals itself with its {} seal and has no unseal keys; its \
                 recovery keys authorise generate-root and rekey-recovery-key",
                config.seal_type
            ))),
            _ => Err(CoreError::bad(format!(
                "the stored seal is {0}, but the configuration has no enabled [seal] of type \
                 {0}: configure it to unseal (or, with disabled = true, to migrate back to \
                 shamir)",
                config.seal_type
            ))),
        }
    }

    /// True when the configured seal differs from the stored one and unsealing with
    /// `migrate` will move the root key from one to the other.
    fn migration_pending(&self, config: &SealConfig) -> bool {
        matches!(
            self.unseal_path(config),
            Ok(UnsealPath::ToAuto(_) | UnsealPath::ToShamir(_))
        )
    }

    /// The seal's state, as Vault's `sys/seal-status` shows it.
    pub async fn seal_status(&self) -> CoreResult<ward_api::SealStatus> {
        let config = load_config(self.barrier.raw_storage().as_ref()).await?;
        let progress = self.progress.lock().await;
        let sealed = self.is_sealed();
        // Before init, the seal init will use; after, the one the root key is stored under.
        let seal_type = match (&config, self.enabled_auto_seal()) {
            (Some(c), _) => c.seal_type.clone(),
            (None, Some(seal)) => seal.seal_type().to_owned(),
            (None, None) => SHAMIR.to_owned(),
        };
        let recovery_seal = seal_type != SHAMIR;
        Ok(ward_api::SealStatus {
            seal_type,
            initialized: config.is_some(),
            sealed,
            t: config.as_ref().map_or(0, |c| c.secret_threshold.into()),
            n: config.as_ref().map_or(0, |c| c.secret_shares.into()),
            progress: u32::try_from(progress.shares.len()).unwrap_or(u32::MAX),
            nonce: progress.nonce.clone(),
            version: crate::VERSION.into(),
            migration: sealed && config.as_ref().is_some_and(|c| self.migration_pending(c)),
            recovery_seal,
            recovery_seal_type: recovery_seal.then(|| SHAMIR.to_owned()),
            storage_type: Some(self.config.storage_type.clone()),
            cluster_name: (!sealed).then(|| self.config.cluster_name.clone()),
            cluster_id: self.cluster_id(),
            ..ward_api::SealStatus::default()
        })
    }

    /// Submits one unseal share (base64 or hex). A share this seal never issued is rejected
    /// without advancing progress; at the threshold the barrier opens.
    pub async fn unseal(&self, key: &str) -> CoreResult<()> {
        self.unseal_with(key, false).await
    }

    /// [`Core::unseal`], with Vault's `migrate` flag: while a seal migration is pending
    /// (see `sys/seal-status`), shares count only when `migrate` is set, and the threshold
    /// moves the root key to the configured seal before the barrier opens.
    pub async fn unseal_with(&self, key: &str, migrate: bool) -> CoreResult<()> {
        // A rekey that finished on another server has reached this one's read cache.
        self.fence().await?;
        let config = load_config(self.barrier.raw_storage().as_ref())
            .await?
            .ok_or(CoreError::NotInitialized)?;
        if !self.is_sealed() {
            return Ok(());
        }
        let path = self.unseal_path(&config)?;
        if !matches!(path, UnsealPath::Shamir) && !migrate {
            return Err(CoreError::bad(
                "migrate option not provided and seal migration is pending",
            ));
        }
        let share = decode_share(key)?;
        if !config.recognises(share.expose())? {
            return Err(CoreError::bad(
                "invalid unseal key: it does not belong to this server's seal",
            ));
        }
        let mut progress = self.progress.lock().await;
        if progress.add(share) < usize::from(config.secret_threshold) {
            return Ok(());
        }
        let shares = std::mem::take(&mut progress.shares);
        progress.reset();
        let storage = self.barrier.raw_storage().as_ref();
        let root_key = match path {
            UnsealPath::Shamir => open(storage, &config, &shares).await?.0,
            UnsealPath::ToAuto(seal) => {
                let kind = seal.seal_type().to_owned();
                let root = migrate_to_auto(storage, &config, &shares, seal).await?;
                tracing::info!(
                    seal = kind,
                    "seal migrated from shamir: the unseal keys are now recovery keys"
                );
                root
            }
            UnsealPath::ToShamir(seal) => {
                let kind = seal.seal_type().to_owned();
                let root = migrate_to_shamir(storage, &config, &shares, seal).await?;
                tracing::info!(
                    seal = kind,
                    "seal migrated to shamir: the recovery keys are now unseal keys; remove \
                     the disabled [seal] from the configuration"
                );
                root
            }
        };
        let keyring = load_keyring(storage, &root_key).await?;
        self.install_unsealed(root_key, keyring).await
    }

    /// Unseals with the configured automatic seal, as a server with one does at start and
    /// after init. `Ok(true)`: unsealed (now or already); `Ok(false)`: nothing this seal can
    /// do (no automatic seal, not initialised, or a migration waiting for shares); an error:
    /// the seal failed (unreachable: try again later). Never falls back to anything else.
    pub async fn auto_unseal(&self) -> CoreResult<bool> {
        let Some(seal) = self.enabled_auto_seal() else {
            return Ok(false);
        };
        self.fence().await?;
        let storage = self.barrier.raw_storage().as_ref();
        let Some(config) = load_config(storage).await? else {
            return Ok(false);
        };
        if config.seal_type != seal.seal_type() {
            return Ok(false);
        }
        let _progress = self.progress.lock().await;
        if !self.is_sealed() {
            return Ok(true);
        }
        let wrapped_root = storage
            .get(ROOT_KEY_KEY)
            .await?
            .ok_or_else(|| CoreError::corrupt("root key record (missing)"))?;
        let root_key = seal_unwrap(seal, wrapped_root).await?;
        let keyring = load_keyring(storage, &root_key).await?;
        self.install_unsealed(root_key, keyring).await?;
        Ok(true)
    }

    /// Opens the barrier with `keyring` and keeps `root_key` (the caller holds the progress
    /// lock).
    async fn install_unsealed(&self, root_key: Key256, keyring: Keyring) -> CoreResult<()> {
        self.barrier.unseal(Arc::new(keyring));
        if let Err(e) = self.post_unseal().await {
            self.barrier.seal();
            return Err(e);
        }
        if let Ok(mut slot) = self.root_key.write() {
            *slot = Some(root_key);
        }
        if let Some(cluster) = self.cluster.get() {
            cluster.set_serving(true);
        }
        tracing::info!("unsealed");
        Ok(())
    }

    /// Discards unseal progress.
    pub async fn unseal_reset(&self) {
        self.progress.lock().await.reset();
    }

    pub(crate) async fn post_unseal(&self) -> CoreResult<()> {
        self.mounts.load(&self.barrier).await?;
        for path in self.mounts.tainted(&self.barrier).await? {
            // Unsealing goes on if this fails: the method stays unreachable, and the next
            // unseal tries again.
            match self.finish_auth_disable(&path).await {
                Ok(()) => tracing::info!(path, "finished disabling an auth method"),
                Err(e) => {
                    tracing::error!(path, error = %e.report(), "could not finish disabling an auth method")
                }
            }
        }
        self.policies.install_default(&self.barrier).await?;
        self.load_cluster_id().await?;
        self.load_audit().await?;
        Ok(())
    }

    /// Reads the cluster's id, making it if there is none yet (the first unseal; of several
    /// servers unsealed at once, the first commit wins and the others read it).
    async fn load_cluster_id(&self) -> CoreResult<()> {
        let corrupt = || CoreError::corrupt("cluster id");
        let stored = match self.barrier.get(CLUSTER_ID_KEY).await? {
            Some(stored) => stored,
            None => {
                let fresh = uuid::Uuid::new_v4().to_string();
                let made = ward_store::Op::put(
                    CLUSTER_ID_KEY,
                    ward_store::Expect::Absent,
                    fresh.clone().into_bytes(),
                );
                if self.barrier.try_commit(vec![made]).await? {
                    self.set_cluster_id(Some(fresh));
                    return Ok(());
                }
                self.barrier
                    .get(CLUSTER_ID_KEY)
                    .await?
                    .ok_or_else(corrupt)?
            }
        };
        let id = std::str::from_utf8(stored.expose()).map_err(|_| corrupt())?;
        self.set_cluster_id(Some(id.to_owned()));
        Ok(())
    }

    fn set_cluster_id(&self, id: Option<String>) {
        if let Ok(mut slot) = self.cluster_id.write() {
            *slot = id;
        }
    }

    /// The cluster's id while unsealed (Vault's `cluster_id` in `sys/seal-status` and
    /// `sys/health`).
    pub(crate) fn cluster_id(&self) -> Option<String> {
        if self.is_sealed() {
            return None;
        }
        self.cluster_id.read().ok().and_then(|id| id.clone())
    }

    /// Seals: drops the keyring, the root key and every cached key and token.
    pub async fn seal(&self) {
        let mut progress = self.progress.lock().await;
        progress.reset();
        if let Some(cluster) = self.cluster.get() {
            cluster.set_serving(false);
        }
        // A rekey or root generation under way does not survive the seal, as in Vault.
        progress.quorum = crate::sys::Attempts::default();
        // Audit devices are let go only once the barrier is sealed: a request that got past
        // the seal check meanwhile is still audited (or refused), never served unaudited.
        // Their checkpoints and heads are saved first, while the barrier is open.
        self.audit.checkpoint_all(&self.barrier, "seal").await;
        self.barrier.seal();
        self.audit.shutdown().await;
        if let Ok(mut slot) = self.root_key.write() {
            *slot = None;
        }
        self.clear_caches();
        tracing::info!("sealed");
    }

    pub(crate) fn clear_caches(&self) {
        self.set_cluster_id(None);
        self.tokens.clear_cache();
        self.policies.clear_cache();
        self.mount_keys.clear();
        self.usage.clear();
        self.transit.clear();
        self.kv_memo.clear();
        self.mounts.clear();
    }

    /// Adds a keyring term; new writes use it, old entries stay readable.
    pub(crate) async fn rotate_keyring(&self) -> CoreResult<Response> {
        // Serialise with unseal and other rotations: two rotations from the same keyring
        // would both install a term N+1, and entries written under the loser would be lost.
        // Rotating the stored keyring, by compare-and-set, also keeps servers sharing the
        // storage from installing two different terms N+1.
        let _guard = self.progress.lock().await;
        let root_key = self.root_key()?;
        let storage = self.barrier.raw_storage().as_ref();
        let mut attempts = 0;
        let next = loop {
            let (current, stamp) = load_keyring_entry(storage, &root_key).await?;
            let next = current.rotated(now())?;
            match replace_keyring(storage, &root_key, stamp, &next).await {
                Err(CoreError::Storage(ward_store::StoreError::Conflict)) if attempts < 8 => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
                Ok(()) => break next,
            }
        };
        self.barrier.unseal(std::sync::Arc::new(next));
        tracing::info!("keyring rotated");
        Ok(Response::empty())
    }

    /// Installs the keyring as stored now (another server rotated it).
    pub(crate) async fn reload_keyring(&self) -> CoreResult<()> {
        let _guard = self.progress.lock().await;
        if self.is_sealed() {
            return Ok(());
        }
        let root_key = self.root_key()?;
        let keyring = load_keyring(self.barrier.raw_storage().as_ref(), &root_key).await?;
        self.barrier.unseal(std::sync::Arc::new(keyring));
        Ok(())
    }

    pub(crate) fn key_status(&self) -> CoreResult<Response> {
        let ring = self.barrier.keyring()?;
        let term = ring.active_term();
        let installed = ward_api::time::rfc3339_seconds(term.installed_unix());
        let data = json!({
            "term": term.number(),
            "install_time": installed,
            "encryptions": term.encryptions(),
        });
        // OpenBao answers at the top level too.
        Ok(Response::data(data).with_data_at_top_level())
    }

    pub(crate) fn root_key(&self) -> CoreResult<Key256> {
        self.root_key
            .read()
            .ok()
            .and_then(|k| k.as_ref().map(Key256::duplicate))
            .ok_or(CoreError::Sealed)
    }
}
