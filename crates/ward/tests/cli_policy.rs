//! `ward policy write|read|list|delete` end to end, and the policies' effect on a token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, assert_exit, ok, stderr};
use serde_json::Value;

const APP_POLICY: &str = r#"path "secret/data/app/*" {
  capabilities = ["read", "list"]
}

path "secret/metadata/app/*" {
  capabilities = ["list"]
}
"#;

#[test]
fn write_read_list_delete() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.hcl");
    std::fs::write(&file, APP_POLICY).unwrap();

    let written = ok(server.ward(&["policy", "write", "app", file.to_str().unwrap()]));
    assert_eq!(written.trim(), "Success! Uploaded policy: app");
    assert_eq!(ok(server.ward(&["policy", "read", "app"])), APP_POLICY);

    // From stdin.
    let ops = "path \"sys/mounts\" {\n  capabilities = [\"read\"]\n}\n";
    ok(server.ward_stdin(&["policy", "write", "ops", "-"], ops));
    let read: Value =
        serde_json::from_str(&ok(server.ward(&["policy", "read", "-format=json", "ops"]))).unwrap();
    assert_eq!(read["name"], "ops");
    assert_eq!(read["policy"], ops);

    let list = ok(server.ward(&["policy", "list"]));
    let names: Vec<&str> = list.lines().collect();
    for name in ["app", "default", "ops", "root"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }

    let deleted = ok(server.ward(&["policy", "delete", "ops"]));
    assert_eq!(deleted.trim(), "Success! Deleted policy: ops");
    let gone = server.ward(&["policy", "read", "ops"]);
    assert_exit(&gone, 2);
    assert!(
        stderr(&gone).contains("No policy named: ops"),
        "{}",
        stderr(&gone)
    );
    assert!(
        !ok(server.ward(&["policy", "list"]))
            .lines()
            .any(|l| l == "ops")
    );

    // A missing policy exits 2 (as Vault); a missing file is a clear local error.
    let missing = server.ward(&["policy", "write", "x", "/nonexistent/policy.hcl"]);
    assert_exit(&missing, 1);
    assert!(
        stderr(&missing).contains("/nonexistent/policy.hcl"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn invalid_policies_are_rejected_by_the_server() {
    let server = Server::start();
    let bad = server.ward_stdin(
        &["policy", "write", "bad", "-"],
        "path \"x\" { capabilities = ",
    );
    assert_exit(&bad, 2);
    assert!(
        stderr(&bad).contains("Error uploading policy bad"),
        "{}",
        stderr(&bad)
    );
    assert_exit(&server.ward(&["policy", "read", "bad"]), 2);
}

#[test]
fn a_token_gets_exactly_what_its_policy_grants() {
    let server = Server::start();
    ok(server.ward_stdin(&["policy", "write", "app", "-"], APP_POLICY));
    ok(server.ward(&["kv", "put", "secret/app/db", "password=p1"]));
    ok(server.ward(&["kv", "put", "secret/other", "password=p2"]));
    let created: Value = serde_json::from_str(&ok(server.ward(&[
        "token",
        "create",
        "-policy=app",
        "-format=json",
    ])))
    .unwrap();
    let token = created["auth"]["client_token"].as_str().unwrap().to_owned();

    let as_app = |args: &[&str]| server.ward_full(Some(&token), args, None);
    assert_eq!(
        ok(as_app(&["kv", "get", "-field=password", "secret/app/db"])),
        "p1"
    );

    let write = as_app(&["kv", "put", "secret/app/db", "password=mine"]);
    assert_exit(&write, 2);
    assert!(stderr(&write).contains("Code: 403"), "{}", stderr(&write));
    let other = as_app(&["kv", "get", "secret/other"]);
    assert_exit(&other, 2);
    assert!(stderr(&other).contains("Code: 403"), "{}", stderr(&other));
    assert!(
        !stderr(&other).contains(&token),
        "the token leaked into an error"
    );
    assert_exit(&as_app(&["policy", "write", "app", "-"]), 2);
    // The value was not changed by the denied write.
    assert_eq!(
        ok(server.ward(&["kv", "get", "-field=password", "secret/app/db"])),
        "p1"
    );
}

/// Vault grants `LIST secret/metadata/app/` under `path "secret/metadata/app/*"` (checked
/// against OpenBao 2.7.2), and so does Ward.
#[test]
fn list_under_a_glob_policy_matches_vault() {
    let server = Server::start();
    ok(server.ward_stdin(&["policy", "write", "app", "-"], APP_POLICY));
    ok(server.ward(&["kv", "put", "secret/app/db", "password=p1"]));
    let created: Value = serde_json::from_str(&ok(server.ward(&[
        "token",
        "create",
        "-policy=app",
        "-format=json",
    ])))
    .unwrap();
    let token = created["auth"]["client_token"].as_str().unwrap();
    let list = server.ward_full(Some(token), &["kv", "list", "secret/app"], None);
    assert_eq!(ok(list), "Keys\n----\ndb\n");
}

#[test]
fn server_warnings_are_printed_to_stderr() {
    let server = Server::start();
    // Ward has no response wrapping: it accepts a wrapping TTL and warns that the rule
    // therefore denies every request it decides.
    let policy = "path \"secret/data/x\" {\n  capabilities = [\"read\"]\n  \
                  min_wrapping_ttl = \"1m\"\n}\n";
    let written = server.ward_stdin(&["policy", "write", "constrained", "-"], policy);
    assert_exit(&written, 0);
    assert_eq!(
        common::stdout(&written).trim(),
        "Success! Uploaded policy: constrained"
    );
    let warning = stderr(&written);
    assert!(
        warning.starts_with("WARNING! The following warnings were returned from Ward:\n\n  * "),
        "{warning}"
    );
    assert!(warning.contains("min_wrapping_ttl"), "{warning}");
}
