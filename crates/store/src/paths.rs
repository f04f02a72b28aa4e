//! Logical-to-physical key translations, remembered.
//!
//! A translation costs one AES-SIV per path segment (a key schedule and a CMAC each), the
//! largest share of a cached read, so translations are remembered per installed keyring:
//! - in a small memo per thread, read without locks or reference counts, because a lock or a
//!   shared count that every request takes makes the cores pass its cache line back and forth
//!   (the largest single cost left in a cached read before this memo);
//! - behind it, in one memo per keyring shared by all threads, which holds many more.
//!
//! Physical keys are ciphertext of paths (what the database holds), not secrets. A memo is
//! never consulted for another keyring: the shared one lives and dies with its keyring, and a
//! thread's memo starts over when it meets a keyring it did not fill it for.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ward_crypto::Keyring;

use crate::StoreError;

/// Translations the shared memo holds (about 200 bytes each) before it starts over.
const SHARED_ENTRIES: usize = 16_384;
/// Translations each thread's memo holds before it starts over: the hot keys.
const THREAD_ENTRIES: usize = 512;

/// The physical prefix of every barrier entry.
pub(crate) const PHYSICAL_PREFIX: &str = "b/";

/// Longest logical key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 2048;

/// The translations made under one keyring.
pub(crate) struct PathMemo {
    /// Tells this memo's entries apart from another keyring's in the threads' memos.
    id: u64,
    shared: RwLock<HashMap<String, String>>,
}

/// A thread's hot translations, and the memo they were made for. Hashed with foldhash
/// (seeded per process): the map is small and bounded, so a flood of colliding keys could
/// only slow this thread's memo, and SipHash costs more than the rest of the lookup.
struct ThreadMemo {
    memo: u64,
    map: HashMap<String, String, foldhash::fast::RandomState>,
}

thread_local! {
    static THREAD_MEMO: RefCell<ThreadMemo> = RefCell::new(ThreadMemo {
        memo: 0,
        map: HashMap::default(),
    });
}

impl PathMemo {
    /// An empty memo for a newly installed keyring.
    pub(crate) fn new() -> Self {
        // Ids start at 1: 0 marks a thread memo that was never filled.
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shared: RwLock::new(HashMap::new()),
        }
    }

    /// The physical key of logical `key` under `ring` (the keyring this memo belongs to).
    pub(crate) fn physical(&self, ring: &Keyring, key: &str) -> Result<String, StoreError> {
        let local = THREAD_MEMO.with_borrow(|t| {
            (t.memo == self.id)
                .then(|| t.map.get(key).cloned())
                .flatten()
        });
        if let Some(found) = local {
            return Ok(found);
        }
        let shared = self.shared.read().ok().and_then(|m| m.get(key).cloned());
        let physical = match shared {
            Some(found) => found,
            None => {
                let made = physical_key(ring, key)?;
                if let Ok(mut shared) = self.shared.write() {
                    if shared.len() >= SHARED_ENTRIES {
                        shared.clear();
                    }
                    shared.insert(key.to_owned(), made.clone());
                }
                made
            }
        };
        THREAD_MEMO.with_borrow_mut(|t| {
            if t.memo != self.id || t.map.len() >= THREAD_ENTRIES {
                t.map.clear();
                t.memo = self.id;
            }
            t.map.insert(key.to_owned(), physical.clone());
        });
        Ok(physical)
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
    fn each_keyring_gets_its_own_translations_on_the_same_thread() {
        let (ring_a, ring_b) = (Keyring::generate(0).unwrap(), Keyring::generate(0).unwrap());
        let (memo_a, memo_b) = (PathMemo::new(), PathMemo::new());
        let fresh_a = physical_key(&ring_a, "app/db").unwrap();
        let fresh_b = physical_key(&ring_b, "app/db").unwrap();
        assert_ne!(fresh_a, fresh_b);
        // Alternating fills and refills this thread's memo; each answer is its keyring's.
        for _ in 0..3 {
            assert_eq!(memo_a.physical(&ring_a, "app/db").unwrap(), fresh_a);
            assert_eq!(memo_b.physical(&ring_b, "app/db").unwrap(), fresh_b);
        }
        // Another thread finds the translation in the shared memo.
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(memo_a.physical(&ring_a, "app/db").unwrap(), fresh_a));
        });
    }

    #[test]
    fn a_full_thread_memo_starts_over_and_stays_correct() {
        let ring = Keyring::generate(0).unwrap();
        let memo = PathMemo::new();
        for i in 0..THREAD_ENTRIES + 10 {
            let key = format!("k/{i}");
            assert_eq!(
                memo.physical(&ring, &key).unwrap(),
                physical_key(&ring, &key).unwrap()
            );
        }
        assert!(THREAD_MEMO.with_borrow(|t| t.map.len()) <= THREAD_ENTRIES);
        assert_eq!(
            memo.physical(&ring, "k/0").unwrap(),
            physical_key(&ring, "k/0").unwrap()
        );
    }

    #[test]
    fn invalid_keys_are_refused() {
        let ring = Keyring::generate(0).unwrap();
        let memo = PathMemo::new();
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
