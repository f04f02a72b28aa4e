//! Vault's parameter and response-wrapping constraints: as written in one rule
//! ([`ParameterConstraints`]), merged across the rules that share a pattern
//! ([`MergedConstraints`]), and checked against a request's parameters.
//!
//! The checks follow Vault's `ACL.AllowOperation` once the rule's capabilities allow the
//! operation:
//!
//! 1. a wrapping-TTL constraint denies: Ward has no response wrapping, so no request is ever
//!    wrapped, and Vault denies an unwrapped request when the rule sets a wrapping TTL;
//! 2. only reads, creates, updates and patches go on (lists and deletes are allowed here);
//! 3. every `required_parameters` name, lowercased, must be a parameter of the request;
//! 4. a request without parameters is allowed;
//! 5. `denied_parameters`: a `*` key denies any parameter; a parameter whose name (compared
//!    in lower case) is a key is denied when its list is empty or holds its value;
//! 6. `allowed_parameters`, if it has keys: each parameter must be allowed by its own key
//!    (empty list: any value; else its value must be in the list) or, when it has no key
//!    of its own, by a `*` key.
//!
//! A value is in a list, as in Vault's `valueInParameterList`, when an element is equal to
//! it; a string element may start and/or end with a `*` glob (`admin*`, `*-prod`, `*x*`).
//! Then, as Vault does, an array value is looked at element by element and a string value
//! as a comma-separated list (items trimmed): for an allowed list every item must be in the
//! list (so `""` and `[]`, which carry no value, pass, as omitting the parameter would), for
//! a denied list one item in the list is enough to deny.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Number, Value};

use crate::capability::Capability;

/// A rule's parameter map: name (lowercased) → values.
type ParamMap = BTreeMap<String, Vec<Value>>;

/// Vault's parameter and response-wrapping constraints of one rule, as written (parameter
/// names lowercased). [`crate::Acl::allows_request`] enforces them with Vault's semantics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParameterConstraints {
    /// `allowed_parameters`: parameter name (lowercased, as Vault stores it) → allowed values.
    pub allowed_parameters: Option<BTreeMap<String, Vec<Value>>>,
    /// `denied_parameters`: parameter name (lowercased) → denied values.
    pub denied_parameters: Option<BTreeMap<String, Vec<Value>>>,
    /// `required_parameters`, as written (matched in lower case).
    pub required_parameters: Vec<String>,
    /// `min_wrapping_ttl` (a zero TTL is stored as `None`, as Vault ignores it).
    pub min_wrapping_ttl: Option<Duration>,
    /// `max_wrapping_ttl` (a zero TTL is stored as `None`).
    pub max_wrapping_ttl: Option<Duration>,
}

impl ParameterConstraints {
    /// Whether the rule has none of these constraints.
    pub fn is_empty(&self) -> bool {
        self.allowed_parameters.is_none()
            && self.denied_parameters.is_none()
            && self.required_parameters.is_empty()
            && self.min_wrapping_ttl.is_none()
            && self.max_wrapping_ttl.is_none()
    }

    /// Whether the rule sets a wrapping TTL, which no Ward request can meet.
    pub fn has_wrapping_ttl(&self) -> bool {
        self.min_wrapping_ttl.is_some() || self.max_wrapping_ttl.is_some()
    }
}

/// The constraints of all the rules for one pattern, merged as Vault's `NewACL` merges them:
/// allowed and denied maps merge key by key, appending values, an empty list on either side
/// giving an empty list (any value); required names are unioned; any wrapping TTL makes the
/// merged rule deny (Vault keeps the smaller non-zero TTL of each kind; for Ward, which never
/// wraps, only whether there is one matters). Empty maps count as absent, as in Vault.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MergedConstraints {
    wrapping: bool,
    /// Lowercased, without duplicates.
    required: Vec<String>,
    denied: Option<ParamMap>,
    allowed: Option<ParamMap>,
}

impl MergedConstraints {
    /// The constraints of one rule, or `None` when it has none that matter.
    pub(crate) fn of(constraints: &ParameterConstraints) -> Option<Box<MergedConstraints>> {
        let mut merged = MergedConstraints::default();
        merged.merge(constraints);
        (!merged.is_empty()).then(|| Box::new(merged))
    }

    fn is_empty(&self) -> bool {
        !self.wrapping
            && self.required.is_empty()
            && self.denied.is_none()
            && self.allowed.is_none()
    }

    /// Merges another rule's constraints for the same pattern.
    pub(crate) fn merge(&mut self, other: &ParameterConstraints) {
        self.wrapping |= other.has_wrapping_ttl();
        for name in &other.required_parameters {
            let name = name.to_lowercase();
            if !self.required.contains(&name) {
                self.required.push(name);
            }
        }
        merge_maps(&mut self.denied, other.denied_parameters.as_ref());
        merge_maps(&mut self.allowed, other.allowed_parameters.as_ref());
    }

    /// Whether a request for `capability` with `params` meets the constraints (the rule's
    /// capabilities having already allowed it). See the module documentation.
    pub(crate) fn permits(&self, capability: Capability, params: &Map<String, Value>) -> bool {
        if self.wrapping {
            return false;
        }
        let checks_params = matches!(
            capability,
            Capability::Read | Capability::Create | Capability::Update | Capability::Patch
        );
        if !checks_params {
            return true;
        }
        if !self.required.iter().all(|name| params.contains_key(name)) {
            return false;
        }
        if params.is_empty() {
            return true;
        }
        if let Some(denied) = &self.denied {
            if denied.contains_key("*") {
                return false;
            }
            let any_denied = params.iter().any(|(name, value)| {
                lookup(denied, name).is_some_and(|list| value_denied(value, list))
            });
            if any_denied {
                return false;
            }
        }
        let Some(allowed) = &self.allowed else {
            return true;
        };
        let any_name = allowed.contains_key("*");
        if any_name && allowed.len() == 1 {
            return true;
        }
        params
            .iter()
            .all(|(name, value)| match lookup(allowed, name) {
                Some(list) => value_allowed(value, list),
                None => any_name,
            })
    }
}

