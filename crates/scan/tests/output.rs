//! Reports (text, JSON, SARIF against its schema), baselines and the `ward scan` command surface.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;
use common::corpus::Gen;
use serde_json::Value;
use ward_scan::cli::{ScanArgs, run_with};
use ward_scan::report::Format;

/// Parses arguments exactly as the `ward` binary will (the struct is mounted with `flatten`).
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    scan: ScanArgs,
}

fn args(list: &[&str]) -> ScanArgs {
    let mut argv = vec!["scan"];
    argv.extend_from_slice(list);
    Cli::try_parse_from(argv).unwrap().scan
}

/// Runs the command; returns (exit status, stdout, stderr).
fn run(args: &ScanArgs, stdin: &[u8]) -> (i32, String, String) {
    let mut input = stdin;
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_with(args, &mut input, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// A tree with two secrets and a clean file.
fn tree(generator: &mut Gen) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let github = generator.expand("ghp_{a:36}");
    let stripe = generator.expand("sk_live_{a:24}");
    std::fs::write(dir.path().join("a.py"), format!("TOKEN = \"{github}\"\n")).unwrap();
    std::fs::create_dir(dir.path().join("sub dir")).unwrap();
    std::fs::write(
        dir.path().join("sub dir/b.js"),
        format!("\n  const k = '{stripe}';\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("clean.md"), "# nothing here\n").unwrap();
    (dir, vec![github, stripe])
}

fn path_arg(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[test]
fn exit_status_is_0_clean_1_findings_2_error() {
    let mut generator = Gen::new(20);
    let (dir, secrets) = tree(&mut generator);
    let (code, out, err) = run(&args(&[&path_arg(dir.path())]), b"");
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("github-pat") && out.contains("stripe-access-token"),
        "{out}"
    );
    // Redacted by default, in clear only when asked.
    assert!(
        !out.contains(&secrets[0]) && out.contains("ghp_*****"),
        "{out}"
    );
    assert!(err.contains("2 finding(s)"), "{err}");
    let (_, out, _) = run(&args(&["--no-redact", &path_arg(dir.path())]), b"");
    assert!(out.contains(&secrets[0]));

    let (code, out, _) = run(&args(&[&path_arg(&dir.path().join("clean.md"))]), b"");
    assert_eq!((code, out.as_str()), (0, ""));

    let (code, _, err) = run(&args(&["/definitely/not/here"]), b"");
    assert_eq!(code, 2);
    assert!(err.contains("error"), "{err}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rules]]\nid = \"x\"\nregex = '''('''\n").unwrap();
    let (code, _, err) = run(
        &args(&["--config", &path_arg(&bad), &path_arg(dir.path())]),
        b"",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rule x: invalid regex"), "{err}");
}

#[test]
fn stdin_is_scanned_with_dash() {
    let mut generator = Gen::new(21);
    let input = format!(
        "line\nexport VAULT_TOKEN={}\n",
        generator.expand("hvs.{w:90}")
    );
    let (code, out, _) = run(&args(&["-", "--format", "json"]), input.as_bytes());
    assert_eq!(code, 1);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["rule_id"], "vault-service-token");
    assert_eq!(list[0]["file"], "-");
    assert_eq!(list[0]["line"], 2);
    assert_eq!(list[0]["column"], 20);
    let (code, _, _) = run(&args(&["-"]), b"nothing to see\n");
    assert_eq!(code, 0);
}

#[test]
fn json_report_file_is_a_baseline() {
    let mut generator = Gen::new(22);
    let (dir, _) = tree(&mut generator);
    let report = dir.path().join("report.json");
    let scan_dir = path_arg(dir.path());
    let first = args(&[
        "--format",
        "json",
        "--report",
        &path_arg(&report),
        &scan_dir,
    ]);
    let (code, out, _) = run(&first, b"");
    assert_eq!((code, out.as_str()), (1, ""), "report goes to the file");
    let list: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let baseline = dir.path().join("baseline.json");
    std::fs::rename(&report, &baseline).unwrap();

    // Known findings are suppressed, even after their lines move.
    let moved = std::fs::read_to_string(dir.path().join("a.py")).unwrap();
    std::fs::write(dir.path().join("a.py"), format!("# moved\n\n{moved}")).unwrap();
    let second = args(&["--baseline", &path_arg(&baseline), &scan_dir]);
    let (code, _, err) = run(&second, b"");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 in baseline"), "{err}");

    // A new secret is still reported.
    let fresh = generator.expand("glpat-{w:20}");
    std::fs::write(dir.path().join("c.yaml"), format!("token: {fresh}\n")).unwrap();
    let (code, out, _) = run(&second, b"");
    assert_eq!(code, 1);
    assert!(
        out.contains("gitlab-pat") && !out.contains("github-pat"),
        "{out}"
    );

    std::fs::write(&baseline, "{\"not\": \"a report\"}").unwrap();
    assert_eq!(run(&second, b"").0, 2);
}

/// The SARIF 2.1.0 schema (OASIS, rtm.5, as shipped in the npm package `@microsoft/jest-sarif`).
fn sarif_schema() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/sarif-schema-2.1.0.json");
    let text = std::fs::read_to_string(path).unwrap();
    // The published schema's `run.language` pattern has a stray `]` that makes it an invalid
    // regex, which strict validators reject; correct that one pattern (it constrains a field
    // Ward does not emit).
    let broken = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    assert!(text.contains(broken), "schema changed");
    let text = text.replace(broken, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#);
    serde_json::from_str(&text).unwrap()
}

#[test]
fn sarif_output_is_valid_against_the_schema() {
    let mut generator = Gen::new(23);
    let (dir, secrets) = tree(&mut generator);
    let (code, out, _) = run(&args(&["--format", "sarif", &path_arg(dir.path())]), b"");
    assert_eq!(code, 1);
    let log: Value = serde_json::from_str(&out).unwrap();
    let validator = jsonschema::draft4::new(&sarif_schema()).unwrap();
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.len() >= 150);
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        let location = &result["locations"][0]["physicalLocation"];
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(
            !location["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .contains(' ')
        );
        assert!(result["partialFingerprints"]["ward/v1"].is_string());
    }
    assert!(
        !out.contains(&secrets[0]) && !out.contains(&secrets[1]),
        "redacted"
    );
    // The validator does reject a broken log (SARIF lines start at 1).
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        Value::from(0);
    assert!(!validator.is_valid(&broken));

    // An empty run is valid too.
    let clean = path_arg(&dir.path().join("clean.md"));
    let (_, out, _) = run_sarif(&clean);
    let log: Value = serde_json::from_str(&out).unwrap();
    assert!(validator.is_valid(&log));
}

fn run_sarif(path: &str) -> (i32, String, String) {
    run(&args(&["--format", "sarif", path]), b"")
}

#[test]
fn defaults_and_flags_parse() {
    let parsed = args(&[]);
    assert_eq!(parsed.path, PathBuf::from("."));
    assert_eq!(parsed.format, Format::Text);
    assert_eq!(parsed.max_file_size, ward_scan::DEFAULT_MAX_FILE_SIZE);
    let parsed = args(&[
        "--git",
        "--log-opts",
        "main..HEAD --no-merges",
        "--max-file-size",
        "1M",
        "--threads",
        "3",
        "repo",
    ]);
    assert!(parsed.git);
    assert_eq!(parsed.log_opts, vec!["main..HEAD", "--no-merges"]);
    assert_eq!((parsed.max_file_size, parsed.threads), (1 << 20, 3));
    assert!(Cli::try_parse_from(["scan", "--format", "xml"]).is_err());
}
