//! `ward status` and `ward operator ...` end to end against a production-mode server:
//! init, unseal (argument, stdin, reset), seal, restart, rotate, key-status, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, assert_exit, free_port, ok, stderr, stdout, table_value};
use serde_json::Value;

/// Initialises with 3 shares / threshold 2 through the CLI; returns (keys, root token).
fn init(server: &Server) -> (Vec<String>, String) {
    let out = ok(server.ward_full(
        None,
        &[
            "operator",
            "init",
            "-key-shares",
            "3",
            "-key-threshold=2",
            "-format=json",
        ],
        None,
    ));
    let json: Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<String> = json["unseal_keys_b64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(json["unseal_keys_hex"].as_array().unwrap().len(), 3);
    assert_eq!(json["unseal_threshold"], 2);
    let root = json["root_token"].as_str().unwrap().to_owned();
    assert!(!root.is_empty());
    (keys, root)
}

#[test]
fn init_unseal_seal_and_restart_cycle() {
    let server = Server::production();

    // Fresh server: uninitialised and sealed; status exits 2, as `vault status` does.
    let status = server.ward_full(None, &["status"], None);
    assert_exit(&status, 2);
    assert_eq!(
        table_value(&stdout(&status), "Initialized").as_deref(),
        Some("false")
    );
    assert_eq!(
        table_value(&stdout(&status), "Sealed").as_deref(),
        Some("true")
    );
    assert_exit(
        &server.ward_full(None, &["operator", "init", "-status"], None),
        2,
    );

    let (keys, root) = init(&server);
    assert_exit(
        &server.ward_full(None, &["operator", "init", "-status"], None),
        0,
    );

    // A second init is refused.
    let again = server.ward_full(
        None,
        &["operator", "init", "-key-shares=1", "-key-threshold=1"],
        None,
    );
    assert_exit(&again, 2);
    assert!(
        stderr(&again).contains("Error initializing"),
        "{}",
        stderr(&again)
    );

    // One share: progress 1/2, still sealed (exit code of the unseal itself is 0).
    let first = ok(server.ward_full(None, &["operator", "unseal", &keys[0]], None));
    assert_eq!(table_value(&first, "Sealed").as_deref(), Some("true"));
    assert_eq!(
        table_value(&first, "Unseal Progress").as_deref(),
        Some("1/2")
    );
    assert_exit(&server.ward_full(None, &["status"], None), 2);

    // -reset discards the progress.
    let reset = ok(server.ward_full(None, &["operator", "unseal", "-reset"], None));
    assert_eq!(
        table_value(&reset, "Unseal Progress").as_deref(),
        Some("0/2")
    );

    // The key from stdin: `-` explicitly, then implicitly (no terminal, so no prompt).
    let from_dash = ok(server.ward_full(
        None,
        &["operator", "unseal", "-"],
        Some(&format!("{}\n", keys[1])),
    ));
    assert_eq!(
        table_value(&from_dash, "Unseal Progress").as_deref(),
        Some("1/2")
    );
    let unsealed = ok(server.ward_full(
        None,
        &["operator", "unseal", "-format=json"],
        Some(&keys[2]),
    ));
    let unsealed: Value = serde_json::from_str(&unsealed).unwrap();
    assert_eq!(unsealed["sealed"], false);
    assert_eq!(
        (unsealed["t"].as_u64(), unsealed["n"].as_u64()),
        (Some(2), Some(3))
    );

    let status = server.ward_full(None, &["status"], None);
    assert_exit(&status, 0);
    assert_eq!(
        table_value(&stdout(&status), "Sealed").as_deref(),
        Some("false")
    );
    assert_eq!(
        table_value(&stdout(&status), "Total Shares").as_deref(),
        Some("3")
    );

    // Sealing needs a token.
    let denied = server.ward_full(None, &["operator", "seal"], None);
    assert_exit(&denied, 2);
    assert_exit(&server.ward_full(None, &["status"], None), 0);

    // Write a secret, seal, restart: the server comes back sealed and the data survives.
    ok(server.ward_full(
        Some(&root),
        &["secrets", "enable", "-path=secret", "kv-v2"],
        None,
    ));
    ok(server.ward_full(
        Some(&root),
        &["kv", "put", "secret/app", "password=s3cr3t"],
        None,
    ));
    let sealed = ok(server.ward_full(Some(&root), &["operator", "seal"], None));
    assert!(sealed.contains("sealed"), "{sealed}");
    assert_exit(&server.ward_full(None, &["status"], None), 2);

    let server = server.restart();
    assert_exit(&server.ward_full(None, &["status"], None), 2);
    let read_while_sealed = server.ward_full(Some(&root), &["kv", "get", "secret/app"], None);
    assert_exit(&read_while_sealed, 2);
    ok(server.ward_full(None, &["operator", "unseal", &keys[2]], None));
    ok(server.ward_full(None, &["operator", "unseal", &keys[0]], None));
    assert_exit(&server.ward_full(None, &["status"], None), 0);
    let value = ok(server.ward_full(
        Some(&root),
        &["kv", "get", "-field=password", "secret/app"],
        None,
    ));
    assert_eq!(value, "s3cr3t");
}

#[test]
fn wrong_unseal_keys_are_rejected_without_echo() {
    let server = Server::production();
    let (_keys, _root) = init(&server);
    let other = Server::production();
    let (foreign_keys, _) = init(&other);

    // A well-formed share of another server's key never unseals this one.
    let first = server.ward_full(None, &["operator", "unseal", &foreign_keys[0]], None);
    let second = server.ward_full(None, &["operator", "unseal", &foreign_keys[1]], None);
    for output in [&first, &second] {
        assert!(!stderr(output).contains(&foreign_keys[0]));
        assert!(!stderr(output).contains(&foreign_keys[1]));
    }
    assert_exit(&server.ward_full(None, &["status"], None), 2);

    // Garbage is an API error (exit 2) and is not echoed.
    let garbage = server.ward_full(None, &["operator", "unseal", "not-a-key-hunter2"], None);
    assert_exit(&garbage, 2);
    assert!(
        stderr(&garbage).contains("Error unsealing"),
        "{}",
        stderr(&garbage)
    );
    assert!(
        !stderr(&garbage).contains("hunter2"),
        "{}",
        stderr(&garbage)
    );
}

#[test]
fn rotate_adds_a_key_term() {
    let server = Server::start();
    let before = ok(server.ward(&["operator", "key-status", "-format=json"]));
    let before: Value = serde_json::from_str(&before).unwrap();
    let term = before["term"].as_u64().unwrap();
    assert!(term >= 1);

    let rotated = ok(server.ward(&["operator", "rotate"]));
    assert!(rotated.starts_with("Success! Rotated key"), "{rotated}");
    let table = ok(server.ward(&["operator", "key-status"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("Key Term") && l.ends_with(&(term + 1).to_string())),
        "{table}"
    );
    // Data written before the rotation still reads after it.
    ok(server.ward(&["kv", "put", "secret/before", "k=v"]));
    ok(server.ward(&["operator", "rotate"]));
    assert_eq!(
        ok(server.ward(&["kv", "get", "-field=k", "secret/before"])),
        "v"
    );
}

#[test]
fn usage_and_connection_errors_have_vaults_exit_codes() {
    let server = Server::start();
    // Bad flags and missing arguments are local errors: 1. A split the server refuses is a
    // remote one: 2 (as bao 2.7.2 exits for each).
    assert_exit(&server.ward(&["operator", "init", "-no-such-flag"]), 1);
    assert_exit(&server.ward(&["kv", "get"]), 1);
    assert_exit(
        &server.ward(&["operator", "init", "-key-shares=2", "-key-threshold=3"]),
        2,
    );
    // Nobody listening: 1, with a message.
    let nowhere = std::process::Command::new(common::ward_bin())
        .args(["status"])
        .env("WARD_ADDR", format!("http://127.0.0.1:{}", free_port()))
        .env_remove("VAULT_ADDR")
        .output()
        .unwrap();
    assert_exit(&nowhere, 1);
    assert!(
        stderr(&nowhere).contains("Error checking seal status"),
        "{}",
        stderr(&nowhere)
    );
    // VAULT_ADDR is honoured when WARD_ADDR is unset; -address wins over both.
    let via_vault_env = std::process::Command::new(common::ward_bin())
        .args(["status"])
        .env_remove("WARD_ADDR")
        .env("VAULT_ADDR", server.addr())
        .output()
        .unwrap();
    assert_exit(&via_vault_env, 0);
    let flag_wins = std::process::Command::new(common::ward_bin())
        .args(["status", &format!("-address={}", server.addr())])
        .env("WARD_ADDR", format!("http://127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert_exit(&flag_wins, 0);
}

#[test]
fn a_dev_server_deletes_its_temporary_database_when_stopped() {
    let server = Server::start();
    let log = server.log();
    let dir = log
        .split("sqlite (temporary: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no temporary database in the banner: {log}"));
    assert!(dir.join("ward.db").is_file(), "{}", dir.display());
    drop(server); // SIGTERM, as an operator's Ctrl-C or `kill` would
    assert!(!dir.exists(), "{} outlived the dev server", dir.display());
}
