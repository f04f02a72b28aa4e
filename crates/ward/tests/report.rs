//! The compliance report (`sys/reports/compliance`, `ward report compliance`): a server with
//! overdue keys, a root token and a wildcard policy gets a report whose failing checks name
//! exactly those; the JSON validates against the schema kept in the repo; the HTML and
//! Markdown forms carry the same findings; only root or a `sys/reports` policy may read it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::{Server, assert_exit, ok, production_toml};
use serde_json::{Value, json};

/// Calls the API with `token`.
fn call(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let http = server.http_with_token(Some(token));
    let mut request = http.request(method.parse().unwrap(), server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn must(server: &Server, token: &str, method: &str, path: &str, body: Value) -> Value {
    let (status, reply) = call(server, token, method, path, Some(body));
    assert!(status < 300, "{method} {path}: {status} {reply}");
    reply
}

/// Check id → (status, evidence subjects).
fn outcomes(report: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let subjects = c["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["subject"].as_str().unwrap().to_owned())
                .collect();
            (
                c["id"].as_str().unwrap().to_owned(),
                (c["status"].as_str().unwrap().to_owned(), subjects),
            )
        })
        .collect()
}

fn validate_against_schema(report: &Value) {
    let python = std::env::var("WARD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/compliance-report.schema.json"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    std::fs::write(&file, report.to_string()).unwrap();
    let script = "import json, sys, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  jsonschema.Draft202012Validator.check_schema(schema)\n\
                  checker = jsonschema.Draft202012Validator.FORMAT_CHECKER\n\
                  jsonschema.validate(json.load(open(sys.argv[2])), schema, format_checker=checker)\n";
    let out = Command::new(&python)
        .args(["-c", script, schema, file.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} ({e}): scripts/test installs python with jsonschema")
        });
    assert!(
        out.status.success(),
        "the report does not validate against docs/compliance-report.schema.json:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn failing_checks_name_exactly_the_overdue_keys_root_tokens_and_wildcard_policies() {
    let dir = tempfile::tempdir().unwrap();
    // The scheduler looks once an hour, so keys with a 2 s period fall overdue.
    let toml = format!(
        "{}\n[rotation]\ncheck_interval = \"1h\"\nmin_period = \"1s\"\nkeyring_period = \"720h\"\n",
        production_toml(&dir.path().join("ward.db"))
    );
    let server = Server::start_with_config(&toml);
    let (_, init) = server.call(
        "PUT",
        "sys/init",
        Some(&json!({"secret_shares": 3, "secret_threshold": 2})),
    );
    let root = init["root_token"].as_str().unwrap().to_owned();
    for key in init["keys"].as_array().unwrap().iter().take(2) {
        server.call("PUT", "sys/unseal", Some(&json!({"key": key})));
    }
    let audit_file = dir.path().join("audit.log");
    let r = root.as_str();
    must(
        &server,
        r,
        "PUT",
        "sys/audit/file",
        json!({"type": "file", "options": {"file_path": audit_file}}),
    );
    must(
        &server,
        r,
        "POST",
        "sys/mounts/transit",
        json!({"type": "transit"}),
    );
    must(
        &server,
        r,
        "POST",
        "sys/mounts/secret",
        json!({"type": "kv", "options": {"version": "2"}}),
    );
    must(
        &server,
        r,
        "POST",
        "transit/keys/payments",
        json!({"auto_rotate_period": "2s"}),
    );
    must(
        &server,
        r,
        "POST",
        "transit/keys/fresh",
        json!({"auto_rotate_period": "720h"}),
    );
    for (path, period) in [("app/db", "2s"), ("app/api", "720h")] {
        must(
            &server,
            r,
            "POST",
            &format!("secret/data/{path}"),
            json!({"data": {"password": "p"}}),
        );
        must(
            &server,
            r,
            "POST",
            &format!("secret/metadata/{path}"),
            json!({"rotation_period": period}),
        );
    }
    must(
        &server,
        r,
        "PUT",
        "sys/policies/acl/ops-wide",
        json!({"policy": "path \"sys/*\" { capabilities = [\"read\", \"update\"] }"}),
    );
    must(
        &server,
        r,
        "PUT",
        "sys/policies/acl/app",
        json!({"policy": "path \"secret/data/app/*\" { capabilities = [\"read\"] }\npath \"sys/tools/hash/*\" { capabilities = [\"update\"] }"}),
    );
    must(
        &server,
        r,
        "PUT",
        "sys/policies/acl/auditor",
        json!({"policy": "path \"sys/reports/compliance\" { capabilities = [\"read\"] }"}),
    );
    let app = must(
        &server,
        r,
        "POST",
        "auth/token/create",
        json!({"policies": ["app"], "ttl": "1h"}),
    );
    let app_token = app["auth"]["client_token"].as_str().unwrap().to_owned();
    let auditor = must(
        &server,
        r,
        "POST",
        "auth/token/create",
        json!({"policies": ["auditor"], "ttl": "1h"}),
    );
    let auditor_token = auditor["auth"]["client_token"].as_str().unwrap().to_owned();
    must(
        &server,
        r,
        "POST",
        "sys/auth/userpass",
        json!({"type": "userpass"}),
    );
    must(
        &server,
        r,
        "POST",
        "auth/userpass/users/alice",
        json!({"password": "right", "token_ttl": "1h"}),
    );
    for _ in 0..2 {
        let (status, _) = call(
            &server,
            "",
            "POST",
            "auth/userpass/login/alice",
            Some(json!({"password": "wrong"})),
        );
        assert_eq!(status, 400);
    }
    std::thread::sleep(Duration::from_secs(3));

    // Read with the auditor's policy: the report's own read is allowed, nothing else.
    let (status, body) = call(
        &server,
        &auditor_token,
        "GET",
        "sys/reports/compliance",
        None,
    );
    assert_eq!(status, 200, "{body}");
    let report = body["data"].clone();
    validate_against_schema(&report);
    let found = outcomes(&report);
    let failing: Vec<&str> = found
        .iter()
        .filter(|(_, (status, _))| status == "fail")
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        failing,
        [
            "kv-rotation-overdue",
            "root-tokens",
            "transit-rotation-overdue",
            "wildcard-policies"
        ],
        "{report:#}"
    );
    assert_eq!(
        found["transit-rotation-overdue"].1,
        ["transit/keys/payments"]
    );
    assert_eq!(found["kv-rotation-overdue"].1, ["secret/app/db"]);
    assert_eq!(found["wildcard-policies"].1, ["policy ops-wide"]);
    let (_, root_lookup) = call(&server, r, "GET", "auth/token/lookup-self", None);
    let root_accessor = root_lookup["data"]["accessor"].as_str().unwrap();
    assert_eq!(
        found["root-tokens"].1,
        [format!("accessor {root_accessor}")]
    );
    // The rest passes, or (failed logins) asks for a look.
    assert_eq!(
        found["failed-logins"],
        ("warn".into(), vec!["auth/userpass/".into()])
    );
    for id in [
        "transit-rotation-policy",
        "transit-unsafe-versions",
        "keyring-rotation",
        "tokens-without-expiry",
        "audit-devices",
        "audit-chain",
        "seal-threshold",
    ] {
        assert_eq!(found[id].0, "pass", "{id}: {report:#}");
    }
    assert_eq!(report["summary"]["failed"], 4);
    assert_eq!(report["server"]["seal_type"], "shamir");
    let logins = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "failed-logins")
        .unwrap();
    assert_eq!(logins["evidence"][0]["detail"], "2 failed login(s)");

    // Without the report's policy: 403; a bad period: 400.
    let (status, _) = call(&server, &app_token, "GET", "sys/reports/compliance", None);
    assert_eq!(status, 403);
    let (status, body) = call(
        &server,
        r,
        "GET",
        "sys/reports/compliance?period=soon",
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0].as_str().unwrap().contains("period"),
        "{body}"
    );

    // The CLI: JSON as the API's, Markdown and one HTML file with the same findings.
    let cli_json: Value = serde_json::from_str(&ok(server.ward_full(
        Some(r),
        &["report", "compliance", "-format=json", "-period=1h"],
        None,
    )))
    .unwrap();
    assert_eq!(
        outcomes(&cli_json)["wildcard-policies"],
        found["wildcard-policies"]
    );
    assert_eq!(cli_json["period"]["duration"], "1h0m0s");
    let markdown = ok(server.ward_full(Some(r), &["report", "compliance"], None));
    assert!(
        markdown.contains("| FAIL | Transit keys are rotated within their rotation period"),
        "{markdown}"
    );
    assert!(markdown.contains("| transit/keys/payments |"), "{markdown}");
    let html_file = dir.path().join("report.html");
    let out = ok(server.ward_full(
        Some(r),
        &[
            "report",
            "compliance",
            "-format",
            "html",
            "-out",
            html_file.to_str().unwrap(),
        ],
        None,
    ));
    assert!(out.contains("4 failed"), "{out}");
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("policy ops-wide"));
    assert!(
        !html.contains("<script") && !html.contains("<link"),
        "self-contained, no scripts"
    );
    assert_exit(
        &server.ward_full(Some(&app_token), &["report", "compliance"], None),
        2,
    );
    assert_exit(
        &server.ward_full(Some(r), &["report", "compliance", "-format=yaml"], None),
        1,
    );

    // An edited audit line fails the chain check, naming the device and the line.
    let text = std::fs::read_to_string(&audit_file).unwrap();
    let edited = text.replacen("auth/userpass/login/alice", "auth/userpass/login/bobby", 1);
    assert_ne!(text, edited);
    std::fs::write(&audit_file, edited).unwrap();
    let (_, body) = call(&server, r, "GET", "sys/reports/compliance", None);
    let found = outcomes(&body["data"]);
    assert_eq!(found["audit-chain"].0, "fail", "{body:#}");
    assert_eq!(found["audit-chain"].1, ["file/"]);
    let chain = body["data"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "audit-chain")
        .unwrap();
    assert!(
        names_the_line(chain["evidence"][0]["detail"].as_str().unwrap()),
        "{chain}"
    );
}

/// The chain check names the line where the chain broke.
fn names_the_line(detail: &str) -> bool {
    detail.contains(" line ") && detail.contains("chain broken")
}

#[test]
fn a_dev_server_fails_the_seal_audit_and_rotation_policy_checks() {
    let server = Server::start();
    let r = server.root_token().to_owned();
    must(
        &server,
        &r,
        "POST",
        "sys/mounts/transit",
        json!({"type": "transit"}),
    );
    must(&server, &r, "POST", "transit/keys/unmanaged", json!({}));
    let (status, body) = call(&server, &r, "GET", "sys/reports/compliance", None);
    assert_eq!(status, 200, "{body}");
    validate_against_schema(&body["data"]);
    let found = outcomes(&body["data"]);
    assert_eq!(found["seal-threshold"].0, "fail");
    assert_eq!(found["audit-devices"].0, "fail");
    assert_eq!(found["audit-chain"].0, "warn");
    assert_eq!(found["keyring-rotation"].0, "fail");
    assert_eq!(
        found["transit-rotation-policy"],
        ("fail".into(), vec!["transit/keys/unmanaged".into()])
    );
}
