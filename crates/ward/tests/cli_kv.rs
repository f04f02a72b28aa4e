//! `ward kv ...` end to end against a dev server: put/get/patch/list, check-and-set,
//! versions (delete, undelete, destroy, rollback), metadata, input forms and output formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, assert_exit, ok, stderr, stdout, table_value};
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn put_and_get_print_vault_tables() {
    let server = Server::start();
    let put = ok(server.ward(&["kv", "put", "secret/app", "user=admin", "pass=hunter2"]));
    assert!(
        put.starts_with("= Secret Path =\nsecret/data/app\n\n======= Metadata ======="),
        "{put}"
    );
    assert_eq!(table_value(&put, "version").as_deref(), Some("1"));
    assert_eq!(table_value(&put, "deletion_time").as_deref(), Some("n/a"));

    let get = ok(server.ward(&["kv", "get", "secret/app"]));
    assert!(
        get.contains(
            "\n==== Data ====\nKey     Value\n---     -----\npass    hunter2\nuser    admin\n"
        ),
        "{get}"
    );
    assert_eq!(table_value(&get, "version").as_deref(), Some("1"));

    // -field prints the bare value (no newline when stdout is not a terminal).
    assert_eq!(
        ok(server.ward(&["kv", "get", "-field=pass", "secret/app"])),
        "hunter2"
    );
    let missing_field = server.ward(&["kv", "get", "-field=nope", "secret/app"]);
    assert_exit(&missing_field, 1);
    assert!(stderr(&missing_field).contains("\"nope\" not present"));

    // -format=json prints the server's envelope.
    let envelope = json(&ok(server.ward(&[
        "kv",
        "get",
        "-format=json",
        "secret/app",
    ])));
    assert_eq!(envelope["data"]["data"]["user"], "admin");
    assert_eq!(envelope["data"]["metadata"]["version"], 1);

    // -mount with a path relative to it reads the same secret.
    assert_eq!(
        ok(server.ward(&["kv", "get", "-mount=secret", "-field=user", "app"])),
        "admin"
    );
    // --flag spelling works too.
    assert_eq!(
        ok(server.ward(&["kv", "get", "--field", "user", "secret/app"])),
        "admin"
    );
}

#[test]
fn missing_secrets_exit_2() {
    let server = Server::start();
    let get = server.ward(&["kv", "get", "secret/nothing"]);
    assert_exit(&get, 2);
    assert_eq!(stderr(&get).trim(), "No value found at secret/data/nothing");
    assert!(stdout(&get).is_empty());
    let list = server.ward(&["kv", "list", "secret/nothing"]);
    assert_exit(&list, 2);
    let metadata = server.ward(&["kv", "metadata", "get", "secret/nothing"]);
    assert_exit(&metadata, 2);
}

#[test]
fn data_from_files_and_stdin() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let cert_arg = format!("cert=@{}", cert.display());
    ok(server.ward(&["kv", "put", "secret/tls", &cert_arg, "name=web"]));
    assert_eq!(
        ok(server.ward(&["kv", "get", "-field=cert", "secret/tls"])),
        "-----BEGIN CERTIFICATE-----\nMIIB\n"
    );

    // A whole JSON object on stdin; non-string values keep their type.
    ok(server.ward_stdin(
        &["kv", "put", "secret/json", "-"],
        r#"{"port": 5432, "tls": true}"#,
    ));
    let read = json(&ok(server.ward(&[
        "kv",
        "get",
        "-format=json",
        "secret/json",
    ])));
    assert_eq!(read["data"]["data"]["port"], 5432);
    assert_eq!(read["data"]["data"]["tls"], true);

    // One value from stdin.
    ok(server.ward_stdin(&["kv", "put", "secret/one", "token=-"], "from-stdin"));
    assert_eq!(
        ok(server.ward(&["kv", "get", "-field=token", "secret/one"])),
        "from-stdin"
    );

    // Malformed input is a usage error that does not echo the argument.
    let bad = server.ward(&["kv", "put", "secret/bad", "hunter2"]);
    assert_exit(&bad, 1);
    assert!(!stderr(&bad).contains("hunter2"), "{}", stderr(&bad));
    let bad_json = server.ward_stdin(&["kv", "put", "secret/bad", "-"], "{not json: hunter2");
    assert_exit(&bad_json, 1);
    assert!(
        !stderr(&bad_json).contains("hunter2"),
        "{}",
        stderr(&bad_json)
    );
    assert_exit(&server.ward(&["kv", "get", "secret/bad"]), 2);
}

