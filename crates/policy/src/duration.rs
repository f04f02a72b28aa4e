//! Vault's duration syntax for `min_wrapping_ttl` / `max_wrapping_ttl`
//! (`parseutil.ParseDurationSecond`): a number of seconds, or Go duration text such as
//! `"90s"`, `"1h30m"`, `"1.5h"`, plus a whole-days form `"7d"`.

use std::time::Duration;

use serde_json::Value;

/// Parses a duration value; `None` when it is not one.
pub(crate) fn parse_duration(value: &Value) -> Option<Duration> {
    match value {
        Value::Number(n) => Duration::try_from_secs_f64(n.as_f64()?).ok(),
        Value::String(s) => parse_duration_text(s.trim()),
        _ => None,
    }
}

fn parse_duration_text(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return Some(Duration::ZERO);
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Some(days) = text.strip_suffix('d') {
        let days = days.parse::<u64>().ok()?;
        return Some(Duration::from_secs(days.checked_mul(86_400)?));
    }
    // Go's time.ParseDuration: one or more "<decimal><unit>" terms.
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vault_duration_forms() {
        assert_eq!(parse_duration(&json!(300)), Some(Duration::from_secs(300)));
        assert_eq!(
            parse_duration(&json!("300")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_duration(&json!("5m")), Some(Duration::from_secs(300)));
        assert_eq!(
            parse_duration(&json!("1h30m")),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_duration(&json!("1.5h")),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_duration(&json!("2d")),
            Some(Duration::from_secs(172_800))
        );
        assert_eq!(
            parse_duration(&json!("500ms")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration(&json!("five")), None);
        assert_eq!(parse_duration(&json!("5x")), None);
        assert_eq!(parse_duration(&json!("h")), None);
        assert_eq!(parse_duration(&json!(-1)), None);
        assert_eq!(parse_duration(&json!(["5m"])), None);
    }
}
