//! A parsed policy: named rules, each a path pattern with its capabilities.

use std::collections::BTreeMap;

use serde_json::Value;
use ward_api::duration_from_json;

use crate::capability::{Capabilities, Capability};
use crate::error::{PolicyError, RuleLocation};
use crate::name::{DEFAULT_POLICY_NAME, ROOT_POLICY_NAME, is_reserved, normalize_policy_name};
use crate::params::ParameterConstraints;
use crate::parse::{RawRule, parse_rules};

/// Vault's `default` policy, restricted to what applies to Ward (Vault's identity-templated
/// entity lookups and OIDC provider paths are left out: Ward has no identity store).
pub const DEFAULT_POLICY: &str = r#"# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}
path "sys/tools/random" {
    capabilities = ["update"]
}
path "sys/tools/random/*" {
    capabilities = ["update"]
}
"#;

/// Keys Vault accepts in a `path` block that Ward does not implement and rejects, because
/// ignoring them would change what the rule grants (an expiry, an MFA or control-group gate,
/// a page-size limit or a list filter).
const UNSUPPORTED_KEYS: [&str; 6] = [
    "expiration",
    "mfa_methods",
    "control_group",
    "pagination_limit",
    "list_scan_response_keys_filter_path",
    "subscribe_event_types",
];

/// One `path` block: a pattern and what it grants.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    pattern: String,
    capabilities: Capabilities,
    constraints: ParameterConstraints,
}

impl PathRule {
    /// The pattern, as matched: as written, less one leading `/` (Vault strips it too).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The capabilities this rule grants (`deny` excludes all others).
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The rule's parameter and wrapping-TTL constraints (enforced by
    /// [`crate::Acl::allows_request`]).
    pub fn parameter_constraints(&self) -> &ParameterConstraints {
        &self.constraints
    }
}

/// A named ACL policy, parsed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    name: String,
    raw: String,
    rules: Vec<PathRule>,
    warnings: Vec<String>,
    root: bool,
}

impl Policy {
    /// Parses a policy written in HCL or in JSON of the same structure
    /// (`{"path": {"secret/*": {"capabilities": ["read"]}}}`; text starting with `{` is read
    /// as JSON). The name is normalised as Vault does (trimmed, lowercased) and validated;
    /// reserved names (`root`…) are refused.
    pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
        let name = normalize_policy_name(name)?;
        if is_reserved(&name) {
            return Err(PolicyError::ReservedName(name));
        }
        let mut warnings = Vec::new();
        let rules = parse_rules(text)?
            .into_iter()
            .map(|raw| build_rule(raw, &mut warnings))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            name,
            raw: text.to_owned(),
            rules,
            warnings,
            root: false,
        })
    }

    /// The built-in `root` policy: allows everything, has no text and no rules.
    pub fn root() -> Policy {
        Policy {
            name: ROOT_POLICY_NAME.to_owned(),
            raw: String::new(),
            rules: Vec::new(),
            warnings: Vec::new(),
            root: true,
        }
    }

    /// The built-in `default` policy, parsed from [`DEFAULT_POLICY`].
    pub fn default_policy() -> Policy {
        match Policy::parse(DEFAULT_POLICY_NAME, DEFAULT_POLICY) {
            Ok(policy) => policy,
            // Unreachable (a unit test parses DEFAULT_POLICY); failing closed all the same.
            Err(_) => Policy {
                name: DEFAULT_POLICY_NAME.to_owned(),
                raw: DEFAULT_POLICY.to_owned(),
                rules: Vec::new(),
                warnings: Vec::new(),
                root: false,
            },
        }
    }

    /// The normalised name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text the policy was parsed from, unchanged (what `sys/policy/NAME` returns).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The rules in the order written (for JSON, in key order).
    pub fn rules(&self) -> &[PathRule] {
        &self.rules
    }

    /// Whether this is the built-in `root` policy.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// Things the author should know that do not make the policy invalid: a wrapping-TTL
    /// constraint no Ward request can meet, a `*` that is not a glob, a rule that grants
    /// nothing.
    /// Meant for the `warnings` of the API response that stored the policy.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

