//! Ward's PKCS#11 seal: the root key is wrapped by an AES-256 key that never leaves the HSM
//! (non-extractable, sensitive), so a server with this seal unseals itself at start. Tested
//! with SoftHSM2, which speaks the same interface as hardware HSMs.
//!
//! The FFI is cryptoki's; this crate writes no unsafe code. The core knows only the
//! [`ward_core::seals::Seal`] trait: the server builds a [`Pkcs11Seal`] from its
//! configuration and hands it in.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType, aead::GcmParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ward_core::seals::{Seal, SealError};
use ward_crypto::SecretBytes;
use zeroize::Zeroizing;

/// The seal's name in `sys/seal-status` and the stored seal configuration.
pub const SEAL_TYPE: &str = "pkcs11";

/// How the HSM's key wraps the root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WrapMechanism {
    /// CKM_AES_GCM with a random 96-bit IV from the OS and the root key's AAD (the default).
    AesGcm,
    /// CKM_AES_KEY_WRAP_PAD (RFC 5649), for tokens without GCM. Key wrap has no AAD: the
    /// wrapped value is bound to its key only.
    AesKeyWrapPad,
}

impl WrapMechanism {
    /// Parses the configuration's name: `aes-gcm` or `aes-key-wrap-pad` (Vault's
    /// `CKM_AES_GCM` and `CKM_AES_KEY_WRAP_PAD` spellings too).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "aes-gcm" | "ckm-aes-gcm" => Some(Self::AesGcm),
            "aes-key-wrap-pad"
            | "ckm-aes-key-wrap-pad"
            | "aes-key-wrap-kwp"
            | "ckm-aes-key-wrap-kwp" => Some(Self::AesKeyWrapPad),
            _ => None,
        }
    }

    /// The first byte of a value wrapped this way.
    fn tag(self) -> u8 {
        match self {
            Self::AesGcm => 1,
            Self::AesKeyWrapPad => 2,
        }
    }
}

/// Where the HSM and its key are, from the server's `[seal]` table.
pub struct Pkcs11Settings {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub lib: PathBuf,
    /// The token, by label (preferred: SoftHSM gives tokens random slot ids).
    pub token_label: Option<String>,
    /// The token, by slot id, when no label is given.
    pub slot: Option<u64>,
    /// The user PIN. Wiped on drop; Debug shows no content.
    pub pin: Zeroizing<String>,
    /// The label of the AES key that wraps the root key.
    pub key_label: String,
    /// The mechanism; `None` picks AES-GCM when the token has it, else AES key wrap.
    pub mechanism: Option<WrapMechanism>,
    /// Create the key (AES-256, sensitive, non-extractable) when the token has none.
    pub generate_key: bool,
}

impl std::fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("lib", &self.lib)
            .field("token_label", &self.token_label)
            .field("slot", &self.slot)
            .field("pin", &"<redacted>")
            .field("key_label", &self.key_label)
            .field("mechanism", &self.mechanism)
            .field("generate_key", &self.generate_key)
            .finish()
    }
}

/// What went wrong talking to the HSM. Never carries the PIN or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// The module could not be loaded or initialised.
    #[error("cannot load the PKCS#11 library {path}")]
    Library {
        /// The module's path.
        path: String,
        /// cryptoki's error.
        #[source]
        source: Pkcs11Error,
    },
    /// No token with this label (or slot) is present.
    #[error("no PKCS#11 token {0} is present")]
    NoToken(String),
    /// The PIN was refused, or the session could not be opened.
    #[error("cannot log in to PKCS#11 token {token}")]
    Login {
        /// The token's label or slot.
        token: String,
        /// cryptoki's error (e.g. CKR_PIN_INCORRECT).
        #[source]
        source: Pkcs11Error,
    },
    /// The token holds no AES key with this label, and `generate_key` is off.
    #[error("the token has no AES key labelled {0:?} (set generate_key = true to create it)")]
    NoKey(String),
    /// Several keys carry the label: which one wraps the root key would be a guess.
    #[error("the token has several keys labelled {0:?}")]
    AmbiguousKey(String),
    /// The token does not offer the mechanism asked for.
    #[error("the token does not offer {0:?}")]
    NoMechanism(WrapMechanism),
    /// A PKCS#11 call failed.
    #[error("PKCS#11 operation failed")]
    Operation(#[source] Pkcs11Error),
    /// The wrapped value is not one this seal wrote.
    #[error("the wrapped root key is malformed")]
    Malformed,
    /// The token refused the PIN at an earlier login of this process; it is not asked
    /// again until a restart.
    #[error(
        "PKCS#11 token {token} refused the PIN earlier ({code:?}); no further login is tried \
         before a restart"
    )]
    PinRefusedEarlier {
        /// The token's label or slot.
        token: String,
        /// The token's answer to that login.
        code: RvError,
    },
}

