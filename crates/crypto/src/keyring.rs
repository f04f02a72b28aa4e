//! The keyring: the barrier's versioned data-encryption keys ("terms") and the path key.
//!
//! Every storage entry is encrypted under the newest term; older terms stay for decryption,
//! so a rotation re-encrypts nothing at once. The keyring itself is stored encrypted under the
//! root key. Serialized form (always handled inside [`SecretBytes`]):
//! `"WKR1" || path_key(64) || active(u32) || count(u32) || count × (term(u32) || installed(i64) || key(32))`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Aes256GcmKey, CryptoError, Key256, PathCipher, SecretBytes};

const MAGIC: &[u8; 4] = b"WKR1";

/// One keyring term: a numbered AES-256-GCM key and when it was installed.
pub struct Term {
    number: u32,
    installed_unix: i64,
    raw: Key256,
    cipher: Aes256GcmKey,
    encryptions: AtomicU64,
}

impl Term {
    fn new(number: u32, installed_unix: i64, raw: Key256) -> Result<Self, CryptoError> {
        let cipher = Aes256GcmKey::new(&raw)?;
        Ok(Self {
            number,
            installed_unix,
            raw,
            cipher,
            encryptions: AtomicU64::new(0),
        })
    }

    /// The term number (1 for the first key).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// When the term was installed, in seconds since the Unix epoch.
    pub fn installed_unix(&self) -> i64 {
        self.installed_unix
    }

    /// How many encryptions this process has done under the term.
    pub fn encryptions(&self) -> u64 {
        self.encryptions.load(Ordering::Relaxed)
    }
}

/// The barrier keyring. Not `Clone`; `Debug` shows term numbers only.
pub struct Keyring {
    terms: BTreeMap<u32, Term>,
    active: u32,
    path: PathCipher,
}

impl Keyring {
    /// A new keyring with term 1 and a fresh path key.
    pub fn generate(now_unix: i64) -> Result<Self, CryptoError> {
        let term = Term::new(1, now_unix, Key256::generate()?)?;
        let path = PathCipher::new(&PathCipher::generate_key()?[..])?;
        Ok(Self {
            terms: BTreeMap::from([(1, term)]),
            active: 1,
            path,
        })
    }

    /// A copy of this keyring with one more term, which becomes the active one.
    pub fn rotated(&self, now_unix: i64) -> Result<Self, CryptoError> {
        let mut terms = BTreeMap::new();
        for (n, t) in &self.terms {
            terms.insert(*n, Term::new(*n, t.installed_unix, t.raw.duplicate())?);
        }
        let next = self
            .active
            .checked_add(1)
            .ok_or(CryptoError::UnknownTerm(u32::MAX))?;
        terms.insert(next, Term::new(next, now_unix, Key256::generate()?)?);
        let path = PathCipher::new(&self.path.key_bytes()[..])?;
        Ok(Self {
            terms,
            active: next,
            path,
        })
    }

    /// The term new entries are encrypted under.
    pub fn active_term(&self) -> &Term {
        // `active` always names a term: every constructor inserts it.
        &self.terms[&self.active]
    }

    /// The cipher for path segments.
    pub fn path_cipher(&self) -> &PathCipher {
        &self.path
    }

    /// Encrypts under the active term: `term (u32 BE) || AES-GCM output`.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let term = self.active_term();
        let sealed = term.cipher.seal(plaintext, aad)?;
        term.encryptions.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::with_capacity(4 + sealed.len());
        out.extend_from_slice(&term.number.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`encrypt`](Self::encrypt) produced under any term still on the ring.
    pub fn decrypt(&self, data: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        let (number, sealed) = data
            .split_first_chunk::<4>()
            .ok_or(CryptoError::Malformed)?;
        let number = u32::from_be_bytes(*number);
        let term = self
            .terms
            .get(&number)
            .ok_or(CryptoError::UnknownTerm(number))?;
        term.cipher.open(sealed, aad)
    }

    /// The serialized keyring, for encryption under the root key.
    pub fn to_bytes(&self) -> SecretBytes {
        let mut out = Vec::with_capacity(76 + self.terms.len() * 44);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(self.path.key_bytes());
        out.extend_from_slice(&self.active.to_be_bytes());
        out.extend_from_slice(&(self.terms.len() as u32).to_be_bytes());
        for t in self.terms.values() {
            out.extend_from_slice(&t.number.to_be_bytes());
            out.extend_from_slice(&t.installed_unix.to_be_bytes());
            out.extend_from_slice(t.raw.expose());
        }
        SecretBytes::new(out)
    }

    /// Parses [`to_bytes`](Self::to_bytes) output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(CryptoError::Malformed);
        }
        let path = PathCipher::new(r.take(64)?)?;
        let active = u32::from_be_bytes(r.array()?);
        let count = u32::from_be_bytes(r.array()?);
        let mut terms = BTreeMap::new();
        for _ in 0..count {
            let number = u32::from_be_bytes(r.array()?);
            let installed = i64::from_be_bytes(r.array()?);
            let key = Key256::from_slice(r.take(32)?)?;
            terms.insert(number, Term::new(number, installed, key)?);
        }
        if !r.0.is_empty() || !terms.contains_key(&active) {
            return Err(CryptoError::Malformed);
        }
        Ok(Self {
            terms,
            active,
            path,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        if self.0.len() < n {
            return Err(CryptoError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CryptoError> {
        self.take(N)?.try_into().map_err(|_| CryptoError::Malformed)
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("terms", &self.terms.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_terms_for_decryption() {
        let ring = Keyring::generate(100).unwrap();
        let old = ring.encrypt(b"v1", b"p").unwrap();
        let ring2 = ring.rotated(200).unwrap();
        assert_eq!(ring2.active_term().number(), 2);
        let new = ring2.encrypt(b"v2", b"p").unwrap();
        assert_eq!(&new[..4], &2u32.to_be_bytes());
        assert_eq!(ring2.decrypt(&old, b"p").unwrap().expose(), b"v1");
        assert_eq!(ring2.decrypt(&new, b"p").unwrap().expose(), b"v2");
        assert_eq!(
            ring.decrypt(&new, b"p").unwrap_err(),
            CryptoError::UnknownTerm(2)
        );
    }

    #[test]
    fn serialization_round_trips_and_rejects_garbage() {
        let ring = Keyring::generate(100).unwrap().rotated(150).unwrap();
        let ct = ring.encrypt(b"x", b"").unwrap();
        let back = Keyring::from_bytes(ring.to_bytes().expose()).unwrap();
        assert_eq!(back.active_term().number(), 2);
        assert_eq!(back.active_term().installed_unix(), 150);
        assert_eq!(back.decrypt(&ct, b"").unwrap().expose(), b"x");
        assert_eq!(
            back.path_cipher().encrypt_segment("", "a").unwrap(),
            ring.path_cipher().encrypt_segment("", "a").unwrap()
        );
        let bytes = ring.to_bytes();
        assert!(Keyring::from_bytes(&bytes.expose()[..bytes.len() - 1]).is_err());
        assert!(Keyring::from_bytes(b"nope").is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ring = Keyring::generate(1).unwrap();
        let shown = format!("{ring:?}");
        assert!(shown.contains("terms") && !shown.contains("raw"));
    }
}
