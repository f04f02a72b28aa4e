//! Attacks on authorisation (issue 22, items 1 and 2), each against a real server: a token
//! must not get past a `deny` by spelling a policy name differently, nor by listing the folder
//! a `deny` covers. The expected answers were taken from OpenBao 2.7.2 side by side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{TestServer, assert_errors, dev};

const DEV_POLICY: &str = r#"path "secret/data/dev/*" { capabilities = ["read"] }"#;
const ESCALATED: &str =
    r#"path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }"#;

/// May manage every policy except `dev`, through both the current and the legacy path.
const POLICY_ADMIN: &str = r#"
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete"] }
path "sys/policy/*" { capabilities = ["create", "read", "update", "delete"] }
path "sys/policies/acl/dev" { capabilities = ["deny"] }
path "sys/policy/dev" { capabilities = ["deny"] }
"#;

async fn token_with(s: &TestServer, policy: &str, text: &str) -> String {
    s.put_policy(policy, text).await;
    s.new_token(
        &s.root_token,
        "auth/token/create",
        json!({ "policies": [policy] }),
    )
    .await
}

async fn dev_policy_text(s: &TestServer) -> Value {
    let (status, body) = s.call("GET", "sys/policies/acl/dev", None).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["policy"].clone()
}

#[tokio::test]
async fn a_policy_name_spelled_differently_cannot_get_past_a_deny() {
    let s = dev().await;
    s.put_policy("dev", DEV_POLICY).await;
    let admin = token_with(&s, "policy-admin", POLICY_ADMIN).await;
    let spellings = [
        "sys/policies/acl/dev",
        "sys/policies/acl/DEV",
        "sys/policies/acl/Dev",
        "sys/policies/acl/%20dev",
        "sys/policies/acl/dev%20",
        "sys/policies/acl/%20%20DeV%20",
        "sys/policies/acl/dev%2F",
        "sys/policy/dev",
        "sys/policy/DEV",
        "sys/policy/%20dev",
    ];
    for path in spellings {
        for (method, body) in [
            ("PUT", Some(json!({ "policy": ESCALATED }))),
            ("POST", Some(json!({ "rules": ESCALATED }))),
            ("DELETE", None),
            ("GET", None),
        ] {
            let (status, reply) = s.call_as(&admin, method, path, body).await;
            assert_eq!(status, 403, "{method} {path}: {reply}");
            assert_errors(&reply);
        }
    }
    assert_eq!(dev_policy_text(&s).await, DEV_POLICY);

    // What the deny does not cover still works, under the canonical name (as in OpenBao).
    for (path, name) in [
        ("sys/policies/acl/OTHER", "other"),
        ("sys/policies/acl/%20spaced%20", "spaced"),
        ("sys/policy/LEGACY", "legacy"),
    ] {
        let (status, reply) = s
            .call_as(&admin, "PUT", path, Some(json!({ "policy": DEV_POLICY })))
            .await;
        assert_eq!(status, 204, "{path}: {reply}");
        let (status, reply) = s
            .call_as(&admin, "GET", &format!("sys/policies/acl/{name}"), None)
            .await;
        assert_eq!(status, 200, "{name}: {reply}");
        assert_eq!(reply["data"]["name"], name);
    }
}

#[tokio::test]
async fn a_grant_on_a_policy_name_covers_its_other_spellings_and_nothing_more() {
    // The reverse: a grant on `sys/policies/acl/ops` covers `OPS` and ` ops` (the same
    // policy), and nothing else.
    let s = dev().await;
    let ops_admin = token_with(
        &s,
        "ops-admin",
        r#"path "sys/policies/acl/ops" { capabilities = ["create", "update", "read"] }"#,
    )
    .await;
    for path in ["sys/policies/acl/OPS", "sys/policies/acl/%20ops"] {
        let (status, reply) = s
            .call_as(
                &ops_admin,
                "PUT",
                path,
                Some(json!({ "policy": DEV_POLICY })),
            )
            .await;
        assert_eq!(status, 204, "{path}: {reply}");
    }
    let (status, reply) = s
        .call_as(
            &ops_admin,
            "PUT",
            "sys/policies/acl/OPS2",
            Some(json!({ "policy": DEV_POLICY })),
        )
        .await;
    assert_eq!(status, 403, "{reply}");
}

const LISTER: &str = r#"
path "secret/metadata/*" { capabilities = ["list", "read"] }
path "secret/metadata/private/*" { capabilities = ["deny"] }
path "secret/data/exact" { capabilities = ["read"] }
path "secret/data/exact2/" { capabilities = ["update"] }
path "a/+/c" { capabilities = ["read"] }
path "a/b/*" { capabilities = ["list"] }
"#;

#[tokio::test]
async fn a_folder_deny_stops_list_of_that_folder() {
    let s = dev().await;
    for path in ["secret/data/private/k", "secret/data/pub"] {
        let (status, reply) = s
            .call("POST", path, Some(json!({ "data": { "v": "1" } })))
            .await;
        assert_eq!(status, 200, "{reply}");
    }
    let lister = token_with(&s, "lister", LISTER).await;
    for path in ["secret/metadata/private/", "secret/metadata/private"] {
        let (status, reply) = s.call_as(&lister, "LIST", path, None).await;
        assert_eq!(status, 403, "LIST {path}: {reply}");
        assert_errors(&reply);
        let (status, reply) = s
            .call_as(&lister, "GET", &format!("{path}?list=true"), None)
            .await;
        assert_eq!(status, 403, "GET {path}?list=true: {reply}");
    }
    let (status, reply) = s.call_as(&lister, "LIST", "secret/metadata/", None).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"]["keys"], json!(["private/", "pub"]));
}

/// `sys/capabilities-self` and `sys/capabilities` answer as OpenBao 2.7.2 did for the same
/// policy (recorded with `bao server -dev`).
#[tokio::test]
async fn capabilities_agree_with_openbao_for_paths_ending_in_a_slash() {
    let s = dev().await;
    let lister = token_with(&s, "lister", LISTER).await;
    let expected = json!({
        "secret/metadata/private/": ["deny"],
        "secret/metadata/private": ["list", "read"],
        "secret/metadata/": ["list", "read"],
        "secret/metadata": ["deny"],
        "secret/data/exact/": ["read"],
        "secret/data/exact": ["read"],
        "secret/data/exact2": ["deny"],
        "secret/data/exact2/": ["update"],
        "a/x/c": ["read"],
        "a/x/c/": ["read"],
        "a/b/": ["list"],
        "a/b": ["deny"],
    });
    let paths: Vec<&String> = expected.as_object().unwrap().keys().collect();
    let (status, self_reply) = s
        .call_as(
            &lister,
            "POST",
            "sys/capabilities-self",
            Some(json!({ "paths": paths })),
        )
        .await;
    assert_eq!(status, 200, "{self_reply}");
    let (status, reply) = s
        .call(
            "POST",
            "sys/capabilities",
            Some(json!({ "token": lister, "paths": paths })),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    for (path, caps) in expected.as_object().unwrap() {
        assert_eq!(&self_reply["data"][path], caps, "capabilities-self {path}");
        assert_eq!(&reply["data"][path], caps, "capabilities {path}");
    }
}
