//! Vault-shaped request and response types shared by Ward's server and client.
//!
//! These are the JSON bodies of HashiCorp Vault's HTTP API as the real servers send them
//! (checked against OpenBao 2.7.2), so that clients written for Vault parse Ward's replies
//! and Ward's client parses Vault's. Types only: no HTTP, no I/O.
//!
//! Types that carry a secret (tokens, unseal keys, secret values) have a `Debug` that
//! shows no content. None of them is zeroized: they are plain transport values.

pub mod audit;
mod duration;
mod envelope;
mod kv;
pub mod lenient;
mod mounts;
mod policy;
mod quorum;
pub mod report;
mod sys;
pub mod time;
mod token;
pub mod token_format;

pub use duration::{
    DurationInput, DurationParseError, duration_from_json, format_duration, parse_duration,
    parse_duration_seconds,
};
pub use envelope::{Auth, ErrorResponse, Response, WrapInfo};
pub use kv::{
    KvConfig, KvMetadata, KvMetadataWriteRequest, KvReadData, KvVersionMetadata, KvVersionSummary,
    KvVersionsRequest, KvWriteOptions, KvWriteRequest,
};
pub use mounts::{MountConfig, MountConfigInput, MountEnableRequest, MountInfo};
pub use policy::{AclPolicy, ListKeys, PolicyWriteRequest};
pub use quorum::{
    GenerateRootRequest, GenerateRootStatus, QuorumShare, RekeyRequest, RekeyResult, RekeyStatus,
    RekeyUpdate, decode_root_token, encode_root_token,
};
pub use sys::{
    HealthResponse, InitRequest, InitResponse, InitStatus, KeyStatus, LeaderStatus, SealStatus,
    UnsealRequest,
};
pub use token::{
    TokenAccessorRequest, TokenCreateRequest, TokenLookup, TokenRenewRequest, TokenRequest,
};
