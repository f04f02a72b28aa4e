//! Allowlists, inline suppressions and gitleaks-compatible configuration files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::corpus::Gen;
use ward_scan::{Config, Scanner};

fn github_token(generator: &mut Gen) -> String {
    generator.expand("ghp_{a:36}")
}

fn scanner_from(toml: &str) -> Scanner {
    Scanner::new(Config::from_toml(toml, Path::new(".")).unwrap()).unwrap()
}

#[test]
fn inline_comment_suppresses_only_its_line() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let mut generator = Gen::new(1);
    let text = format!(
        "a = \"{}\" # ward:allow\nb = \"{}\" // gitleaks:allow\nc = \"{}\"\n",
        github_token(&mut generator),
        github_token(&mut generator),
        github_token(&mut generator)
    );
    let findings = scanner.scan_bytes(text.as_bytes(), "x.py");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].line, 3);
}

#[test]
fn global_allowlist_paths_regexes_and_stopwords() {
    let scanner = scanner_from(
        r#"
[extend]
useDefault = true

[allowlist]
description = "test fixtures and known placeholders"
paths = ['''(^|/)fixtures/''']
regexes = ['''^ghp_0{10}''']
stopwords = ["notreal"]
"#,
    );
    let mut generator = Gen::new(2);
    let real = github_token(&mut generator);
    let zeros = format!("ghp_0000000000{}", generator.expand("{a:26}"));
    let stop = format!("ghp_notreal{}", generator.expand("{a:29}"));
    let text = format!("t1 = {real}\nt2 = {zeros}\nt3 = {stop}\n");
    let in_src = scanner.scan_bytes(text.as_bytes(), "src/app.py");
    assert_eq!(in_src.len(), 1, "{in_src:?}");
    assert_eq!(in_src[0].secret.expose(), real);
    assert!(
        scanner
            .scan_bytes(text.as_bytes(), "tests/fixtures/app.py")
            .is_empty()
    );
}

#[test]
fn line_target_and_and_condition() {
    let scanner = scanner_from(
        r#"
[extend]
useDefault = true

[[rules]]
id = "github-pat"
description = "GitHub PAT, but not in docs mentioning examples"
regex = '''ghp_[0-9a-zA-Z]{36}'''
keywords = ["ghp_"]
[[rules.allowlists]]
condition = "AND"
paths = ['''\.md$''']
regexTarget = "line"
regexes = ['''(?i)example''']
"#,
    );
    let mut generator = Gen::new(3);
    let text = format!("Example: {}\n", github_token(&mut generator));
    assert!(scanner.scan_bytes(text.as_bytes(), "README.md").is_empty());
    // Either condition alone is not enough.
    assert_eq!(scanner.scan_bytes(text.as_bytes(), "README.txt").len(), 1);
    let plain = format!("token: {}\n", github_token(&mut generator));
    assert_eq!(scanner.scan_bytes(plain.as_bytes(), "README.md").len(), 1);
}

#[test]
fn custom_rules_with_secret_group_entropy_and_target_rules() {
    let scanner = scanner_from(
        r#"
title = "custom"

[[rules]]
id = "acme-key"
description = "ACME internal key"
regex = '''(?i)acme[_-]?key\s*=\s*"(ak_[0-9a-z]{24})"'''
secretGroup = 1
entropy = 3.0
keywords = ["acme"]

[[rules]]
id = "acme-id"
description = "ACME id"
regex = '''acmeid_[0-9]{8}'''
keywords = ["acmeid_"]

[[allowlists]]
targetRules = ["acme-id"]
regexes = ['''^acmeid_0''']
"#,
    );
    let mut generator = Gen::new(4);
    let key = generator.expand("ak_{l:24}");
    let text = format!(
        "ACME_KEY = \"{key}\"\nacme_key = \"ak_aaaaaaaaaaaaaaaaaaaaaaaa\"\nacmeid_01234567 acmeid_91234567\n{}\n",
        github_token(&mut generator)
    );
    let findings = scanner.scan_bytes(text.as_bytes(), "a.txt");
    let ids: Vec<(&str, u64)> = findings
        .iter()
        .map(|f| (f.rule_id.as_str(), f.line))
        .collect();
    // No built-ins without [extend]; the low-entropy key and the allowlisted id are dropped.
    assert_eq!(ids, vec![("acme-key", 1), ("acme-id", 3)], "{findings:?}");
    assert_eq!(findings[0].secret.expose(), key);
    assert_eq!(findings[0].column, 13);
}

#[test]
fn multiline_user_rule_runs_on_the_whole_file() {
    let scanner = scanner_from(
        r#"
[[rules]]
id = "two-line"
regex = '''user:\s*\n\s*pass:\s*(\S{8,})'''
keywords = ["user:"]
"#,
    );
    let text = "x\nuser:\n  pass: Zq8Lm2Vx0Pw\n";
    let findings = scanner.scan_bytes(text.as_bytes(), "a.yaml");
    assert_eq!(findings.len(), 1);
    assert_eq!(
        (findings[0].line, findings[0].secret.expose()),
        (3, "Zq8Lm2Vx0Pw")
    );
}

#[test]
fn path_only_rule_reports_the_file() {
    let scanner = scanner_from(
        r#"
[[rules]]
id = "pkcs12-file"
description = "PKCS#12 key store"
path = '''\.p12$'''
"#,
    );
    let findings = scanner.scan_bytes(b"binary-ish", "certs/client.p12");
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule_id, "pkcs12-file");
    assert!(scanner.scan_bytes(b"x", "certs/client.pem").is_empty());
}

#[test]
fn invalid_regex_is_a_typed_error() {
    let config = Config::from_toml(
        "[[rules]]\nid = \"bad\"\nregex = '''(unclosed'''\n",
        Path::new("."),
    );
    let err = Scanner::new(config.unwrap()).unwrap_err();
    assert!(matches!(err, ward_scan::ScanError::Regex { ref rule_id, .. } if rule_id == "bad"));
    assert!(matches!(
        Config::from_toml("rules = 3", Path::new(".")),
        Err(ward_scan::ScanError::ConfigSyntax { .. })
    ));
}

#[test]
fn builtin_placeholders_are_not_findings() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let text = "password = \"${DB_PASSWORD}\"\napi_key = \"{{ api_key }}\"\npassword: changeme\nDATABASE_URL=postgres://app:${PGPASS}@db/app\nsecret = \"xxxxxxxxxxxxxxxxxxxx\"\n";
    let findings = scanner.scan_bytes(text.as_bytes(), "settings.yaml");
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn generic_names_must_be_whole_words_or_camel_case_parts() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let mut generator = Gen::new(5);
    let mut check = |line: &str, expected: bool| {
        let text = generator.expand(line);
        let found = scanner
            .scan_bytes(text.as_bytes(), "a.txt")
            .iter()
            .any(|f| f.rule_id == "generic-password");
        assert_eq!(found, expected, "{text}");
    };
    check("db_password = \"{a:20}\"", true);
    check("dbPasswordHash: {a:20}", true);
    check("PGPASSWORD={a:20}", true);
    check("// checksum of the uffpwd file: {h:64}", false);
    check("compass_heading = {a:20}", false);
    check("passwordless: {a:20}", false);
}
