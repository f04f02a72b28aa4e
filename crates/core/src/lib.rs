//! Ward's core: seal and unseal, the key hierarchy above the barrier, the mount table and
//! engines (KV v2), token authentication and ACL authorisation. It knows nothing of HTTP:
//! transports hand it [`Request`]s and get [`Response`]s or [`CoreError`]s back.

mod approle;
mod audit;
mod cert_auth;
mod client_token;
mod cluster;
mod core;
mod dev;
mod engine;
mod error;
mod kv;
mod mounts;
mod observe;
mod params;
mod policy_store;
mod record;
mod report;
mod request;
mod rotation;
mod seal;
pub mod seals;
mod snapshot;
mod sys;
mod token;
mod totp;
mod transit;
mod userpass;
pub mod webhook;

pub use crate::core::{Core, CoreConfig, ThisNode};
pub use crate::seal::InitOutput;
pub use crate::snapshot::{Restored, SnapshotSchedule, SnapshotStream};

/// The hash map of the caches read on every request: foldhash, seeded per process. Their
/// keys are digests, names operators chose, or mount ids, none of which a client can pick to
/// collide, and SipHash costs as much as the rest of such a lookup.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub use client_token::Token;
pub use error::{CoreError, CoreResult, Report};
pub use request::{
    AuthInfo, Bare, BodyStream, Data, Operation, Outcome, RawJson, Request, Response,
};
pub use rotation::RotationConfig;

/// Ward's version, reported by health and seal-status.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