#[test]
fn check_and_set_and_patch() {
    let server = Server::start();
    ok(server.ward(&["kv", "put", "-cas=0", "secret/cas", "a=1"]));
    // cas=0 means "only if absent": a second one fails with the server's message.
    let conflict = server.ward(&["kv", "put", "-cas=0", "secret/cas", "a=2"]);
    assert_exit(&conflict, 2);
    assert!(
        stderr(&conflict).contains("Error writing data to secret/data/cas"),
        "{}",
        stderr(&conflict)
    );
    assert!(
        stderr(&conflict).contains("Code: 400"),
        "{}",
        stderr(&conflict)
    );
    ok(server.ward(&["kv", "put", "-cas", "1", "secret/cas", "a=2"]));
    assert_eq!(
        ok(server.ward(&["kv", "get", "-field=a", "secret/cas"])),
        "2"
    );

    // patch keeps the other keys (HTTP PATCH, then read-merge-write).
    let patched = ok(server.ward(&["kv", "patch", "secret/cas", "b=3"]));
    assert_eq!(table_value(&patched, "version").as_deref(), Some("3"));
    ok(server.ward(&["kv", "patch", "-method=rw", "secret/cas", "c=4"]));
    let data = json(&ok(server.ward(&[
        "kv",
        "get",
        "-format=json",
        "secret/cas",
    ])));
    assert_eq!(
        data["data"]["data"],
        serde_json::json!({"a": "2", "b": "3", "c": "4"})
    );
    assert_eq!(data["data"]["metadata"]["version"], 4);
    // Patching a secret that does not exist is not found (exit 2).
    assert_exit(&server.ward(&["kv", "patch", "secret/none", "x=1"]), 2);
}

#[test]
fn list_shows_keys_and_folders() {
    let server = Server::start();
    for path in ["secret/apps/web", "secret/apps/db/primary", "secret/top"] {
        ok(server.ward(&["kv", "put", path, "k=v"]));
    }
    let root = ok(server.ward(&["kv", "list", "secret/"]));
    assert_eq!(root, "Keys\n----\napps/\ntop\n");
    let apps = ok(server.ward(&["kv", "list", "-format=json", "secret/apps"]));
    assert_eq!(json(&apps), serde_json::json!(["db/", "web"]));
}

#[test]
fn versions_delete_undelete_destroy_rollback() {
    let server = Server::start();
    for value in ["one", "two", "three"] {
        ok(server.ward(&["kv", "put", "secret/v", &format!("k={value}")]));
    }
    // Soft-delete the latest: get shows the metadata with a deletion time, no data.
    let deleted = ok(server.ward(&["kv", "delete", "secret/v"]));
    assert_eq!(
        deleted.trim(),
        "Success! Data deleted (if it existed) at: secret/data/v"
    );
    let get = server.ward(&["kv", "get", "secret/v"]);
    let get_out = stdout(&get);
    assert!(!get_out.contains("== Data =="), "{get_out}");
    assert_ne!(
        table_value(&get_out, "deletion_time").as_deref(),
        Some("n/a"),
        "{get_out}"
    );
    assert_exit(&server.ward(&["kv", "get", "-field=k", "secret/v"]), 2);

    // Older versions stay readable; undelete restores the latest.
    assert_eq!(
        ok(server.ward(&["kv", "get", "-version=1", "-field=k", "secret/v"])),
        "one"
    );
    let undeleted = ok(server.ward(&["kv", "undelete", "-versions=3", "secret/v"]));
    assert_eq!(
        undeleted.trim(),
        "Success! Data written to: secret/undelete/v"
    );
    assert_eq!(
        ok(server.ward(&["kv", "get", "-field=k", "secret/v"])),
        "three"
    );

    // undelete/destroy need -versions (exit 1, Vault's message).
    let no_versions = server.ward(&["kv", "destroy", "secret/v"]);
    assert_exit(&no_versions, 1);
    assert!(stderr(&no_versions).contains("-versions"));

    // Destroy version 2: its data is gone for good, and the metadata says so.
    ok(server.ward(&["kv", "destroy", "-versions", "2", "secret/v"]));
    let metadata = json(&ok(server.ward(&[
        "kv",
        "metadata",
        "get",
        "-format=json",
        "secret/v",
    ])));
    assert_eq!(metadata["data"]["versions"]["2"]["destroyed"], true);
    assert_exit(
        &server.ward(&["kv", "get", "-version=2", "-field=k", "secret/v"]),
        2,
    );
    // Rolling back to a destroyed version fails; to version 1 writes version 4 with its data.
    assert_exit(
        &server.ward(&["kv", "rollback", "-version=2", "secret/v"]),
        2,
    );
    let rolled = ok(server.ward(&["kv", "rollback", "-version=1", "secret/v"]));
    assert_eq!(table_value(&rolled, "version").as_deref(), Some("4"));
    assert_eq!(
        ok(server.ward(&["kv", "get", "-field=k", "secret/v"])),
        "one"
    );
    assert_exit(&server.ward(&["kv", "rollback", "secret/v"]), 1);

    // Delete specific versions.
    ok(server.ward(&["kv", "delete", "-versions=1,4", "secret/v"]));
    assert_exit(
        &server.ward(&["kv", "get", "-version=1", "-field=k", "secret/v"]),
        2,
    );
    assert_eq!(
        ok(server.ward(&["kv", "get", "-version=3", "-field=k", "secret/v"])),
        "three"
    );
}

