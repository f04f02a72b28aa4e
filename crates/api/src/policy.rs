//! `sys/policies/acl` bodies, and the `{"keys": [...]}` shape every LIST returns.

use serde::{Deserialize, Serialize};

/// `PUT sys/policies/acl/<name>` (and legacy `sys/policy/<name>`) request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PolicyWriteRequest {
    /// The policy document (HCL or JSON). The legacy endpoint names it `rules`.
    #[serde(alias = "rules")]
    pub policy: String,
}

/// `GET sys/policies/acl/<name>` data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AclPolicy {
    /// The policy's name.
    pub name: String,
    /// The policy document (HCL or JSON). The legacy endpoint names it `rules`.
    #[serde(alias = "rules")]
    pub policy: String,
}

/// The data of every LIST response: `{"keys": [...]}`; folders end with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ListKeys {
    /// The names found.
    pub keys: Vec<String>,
}