/// An open, logged-in session and the wrapping key found in it.
struct Connection {
    context: Pkcs11,
    session: Session,
    key: Option<ObjectHandle>,
    mechanism: WrapMechanism,
}

/// The PKCS#11 seal. One session is kept open and logged in; after any failure it is
/// dropped, and the next call connects again (a token re-inserted, a PIN fixed).
pub struct Pkcs11Seal {
    settings: Pkcs11Settings,
    connection: Mutex<Option<Connection>>,
    /// Set when the token refused the PIN: from then on no login is tried, so that nothing
    /// in this process (a retry, a request) spends more of the token's failed-login budget.
    pin_refused: OnceLock<RvError>,
}

impl std::fmt::Debug for Pkcs11Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Seal")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Seal {
    /// A seal with these settings; nothing is opened until it is first used.
    pub fn new(settings: Pkcs11Settings) -> Self {
        Self {
            settings,
            connection: Mutex::new(None),
            pin_refused: OnceLock::new(),
        }
    }

    /// Connects (loads the module, finds the token, logs in, finds the key) and reports
    /// why it cannot: what the server logs while it waits for the HSM.
    pub fn check(&self) -> Result<(), SealError> {
        self.with_connection(|_| Ok(()))
    }

    fn token_name(&self) -> String {
        match (&self.settings.token_label, self.settings.slot) {
            (Some(label), _) => format!("{label:?}"),
            (None, Some(slot)) => format!("in slot {slot}"),
            (None, None) => "(none configured)".into(),
        }
    }

    fn connect(&self) -> Result<Connection, HsmError> {
        let library = |source| HsmError::Library {
            path: self.settings.lib.display().to_string(),
            source,
        };
        let context = Pkcs11::new(&self.settings.lib).map_err(library)?;
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(library(e)),
        }
        match self.open(&context) {
            Ok((session, key, mechanism)) => Ok(Connection {
                context,
                session,
                key,
                mechanism,
            }),
            Err(e) => {
                // Forget the module's view of the tokens, so the next attempt sees a token
                // inserted (or a token directory restored) meanwhile.
                let _ = context.finalize();
                Err(e)
            }
        }
    }

    fn open(
        &self,
        context: &Pkcs11,
    ) -> Result<(Session, Option<ObjectHandle>, WrapMechanism), HsmError> {
        let slot = self.find_slot(context)?;
        let login = |source| HsmError::Login {
            token: self.token_name(),
            source,
        };
        let session = context.open_rw_session(slot).map_err(login)?;
        let pin = AuthPin::from(self.settings.pin.as_str().to_owned());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(login(e)),
        }
        // Asked one by one: listing them all makes cryptoki log every vendor mechanism it
        // does not know as an error.
        let offers = |m: WrapMechanism| {
            let kind = match m {
                WrapMechanism::AesGcm => MechanismType::AES_GCM,
                WrapMechanism::AesKeyWrapPad => MechanismType::AES_KEY_WRAP_PAD,
            };
            context.get_mechanism_info(slot, kind).is_ok()
        };
        let mechanism = match self.settings.mechanism {
            Some(m) if offers(m) => m,
            Some(m) => return Err(HsmError::NoMechanism(m)),
            None if offers(WrapMechanism::AesGcm) => WrapMechanism::AesGcm,
            None => WrapMechanism::AesKeyWrapPad,
        };
        let key = self.find_key(&session)?;
        Ok((session, key, mechanism))
    }

    fn find_slot(&self, context: &Pkcs11) -> Result<Slot, HsmError> {
        let slots = context
            .get_slots_with_token()
            .map_err(HsmError::Operation)?;
        for slot in slots {
            let found = match (&self.settings.token_label, self.settings.slot) {
                (Some(label), _) => context
                    .get_token_info(slot)
                    .is_ok_and(|info| info.label().trim_end() == label),
                (None, Some(id)) => slot.id() == id,
                (None, None) => false,
            };
            if found {
                return Ok(slot);
            }
        }
        Err(HsmError::NoToken(self.token_name()))
    }

    fn key_template(&self) -> Vec<Attribute> {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(self.settings.key_label.as_bytes().to_vec()),
        ]
    }

    fn find_key(&self, session: &Session) -> Result<Option<ObjectHandle>, HsmError> {
        let found = session
            .find_objects(&self.key_template())
            .map_err(HsmError::Operation)?;
        match found.as_slice() {
            [] => Ok(None),
            [key] => Ok(Some(*key)),
            _ => Err(HsmError::AmbiguousKey(self.settings.key_label.clone())),
        }
    }

    /// The wrapping key: found, or (with `generate_key`, when wrapping) created on the
    /// token: AES-256, sensitive, never extractable.
    fn key(&self, conn: &mut Connection, may_generate: bool) -> Result<ObjectHandle, HsmError> {
        if let Some(key) = conn.key {
            return Ok(key);
        }
        if !(may_generate && self.settings.generate_key) {
            return Err(HsmError::NoKey(self.settings.key_label.clone()));
        }
        let mut template = self.key_template();
        template.extend([
            Attribute::ValueLen(32u64.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
        ]);
        let key = conn
            .session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(HsmError::Operation)?;
        tracing::info!(
            key_label = self.settings.key_label,
            "created the seal's AES-256 key on the HSM (non-extractable)"
        );
        conn.key = Some(key);
        Ok(key)
    }

    /// Runs `op` on the open connection, connecting first if needed; after a failure the
    /// connection is dropped so that the next call starts afresh.
    fn with_connection<T>(
        &self,
        op: impl FnOnce(&mut Connection) -> Result<T, SealError>,
    ) -> Result<T, SealError> {
        let mut slot = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            if let Some(&code) = self.pin_refused.get() {
                return Err(credentials_refused(HsmError::PinRefusedEarlier {
                    token: self.token_name(),
                    code,
                }));
            }
            *slot = Some(self.connect().map_err(|e| self.connect_failure(e))?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(unreachable(HsmError::NoToken(self.token_name())));
        };
        let result = op(conn);
        if matches!(result, Err(SealError::Unreachable { .. }))
            && let Some(conn) = slot.take()
        {
            drop(conn.session);
            let _ = conn.context.finalize();
        }
        result
    }
}

