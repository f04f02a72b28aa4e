//! `ward run` against a real server: the child's environment, exit codes, signals, `--watch`
//! and the degraded mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{Server, assert_exit, stderr, stdout, terminate, wait_for_exit, ward_bin};
use serde_json::json;

fn put(server: &Server, path: &str, data: serde_json::Value) {
    let (status, body) = server.call(
        "POST",
        &format!("secret/data/{path}"),
        Some(&json!({ "data": data })),
    );
    assert_eq!(status, 200, "{body}");
}

/// `ward run ARGS` as a background process with the root token, its stdout as lines.
fn spawn_run(server: &Server, args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new(ward_bin())
        .arg("run")
        .args(args)
        .env("WARD_ADDR", server.addr())
        .env("WARD_TOKEN", server.root_token())
        .env("HOME", server.home())
        .env_remove("VAULT_TOKEN")
        .env_remove("VAULT_ADDR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (sender, lines) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

fn expect_line(lines: &Receiver<String>, wanted: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line == wanted => return,
            Ok(_) => {}
            Err(_) => panic!("no line {wanted:?} within {within:?}"),
        }
    }
}

#[test]
fn the_child_sees_its_secrets_and_not_the_token() {
    let server = Server::start();
    put(
        &server,
        "myapp/db",
        json!({"password": "db-pass", "user": "app"}),
    );
    put(&server, "myapp/api", json!({"key": "api-key"}));
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env.ward");
    std::fs::write(
        &env_file,
        "# the application's secrets\n\nAPI_KEY=secret/myapp/api#key\nDB_USER = secret/myapp/db#user\n",
    )
    .unwrap();
    let output = server.ward(&[
        "run",
        "--secret",
        "DB_PASSWORD=secret/myapp/db#password",
        "--env-file",
        env_file.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo \"$DB_PASSWORD $API_KEY $DB_USER\"; echo \"token:${WARD_TOKEN:-none}:${VAULT_TOKEN:-none}\"",
    ]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "db-pass api-key app\ntoken:none:none\n");

    // A missing secret or field is an error before anything runs.
    let output = server.ward(&["run", "--secret", "X=secret/myapp/db#nope", "--", "true"]);
    assert_ne!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("no field"), "{}", stderr(&output));
}

#[test]
fn exit_codes_pass_through() {
    let server = Server::start();
    put(&server, "a", json!({"k": "v"}));
    let output = server.ward(&[
        "run",
        "--secret",
        "K=secret/a#k",
        "--",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_exit(&output, 7);
    // Killed by a signal: 128 + its number, as shells report it.
    let output = server.ward(&[
        "run",
        "--secret",
        "K=secret/a#k",
        "--",
        "sh",
        "-c",
        "kill -9 $$",
    ]);
    assert_exit(&output, 137);
}

#[test]
fn signals_pass_through_to_the_child() {
    let server = Server::start();
    put(&server, "a", json!({"k": "v"}));
    let (mut child, lines) = spawn_run(
        &server,
        &[
            "--secret",
            "K=secret/a#k",
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    expect_line(&lines, "ready", Duration::from_secs(10));
    assert!(terminate(&child));
    expect_line(&lines, "got-term", Duration::from_secs(5));
    let status = wait_for_exit(&mut child, Duration::from_secs(5)).expect("ward run exited");
    assert_eq!(status.code(), Some(42));
}

#[test]
fn watch_restarts_the_child_within_two_seconds_of_a_write() {
    let server = Server::start();
    put(&server, "w", json!({"v": "one", "u": "user"}));
    let (mut child, lines) = spawn_run(
        &server,
        &[
            "--watch",
            "--secret",
            "V=secret/w#v",
            "--secret",
            "U=secret/w#u",
            "--",
            "sh",
            "-c",
            "echo \"start $V $U\"; while true; do sleep 0.1; done",
        ],
    );
    expect_line(&lines, "start one user", Duration::from_secs(10));
    // Nothing changed: two polls later the child still runs, not restarted.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(lines.try_iter().collect::<Vec<_>>(), Vec::<String>::new());
    let written = Instant::now();
    put(&server, "w", json!({"v": "two", "u": "user"}));
    expect_line(&lines, "start two user", Duration::from_secs(2));
    println!("restarted {:?} after the write", written.elapsed());
    assert!(terminate(&child));
    let status = wait_for_exit(&mut child, Duration::from_secs(5)).expect("ward run exited");
    assert_eq!(status.code(), Some(128 + 15));
}

#[test]
fn watch_with_a_signal_signals_instead_of_restarting() {
    let server = Server::start();
    put(&server, "w", json!({"v": "one"}));
    let (mut child, lines) = spawn_run(
        &server,
        &[
            "--watch",
            "--signal",
            "HUP",
            "--secret",
            "V=secret/w#v",
            "--",
            "sh",
            "-c",
            "trap 'echo reload' HUP; echo \"start $V\"; while true; do sleep 0.1; done",
        ],
    );
    expect_line(&lines, "start one", Duration::from_secs(10));
    put(&server, "w", json!({"v": "two"}));
    expect_line(&lines, "reload", Duration::from_secs(3));
    assert!(terminate(&child));
    wait_for_exit(&mut child, Duration::from_secs(5)).expect("ward run exited");
    assert!(
        !lines.try_iter().any(|line| line.starts_with("start")),
        "the child was restarted"
    );
}

#[test]
fn an_unreachable_server_falls_back_to_the_variable_and_says_so() {
    let output = Command::new(ward_bin())
        .args([
            "run",
            "--secret",
            "DB_PASSWORD=secret/myapp/db#password",
            "--",
        ])
        .args(["sh", "-c", "echo \"$DB_PASSWORD\""])
        .env(
            "WARD_ADDR",
            format!("http://127.0.0.1:{}", common::free_port()),
        )
        .env("WARD_TOKEN", "t")
        .env("WARD_FALLBACK_DB_PASSWORD", "from-fallback")
        .output()
        .unwrap();
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "from-fallback\n");
    assert!(
        stderr(&output).contains("degraded")
            && stderr(&output).contains("WARD_FALLBACK_DB_PASSWORD"),
        "{}",
        stderr(&output)
    );
    // Without the variable the outage is an error and nothing runs.
    let output = Command::new(ward_bin())
        .args([
            "run",
            "--secret",
            "DB_PASSWORD=secret/myapp/db#password",
            "--",
            "echo",
            "ran",
        ])
        .env(
            "WARD_ADDR",
            format!("http://127.0.0.1:{}", common::free_port()),
        )
        .env("WARD_TOKEN", "t")
        .env_remove("WARD_FALLBACK_DB_PASSWORD")
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(!stdout(&output).contains("ran"));
}
