//! `ward read|write|delete|list` on arbitrary API paths, end to end against a dev server:
//! transit key management, policies written from a file, KV v2 read as JSON, and Vault's
//! outputs and exit codes for errors and missing paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, assert_exit, ok, stderr, stdout, table_value};
use serde_json::Value;

/// `base64 <<< hello` (the shell's here-string adds a newline).
const HELLO_B64: &str = "aGVsbG8K";

#[test]
fn transit_key_management_round_trip() {
    let server = Server::start();
    ok(server.ward(&["secrets", "enable", "transit"]));

    // Without data and without -f, Vault refuses locally (exit 1) and sends nothing.
    let refused = server.ward(&["write", "transit/keys/app"]);
    assert_exit(&refused, 1);
    assert_eq!(stderr(&refused).trim(), "Must supply data or use -force");
    let (status, _) = server.call("GET", "transit/keys/app", None);
    assert_eq!(status, 404, "the refused write created the key");

    // -f creates the key; Ward answers with the key's description, printed as a table.
    let created = ok(server.ward(&["write", "-f", "transit/keys/app"]));
    assert_eq!(table_value(&created, "name").as_deref(), Some("app"));
    assert_eq!(
        table_value(&created, "type").as_deref(),
        Some("aes256-gcm96")
    );
    // Durations in seconds print as Go durations, as Vault's table does.
    assert_eq!(
        table_value(&created, "auto_rotate_period").as_deref(),
        Some("0s")
    );

    let encrypted = ok(server.ward(&[
        "write",
        "transit/encrypt/app",
        &format!("plaintext={HELLO_B64}"),
    ]));
    assert!(
        encrypted.starts_with("Key            Value\n---            -----\n"),
        "{encrypted}"
    );
    let ciphertext = table_value(&encrypted, "ciphertext").unwrap();
    assert!(ciphertext.starts_with("vault:v1:"), "{ciphertext}");
    assert_eq!(table_value(&encrypted, "key_version").as_deref(), Some("1"));

    // -field prints the bare value, with no newline when piped, so $(...) is exact.
    let plaintext = ok(server.ward(&[
        "write",
        "-field=plaintext",
        "transit/decrypt/app",
        &format!("ciphertext={ciphertext}"),
    ]));
    assert_eq!(plaintext, HELLO_B64);

    let read = ok(server.ward(&["read", "transit/keys/app"]));
    assert_eq!(table_value(&read, "latest_version").as_deref(), Some("1"));
    assert_eq!(
        table_value(&read, "deletion_allowed").as_deref(),
        Some("false")
    );

    // Rotate (a write with no data), then rewrap the old ciphertext to version 2.
    ok(server.ward(&["write", "-force", "transit/keys/app/rotate"]));
    let rewrapped = ok(server.ward(&[
        "write",
        "-field=ciphertext",
        "transit/rewrap/app",
        &format!("ciphertext={ciphertext}"),
    ]));
    assert!(rewrapped.starts_with("vault:v2:"), "{rewrapped}");
    let again = ok(server.ward(&[
        "write",
        "-field=plaintext",
        "transit/decrypt/app",
        &format!("ciphertext={rewrapped}"),
    ]));
    assert_eq!(again, HELLO_B64);

    let listed = ok(server.ward(&["list", "transit/keys"]));
    assert_eq!(listed, "Keys\n----\napp\n");
    let listed: Value =
        serde_json::from_str(&ok(server.ward(&["list", "-format=json", "transit/keys"]))).unwrap();
    assert_eq!(listed, serde_json::json!(["app"]));

    // Deleting a key whose deletion is not allowed: the server's message, exit 2.
    let refused = server.ward(&["delete", "transit/keys/app"]);
    assert_exit(&refused, 2);
    let message = stderr(&refused);
    assert!(
        message.starts_with("Error deleting transit/keys/app: Error making API request."),
        "{message}"
    );
    assert!(message.contains("Code: 400."), "{message}");
    assert!(message.contains("deletion is not allowed"), "{message}");
    assert_eq!(stdout(&refused), "");

    // Once allowed, it goes.
    ok(server.ward(&["write", "transit/keys/app/config", "deletion_allowed=true"]));
    let deleted = ok(server.ward(&["delete", "transit/keys/app"]));
    assert_eq!(
        deleted,
        "Success! Data deleted (if it existed) at: transit/keys/app\n"
    );
    let (status, _) = server.call("GET", "transit/keys/app", None);
    assert_eq!(status, 404);
}

