//! A Rust client for Ward (and any Vault-compatible server).
//!
//! [`Client`] speaks Vault's HTTP API: generic [`Client::read`], [`Client::write`],
//! [`Client::list`], [`Client::delete`] and [`Client::patch`] on `/v1/<path>`, plus typed
//! helpers for the `sys/` endpoints, tokens, policies and KV version 2 ([`Kv2`]).
//!
//! Typed views: [`Kv2`] (KV version 2), [`Transit`] (encryption as a service), tokens,
//! logins ([`Client::login_approle`], [`Client::login_userpass`]) and `sys/`.
//!
//! # Resilience
//!
//! Every request goes through one private `send` function, where the [`Resilience`]
//! mechanisms live, each on by default and each configurable with
//! [`Client::with_resilience`]:
//!
//! - a bounded read cache of KV reads with a TTL (5 minutes), emptied by
//!   [`Client::invalidate_cache`] and, for a mount, by writes through the client;
//! - retries with exponential backoff and full jitter for idempotent calls on 5xx, 429
//!   (honouring `Retry-After`) and transport errors; never on 4xx;
//! - a circuit breaker per server address ([`Client::circuit_state`]): after repeated
//!   failures calls fail at once with [`ClientError::CircuitOpen`] instead of each waiting
//!   for a timeout, until a probe succeeds;
//! - token renewal in the background ([`Client::start_renewal`]) at half the TTL, logging in
//!   again ([`Login`]) when the token can no longer be renewed;
//! - a degraded mode for named secrets ([`Client::read_secret`]): when the server cannot be
//!   reached and nothing is cached, `WARD_FALLBACK_<NAME>` is used, reported by
//!   [`Client::health_state`] and a `tracing` warning, never silently.
//!
//! ```no_run
//! # async fn run() -> Result<(), ward_client::ClientError> {
//! use ward_client::{Client, SecretRef};
//!
//! let client = Client::new("http://127.0.0.1:8200", Some("token"))?;
//! let db: SecretRef = "secret/myapp/db#password".parse()?;
//! let password = client.read_secret("DB_PASSWORD", &db).await?;
//! println!("read version {:?} from {:?}", password.version, password.source);
//! # Ok(()) }
//! ```
//!
//! The token is sent in the `X-Vault-Token` header and never appears in `Debug` output or
//! in errors.

mod auth;
mod client;
mod error;
mod kv2;
mod quorum;
mod resilience;
mod secret;
mod sys;
mod token;
mod transit;

pub use auth::{Login, RenewalHandle};
pub use client::{Client, ClientOptions, DEFAULT_ADDRESS, DEFAULT_TIMEOUT};
pub use error::ClientError;
pub use kv2::{Kv2, KvMountInfo};
pub use resilience::{CircuitState, FALLBACK_ENV_PREFIX, HealthState, Resilience};
pub use secret::{SecretRef, SecretSource, SecretValue};
pub use transit::{DataKey, Transit};
pub use ward_api as api;
