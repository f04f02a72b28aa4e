//! Baselines: a previous JSON report whose findings are known and accepted.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::error::ScanError;
use crate::finding::Finding;

/// The fingerprints of accepted findings. A finding is suppressed when its fingerprint (rule,
/// file and secret: not the line, so edits around it do not revive it) is in the baseline.
#[derive(Debug, Default)]
pub struct Baseline {
    fingerprints: HashSet<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Document {
    List(Vec<Entry>),
    Wrapped { findings: Vec<Entry> },
}

#[derive(Deserialize)]
struct Entry {
    #[serde(alias = "Fingerprint")]
    fingerprint: String,
}

impl Baseline {
    /// Reads a report written by `ward scan --format json` (a list of findings, or an object
    /// with a `findings` list; `Fingerprint` as gitleaks spells it is accepted too).
    pub fn load(path: &Path) -> Result<Self, ScanError> {
        let text = std::fs::read(path).map_err(|source| ScanError::Io {
            path: path.to_owned(),
            source,
        })?;
        let document: Document =
            serde_json::from_slice(&text).map_err(|source| ScanError::Baseline {
                path: path.to_owned(),
                source,
            })?;
        let entries = match document {
            Document::List(entries) | Document::Wrapped { findings: entries } => entries,
        };
        Ok(Self {
            fingerprints: entries.into_iter().map(|e| e.fingerprint).collect(),
        })
    }

    /// Number of accepted fingerprints.
    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    /// True when the baseline accepts nothing.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    /// True when `finding` is already known.
    pub fn contains(&self, finding: &Finding) -> bool {
        self.fingerprints.contains(&finding.fingerprint)
    }

    /// Removes known findings.
    pub fn retain_new(&self, findings: &mut Vec<Finding>) {
        findings.retain(|f| !self.contains(f));
    }
}
