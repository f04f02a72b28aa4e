//! `ward kv rotate` against a dev server, and the `[rotation]` table of a production
//! server's configuration driving a scheduled transit rotation across a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, assert_exit, ok, production_toml, stderr, table_value};
use serde_json::{Value, json};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn kv_rotate_writes_a_generated_version() {
    let server = Server::start();
    ok(server.ward(&["kv", "put", "secret/app/db", "user=app", "password=old"]));
    // No policy yet: a clear error, exit 2 like other API errors.
    let refused = server.ward(&["kv", "rotate", "secret/app/db"]);
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        stderr(&refused).contains("no rotation policy"),
        "{}",
        stderr(&refused)
    );

    let (status, body) = server.call(
        "POST",
        "secret/metadata/app/db",
        Some(&json!({"rotation_period": "720h",
            "rotation_generator": {"type": "base64", "length": 24, "field": "password"}})),
    );
    assert_eq!(status, 204, "{body}");
    let out = ok(server.ward(&["kv", "rotate", "secret/app/db"]));
    assert!(
        out.starts_with("=== Secret Path ===\nsecret/data/app/db\n"),
        "{out}"
    );
    assert_eq!(table_value(&out, "version").as_deref(), Some("2"));

    let read = json(&ok(server.ward(&[
        "-format=json",
        "kv",
        "get",
        "secret/app/db",
    ])));
    let password = read["data"]["data"]["password"].as_str().unwrap();
    assert_eq!(password.len(), 32, "24 bytes in base64");
    assert_eq!(read["data"]["data"]["user"], "app");
    let old = ok(server.ward(&[
        "kv",
        "get",
        "-version=1",
        "-field=password",
        "secret/app/db",
    ]));
    assert_eq!(old, "old");

    // -mount form and JSON output.
    let out = json(&ok(server.ward(&[
        "-format=json",
        "kv",
        "rotate",
        "-mount=secret",
        "app/db",
    ])));
    assert_eq!(out["data"]["version"], 3);
    assert_exit(&server.ward(&["kv", "rotate"]), 1);
}

#[test]
fn scheduled_rotation_follows_the_config_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}\n[rotation]\ncheck_interval = \"1s\"\nmin_period = \"1s\"\n",
        production_toml(&dir.path().join("ward.db"))
    );
    let server = Server::start_with_config(&toml);
    let (_, init) = server.call(
        "PUT",
        "sys/init",
        Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
    );
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let http = server.http_with_token(Some(&root));
    let call = |s: &Server, method: &str, path: &str, body: Option<Value>| -> (u16, Value) {
        let mut req = http.request(method.parse().unwrap(), s.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    };
    assert_eq!(
        call(&server, "PUT", "sys/unseal", Some(json!({"key": key}))).0,
        200
    );
    assert_eq!(
        call(
            &server,
            "POST",
            "sys/mounts/transit",
            Some(json!({"type": "transit"}))
        )
        .0,
        204
    );
    let (status, body) = call(
        &server,
        "POST",
        "transit/keys/k",
        Some(json!({"auto_rotate_period": "6s"})),
    );
    assert!(status < 300, "{body}");

    // Down before it is due; back up (sealed), unsealed: the rotation still happens.
    let server = server.restart();
    assert_eq!(
        call(&server, "PUT", "sys/unseal", Some(json!({"key": key}))).0,
        200
    );
    let (_, k) = call(&server, "GET", "transit/keys/k", None);
    assert_eq!(k["data"]["latest_version"], 1, "rotated too early");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, k) = call(&server, "GET", "transit/keys/k", None);
        if k["data"]["latest_version"].as_u64() >= Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "no rotation: {}", server.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    let (_, status) = call(&server, "GET", "sys/rotation/status", None);
    assert_eq!(status["data"]["min_period"], 1);
    assert_eq!(status["data"]["jobs"][0]["kind"], "transit");
}