#[test]
fn policies_from_files_and_stdin_and_kv_as_json() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.hcl");
    let policy = "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n";
    std::fs::write(&file, policy).unwrap();

    let written = ok(server.ward(&[
        "write",
        "sys/policies/acl/x",
        &format!("policy=@{}", file.display()),
    ]));
    assert_eq!(written, "Success! Data written to: sys/policies/acl/x\n");
    let (_, body) = server.call("GET", "sys/policies/acl/x", None);
    assert_eq!(body["data"]["policy"], policy);
    let field = ok(server.ward(&["read", "-field=policy", "sys/policies/acl/x"]));
    assert_eq!(field, policy);

    // A lone `-` reads a JSON object from stdin; `k=-` reads one value.
    let json_body = r#"{"policy": "path \"a/*\" {\n  capabilities = [\"list\"]\n}\n"}"#;
    ok(server.ward_stdin(&["write", "sys/policies/acl/y", "-"], json_body));
    let (_, body) = server.call("GET", "sys/policies/acl/y", None);
    assert!(
        body["data"]["policy"]
            .as_str()
            .unwrap()
            .contains("\"list\"")
    );
    ok(server.ward_stdin(&["write", "sys/policies/acl/z", "policy=-"], policy));
    let (_, body) = server.call("GET", "sys/policies/acl/z", None);
    assert_eq!(body["data"]["policy"], policy);

    // -format=json: nothing printed when the reply has no data (the output stays parseable).
    let policy_arg = format!("policy=@{}", file.display());
    let quiet = ok(server.ward(&["write", "-format=json", "sys/policies/acl/x", &policy_arg]));
    assert_eq!(quiet, "");

    let deleted = ok(server.ward(&["delete", "sys/policies/acl/z"]));
    assert_eq!(
        deleted,
        "Success! Data deleted (if it existed) at: sys/policies/acl/z\n"
    );

    ok(server.ward(&["kv", "put", "secret/foo", "a=b"]));
    let read: Value = serde_json::from_str(&ok(server.ward(&[
        "read",
        "-format=json",
        "secret/data/foo",
    ])))
    .unwrap();
    assert_eq!(read["data"]["data"]["a"], "b");
    assert_eq!(read["data"]["metadata"]["version"], 1);
    assert!(read["request_id"].is_string());
    // -field=data gives the KV v2 secret itself, as Vault's CLI does.
    assert_eq!(
        ok(server.ward(&["read", "-field=data", "secret/data/foo"])),
        "map[a:b]"
    );
    let field: Value = serde_json::from_str(&ok(server.ward(&[
        "read",
        "-format=json",
        "-field=data",
        "secret/data/foo",
    ])))
    .unwrap();
    assert_eq!(field, serde_json::json!({"a": "b"}));
    // URL parameters: `version=1` reads that version.
    ok(server.ward(&["kv", "put", "secret/foo", "a=c"]));
    assert_eq!(
        ok(server.ward(&["read", "-field=data", "secret/data/foo", "version=1"])),
        "map[a:b]"
    );
}

#[test]
fn missing_paths_fields_and_bad_arguments() {
    let server = Server::start();

    let missing = server.ward(&["read", "sys/nothing"]);
    assert_exit(&missing, 2);
    assert_eq!(stderr(&missing).trim(), "No value found at sys/nothing");
    assert_eq!(stdout(&missing), "");

    let missing = server.ward(&["read", "secret/data/absent"]);
    assert_exit(&missing, 2);
    assert_eq!(
        stderr(&missing).trim(),
        "No value found at secret/data/absent"
    );

    let missing = server.ward(&["list", "secret/metadata/absent"]);
    assert_exit(&missing, 2);
    assert_eq!(
        stderr(&missing).trim(),
        "No value found at secret/metadata/absent"
    );
    let missing = server.ward(&["list", "-format=json", "secret/metadata/absent"]);
    assert_exit(&missing, 2);
    assert_eq!(stdout(&missing).trim(), "{}");

    ok(server.ward(&["kv", "put", "secret/foo", "a=b"]));
    let no_field = server.ward(&["read", "-field=nope", "secret/data/foo"]);
    assert_exit(&no_field, 1);
    assert_eq!(
        stderr(&no_field).trim(),
        "Field \"nope\" not present in secret"
    );

    // A pair without `=` is a local error (exit 1) that does not echo what might be a secret.
    let bad = server.ward(&["write", "secret/data/foo", "hunter2"]);
    assert_exit(&bad, 1);
    assert!(stderr(&bad).starts_with("Failed to parse K=V data: "));
    assert!(!stderr(&bad).contains("hunter2"));

    let unreadable = server.ward(&["write", "sys/policies/acl/x", "policy=@/nonexistent/x.hcl"]);
    assert_exit(&unreadable, 1);

    // Permission errors from the server exit 2 with its message.
    let denied = server.ward_full(Some("not-a-token"), &["read", "secret/data/foo"], None);
    assert_exit(&denied, 2);
    assert!(
        stderr(&denied).contains("Code: 403."),
        "{}",
        stderr(&denied)
    );
}
