//! A Rust client for Ward (and any Vault-compatible server).
//!
//! [`Client`] speaks Vault's HTTP API: generic [`Client::read`], [`Client::write`],
//! [`Client::list`], [`Client::delete`] and [`Client::patch`] on `/v1/<path>`, plus typed
//! helpers for the `sys/` endpoints, tokens, policies and KV version 2 ([`Kv2`]).
//!
//! Every request goes through one private `send` function, so that caching, retries and a
//! circuit breaker can be added in one place later.
//!
//! The token is sent in the `X-Vault-Token` header and never appears in `Debug` output or
//! in errors.

mod client;
mod error;
mod kv2;
mod quorum;
mod sys;
mod token;

pub use client::{Client, ClientOptions, DEFAULT_ADDRESS, DEFAULT_TIMEOUT};
pub use error::ClientError;
pub use kv2::{Kv2, KvMountInfo};
pub use ward_api as api;
