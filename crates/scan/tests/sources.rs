//! Directory trees, streams and git history.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::corpus::Gen;
use ward_scan::{Config, Scanner};

fn write(root: &Path, name: &str, content: &[u8]) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[test]
fn directory_scan_honours_gitignore_and_skips_binary_and_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut generator = Gen::new(10);
    let mut token = || generator.expand("ghp_{a:36}");
    write(root, ".gitignore", b"ignored/\n*.log\n");
    write(
        root,
        "src/main.rs",
        format!("let t = \"{}\";\n", token()).as_bytes(),
    );
    write(
        root,
        ".env",
        format!("GITHUB_TOKEN={}\n", token()).as_bytes(),
    );
    write(root, "ignored/a.txt", token().as_bytes());
    write(root, "debug.log", token().as_bytes());
    let mut binary = b"\x00\x01\x02".to_vec();
    binary.extend_from_slice(token().as_bytes());
    write(root, "blob.bin", &binary);
    let mut large = vec![b'x'; 4096];
    large.extend_from_slice(format!("\n{}\n", token()).as_bytes());
    write(root, "big.txt", &large);
    write(root, ".git/config", token().as_bytes());

    let mut config = Config::builtin();
    config.max_file_size = 2048;
    config.threads = 2;
    let out = Scanner::new(config).unwrap().scan_path(root).unwrap();
    let mut files: Vec<String> = out
        .findings
        .iter()
        .map(|f| f.file.rsplit('/').next().unwrap().to_owned())
        .collect();
    files.sort();
    assert_eq!(files, vec![".env", "main.rs"], "{:?}", out.findings);
    assert_eq!(out.files_skipped, 2, "binary and large");
    assert!(out.errors.is_empty());

    // Without the limit the large file is read too.
    let out = Scanner::new(Config::builtin())
        .unwrap()
        .scan_path(root)
        .unwrap();
    assert_eq!(out.findings.len(), 3);
}

#[test]
fn stream_is_scanned_in_bounded_steps_without_losing_or_repeating_findings() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let mut generator = Gen::new(11);
    let mut text = String::new();
    let mut expected = Vec::new();
    let filler = "let value = compute(alpha, beta, gamma); // ordinary code line\n";
    // 20 MiB crosses two 8 MiB step boundaries; secrets sit near and across them.
    let step = 8usize << 20;
    let mut targets = vec![step - 70, step - (64 << 10) - 10, 2 * step - 40, 17 << 20];
    targets.sort_unstable();
    let mut line = 1u64;
    for target in targets {
        while text.len() < target {
            text.push_str(filler);
            line += 1;
        }
        let token = generator.expand("ghp_{a:36}");
        text.push_str(&format!("token = \"{token}\"\n"));
        expected.push((line, token));
        line += 1;
        let key = generator.expand("-----BEGIN OPENSSH PRIVATE KEY-----\n{b:70}\n{b:70}\n{b:70}\n-----END OPENSSH PRIVATE KEY-----\n");
        text.push_str(&key);
        expected.push((line, String::new()));
        line += 5;
    }
    while text.len() < 20 << 20 {
        text.push_str(filler);
    }
    let findings = scanner.scan_reader(text.as_bytes(), "-").unwrap();
    let got: Vec<(u64, &str)> = findings
        .iter()
        .map(|f| (f.line, f.rule_id.as_str()))
        .collect();
    let want: Vec<(u64, &str)> = expected
        .iter()
        .map(|(l, t)| {
            (
                *l,
                if t.is_empty() {
                    "openssh-private-key"
                } else {
                    "github-pat"
                },
            )
        })
        .collect();
    assert_eq!(got, want);
    for (finding, (_, token)) in findings.iter().zip(&expected) {
        if !token.is_empty() {
            assert_eq!(finding.secret.expose(), token);
        }
    }
}

fn git(dir: &Path, args: &[&str], date: &str) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.org")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.org")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn git_history_reports_added_lines_with_commit_author_and_date() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let mut generator = Gen::new(12);
    let removed = generator.expand("AKIA{B:16}");
    let kept = generator.expand("xoxb-{d:12}-{d:13}-{a:24}");
    git(
        repo,
        &["init", "-q", "-b", "main"],
        "2026-01-01T10:00:00+00:00",
    );

    write(
        repo,
        "app/config.py",
        format!("DEBUG = True\nREGION = 'eu'\nKEY = '{removed}'\n").as_bytes(),
    );
    git(repo, &["add", "."], "2026-01-01T10:00:00+00:00");
    git(
        repo,
        &["commit", "-q", "-m", "add config"],
        "2026-01-01T10:00:00+00:00",
    );
    let first = git(repo, &["rev-parse", "HEAD"], "2026-01-01T10:00:00+00:00");

    write(
        repo,
        "app/config.py",
        b"DEBUG = True\nREGION = 'eu'\nKEY = os.environ['KEY']\n",
    );
    write(
        repo,
        "notify.sh",
        format!("#!/bin/sh\n\nSLACK_TOKEN={kept}\n").as_bytes(),
    );
    git(repo, &["add", "."], "2026-02-03T04:05:06+01:00");
    git(
        repo,
        &["commit", "-q", "-m", "remove key, add slack"],
        "2026-02-03T04:05:06+01:00",
    );
    let second = git(repo, &["rev-parse", "HEAD"], "2026-02-03T04:05:06+01:00");

    let scanner = Scanner::new(Config::builtin()).unwrap();
    let out = scanner.scan_git(repo, &[]).unwrap();
    let summary: Vec<(&str, &str, u64, &str)> = out
        .findings
        .iter()
        .map(|f| {
            let commit = f.commit.as_ref().unwrap();
            (
                f.rule_id.as_str(),
                f.file.as_str(),
                f.line,
                commit.id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("slack-bot-token", "notify.sh", 3, second.as_str()),
            ("aws-access-token", "app/config.py", 3, first.as_str()),
        ]
    );
    let commit = out.findings[1].commit.as_ref().unwrap();
    assert_eq!(commit.author, "Ada Lovelace");
    assert_eq!(commit.email, "ada@example.org");
    // git writes UTC as "Z" or "+00:00" depending on its version.
    assert!(
        commit.date.starts_with("2026-01-01T10:00:00"),
        "{}",
        commit.date
    );
    assert_eq!(out.findings[1].secret.expose(), removed);

    // The working tree only has the Slack token left.
    let tree = scanner.scan_path(repo).unwrap();
    assert_eq!(tree.findings.len(), 1);
    assert_eq!(tree.findings[0].rule_id, "slack-bot-token");

    // A range limits the history.
    let range = format!("{first}..{second}");
    let out = scanner.scan_git(repo, &[range]).unwrap();
    assert_eq!(out.findings.len(), 1);

    // Not a repository: a typed error, not a panic.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        scanner.scan_git(empty.path(), &[]),
        Err(ward_scan::ScanError::Git(_))
    ));
}
