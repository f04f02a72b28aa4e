//! Durations as Vault reads and prints them, the one rule set for every place Ward reads a
//! duration (request fields, policies, configuration files, command lines):
//!
//! - a bare number is seconds: `"3600"`, `3600`, `"1.5"`;
//! - otherwise one or more Go `time.ParseDuration` terms, fractions allowed: `"90m"`,
//!   `"1h30m"`, `"1.5h"`, `"250ms"`, with the units `ns`, `us` (or `µs`), `ms`, `s`, `m`,
//!   `h`, and Vault's `d` (24 hours) usable like the others: `"7d"`, `"1d12h"`;
//! - negative durations, and durations beyond 2^64 seconds, are errors.
//!
//! Printing is Go's `time.Duration.String` for whole seconds: `"1h0m0s"`, `"90s"` prints as
//! `"1m30s"`, zero as `"0s"`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A duration field as a client may send it: seconds as a number, or a duration string.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DurationInput {
    /// A whole number of seconds.
    Seconds(u64),
    /// A duration string (`"30m"`, `"1h"`, `"3600"`).
    Text(String),
}

impl DurationInput {
    /// The duration in whole seconds (fractions are dropped).
    pub fn seconds(&self) -> Result<u64, DurationParseError> {
        match self {
            Self::Seconds(s) => Ok(*s),
            Self::Text(t) => parse_duration_seconds(t),
        }
    }
}

impl fmt::Debug for DurationInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Seconds(s) => write!(f, "{s}s"),
            Self::Text(t) => write!(f, "{t:?}"),
        }
    }
}

impl From<u64> for DurationInput {
    fn from(seconds: u64) -> Self {
        Self::Seconds(seconds)
    }
}

impl From<&str> for DurationInput {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

/// Why a duration was rejected. The input is included: durations are not secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationParseError {
    /// The string is empty.
    #[error("empty duration")]
    Empty,
    /// The value is not a duration.
    #[error("invalid duration {0:?}")]
    Invalid(String),
    /// The duration is negative.
    #[error("duration {0:?} is negative")]
    Negative(String),
    /// The duration does not fit in 64 bits of seconds.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses a duration string (see the module's rules), keeping fractions of a second.
pub fn parse_duration(text: &str) -> Result<Duration, DurationParseError> {
    let trimmed = text.trim();
    let invalid = || DurationParseError::Invalid(text.to_owned());
    let overflow = || DurationParseError::Overflow(text.to_owned());
    if trimmed.is_empty() {
        return Err(DurationParseError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(DurationParseError::Negative(text.to_owned()));
    }
    let mut total_nanos: u128 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            // A bare number is seconds, but only when it is all there is ("10h5" is not "10h5s").
            "" if number_len == trimmed.len() => NANOS_PER_SECOND,
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3_600 * NANOS_PER_SECOND,
            "d" => 86_400 * NANOS_PER_SECOND,
            _ => return Err(invalid()),
        };
        let term = scale(number, unit_nanos)
            .ok_or_else(invalid)?
            .ok_or_else(overflow)?;
        total_nanos = total_nanos.checked_add(term).ok_or_else(overflow)?;
        rest = tail;
    }
    let seconds = u64::try_from(total_nanos / NANOS_PER_SECOND).map_err(|_| overflow())?;
    // The remainder is below 10^9, so it fits.
    let nanos = u32::try_from(total_nanos % NANOS_PER_SECOND).unwrap_or(0);
    Ok(Duration::new(seconds, nanos))
}

/// Parses a duration string into whole seconds (fractions of a second are dropped).
pub fn parse_duration_seconds(text: &str) -> Result<u64, DurationParseError> {
    parse_duration(text).map(|d| d.as_secs())
}

/// Reads a duration field of a JSON request or policy: a number of seconds (fractions
/// allowed) or a duration string. An empty string is zero, as Vault reads it.
pub fn duration_from_json(value: &Value) -> Result<Duration, DurationParseError> {
    match value {
        Value::String(text) if text.is_empty() => Ok(Duration::ZERO),
        Value::String(text) => parse_duration(text),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(seconds), _) => Ok(Duration::from_secs(seconds)),
            (None, Some(seconds)) if seconds < 0.0 => {
                Err(DurationParseError::Negative(n.to_string()))
            }
            (None, Some(seconds)) => Duration::try_from_secs_f64(seconds)
                .map_err(|_| DurationParseError::Overflow(n.to_string())),
            (None, None) => Err(DurationParseError::Invalid(n.to_string())),
        },
        other => Err(DurationParseError::Invalid(other.to_string())),
    }
}

/// `number` (digits with at most one '.', Go's `"1."` and `".5"` included) times
/// `unit_nanos`: None when malformed, Some(None) when too large.
fn scale(number: &str, unit_nanos: u128) -> Option<Option<u128>> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let mut value: u128 = 0;
    for digit in whole.bytes() {
        let Some(next) = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(digit - b'0')))
        else {
            return Some(None);
        };
        value = next;
    }
    // Digits past the 18th are worth less than a nanosecond, even of a day.
    let (mut numerator, mut denominator) = (0u128, 1u128);
    for digit in fraction.bytes().take(18) {
        numerator = numerator * 10 + u128::from(digit - b'0');
        denominator *= 10;
    }
    Some(
        value
            .checked_mul(unit_nanos)
            .and_then(|whole_nanos| whole_nanos.checked_add(numerator * unit_nanos / denominator)),
    )
}

