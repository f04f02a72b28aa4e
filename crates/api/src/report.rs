//! The compliance report: what `sys/reports/compliance` answers (inside `data`) and what
//! `ward report compliance` renders. Its JSON schema is `docs/compliance-report.schema.json`;
//! a test validates real reports against it, so change both together and bump
//! [`REPORT_FORMAT_VERSION`] when a field changes meaning.

use serde::{Deserialize, Serialize};

/// The version of this format, carried by every report.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// A point-in-time assessment of one Ward cluster against the controls auditors ask about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComplianceReport {
    /// [`REPORT_FORMAT_VERSION`].
    pub format_version: u32,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// The period the event-based checks (failed logins) look at.
    pub period: ReportPeriod,
    /// Facts about the server that made it.
    pub server: ReportServer,
    /// Counts of the checks by status.
    pub summary: ReportSummary,
    /// Every check, in a fixed order.
    pub checks: Vec<ComplianceCheck>,
}

/// The period of the event-based checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReportPeriod {
    /// Start (RFC 3339).
    pub start: String,
    /// End (RFC 3339): the report's time.
    pub end: String,
    /// Its length, as Go prints durations (`720h0m0s`).
    pub duration: String,
}

/// The server that made the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReportServer {
    /// Ward's version.
    pub version: String,
    /// The cluster's name.
    pub cluster_name: String,
    /// The seal's type (`shamir`, `pkcs11`...).
    pub seal_type: String,
    /// The storage backend (`sqlite`, `postgres`...).
    pub storage_type: String,
}

/// How many checks passed, failed or warned.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReportSummary {
    /// All checks.
    pub total: u32,
    /// Checks that passed.
    pub passed: u32,
    /// Checks that failed.
    pub failed: u32,
    /// Checks that need a person's judgement.
    pub warnings: u32,
}

impl ReportSummary {
    /// The counts of `checks`.
    pub fn of(checks: &[ComplianceCheck]) -> Self {
        let mut summary = Self::default();
        for check in checks {
            summary.total += 1;
            match check.status {
                CheckStatus::Pass => summary.passed += 1,
                CheckStatus::Fail => summary.failed += 1,
                CheckStatus::Warn => summary.warnings += 1,
            }
        }
        summary
    }
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The control is met.
    Pass,
    /// The control is not met; the evidence names what fails it.
    Fail,
    /// Not a failure by itself, but worth a look (failed logins, for instance).
    Warn,
}

impl CheckStatus {
    /// `pass`, `fail` or `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Warn => "warn",
        }
    }
}

/// One check: what was looked at, against which controls, and what was found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComplianceCheck {
    /// A stable identifier (`transit-rotation-overdue`), for scripts.
    pub id: String,
    /// What the check asks, for people.
    pub title: String,
    /// The controls it gives evidence for (`SOC 2 CC6.1`, `PCI DSS 3.6.4`).
    pub controls: Vec<String>,
    /// Its outcome.
    pub status: CheckStatus,
    /// One sentence on the outcome.
    pub summary: String,
    /// What was found: for a failed check, exactly the items that fail it.
    pub evidence: Vec<Evidence>,
}

/// One item of evidence: the thing (`transit/keys/payments`) and what about it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Evidence {
    /// What it is about: a key, secret path, policy, token accessor, audit device...
    pub subject: String,
    /// What was found.
    pub detail: String,
}

impl Evidence {
    /// Evidence about `subject`.
    pub fn new(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_each_status() {
        let check = |status| ComplianceCheck {
            id: "x".into(),
            title: "x".into(),
            controls: vec![],
            status,
            summary: String::new(),
            evidence: vec![],
        };
        let checks = [
            check(CheckStatus::Pass),
            check(CheckStatus::Fail),
            check(CheckStatus::Fail),
            check(CheckStatus::Warn),
        ];
        assert_eq!(
            ReportSummary::of(&checks),
            ReportSummary {
                total: 4,
                passed: 1,
                failed: 2,
                warnings: 1
            }
        );
        assert_eq!(
            serde_json::to_value(CheckStatus::Warn).unwrap(),
            serde_json::json!("warn")
        );
    }
}
