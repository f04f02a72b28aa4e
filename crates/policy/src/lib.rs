//! Ward's ACL policies: Vault's HCL/JSON policy language and path matching.
//!
//! A Vault policy file works unchanged: [`Policy::parse`] reads HCL (or the same structure
//! as JSON), and [`Acl`] merges a token's policies and answers, for a request path, which
//! [`Capabilities`] apply, with Vault's matching rules:
//!
//! - an exact pattern matches only that path, and always beats any glob;
//! - a trailing `*` makes a prefix glob (`secret/zip-*` matches `secret/zip-zap/zong`);
//! - a `+` segment matches exactly one path segment, and combines with a trailing `*`;
//! - of several matching patterns, the highest-priority one alone decides (no union across
//!   patterns): first wildcard later, then not ending in `*`, then fewer `+`, then longer,
//!   then lexically greater;
//! - the same pattern in several rules merges into the union of capabilities, and `deny`
//!   on any of them wins.
//!
//! Vault's parameter and wrapping-TTL constraints (`allowed_parameters`,
//! `denied_parameters`, `required_parameters`, `min_wrapping_ttl`, `max_wrapping_ttl`) are
//! accepted, validated and kept ([`UnenforcedConstraints`]) but **not enforced**;
//! [`Policy::warnings`] says so for each rule that has them. Vault keys whose absence would
//! change what a rule grants (`expiration`, `mfa_methods`, `control_group`,
//! `pagination_limit`, `list_scan_response_keys_filter_path`) and templated paths are
//! rejected with an error.

mod acl;
mod capability;
mod duration;
mod error;
mod name;
mod parse;
mod pattern;
mod policy;
mod segment_trie;

pub use acl::Acl;
pub use capability::{Capabilities, Capability, UnknownCapability};
pub use error::{PolicyError, PolicyFormat, RuleLocation};
pub use name::{
    DEFAULT_POLICY_NAME, MAX_POLICY_NAME_LEN, ROOT_POLICY_NAME, is_reserved, is_undeletable,
    normalize_policy_name,
};
pub use policy::{DEFAULT_POLICY, PathRule, Policy, UnenforcedConstraints};