impl Pkcs11Seal {
    /// A failed connection: the PIN refused (remembered, never tried again), or the HSM
    /// unreachable (the next call tries again).
    fn connect_failure(&self, e: HsmError) -> SealError {
        match e {
            HsmError::Login {
                source: Pkcs11Error::Pkcs11(code, _),
                ..
            } if is_pin_refusal(code) => {
                let _ = self.pin_refused.set(code);
                credentials_refused(e)
            }
            other => unreachable(other),
        }
    }
}

/// The token's answers that judge the PIN itself: the same PIN would get the same answer,
/// and each try counts as one more failed login.
fn is_pin_refusal(code: RvError) -> bool {
    matches!(
        code,
        RvError::PinIncorrect
            | RvError::PinInvalid
            | RvError::PinLenRange
            | RvError::PinExpired
            | RvError::PinLocked
    )
}

fn credentials_refused(e: HsmError) -> SealError {
    SealError::CredentialsRefused {
        seal: SEAL_TYPE.into(),
        source: Box::new(e),
    }
}

fn unreachable(e: HsmError) -> SealError {
    SealError::Unreachable {
        seal: SEAL_TYPE.into(),
        source: Box::new(e),
    }
}

fn refused(e: HsmError) -> SealError {
    SealError::Refused {
        seal: SEAL_TYPE.into(),
        source: Some(Box::new(e)),
    }
}

