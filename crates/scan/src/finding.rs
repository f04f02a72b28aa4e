//! What a scan reports.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ScanError;
use crate::secret::Secret;

/// The commit a history finding was added in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    /// Full commit id.
    pub id: String,
    /// Author name.
    pub author: String,
    /// Author e-mail.
    pub email: String,
    /// Author date, ISO 8601 with offset.
    pub date: String,
}

/// One secret found in one place.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The rule that matched.
    pub rule_id: String,
    /// The rule's description.
    pub description: String,
    /// File path as scanned (`-` for standard input, repository-relative in history scans).
    pub file: String,
    /// 1-based line of the secret's first character.
    pub line: u64,
    /// 1-based column (in characters) of the secret's first character.
    pub column: u64,
    /// 1-based line of the secret's last character.
    pub end_line: u64,
    /// 1-based column just past the secret's last character.
    pub end_column: u64,
    /// The secret itself.
    pub secret: Secret,
    /// The whole text the rule's regex matched (the secret and its context).
    pub matched: Secret,
    /// Shannon entropy of the secret.
    pub entropy: f64,
    /// The commit that added the line, in history scans.
    pub commit: Option<CommitInfo>,
    /// Stable id of this secret in this file for this rule, used by baselines: it does not change
    /// when lines move or when the same secret is found again in history.
    pub fingerprint: String,
}

/// The fingerprint of a secret: SHA-256 over rule, file and secret, truncated to 128 bits,
/// so a baseline identifies findings without holding the secrets.
pub(crate) fn fingerprint(rule_id: &str, file: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(rule_id.as_bytes());
    hasher.update([0]);
    hasher.update(file.as_bytes());
    hasher.update([0]);
    hasher.update(secret.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// The result of scanning many files or commits.
#[derive(Debug, Default)]
pub struct ScanOutput {
    /// Findings, sorted by file, line and column (history scans: newest commit first).
    pub findings: Vec<Finding>,
    /// Files (or file changes, in history scans) read.
    pub files_scanned: u64,
    /// Bytes read.
    pub bytes_scanned: u64,
    /// Files skipped as binary, too large or allowlisted.
    pub files_skipped: u64,
    /// Files that could not be read; the scan went on without them.
    pub errors: Vec<ScanError>,
}
