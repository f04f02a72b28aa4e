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
//! ```
//! use ward_policy::{Acl, Capability, Policy};
//!
//! let app = Policy::parse("app", r#"
//!     path "secret/data/app/*" { capabilities = ["read", "list"] }
//!     path "secret/data/app/admin" { capabilities = ["deny"] }
//! "#)?;
//! let acl = Acl::new(&[Policy::default_policy(), app]);
//! assert!(acl.allows("secret/data/app/db", Capability::Read));
//! assert!(!acl.allows("secret/data/app/admin", Capability::Read));
//! assert!(acl.allows("auth/token/lookup-self", Capability::Read));
//! // What `sys/capabilities` returns:
//! assert_eq!(acl.capabilities("secret/data/app/db").as_strs(), ["list", "read"]);
//! assert_eq!(acl.capabilities("secret/data/other").as_strs(), ["deny"]);
//! assert_eq!(Acl::root().capabilities("anything").as_strs(), ["root"]);
//! # Ok::<(), ward_policy::PolicyError>(())
//! ```
//!
//! Vault's parameter and wrapping-TTL constraints (`allowed_parameters`,
//! `denied_parameters`, `required_parameters`, `min_wrapping_ttl`, `max_wrapping_ttl`) are
//! kept per rule ([`ParameterConstraints`]), merged per pattern as Vault merges them, and
//! enforced by [`Acl::allows_request`] for the rule that decides, with Vault's semantics
//! (`denied_parameters` first, `*` names, `*` globs in values, names compared in lower
//! case). Ward has no response wrapping, so a rule with a wrapping TTL denies every request
//! it decides, as Vault denies requests that are not wrapped; [`Policy::warnings`] says so.
//!
//! ```
//! use serde_json::json;
//! use ward_policy::{Acl, Capability, Policy};
//!
//! let tokens = Policy::parse("tokens", r#"
//!     path "auth/token/create" {
//!         capabilities = ["update"]
//!         denied_parameters = { "policies" = ["root", "admin*"] }
//!     }
//! "#)?;
//! let acl = Acl::new(&[tokens]);
//! let create = |body: serde_json::Value| {
//!     let params = body.as_object().cloned().unwrap_or_default();
//!     acl.allows_request("auth/token/create", Capability::Update, &params)
//! };
//! assert!(create(json!({"policies": ["app"], "ttl": "1h"})));
//! assert!(!create(json!({"policies": ["app", "admin-ops"]})));
//! assert!(!create(json!({"policies": "app,root"})), "a comma-separated string too");
//! # Ok::<(), ward_policy::PolicyError>(())
//! ```
//!
//! The parameters are the request's top-level fields, as in Vault: for a KV v2 write that is
//! `data` and `options`, not the secret's own keys.
//!
//! Vault keys whose absence would change what a rule grants (`expiration`, `mfa_methods`,
//! `control_group`, `pagination_limit`, `list_scan_response_keys_filter_path`) and
//! templated paths are rejected with an error.
//!
//! Where Ward knowingly differs from Vault:
//! - every capability name must be known, even after a `deny` (Vault stops reading the list
//!   at `deny`); Vault's newer `subscribe`/`recover` and OpenBao's `scan` are unknown here;
//! - an empty pattern (`path ""`) is an error (Vault accepts it);
//! - [`Acl::new`] with the root policy among others gives the root ACL (Vault refuses);
//! - in `allowed_parameters` / `denied_parameters` lists a number matches an equal JSON
//!   number (`3600` matches `3600` and `3600.0`); Vault never matches numbers, as it reads
//!   request numbers as `json.Number` and compares them with the policy's integers by type;
//! - the text is read with an HCL2 parser (hcl-rs), so two HCL1 leniencies are gone: a
//!   block opened and given an attribute on one line (`path "x" { a = 1`) must close on that
//!   line, and an attribute may not be repeated in a block.
//!
//! For LIST requests and `sys/capabilities` ([`Acl::capabilities`]) a path ending in `/` is
//! matched as OpenBao 2.7.2 does: exact rule for the path, exact rule without the `/`,
//! glob/`+` rules for the path as given, glob/`+` rules without the `/`
//! (tests/reference_answers.rs replays answers recorded from it). HashiCorp Vault since
//! 1.15.2 swaps the last two steps: there `secret/metadata/*` lets a token LIST
//! `secret/metadata/private/` despite a `deny` on `secret/metadata/private/*`, so Ward
//! does not follow it.

mod acl;
mod capability;
mod error;
mod name;
mod params;
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
pub use params::ParameterConstraints;
pub use policy::{DEFAULT_POLICY, PathRule, Policy};