/// Vault's merge of two allowed (or denied) maps for the same pattern.
fn merge_maps(into: &mut Option<ParamMap>, other: Option<&ParamMap>) {
    let Some(other) = other.filter(|map| !map.is_empty()) else {
        return;
    };
    let Some(into) = into else {
        *into = Some(other.clone());
        return;
    };
    for (name, values) in other {
        match into.get_mut(name) {
            // An empty list (any value) absorbs the other side's values.
            Some(existing) if existing.is_empty() => {}
            Some(existing) if values.is_empty() => existing.clear(),
            Some(existing) => existing.extend(values.iter().cloned()),
            None => {
                into.insert(name.clone(), values.clone());
            }
        }
    }
}

/// The list for a request parameter name, compared in lower case (no allocation unless the
/// name has upper-case or non-ASCII characters).
fn lookup<'m>(map: &'m ParamMap, name: &str) -> Option<&'m [Value]> {
    let name: Cow<'_, str> = if name
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(name.to_lowercase())
    };
    map.get(name.as_ref()).map(Vec::as_slice)
}

/// Vault's `valueInAllowedParameterList`.
fn value_allowed(value: &Value, list: &[Value]) -> bool {
    if list.is_empty() || in_list(value, list) {
        return true;
    }
    match value {
        Value::Array(items) => items.iter().all(|item| in_list(item, list)),
        Value::String(text) => comma_items(text).all(|item| str_in_list(item, list)),
        _ => false,
    }
}

/// Vault's `valueInDeniedParameterList`.
fn value_denied(value: &Value, list: &[Value]) -> bool {
    if list.is_empty() || in_list(value, list) {
        return true;
    }
    match value {
        Value::Array(items) => items.iter().any(|item| in_list(item, list)),
        Value::String(text) => comma_items(text).any(|item| str_in_list(item, list)),
        _ => false,
    }
}

/// A string read as Vault's comma-separated list: no item for `""`, else the items trimmed.
fn comma_items(text: &str) -> impl Iterator<Item = &str> {
    let items = (!text.is_empty()).then(|| text.split(',').map(str::trim));
    items.into_iter().flatten()
}

/// Vault's `valueInParameterList`: a string element matches a string value with globbing;
/// any other element must equal the value.
fn in_list(value: &Value, list: &[Value]) -> bool {
    list.iter().any(|element| match (element, value) {
        (Value::String(pattern), Value::String(text)) => glob_match(pattern, text),
        (Value::String(_), _) => false,
        _ => same_value(element, value),
    })
}

fn str_in_list(text: &str, list: &[Value]) -> bool {
    list.iter()
        .any(|element| matches!(element, Value::String(pattern) if glob_match(pattern, text)))
}

/// JSON equality with numbers compared by value (`3600` equals `3600.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(key, x)| ys.get(key).is_some_and(|y| same_value(x, y)))
        }
        _ => a == b,
    }
}

fn same_number(x: &Number, y: &Number) -> bool {
    let integer = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (integer(x), integer(y)) {
        (Some(x), Some(y)) => x == y,
        _ => x.as_f64().is_some_and(|x| y.as_f64() == Some(x)),
    }
}

/// Vault's `GlobbedStringsMatch`: a leading and/or trailing `*` in `pattern` is a glob; a
/// pattern shorter than two bytes (so `*` alone) matches only itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern.len() < 2 {
        return pattern == text;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), Some(_)) => text.contains(&rest[..rest.len() - 1]),
        (Some(suffix), None) => text.ends_with(suffix),
        (None, Some(prefix)) => text.starts_with(prefix),
        (None, None) => pattern == text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_as_vault() {
        assert!(glob_match("admin*", "admin"));
        assert!(glob_match("admin*", "admin-ops"));
        assert!(!glob_match("admin*", "sysadmin"));
        assert!(glob_match("*-prod", "db-prod"));
        assert!(!glob_match("*-prod", "db-prod2"));
        assert!(glob_match("*ad*", "bad"));
        assert!(glob_match("**", ""));
        assert!(glob_match("*", "*"));
        assert!(!glob_match("*", "anything"));
        assert!(glob_match("a", "a"));
        assert!(
            !glob_match("a*b", "axb"),
            "only a leading or trailing * globs"
        );
        assert!(glob_match("a*b", "a*b"));
    }

    #[test]
    fn comma_lists() {
        assert_eq!(comma_items("").count(), 0);
        assert_eq!(comma_items("a, b ,c").collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(comma_items("a,,b").collect::<Vec<_>>(), ["a", "", "b"]);
    }

    #[test]
    fn numbers_compare_by_value() {
        let n = |v: Value| match v {
            Value::Number(n) => n,
            _ => unreachable!(),
        };
        assert!(same_number(&n(3600.into()), &n(serde_json::json!(3600.0))));
        assert!(!same_number(&n(3600.into()), &n(3601.into())));
        assert!(same_number(&n((-1).into()), &n(serde_json::json!(-1))));
        assert!(same_number(&n(u64::MAX.into()), &n(u64::MAX.into())));
    }
}
