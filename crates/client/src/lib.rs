//! A Rust client for Ward (and any Vault-compatible server).
