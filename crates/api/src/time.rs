//! Times as Ward's API and audit log write them: RFC 3339 in UTC, with a `Z`. Two precisions,
//! each for its own use (and each unchanged since Ward first wrote it):
//!
//! - [`rfc3339_seconds`], `2026-11-23T17:40:12Z`: times Ward keeps as unix seconds (token issue
//!   and expiry times, rotation schedules, webhook events);
//! - [`rfc3339_nanos`], `2026-11-23T17:40:12.000123456Z`, always nine digits: moments stamped
//!   as they happen (KV and transit key versions, audit entries).

use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};

/// `unix` seconds as `2026-11-23T17:40:12Z`; None beyond the years chrono can write (±262143).
pub fn rfc3339_seconds(unix: i64) -> Option<String> {
    DateTime::from_timestamp(unix, 0).map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Now, as [`rfc3339_nanos`] writes it.
pub fn now_rfc3339_nanos() -> String {
    rfc3339_nanos(SystemTime::now())
}

/// `time` as `2026-11-23T17:40:12.000123456Z`, as chrono writes it with nine digits. (A
/// per-thread cache of the formatted second saved 880 instructions of an audited read's
/// 131k: not worth its rule; see BENCHMARKS.md.)
pub fn rfc3339_nanos(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moved from the audit log's entries, which write their times here.
    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let times = [
            (1_764_000_000, 0),
            (1_764_000_000, 123_456_789),
            (1_764_000_000, 999_999_999),
            (1_764_000_001, 5),
            (1_764_000_000, 40),
            (0, 1),
            (4_102_444_799, 999_000_000),
        ];
        for (secs, nanos) in times {
            let time = DateTime::<Utc>::from_timestamp(secs, nanos).unwrap();
            assert_eq!(
                rfc3339_nanos(time.into()),
                time.to_rfc3339_opts(SecondsFormat::Nanos, true)
            );
        }
    }

    #[test]
    fn seconds_and_nanoseconds_have_their_fixed_shapes() {
        assert_eq!(
            rfc3339_seconds(1_764_000_000).as_deref(),
            Some("2025-11-24T16:00:00Z")
        );
        assert_eq!(rfc3339_seconds(i64::MAX), None);
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_764_000_000, 5_000);
        assert_eq!(rfc3339_nanos(time), "2025-11-24T16:00:00.000005000Z");
        let before_1970 = SystemTime::UNIX_EPOCH - std::time::Duration::from_millis(1500);
        assert_eq!(rfc3339_nanos(before_1970), "1969-12-31T23:59:58.500000000Z");
        assert_eq!(
            now_rfc3339_nanos().len(),
            "2025-11-24T16:00:00.000005000Z".len()
        );
    }
}
