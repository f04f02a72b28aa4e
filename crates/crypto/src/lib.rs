//! Ward's cryptographic core: AEAD, key types, Shamir splitting; no I/O.
