//! Reading request parameters the way Vault does: leniently typed ("true" for a bool,
//! "30" or "30s" or "1h" for a duration, "a,b" for a list), strictly validated.

use serde_json::{Map, Value};
use ward_api::lenient;

use crate::{CoreError, CoreResult};

/// Typed access to a request's fields, read by `ward_api::lenient`'s rules.
pub(crate) struct Params<'a>(pub(crate) &'a Map<String, Value>);

impl Params<'_> {
    pub(crate) fn has(&self, name: &str) -> bool {
        self.field(name).is_some()
    }

    /// The field, unless it is absent or null.
    fn field(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A number or duration field: Vault reads an empty string there as not given.
    fn numeric_field(&self, name: &str) -> Option<&Value> {
        self.field(name).filter(|v| v.as_str() != Some(""))
    }

    pub(crate) fn str(&self, name: &str) -> CoreResult<Option<String>> {
        read(self.field(name), name, "a string", lenient::string)
    }

    pub(crate) fn bool(&self, name: &str) -> CoreResult<Option<bool>> {
        read(self.field(name), name, "a boolean", lenient::bool)
    }

    pub(crate) fn u64(&self, name: &str) -> CoreResult<Option<u64>> {
        read(
            self.numeric_field(name),
            name,
            "a non-negative integer",
            lenient::u64,
        )
    }

    /// A duration in whole seconds: a number, or a duration string ("90s", "1h30m", "1d12h").
    pub(crate) fn duration(&self, name: &str) -> CoreResult<Option<u64>> {
        read(self.numeric_field(name), name, "a duration", |value| {
            ward_api::duration_from_json(value)
                .ok()
                .map(|d| d.as_secs())
        })
    }

    /// A list of strings: a JSON array of strings or a comma-separated string.
    pub(crate) fn str_list(&self, name: &str) -> CoreResult<Option<Vec<String>>> {
        read(
            self.field(name),
            name,
            "a list of strings",
            lenient::string_list,
        )
    }

    /// The policies an auth method's user or role gives its tokens: `token_policies`, or
    /// Vault's older `policies`, each name normalised as policy names are.
    pub(crate) fn token_policies(&self) -> CoreResult<Option<Vec<String>>> {
        let Some(list) = self
            .str_list("token_policies")?
            .or(self.str_list("policies")?)
        else {
            return Ok(None);
        };
        let names = list
            .iter()
            .map(|name| crate::policy_store::PolicyStore::name(name));
        names.collect::<CoreResult<_>>().map(Some)
    }

    /// A map of string to string (Vault's `meta`, `custom_metadata`).
    pub(crate) fn str_map(&self, name: &str) -> CoreResult<Option<Map<String, Value>>> {
        read(self.field(name), name, "a map of strings", |value| {
            let map = value.as_object()?;
            map.values().all(Value::is_string).then(|| map.clone())
        })
    }
}

/// `field` read by `read`, or an error naming the field and what it should be.
fn read<T>(
    field: Option<&Value>,
    name: &str,
    expected: &str,
    read: impl FnOnce(&Value) -> Option<T>,
) -> CoreResult<Option<T>> {
    field
        .map(|value| read(value).ok_or_else(|| type_error(name, expected)))
        .transpose()
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
