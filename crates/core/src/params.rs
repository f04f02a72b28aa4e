//! Reading request parameters the way Vault does: leniently typed ("true" for a bool,
//! "30" or "30s" or "1h" for a duration, "a,b" for a list), strictly validated.

use serde_json::{Map, Value};

use crate::{CoreError, CoreResult};

/// Typed access to a request's fields.
pub(crate) struct Params<'a>(pub(crate) &'a Map<String, Value>);

impl Params<'_> {
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn str(&self, name: &str) -> CoreResult<Option<String>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(type_error(name, "a string")),
        }
    }

    pub(crate) fn bool(&self, name: &str) -> CoreResult<Option<bool>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.as_str() {
                "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(Some(true)),
                "false" | "0" | "f" | "F" | "FALSE" | "False" | "" => Ok(Some(false)),
                _ => Err(type_error(name, "a boolean")),
            },
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(type_error(name, "a boolean")),
            },
            Some(_) => Err(type_error(name, "a boolean")),
        }
    }

    pub(crate) fn u64(&self, name: &str) -> CoreResult<Option<u64>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| type_error(name, "a non-negative integer")),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| type_error(name, "a non-negative integer")),
            Some(_) => Err(type_error(name, "a non-negative integer")),
        }
    }

    /// A duration in whole seconds: a number, or a duration string ("90s", "1h30m", "1d12h").
    pub(crate) fn duration(&self, name: &str) -> CoreResult<Option<u64>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(value) => ward_api::duration_from_json(value)
                .map(|d| Some(d.as_secs()))
                .map_err(|_| type_error(name, "a duration")),
        }
    }

    /// A list of strings: a JSON array of strings or a comma-separated string.
    pub(crate) fn str_list(&self, name: &str) -> CoreResult<Option<Vec<String>>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect(),
            )),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    _ => Err(type_error(name, "a list of strings")),
                })
                .collect::<CoreResult<Vec<_>>>()
                .map(Some),
            Some(_) => Err(type_error(name, "a list of strings")),
        }
    }

    /// A map of string to string (Vault's `meta`, `custom_metadata`).
    pub(crate) fn str_map(&self, name: &str) -> CoreResult<Option<Map<String, Value>>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => {
                if m.values().all(Value::is_string) {
                    Ok(Some(m.clone()))
                } else {
                    Err(type_error(name, "a map of strings"))
                }
            }
            Some(_) => Err(type_error(name, "a map of strings")),
        }
    }
}

fn type_error(name: &str, expected: &str) -> CoreError {
    CoreError::bad(format!("invalid value for '{name}': expected {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_types_and_clear_errors() {
        let m = json!({"b": "true", "n": "5", "l": "a, b", "bad": [1], "d": "1m"});
        let m = m.as_object().unwrap();
        let p = Params(m);
        assert_eq!(p.bool("b").unwrap(), Some(true));
        assert_eq!(p.u64("n").unwrap(), Some(5));
        assert_eq!(p.str_list("l").unwrap(), Some(vec!["a".into(), "b".into()]));
        assert_eq!(p.duration("d").unwrap(), Some(60));
        let err = p.str_list("bad").unwrap_err().to_string();
        assert!(err.contains("'bad'"), "{err}");
        assert!(p.bool("missing").unwrap().is_none());
    }

    /// Request fields and policies read durations by the one rule of `ward_api::duration`.
    #[test]
    fn durations_read_the_same_in_requests_and_policies() {
        for (text, seconds) in [
            ("1d12h", 129_600),
            ("90m", 5_400),
            ("3600", 3_600),
            ("1.5h", 5_400),
        ] {
            let fields = json!({ "ttl": text });
            let from_request = Params(fields.as_object().unwrap()).duration("ttl").unwrap();
            assert_eq!(from_request, Some(seconds), "{text}");
            let policy = ward_policy::Policy::parse(
                "p",
                &format!(
                    "path \"x\" {{\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"{text}\"\n  max_wrapping_ttl = \"{text}\"\n}}\n"
                ),
            )
            .unwrap();
            let constraints = policy.rules()[0].parameter_constraints();
            let expected = Some(std::time::Duration::from_secs(seconds));
            assert_eq!(constraints.min_wrapping_ttl, expected, "{text}");
            assert_eq!(constraints.max_wrapping_ttl, expected, "{text}");
        }
    }
}
