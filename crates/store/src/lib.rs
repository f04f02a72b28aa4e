//! Ward's storage layer: the [`Storage`] trait every backend implements, the backends
//! themselves (SQLite embedded, in-memory for tests), a read cache, and the encryption
//! barrier that every entry passes through before it reaches a backend.
//!
//! Backends see only opaque keys and ciphertext: the barrier encrypts both the values and
//! the path segments of the keys before a backend is called.

mod backend;
mod barrier;

pub use backend::{Action, Expect, Op, StoreError, Storage};
pub use barrier::{Barrier, Entry, MAX_KEY_LEN};