fn build_rule(raw: RawRule, warnings: &mut Vec<String>) -> Result<PathRule, PolicyError> {
    let at = RuleLocation {
        path: raw.path.clone(),
        line: raw.line,
    };
    // Vault strips one leading '/': policy paths start after the API's `/v1/`.
    let pattern = raw.path.strip_prefix('/').unwrap_or(&raw.path).to_owned();
    if pattern.is_empty() {
        return Err(PolicyError::EmptyPath { line: raw.line });
    }
    if pattern.contains("+*") {
        return Err(PolicyError::InvalidPattern {
            at,
            reason: "invalid use of wildcards ('+*' is forbidden)",
        });
    }
    if pattern.contains("{{") {
        return Err(PolicyError::InvalidPattern {
            at,
            reason: "templated paths ({{identity...}}) are not supported by Ward",
        });
    }
    if pattern[..pattern.len() - 1].contains('*') {
        warnings.push(format!(
            "{at}: '*' is a glob only as the last character; elsewhere it matches a literal '*'"
        ));
    }

    let mut seen: Vec<&str> = Vec::new();
    let mut capabilities = Capabilities::NONE;
    let mut has_capability_key = false;
    let mut constraints = ParameterConstraints::default();
    for (key, value) in &raw.keys {
        if seen.contains(&key.as_str()) {
            return Err(PolicyError::DuplicateKey {
                at,
                key: key.clone(),
            });
        }
        seen.push(key);
        if UNSUPPORTED_KEYS.contains(&key.as_str()) {
            return Err(PolicyError::UnsupportedKey {
                at,
                key: key.clone(),
            });
        }
        let known = matches!(
            key.as_str(),
            "capabilities"
                | "policy"
                | "comment"
                | "allowed_parameters"
                | "denied_parameters"
                | "required_parameters"
                | "min_wrapping_ttl"
                | "max_wrapping_ttl"
        );
        if !known {
            return Err(PolicyError::UnknownKey {
                at,
                key: key.clone(),
            });
        }
        let Some(value) = value else {
            return Err(PolicyError::NotLiteral {
                at,
                key: key.clone(),
            });
        };
        let wrong_type = |expected| PolicyError::WrongType {
            at: at.clone(),
            key: key.clone(),
            expected,
        };
        match key.as_str() {
            "capabilities" => {
                has_capability_key = true;
                let Value::Array(items) = value else {
                    return Err(wrong_type("a list of strings"));
                };
                for item in items {
                    let Value::String(name) = item else {
                        return Err(wrong_type("a list of strings"));
                    };
                    // Stricter than Vault, which stops reading at "deny" and so lets an
                    // unknown name after it pass: every name must be a capability here.
                    let cap = Capability::from_name(name).ok_or_else(|| {
                        PolicyError::UnknownCapability {
                            at: at.clone(),
                            capability: name.clone(),
                        }
                    })?;
                    capabilities.insert(cap);
                }
            }
            "policy" => {
                has_capability_key = true;
                let Value::String(legacy) = value else {
                    return Err(wrong_type("a string"));
                };
                for cap in
                    legacy_capabilities(legacy).ok_or_else(|| PolicyError::InvalidLegacyPolicy {
                        at: at.clone(),
                        value: legacy.clone(),
                    })?
                {
                    capabilities.insert(*cap);
                }
            }
            "comment" => {}
            "allowed_parameters" | "denied_parameters" => {
                let params = parameter_map(value)
                    .ok_or_else(|| wrong_type("an object of parameter name to list of values"))?;
                if key == "allowed_parameters" {
                    constraints.allowed_parameters = Some(params);
                } else {
                    constraints.denied_parameters = Some(params);
                }
            }
            "required_parameters" => {
                let Value::Array(items) = value else {
                    return Err(wrong_type("a list of strings"));
                };
                for item in items {
                    let Value::String(param) = item else {
                        return Err(wrong_type("a list of strings"));
                    };
                    constraints.required_parameters.push(param.clone());
                }
            }
            _ => {
                // min_wrapping_ttl / max_wrapping_ttl
                let duration =
                    duration_from_json(value).map_err(|_| PolicyError::InvalidDuration {
                        at: at.clone(),
                        key: key.clone(),
                        value: match value {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        },
                    })?;
                if key == "min_wrapping_ttl" {
                    constraints.min_wrapping_ttl = Some(duration);
                } else {
                    constraints.max_wrapping_ttl = Some(duration);
                }
            }
        }
    }
    // Vault parses a zero TTL as "unset".
    constraints.min_wrapping_ttl = constraints.min_wrapping_ttl.filter(|d| !d.is_zero());
    constraints.max_wrapping_ttl = constraints.max_wrapping_ttl.filter(|d| !d.is_zero());
    if let (Some(min), Some(max)) = (constraints.min_wrapping_ttl, constraints.max_wrapping_ttl)
        && max < min
    {
        return Err(PolicyError::WrappingTtlOrder { at });
    }

    if !has_capability_key || capabilities == Capabilities::NONE {
        warnings.push(format!(
            "{at}: the rule grants no capability; as the best match for a path it denies it"
        ));
    }
    if constraints.has_wrapping_ttl() {
        warnings.push(format!(
            "{at}: Ward has no response wrapping, so no request meets min_wrapping_ttl or \
             max_wrapping_ttl: the rule denies every request it decides (as Vault denies an \
             unwrapped one)"
        ));
    }
    Ok(PathRule {
        pattern,
        capabilities,
        constraints,
    })
}

/// Vault's pre-0.9 `policy = "..."` form, mapped to capabilities as Vault maps it.
fn legacy_capabilities(policy: &str) -> Option<&'static [Capability]> {
    use Capability::*;
    Some(match policy {
        "deny" => &[Deny],
        "read" => &[Read, List],
        "write" => &[Create, Read, Update, Delete, List],
        "sudo" => &[Create, Read, Update, Delete, List, Sudo],
        _ => return None,
    })
}

fn parameter_map(value: &Value) -> Option<BTreeMap<String, Vec<Value>>> {
    let Value::Object(map) = value else {
        return None;
    };
    map.iter()
        .map(|(name, values)| match values {
            Value::Array(values) => Some((name.to_lowercase(), values.clone())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_parses_without_warnings() {
        let policy = Policy::parse("default", DEFAULT_POLICY).unwrap();
        assert_eq!(policy.warnings(), &[] as &[String]);
        assert_eq!(Policy::default_policy(), policy);
        assert!(policy.rules().len() >= 10);
    }
}