/// A failed unwrap: the value refused, or the token gone.
fn unwrap_failure(e: Pkcs11Error) -> SealError {
    match e {
        Pkcs11Error::Pkcs11(
            RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::WrappedKeyInvalid
            | RvError::WrappedKeyLenRange,
            _,
        ) => refused(HsmError::Operation(e)),
        other => unreachable(HsmError::Operation(other)),
    }
}

const GCM_IV_LEN: usize = 12;

impl Seal for Pkcs11Seal {
    fn seal_type(&self) -> &str {
        SEAL_TYPE
    }

    fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        self.with_connection(|conn| {
            let key = self.key(conn, true).map_err(unreachable)?;
            let mut out = vec![conn.mechanism.tag()];
            match conn.mechanism {
                WrapMechanism::AesGcm => {
                    let mut iv = ward_crypto::random_array::<GCM_IV_LEN>()
                        .map_err(|_| refused(HsmError::Malformed))?;
                    out.extend_from_slice(&iv);
                    let params = GcmParams::new(&mut iv, aad, 128u64.into())
                        .map_err(|e| refused(HsmError::Operation(e)))?;
                    let sealed = conn
                        .session
                        .encrypt(&Mechanism::AesGcm(params), key, plaintext)
                        .map_err(|e| unreachable(HsmError::Operation(e)))?;
                    out.extend_from_slice(&sealed);
                }
                WrapMechanism::AesKeyWrapPad => {
                    // The root key becomes a short-lived session object, wrapped, destroyed.
                    let object = conn
                        .session
                        .create_object(&[
                            Attribute::Class(ObjectClass::SECRET_KEY),
                            Attribute::KeyType(KeyType::GENERIC_SECRET),
                            Attribute::Token(false),
                            Attribute::Sensitive(false),
                            Attribute::Extractable(true),
                            Attribute::Value(plaintext.to_vec()),
                        ])
                        .map_err(|e| unreachable(HsmError::Operation(e)))?;
                    let wrapped = conn
                        .session
                        .wrap_key(&Mechanism::AesKeyWrapPad, key, object)
                        .map_err(|e| unreachable(HsmError::Operation(e)));
                    let _ = conn.session.destroy_object(object);
                    out.extend_from_slice(&wrapped?);
                }
            }
            Ok(out)
        })
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<SecretBytes, SealError> {
        let (&tag, body) = wrapped
            .split_first()
            .ok_or_else(|| refused(HsmError::Malformed))?;
        self.with_connection(|conn| {
            let key = self.key(conn, false).map_err(unreachable)?;
            if tag == WrapMechanism::AesGcm.tag() {
                if body.len() < GCM_IV_LEN {
                    return Err(refused(HsmError::Malformed));
                }
                let (iv, sealed) = body.split_at(GCM_IV_LEN);
                let mut iv = iv.to_vec();
                let params = GcmParams::new(&mut iv, aad, 128u64.into())
                    .map_err(|e| refused(HsmError::Operation(e)))?;
                let plain = conn
                    .session
                    .decrypt(&Mechanism::AesGcm(params), key, sealed)
                    .map_err(unwrap_failure)?;
                Ok(SecretBytes::new(plain))
            } else if tag == WrapMechanism::AesKeyWrapPad.tag() {
                let object = conn
                    .session
                    .unwrap_key(
                        &Mechanism::AesKeyWrapPad,
                        key,
                        body,
                        &[
                            Attribute::Class(ObjectClass::SECRET_KEY),
                            Attribute::KeyType(KeyType::GENERIC_SECRET),
                            Attribute::Token(false),
                            Attribute::Sensitive(false),
                            Attribute::Extractable(true),
                        ],
                    )
                    .map_err(unwrap_failure)?;
                let value = conn
                    .session
                    .get_attributes(object, &[AttributeType::Value])
                    .map_err(|e| unreachable(HsmError::Operation(e)));
                let _ = conn.session.destroy_object(object);
                match value?.into_iter().next() {
                    Some(Attribute::Value(bytes)) => Ok(SecretBytes::new(bytes)),
                    _ => Err(refused(HsmError::Malformed)),
                }
            } else {
                Err(refused(HsmError::Malformed))
            }
        })
    }
}