#[test]
fn metadata_put_get_delete() {
    let server = Server::start();
    ok(server.ward(&["kv", "put", "secret/m", "k=1"]));
    let written = ok(server.ward(&[
        "kv",
        "metadata",
        "put",
        "-max-versions",
        "2",
        "-delete-version-after=1h",
        "-custom-metadata",
        "owner=team-a",
        "-custom-metadata=tier=gold",
        "secret/m",
    ]));
    assert_eq!(
        written.trim(),
        "Success! Data written to: secret/metadata/m"
    );
    let table = ok(server.ward(&["kv", "metadata", "get", "secret/m"]));
    assert!(
        table.starts_with("= Metadata Path =\nsecret/metadata/m\n\n"),
        "{table}"
    );
    assert_eq!(table_value(&table, "max_versions").as_deref(), Some("2"));
    assert_eq!(
        table_value(&table, "custom_metadata").as_deref(),
        Some("map[owner:team-a tier:gold]")
    );
    assert!(table.contains("====== Version 1 ======"), "{table}");

    // max_versions = 2 keeps only the two newest versions.
    ok(server.ward(&["kv", "put", "secret/m", "k=2"]));
    ok(server.ward(&["kv", "put", "secret/m", "k=3"]));
    let metadata = json(&ok(server.ward(&[
        "kv",
        "metadata",
        "get",
        "-format=json",
        "secret/m",
    ])));
    let versions: Vec<&String> = metadata["data"]["versions"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(versions, ["2", "3"]);

    // -cas-required makes writes without -cas fail.
    ok(server.ward(&["kv", "metadata", "put", "-cas-required", "secret/m"]));
    assert_exit(&server.ward(&["kv", "put", "secret/m", "k=4"]), 2);
    ok(server.ward(&["kv", "put", "-cas=3", "secret/m", "k=4"]));
    ok(server.ward(&["kv", "metadata", "put", "-cas-required=false", "secret/m"]));
    ok(server.ward(&["kv", "put", "secret/m", "k=5"]));

    let deleted = ok(server.ward(&["kv", "metadata", "delete", "secret/m"]));
    assert_eq!(
        deleted.trim(),
        "Success! Data deleted (if it existed) at: secret/metadata/m"
    );
    assert_exit(&server.ward(&["kv", "get", "secret/m"]), 2);
    assert_exit(&server.ward(&["kv", "metadata", "get", "secret/m"]), 2);
}

#[test]
fn version_1_mounts_are_found_by_the_preflight_and_served_at_their_own_paths() {
    let server = Server::start();
    ok(server.ward(&["secrets", "enable", "-path=kv1", "kv"]));
    ok(server.ward(&["kv", "put", "kv1/app", "user=admin"]));
    let get = ok(server.ward(&["kv", "get", "kv1/app"]));
    assert_eq!(table_value(&get, "user").as_deref(), Some("admin"), "{get}");
    assert!(!get.contains("Metadata"), "{get}");
    assert!(ok(server.ward(&["kv", "list", "kv1"])).contains("app"));
    ok(server.ward(&["kv", "delete", "kv1/app"]));
    assert_exit(&server.ward(&["kv", "get", "kv1/app"]), 2);
}