/// Prints whole seconds as Go's `time.Duration` does: `"1h0m0s"`, `"5m30s"`, `"0s"`.
pub fn format_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
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
    fn parses_vault_duration_forms() {
        assert_eq!(parse_duration_seconds("45"), Ok(45));
        assert_eq!(parse_duration_seconds("10s"), Ok(10));
        assert_eq!(parse_duration_seconds("5m"), Ok(300));
        assert_eq!(parse_duration_seconds("1h30m"), Ok(5400));
        assert_eq!(parse_duration_seconds("1.5h"), Ok(5400));
        assert_eq!(parse_duration_seconds("7d"), Ok(604_800));
        assert_eq!(parse_duration_seconds("1d12h"), Ok(129_600));
        assert_eq!(parse_duration_seconds("768h"), Ok(2_764_800));
        assert_eq!(parse_duration_seconds("1500ms"), Ok(1));
        assert_eq!(parse_duration_seconds("0s"), Ok(0));
        assert_eq!(parse_duration_seconds(" 30 "), Ok(30));
    }

    #[test]
    fn keeps_fractions_of_a_second() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1.h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(".5m"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1µs2ns"), Ok(Duration::from_nanos(1002)));
        assert_eq!(
            parse_duration("0.333333333333333333333s"),
            Ok(Duration::from_nanos(333_333_333))
        );
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in [
            "", "h", "10x", "1..5h", "5 m", ".h", "s10", "10h5", "abc", "1.2.3", "+5s",
        ] {
            assert!(parse_duration_seconds(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_duration(" "), Err(DurationParseError::Empty));
        for negative in ["-5s", "-1", " -0.5h"] {
            assert!(matches!(
                parse_duration(negative),
                Err(DurationParseError::Negative(_))
            ));
        }
        for huge in [
            "99999999999999999999999",
            "18446744073709551616s",
            "999999999999999999999999999999999999999999h",
            "213503982334602d",
        ] {
            assert!(
                matches!(parse_duration(huge), Err(DurationParseError::Overflow(_))),
                "{huge}"
            );
        }
        assert_eq!(parse_duration_seconds("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn json_fields_take_numbers_and_strings() {
        assert_eq!(
            duration_from_json(&json!(300)),
            Ok(Duration::from_secs(300))
        );
        assert_eq!(
            duration_from_json(&json!(1.5)),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            duration_from_json(&json!("5m")),
            Ok(Duration::from_secs(300))
        );
        assert_eq!(duration_from_json(&json!("")), Ok(Duration::ZERO));
        assert!(matches!(
            duration_from_json(&json!(-1)),
            Err(DurationParseError::Negative(_))
        ));
        assert!(matches!(
            duration_from_json(&json!(1e300)),
            Err(DurationParseError::Overflow(_))
        ));
        assert!(duration_from_json(&json!(["5m"])).is_err());
        assert!(duration_from_json(&json!(null)).is_err());
    }

    /// Moved from ward-policy, whose wrapping TTLs read their durations here.
    #[test]
    fn vault_duration_forms() {
        let seconds = |s| Some(Duration::from_secs(s));
        let cases = [
            (json!(300), seconds(300)),
            (json!("300"), seconds(300)),
            (json!("5m"), seconds(300)),
            (json!("1h30m"), seconds(5400)),
            (json!("1.5h"), seconds(5400)),
            (json!("2d"), seconds(172_800)),
            (json!("500ms"), Some(Duration::from_millis(500))),
            (json!("five"), None),
            (json!("5x"), None),
            (json!("h"), None),
            (json!(-1), None),
            (json!(["5m"]), None),
        ];
        for (value, expected) in cases {
            assert_eq!(duration_from_json(&value).ok(), expected, "{value}");
        }
    }

    /// Moved from ward-core's request parameters, which read their durations here.
    #[test]
    fn durations_parse_like_vault() {
        let parse_duration = |text: &str| parse_duration_seconds(text).ok();
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
    fn formats_like_go_and_round_trips() {
        assert_eq!(format_duration(3600), "1h0m0s");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90), "1m30s");
        assert_eq!(format_duration(129_600), "36h0m0s");
        for seconds in [0, 1, 59, 60, 3599, 3600, 86_400, 129_601, u64::MAX] {
            assert_eq!(
                parse_duration_seconds(&format_duration(seconds)),
                Ok(seconds)
            );
        }
    }

    #[test]
    fn duration_input_accepts_numbers_and_strings() {
        let n: DurationInput = serde_json::from_str("3600").unwrap();
        let s: DurationInput = serde_json::from_str("\"1h\"").unwrap();
        assert_eq!(n.seconds(), Ok(3600));
        assert_eq!(s.seconds(), Ok(3600));
    }
}
