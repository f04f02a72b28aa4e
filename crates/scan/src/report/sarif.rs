//! SARIF 2.1.0 output, shaped for GitHub code scanning.

use serde_json::{Value, json};

use super::{ReportOptions, shown_match};
use crate::finding::Finding;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub(super) fn log(findings: &[Finding], options: &ReportOptions<'_>) -> Value {
    let rules: Vec<Value> = options
        .rules
        .iter()
        .map(|(id, description)| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": description },
                "fullDescription": { "text": description },
                "defaultConfiguration": { "level": "error" },
                "properties": { "tags": ["security", "secret"] },
            })
        })
        .collect();
    let results: Vec<Value> = findings.iter().map(|f| result(f, options)).collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "ward",
                "informationUri": "https://github.com/ward-secrets/ward",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

fn result(f: &Finding, options: &ReportOptions<'_>) -> Value {
    let mut value = json!({
        "ruleId": f.rule_id,
        "level": "error",
        "message": { "text": format!("{} found: {}", f.description, shown_match(f, true)) },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": uri(&f.file) },
                "region": {
                    "startLine": f.line.max(1),
                    "startColumn": f.column.max(1),
                    "endLine": f.end_line.max(f.line).max(1),
                    "endColumn": f.end_column.max(1),
                    "snippet": { "text": shown_match(f, options.redact) },
                },
            },
        }],
        "partialFingerprints": { "ward/v1": f.fingerprint },
    });
    if let Some(index) = options.rules.iter().position(|(id, _)| *id == f.rule_id)
        && let Some(map) = value.as_object_mut()
    {
        map.insert("ruleIndex".into(), json!(index));
    }
    if let (Some(commit), Some(map)) = (&f.commit, value.as_object_mut()) {
        map.insert(
            "properties".into(),
            json!({
                "commit": commit.id,
                "author": commit.author,
                "email": commit.email,
                "date": commit.date,
            }),
        );
    }
    value
}

/// A relative URI reference for the path: forward slashes, and the characters URIs reserve
/// percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(byte));
            }
            b'\\' => out.push('/'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}
