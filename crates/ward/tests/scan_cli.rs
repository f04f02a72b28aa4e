//! `ward scan` through the real binary: exit codes (0 clean, 1 findings, 2 error), formats,
//! standard input and git history. Test secrets are generated at run time, never stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A fake GitHub token: the documented shape (`ghp_` + 36 base62), random-looking, made here.
fn fake_github_token(seed: u64) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let body: String = (0..36)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(BASE62[(state % 62) as usize])
        })
        .collect();
    format!("ghp_{body}")
}

fn ward(args: &[&str], stdin: &[u8], dir: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn exit_codes_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let token = fake_github_token(1);
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/app.py"),
        format!("\nTOKEN = \"{token}\"\n"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("clean")).unwrap();
    std::fs::write(dir.path().join("clean/readme.md"), "nothing secret\n").unwrap();

    let found = ward(&["scan", "src"], b"", dir.path());
    assert_eq!(code(&found), 1, "{}", text(&found.stderr));
    let out = text(&found.stdout);
    assert!(out.contains("src/app.py:2:10: github-pat"), "{out}");
    assert!(!out.contains(&token), "redacted by default: {out}");

    let clean = ward(&["scan", "clean"], b"", dir.path());
    assert_eq!(code(&clean), 0, "{}", text(&clean.stderr));
    assert!(clean.stdout.is_empty());

    let missing = ward(&["scan", "no-such-dir"], b"", dir.path());
    assert_eq!(code(&missing), 2);
    let bad_flag = ward(&["scan", "--format", "xml", "src"], b"", dir.path());
    assert_eq!(code(&bad_flag), 2);

    let json = ward(
        &["scan", "--format", "json", "--no-redact", "src"],
        b"",
        dir.path(),
    );
    assert_eq!(code(&json), 1);
    let list: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(list[0]["rule_id"], "github-pat");
    assert_eq!(list[0]["secret"], token.as_str());

    let sarif = ward(
        &["scan", "--format", "sarif", "--report", "out.sarif", "src"],
        b"",
        dir.path(),
    );
    assert_eq!(code(&sarif), 1);
    assert!(sarif.stdout.is_empty());
    let log: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out.sarif")).unwrap()).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "github-pat");

    // The JSON report is a baseline: the same finding is then accepted.
    std::fs::write(dir.path().join("baseline.json"), &json.stdout).unwrap();
    let accepted = ward(
        &["scan", "--baseline", "baseline.json", "src"],
        b"",
        dir.path(),
    );
    assert_eq!(code(&accepted), 0, "{}", text(&accepted.stderr));
}

#[test]
fn stdin_and_git_history() {
    let dir = tempfile::tempdir().unwrap();
    let token = fake_github_token(2);
    let piped = ward(
        &["scan", "-"],
        format!("x\ny = {token}\n").as_bytes(),
        dir.path(),
    );
    assert_eq!(code(&piped), 1);
    assert!(
        text(&piped.stdout).starts_with("-:2:5: github-pat"),
        "{}",
        text(&piped.stdout)
    );
    let input = format!("x\ny = {token}\n");
    assert!(
        text(&piped.stderr).contains(&format!("1 files ({} bytes", input.len())),
        "{}",
        text(&piped.stderr)
    );
    assert_eq!(code(&ward(&["scan", "-"], b"clean\n", dir.path())), 0);

    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Grace")
            .env("GIT_AUTHOR_EMAIL", "grace@example.org")
            .env("GIT_COMMITTER_NAME", "Grace")
            .env("GIT_COMMITTER_EMAIL", "grace@example.org")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    std::fs::write(dir.path().join("deploy.sh"), format!("export GH={token}\n")).unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "oops"]);
    std::fs::write(dir.path().join("deploy.sh"), "export GH=$GH_TOKEN\n").unwrap();
    git(&["commit", "-q", "-am", "fix"]);
    let leaked_in = git(&["rev-parse", "HEAD~1"]);

    assert_eq!(
        code(&ward(&["scan", "."], b"", dir.path())),
        0,
        "tree is clean now"
    );
    let history = ward(&["scan", "--git", "--format", "json", "."], b"", dir.path());
    assert_eq!(code(&history), 1, "{}", text(&history.stderr));
    let list: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["commit"], leaked_in.as_str());
    assert_eq!(list[0]["author"], "Grace");
    assert_eq!(list[0]["file"], "deploy.sh");
}
