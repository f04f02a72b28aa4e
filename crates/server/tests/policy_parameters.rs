//! ACL parameter constraints over HTTP: `denied_parameters`, `allowed_parameters`,
//! `required_parameters` and wrapping TTLs are enforced with Vault's semantics, and a denied
//! request changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{TestServer, dev};

/// A token (created by root) with `policies`.
async fn token_with(s: &TestServer, policies: &[&str]) -> String {
    let body = json!({ "policies": policies, "ttl": "1h" });
    s.new_token(&s.root_token, "auth/token/create", body).await
}

async fn token_count(s: &TestServer) -> usize {
    let (status, body) = s.call("LIST", "auth/token/accessors", None).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["keys"].as_array().unwrap().len()
}

fn assert_permission_denied(status: u16, body: &Value) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(body, &json!({"errors": ["permission denied"]}));
}

#[tokio::test]
async fn denied_parameters_on_token_create_stop_those_policies_only() {
    let s = dev().await;
    let warnings = s
        .put_policy(
            "creator",
            r#"
path "auth/token/create" {
  capabilities = ["update"]
  denied_parameters = {
    "policies" = ["root", "admin*"]
  }
}
"#,
        )
        .await;
    assert!(
        warnings.is_empty(),
        "no 'not enforced' warning: {warnings:?}"
    );
    s.put_policy(
        "admin-ops",
        r#"path "sys/mounts" { capabilities = ["read"] }"#,
    )
    .await;
    s.put_policy(
        "app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    )
    .await;
    // The parent holds admin-ops, so only the policy keeps it from handing it on.
    let parent = token_with(&s, &["creator", "admin-ops", "app"]).await;
    let before = token_count(&s).await;

    for policies in [
        json!(["admin-ops"]),
        json!(["app", "admin-ops"]),
        json!("app,admin-ops"),
        json!(["root"]),
    ] {
        let (status, body) = s
            .call_as(
                &parent,
                "POST",
                "auth/token/create",
                Some(json!({ "policies": policies, "ttl": "10m" })),
            )
            .await;
        assert_permission_denied(status, &body);
    }
    assert_eq!(token_count(&s).await, before, "no token was created");

    let (status, body) = s
        .call_as(
            &parent,
            "POST",
            "auth/token/create",
            Some(json!({ "policies": ["app"], "ttl": "10m" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["policies"], json!(["app", "default"]));
    assert_eq!(token_count(&s).await, before + 1);

    // sys/capabilities-self still reports the rule's capabilities.
    let (_, body) = s
        .call_as(
            &parent,
            "POST",
            "sys/capabilities-self",
            Some(json!({ "paths": ["auth/token/create"] })),
        )
        .await;
    assert_eq!(body["data"]["auth/token/create"], json!(["update"]));
}

#[tokio::test]
async fn allowed_parameters_on_kv_v2_data_see_the_top_level_fields() {
    let s = dev().await;
    s.put_policy(
        "writer",
        r#"
path "secret/data/app/*" {
  capabilities = ["create", "read", "update"]
  allowed_parameters = {
    "data" = []
  }
}
"#,
    )
    .await;
    let token = token_with(&s, &["writer"]).await;

    // The secret's own keys are inside `data`: any of them may be written.
    let (status, body) = s
        .call_as(
            &token,
            "POST",
            "secret/data/app/db",
            Some(json!({ "data": { "user": "u", "password": "p" } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // `options` is not allowed: neither an update nor a create goes through.
    let (status, body) = s
        .call_as(
            &token,
            "POST",
            "secret/data/app/db",
            Some(json!({ "data": { "password": "changed" }, "options": { "cas": 1 } })),
        )
        .await;
    assert_permission_denied(status, &body);
    let (status, body) = s
        .call_as(
            &token,
            "POST",
            "secret/data/app/new",
            Some(json!({ "data": { "k": "v" }, "options": {} })),
        )
        .await;
    assert_permission_denied(status, &body);

    let (_, body) = s.call("GET", "secret/data/app/db", None).await;
    assert_eq!(body["data"]["data"]["password"], "p", "unchanged");
    assert_eq!(body["data"]["metadata"]["version"], 1);
    let (status, _) = s.call("GET", "secret/data/app/new", None).await;
    assert_eq!(status, 404, "not written");

    // Reads are checked too, against their query parameters (as in Vault).
    let (status, body) = s.call_as(&token, "GET", "secret/data/app/db", None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .call_as(&token, "GET", "secret/data/app/db?version=1", None)
        .await;
    assert_permission_denied(status, &body);
}

#[tokio::test]
async fn required_parameters_must_be_sent() {
    let s = dev().await;
    s.put_policy(
        "careful",
        r#"
path "secret/data/careful/*" {
  capabilities = ["create", "update"]
  required_parameters = ["options"]
}
"#,
    )
    .await;
    let token = token_with(&s, &["careful"]).await;

    let (status, body) = s
        .call_as(
            &token,
            "POST",
            "secret/data/careful/x",
            Some(json!({ "data": { "k": "v" } })),
        )
        .await;
    assert_permission_denied(status, &body);
    let (status, _) = s.call("GET", "secret/data/careful/x", None).await;
    assert_eq!(status, 404, "not written");

    let (status, body) = s
        .call_as(
            &token,
            "POST",
            "secret/data/careful/x",
            Some(json!({ "data": { "k": "v" }, "options": { "cas": 0 } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = s.call("GET", "secret/data/careful/x", None).await;
    assert_eq!(body["data"]["data"], json!({ "k": "v" }));
}

#[tokio::test]
async fn a_wrapping_ttl_denies_since_ward_never_wraps() {
    let s = dev().await;
    let warnings = s
        .put_policy(
            "wrapped",
            r#"
path "secret/data/wrapped/*" {
  capabilities = ["create", "read", "update"]
  min_wrapping_ttl = "1m"
}
"#,
        )
        .await;
    assert!(
        warnings.iter().any(|w| w.contains("response wrapping")),
        "{warnings:?}"
    );
    let (status, _) = s
        .call(
            "POST",
            "secret/data/wrapped/x",
            Some(json!({ "data": { "k": "root" } })),
        )
        .await;
    assert_eq!(status, 200, "root is not constrained");
    let token = token_with(&s, &["wrapped"]).await;

    let (status, body) = s
        .call_as(
            &token,
            "POST",
            "secret/data/wrapped/x",
            Some(json!({ "data": { "k": "token" } })),
        )
        .await;
    assert_permission_denied(status, &body);
    let (status, body) = s
        .call_as(&token, "GET", "secret/data/wrapped/x", None)
        .await;
    assert_permission_denied(status, &body);
    let (_, body) = s.call("GET", "secret/data/wrapped/x", None).await;
    assert_eq!(body["data"]["data"], json!({ "k": "root" }), "unchanged");
    assert_eq!(body["data"]["metadata"]["version"], 1);

    let (_, body) = s
        .call_as(
            &token,
            "POST",
            "sys/capabilities-self",
            Some(json!({ "paths": ["secret/data/wrapped/x"] })),
        )
        .await;
    assert_eq!(
        body["data"]["secret/data/wrapped/x"],
        json!(["create", "read", "update"])
    );
}
