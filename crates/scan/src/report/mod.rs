//! Reports: human text, JSON and SARIF 2.1.0.

mod sarif;

use std::io::Write;

use serde_json::{Value, json};

use crate::finding::Finding;
use crate::secret::redact;

/// Report formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One block per finding, for people.
    #[default]
    Text,
    /// A JSON list of findings (also the baseline format).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.
    Sarif,
}

/// What a report needs besides the findings.
#[derive(Clone, Copy, Debug)]
pub struct ReportOptions<'a> {
    /// Replace secrets with their redacted form.
    pub redact: bool,
    /// Ids and descriptions of the rules that ran (SARIF lists them).
    pub rules: &'a [(String, String)],
}

/// Writes `findings` to `out` in `format`.
pub fn write_report(
    out: &mut dyn Write,
    findings: &[Finding],
    format: Format,
    options: &ReportOptions<'_>,
) -> std::io::Result<()> {
    match format {
        Format::Text => write_text(out, findings, options.redact),
        Format::Json => {
            let list: Vec<Value> = findings
                .iter()
                .map(|f| to_json(f, options.redact))
                .collect();
            serde_json::to_writer_pretty(&mut *out, &list)?;
            writeln!(out)
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif::log(findings, options))?;
            writeln!(out)
        }
    }
}

/// The secret as the report shows it.
fn shown_secret(finding: &Finding, redact_it: bool) -> String {
    if redact_it {
        finding.secret.redacted()
    } else {
        finding.secret.expose().to_owned()
    }
}

/// The matched text as the report shows it: the secret inside it redacted.
fn shown_match(finding: &Finding, redact_it: bool) -> String {
    let matched = finding.matched.expose();
    let secret = finding.secret.expose();
    if !redact_it {
        return matched.to_owned();
    }
    if secret.is_empty() {
        return matched.to_owned();
    }
    matched.replace(secret, &redact(secret))
}

fn to_json(finding: &Finding, redact_it: bool) -> Value {
    let mut value = json!({
        "rule_id": finding.rule_id,
        "description": finding.description,
        "file": finding.file,
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "match": shown_match(finding, redact_it),
        "secret": shown_secret(finding, redact_it),
        "entropy": (finding.entropy * 1000.0).round() / 1000.0,
        "fingerprint": finding.fingerprint,
    });
    if let (Some(commit), Some(map)) = (&finding.commit, value.as_object_mut()) {
        map.insert("commit".into(), json!(commit.id));
        map.insert("author".into(), json!(commit.author));
        map.insert("email".into(), json!(commit.email));
        map.insert("date".into(), json!(commit.date));
    }
    value
}

fn write_text(out: &mut dyn Write, findings: &[Finding], redact_it: bool) -> std::io::Result<()> {
    for f in findings {
        writeln!(
            out,
            "{}:{}:{}: {} ({})",
            f.file, f.line, f.column, f.rule_id, f.description
        )?;
        writeln!(out, "    secret: {}", shown_secret(f, redact_it))?;
        if let Some(commit) = &f.commit {
            writeln!(
                out,
                "    commit: {} {} <{}> {}",
                commit.id, commit.author, commit.email, commit.date
            )?;
        }
        writeln!(out, "    fingerprint: {}", f.fingerprint)?;
    }
    Ok(())
}
