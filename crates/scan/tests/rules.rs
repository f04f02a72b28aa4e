//! Every built-in rule finds its true positive and ignores its near miss.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::corpus::{FIXTURES, Gen, PATH_FIXTURES};
use ward_scan::{Config, Scanner};

/// Seeds per fixture: several random draws, so a rule cannot pass by luck of one string.
const DRAWS: u64 = 8;

#[test]
fn every_builtin_rule_has_a_fixture() {
    let config = Config::builtin();
    assert!(config.rules.len() >= 150, "{} rules", config.rules.len());
    let missing: Vec<&str> = config
        .rules
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| {
            !FIXTURES
                .iter()
                .chain(PATH_FIXTURES)
                .any(|(f, _, _)| f == id)
        })
        .collect();
    assert!(missing.is_empty(), "rules without fixtures: {missing:?}");
    let unknown: Vec<&str> = FIXTURES
        .iter()
        .chain(PATH_FIXTURES)
        .map(|(id, _, _)| *id)
        .filter(|id| !config.rules.iter().any(|r| r.id == *id))
        .collect();
    assert!(unknown.is_empty(), "fixtures for no rule: {unknown:?}");
}

#[test]
fn true_positives_are_found() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let mut failures = Vec::new();
    for (index, (rule, positive, _)) in FIXTURES.iter().enumerate() {
        for draw in 0..DRAWS {
            let mut generator = Gen::new(index as u64 * 1000 + draw);
            let text = format!("# config\n{}\n", generator.expand(positive));
            let findings = scanner.scan_bytes(text.as_bytes(), "config.env");
            match findings.iter().find(|f| f.rule_id == *rule) {
                Some(found) => {
                    assert!(text.contains(found.secret.expose()), "{rule}");
                    assert_eq!(found.line, 2, "{rule}: line");
                }
                None => {
                    let got: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
                    failures.push(format!("{rule} (draw {draw}): got {got:?} in {text:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "missed:\n{}", failures.join("\n"));
}

#[test]
fn near_misses_are_not_reported_by_their_rule() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let mut failures = Vec::new();
    for (index, (rule, _, near_miss)) in FIXTURES.iter().enumerate() {
        for draw in 0..DRAWS {
            let mut generator = Gen::new(index as u64 * 1000 + draw + 500);
            let text = format!("# config\n{}\n", generator.expand(near_miss));
            let findings = scanner.scan_bytes(text.as_bytes(), "config.env");
            if findings.iter().any(|f| f.rule_id == *rule) {
                failures.push(format!("{rule} (draw {draw}): matched {text:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "false positives:\n{}",
        failures.join("\n")
    );
}

#[test]
fn all_fixtures_in_one_file_are_all_found_with_right_lines() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let mut generator = Gen::new(42);
    let mut text = String::new();
    let mut expected = Vec::new();
    for (rule, positive, _) in FIXTURES {
        text.push_str("fn filler() { let x = 1; }\n");
        let line = text.lines().count() as u64 + 1;
        expected.push((*rule, line));
        text.push_str(&generator.expand(positive));
        text.push('\n');
    }
    let findings = scanner.scan_bytes(text.as_bytes(), "all.txt");
    for (rule, line) in expected {
        assert!(
            findings.iter().any(|f| f.rule_id == rule && f.line == line),
            "{rule} not found at line {line}"
        );
    }
}

#[test]
fn gcp_service_account_json_reports_key_id_and_escaped_private_key() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let mut generator = Gen::new(77);
    let pem_body = generator.expand("{b:64}\\n{b:64}\\n{b:40}==\\n");
    let document = format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"demo\",\n  \"private_key_id\": \"{}\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{pem_body}-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"svc@demo.iam.gserviceaccount.com\"\n}}\n",
        generator.expand("{h:40}")
    );
    let findings = scanner.scan_bytes(document.as_bytes(), "sa.json");
    let found: Vec<(&str, u64)> = findings
        .iter()
        .map(|f| (f.rule_id.as_str(), f.line))
        .collect();
    assert_eq!(
        found,
        vec![("gcp-service-account-key", 4), ("private-key", 5)],
        "{findings:?}"
    );
}

#[test]
fn placeholders_in_a_rules_shape_are_not_reported() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let mut generator = Gen::new(9);
    let mut failures = Vec::new();
    for (rule, positive, _) in FIXTURES {
        if generator.fill(positive, 'x') == generator.fill(positive, '0') {
            continue; // a fixed sample, nothing to fill
        }
        for filler in ['x', 'X', 'a', '1', '0'] {
            let text = format!("# config\n{}\n", generator.fill(positive, filler));
            let findings = scanner.scan_bytes(text.as_bytes(), "config.env");
            if let Some(found) = findings.first() {
                failures.push(format!("{rule}: {} reported {text:?}", found.rule_id));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "placeholders reported:\n{}",
        failures.join("\n")
    );
}

#[test]
fn path_rules_report_their_files_even_binary_ones() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (rule, positive, near_miss) in PATH_FIXTURES {
        let found = scanner.scan_bytes(b"", positive);
        assert!(
            found.iter().any(|f| f.rule_id == *rule),
            "{rule}: {found:?}"
        );
        let found = scanner.scan_bytes(b"", near_miss);
        assert!(
            !found.iter().any(|f| f.rule_id == *rule),
            "{rule}: {found:?}"
        );
        let file = dir.path().join(positive);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"\x30\x82\x0a\x00\x02\x01\x03\x30\x00binary").unwrap();
    }
    let found = scanner.scan_path(dir.path()).unwrap().findings;
    for (rule, positive, _) in PATH_FIXTURES {
        assert!(
            found
                .iter()
                .any(|f| f.rule_id == *rule && f.file.ends_with(positive)),
            "{rule}: {found:?}"
        );
    }
}

#[test]
fn values_continued_on_the_next_lines_are_found_where_they_are() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let mut generator = Gen::new(5);
    let cases = [
        (
            "twilio-auth-token",
            "<config>\n  <twilioAuthToken>\n    {h:32}\n  </twilioAuthToken>\n</config>\n",
            3,
        ),
        ("generic-api-key", "service:\n  api_key: |\n    {a:32}\n", 3),
        (
            "generic-api-key",
            "service:\n  api_key: >-\n    {a:32}\n",
            3,
        ),
        (
            "curl-auth-user",
            "curl -k -X POST https://cache.local/rest \\\n  -H 'Content-type: text/plain' \\\n  -u developer:{a:16}\n",
            3,
        ),
    ];
    for (rule, template, line) in cases {
        let text = generator.expand(template);
        let findings = scanner.scan_bytes(text.as_bytes(), "config.txt");
        let found = findings.iter().find(|f| f.rule_id == rule);
        assert!(
            found.is_some_and(|f| f.line == line && text.contains(f.secret.expose())),
            "{rule} in {text:?}: {findings:?}"
        );
    }
    // A closing tag opens nothing, and a value never comes from the line after a plain one.
    let text =
        generator.expand("<twilioAuthToken></twilioAuthToken>\n{h:32}\ntwilio_sid: x\n{h:32}\n");
    let findings = scanner.scan_bytes(text.as_bytes(), "config.txt");
    assert!(findings.is_empty(), "{findings:?}");
}
