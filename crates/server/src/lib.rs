//! Ward's HTTP adapter: Vault's API over axum.
