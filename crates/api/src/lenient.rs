//! Fields as Vault decodes them "weakly" (Go's mapstructure with weak typing): a number or a
//! boolean where a string is wanted, `"true"` or `1` where a boolean is, `"5"` where a number
//! is, `"a,b"` where a list is. Ward's engines read request fields with these rules and the
//! API types deserialize with them. Each function returns `None` for a value it cannot read.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string, or a number or boolean written as one.
pub fn string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A boolean, Go's `strconv.ParseBool` spellings of one (and `""` for false), or 0 or 1.
pub fn bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" | "1" | "t" | "T" | "TRUE" | "True" => Some(true),
            "false" | "0" | "f" | "F" | "FALSE" | "False" | "" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// A non-negative integer, or one written as a string.
pub fn u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A list of strings: an array of strings, or one comma-separated string (empty items left out).
pub fn string_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(String::from)
                .collect(),
        ),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(|s| s.trim().to_owned()))
            .collect(),
        _ => None,
    }
}

/// `Option<map string → string>` read with [`string`] (numbers and booleans become text),
/// `null` as None.
pub(crate) fn string_map<'de, D>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw: Option<BTreeMap<String, Value>> = Option::deserialize(deserializer)?;
    raw.map(|map| {
        map.into_iter()
            .map(|(key, value)| match string(&value) {
                Some(text) => Ok((key, text)),
                None => Err(D::Error::custom(format!(
                    "{key:?}: expected a string, number or boolean"
                ))),
            })
            .collect()
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_are_read_weakly() {
        assert_eq!(string(&json!(2)).as_deref(), Some("2"));
        assert_eq!(string(&json!(true)).as_deref(), Some("true"));
        assert_eq!(string(&json!([1])), None);
        assert_eq!(bool(&json!("T")), Some(true));
        assert_eq!(bool(&json!("")), Some(false));
        assert_eq!(bool(&json!(1)), Some(true));
        assert_eq!(bool(&json!(2)), None);
        assert_eq!(bool(&json!("yes")), None);
        assert_eq!(u64(&json!("5")), Some(5));
        assert_eq!(u64(&json!(-5)), None);
        assert_eq!(u64(&json!("five")), None);
    }

    #[test]
    fn lists_are_arrays_or_comma_separated() {
        let list = |v: Value| string_list(&v);
        assert_eq!(list(json!("a, b,,")), Some(vec!["a".into(), "b".into()]));
        assert_eq!(list(json!([" a", "b"])), Some(vec!["a".into(), "b".into()]));
        assert_eq!(list(json!(["a", 1])), None);
        assert_eq!(list(json!({})), None);
    }
}
