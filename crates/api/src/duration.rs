//! Durations as Vault accepts them: a number of seconds, or a string such as `"90"`,
//! `"1h30m"`, `"768h"` or `"7d"` (Go's `time.ParseDuration` plus a day unit).

use std::fmt;

use serde::{Deserialize, Serialize};

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

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationParseError {
    /// The string is empty.
    #[error("empty duration")]
    Empty,
    /// The string is not a duration (the offending input is included: durations are not secret).
    #[error("invalid duration {0:?}")]
    Invalid(String),
    /// The duration does not fit in 64 bits of seconds.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses a Vault duration into whole seconds: `"45"` (seconds), `"10s"`, `"5m"`, `"1h30m"`,
/// `"1.5h"`, `"7d"`, `"250ms"` (rounds down to 0). Negative durations are rejected.
pub fn parse_duration_seconds(text: &str) -> Result<u64, DurationParseError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationParseError::Empty);
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse::<u64>()
            .map_err(|_| DurationParseError::Overflow(text.to_owned()));
    }
    let invalid = || DurationParseError::Invalid(text.to_owned());
    let mut rest = trimmed;
    // Nanoseconds keep fractions such as "1.5h" and "1500ms" exact before rounding down.
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            _ => return Err(invalid()),
        };
        total_nanos = total_nanos
            .checked_add(scale(number, unit_nanos).ok_or_else(invalid)?)
            .ok_or_else(|| DurationParseError::Overflow(text.to_owned()))?;
        rest = tail;
    }
    u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| DurationParseError::Overflow(text.to_owned()))
}

/// `number` (digits with at most one '.') times `unit_nanos`, or None when malformed.
fn scale(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut result = whole_value.checked_mul(unit_nanos)?;
    let mut divisor: u128 = 1;
    for digit in fraction.bytes().take(18) {
        divisor *= 10;
        let digit_value = u128::from(digit - b'0');
        result = result.checked_add(digit_value.checked_mul(unit_nanos)? / divisor)?;
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vault_duration_forms() {
        assert_eq!(parse_duration_seconds("45"), Ok(45));
        assert_eq!(parse_duration_seconds("10s"), Ok(10));
        assert_eq!(parse_duration_seconds("5m"), Ok(300));
        assert_eq!(parse_duration_seconds("1h30m"), Ok(5400));
        assert_eq!(parse_duration_seconds("1.5h"), Ok(5400));
        assert_eq!(parse_duration_seconds("7d"), Ok(604_800));
        assert_eq!(parse_duration_seconds("768h"), Ok(2_764_800));
        assert_eq!(parse_duration_seconds("1500ms"), Ok(1));
        assert_eq!(parse_duration_seconds("0s"), Ok(0));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in ["", "h", "10x", "-5s", "1..5h", "5 m", ".h", "s10"] {
            assert!(parse_duration_seconds(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            parse_duration_seconds("99999999999999999999999"),
            Err(DurationParseError::Overflow(_))
        ));
    }

    #[test]
    fn duration_input_accepts_numbers_and_strings() {
        let n: DurationInput = serde_json::from_str("3600").unwrap();
        let s: DurationInput = serde_json::from_str("\"1h\"").unwrap();
        assert_eq!(n.seconds(), Ok(3600));
        assert_eq!(s.seconds(), Ok(3600));
    }
}
