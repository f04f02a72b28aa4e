//! Logical-to-physical key translations, remembered.
//!
//! A translation costs one AES-SIV per path segment (a key schedule and a CMAC each), the
//! largest share of a cached read, so translations are remembered in one memo per installed
//! keyring, shared by all threads: it lives and dies with its keyring, so it is never
//! consulted for another one. Physical keys are ciphertext of paths (what the database
//! holds), not secrets.

use std::collections::HashMap;
use std::sync::RwLock;

use ward_crypto::Keyring;

use crate::StoreError;

/// Translations the memo holds (about 200 bytes each) before it starts over.
const MEMO_ENTRIES: usize = 16_384;

/// The physical prefix of every barrier entry.
pub(crate) const PHYSICAL_PREFIX: &str = "b/";

/// Longest logical key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 2048;

/// The translations made under one keyring. Hashed with foldhash (seeded per process): the
/// memo is bounded, so a flood of colliding keys could only slow it, and SipHash costs
/// more than the rest of the lookup.
#[derive(Default)]
pub(crate) struct PathMemo {
    translations: RwLock<HashMap<String, String, foldhash::fast::RandomState>>,
}

impl PathMemo {
    /// The physical key of logical `key` under `ring` (the keyring this memo belongs to).
    pub(crate) fn physical(&self, ring: &Keyring, key: &str) -> Result<String, StoreError> {
        if let Some(found) = self
            .translations
            .read()
            .ok()
            .and_then(|m| m.get(key).cloned())
        {
            return Ok(found);
        }
        let made = physical_key(ring, key)?;
        if let Ok(mut translations) = self.translations.write() {
            if translations.len() >= MEMO_ENTRIES {
                translations.clear();
            }
            translations.insert(key.to_owned(), made.clone());
        }
        Ok(made)
    }
}

/// Maps a logical key to its physical key under `ring`'s path cipher.
fn physical_key(ring: &Keyring, key: &str) -> Result<String, StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.contains('\0') {
        return Err(StoreError::InvalidKey);
    }
    let cipher = ring.path_cipher();
    let mut out = String::with_capacity(PHYSICAL_PREFIX.len() + key.len() * 2 + 24);
    out.push_str(PHYSICAL_PREFIX);
    let mut parent_end = 0;
    for (i, segment) in key.split('/').enumerate() {
        if segment.is_empty() {
            return Err(StoreError::InvalidKey);
        }
        if i > 0 {
            out.push('/');
        }
        let parent = &key[..parent_end];
        out.push_str(
            &cipher
                .encrypt_segment(parent, segment)
                .map_err(|_| StoreError::Integrity)?,
        );
        parent_end += segment.len() + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_keyring_gets_its_own_translations() {
        let (ring_a, ring_b) = (Keyring::generate(0).unwrap(), Keyring::generate(0).unwrap());
        let (memo_a, memo_b) = (PathMemo::default(), PathMemo::default());
        let fresh_a = physical_key(&ring_a, "app/db").unwrap();
        let fresh_b = physical_key(&ring_b, "app/db").unwrap();
        assert_ne!(fresh_a, fresh_b);
        for _ in 0..3 {
            assert_eq!(memo_a.physical(&ring_a, "app/db").unwrap(), fresh_a);
            assert_eq!(memo_b.physical(&ring_b, "app/db").unwrap(), fresh_b);
        }
        // Another thread finds the translation in the memo.
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(memo_a.physical(&ring_a, "app/db").unwrap(), fresh_a));
        });
    }

    #[test]
    fn a_full_memo_starts_over_and_stays_correct() {
        let ring = Keyring::generate(0).unwrap();
        let memo = PathMemo::default();
        for i in 0..MEMO_ENTRIES + 10 {
            let key = format!("k/{i}");
            assert_eq!(
                memo.physical(&ring, &key).unwrap(),
                physical_key(&ring, &key).unwrap()
            );
        }
        assert!(memo.translations.read().unwrap().len() <= MEMO_ENTRIES);
        assert_eq!(
            memo.physical(&ring, "k/0").unwrap(),
            physical_key(&ring, "k/0").unwrap()
        );
    }

    #[test]
    fn invalid_keys_are_refused() {
        let ring = Keyring::generate(0).unwrap();
        let memo = PathMemo::default();
        for bad in ["", "a//b", "/a", "a\0b"] {
            assert!(matches!(
                memo.physical(&ring, bad),
                Err(StoreError::InvalidKey)
            ));
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        assert!(matches!(
            memo.physical(&ring, &long),
            Err(StoreError::InvalidKey)
        ));
    }
}
