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

    /// A duration in seconds: an integer, or a Go-style duration string ("90s", "1h30m").
    pub(crate) fn duration(&self, name: &str) -> CoreResult<Option<u64>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| type_error(name, "a duration")),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => parse_duration(s)
                .map(Some)
                .ok_or_else(|| type_error(name, "a duration")),
            Some(_) => Err(type_error(name, "a duration")),
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

/// Parses "10", "10s", "5m", "1h30m", "1.5h", "768h", "7d" into seconds.
pub(crate) fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(secs);
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let scale = match unit.as_str() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return None,
        };
        total += value * scale;
        any = true;
    }
    if !number.is_empty() || !any || !total.is_finite() || total > 1e15 {
        return None;
    }
    Some(total as u64)
}

/// Formats seconds the way Vault prints durations in metadata ("1h0m0s"), "0s" for none.
pub(crate) fn format_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_parse_like_vault() {
        assert_eq!(parse_duration("30"), Some(30));
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("768h"), Some(768 * 3600));
        assert_eq!(parse_duration("1.5h"), Some(5400));
        assert_eq!(parse_duration("2d"), Some(172800));
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration("10x"), None);
        assert_eq!(parse_duration("10h5"), None);
        assert_eq!(format_duration(3600), "1h0m0s");
        assert_eq!(format_duration(0), "0s");
    }

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
}
