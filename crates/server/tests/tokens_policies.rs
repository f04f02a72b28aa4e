//! Tokens and ACL policies over HTTP, with Vault's semantics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{assert_errors, dev};

const APP_POLICY: &str = r#"
path "secret/data/app/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/app/*" { capabilities = ["list"] }
path "secret/data/app/locked" { capabilities = ["deny"] }
"#;

#[tokio::test]
async fn policy_crud_and_enforcement() {
    let s = dev().await;
    let (status, body) = s
        .call(
            "PUT",
            "sys/policies/acl/app",
            Some(json!({"policy": APP_POLICY})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = s.call("GET", "sys/policies/acl/app", None).await;
    assert_eq!(body["data"]["policy"], APP_POLICY);
    let (_, body) = s.call("GET", "sys/policy", None).await;
    let names = body["data"]["policies"].as_array().unwrap();
    assert!(
        names.contains(&json!("app"))
            && names.contains(&json!("default"))
            && names.contains(&json!("root"))
    );
    let (_, body) = s.call("LIST", "sys/policies/acl", None).await;
    assert!(
        body["data"]["keys"]
            .as_array()
            .unwrap()
            .contains(&json!("app"))
    );

    let (status, body) = s
        .call(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["app"], "ttl": "1h"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(body["auth"]["policies"], json!(["app", "default"]));
    assert_eq!(body["auth"]["lease_duration"], 3600);

    let (status, _) = s
        .call_as(
            &token,
            "POST",
            "secret/data/app/one",
            Some(json!({"data": {"k": "v"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s.call_as(&token, "GET", "secret/data/app/one", None).await;
    assert_eq!(status, 200);
    let (status, body) = s.call_as(&token, "LIST", "secret/metadata/app", None).await;
    assert_eq!(
        status, 200,
        "list on app/* covers the folder app/, as in Vault: {body}"
    );
    assert_eq!(body["data"]["keys"], json!(["one"]));
    let (status, _) = s.call_as(&token, "LIST", "secret/metadata", None).await;
    assert_eq!(status, 403, "but not its parent");
    let (status, body) = s.call_as(&token, "GET", "secret/data/other", None).await;
    assert_eq!(status, 403);
    assert_eq!(body["errors"][0], "permission denied");
    let (status, _) = s
        .call_as(
            &token,
            "POST",
            "secret/data/app/locked",
            Some(json!({"data": {"k": "v"}})),
        )
        .await;
    assert_eq!(status, 403, "deny beats the glob");
    let (status, _) = s
        .call_as(&token, "DELETE", "secret/data/app/one", None)
        .await;
    assert_eq!(status, 403, "no delete capability");
    let (status, _) = s.call_as(&token, "GET", "sys/mounts", None).await;
    assert_eq!(status, 403);
    let (status, _) = s
        .call_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200, "the default policy allows lookup-self");

    let (_, body) = s
        .call_as(
            &token,
            "POST",
            "sys/capabilities-self",
            Some(json!({"paths": ["secret/data/app/x", "secret/data/zzz"]})),
        )
        .await;
    assert_eq!(
        body["data"]["secret/data/app/x"],
        json!(["create", "read", "update"])
    );
    assert_eq!(body["data"]["secret/data/zzz"], json!(["deny"]));

    // Policy changes apply at once to existing tokens.
    let (status, _) = s.call("DELETE", "sys/policies/acl/app", None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call_as(&token, "GET", "secret/data/app/one", None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn create_versus_update_capability() {
    let s = dev().await;
    let policy = r#"path "secret/data/c/*" { capabilities = ["create"] }"#;
    s.call("PUT", "sys/policy/creator", Some(json!({"policy": policy})))
        .await;
    let token = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"policies": "creator"}),
        )
        .await;
    let (status, _) = s
        .call_as(
            &token,
            "POST",
            "secret/data/c/new",
            Some(json!({"data": {"a": "1"}})),
        )
        .await;
    assert_eq!(status, 200, "create is enough for a new secret");
    let (status, _) = s
        .call_as(
            &token,
            "POST",
            "secret/data/c/new",
            Some(json!({"data": {"a": "2"}})),
        )
        .await;
    assert_eq!(status, 403, "overwriting needs update");
}

#[tokio::test]
async fn bad_policies_are_rejected() {
    let s = dev().await;
    for (name, text) in [
        ("bad", r#"path "secret/*" { capabilities = ["reed"] }"#),
        ("bad", "path {"),
        ("bad", ""),
        ("root", r#"path "*" { capabilities = ["read"] }"#),
    ] {
        let (status, body) = s
            .call(
                "PUT",
                &format!("sys/policies/acl/{name}"),
                Some(json!({"policy": text})),
            )
            .await;
        assert_eq!(status, 400, "{text:?} → {body}");
        assert_errors(&body);
    }
    let (status, _) = s.call("DELETE", "sys/policies/acl/default", None).await;
    assert_eq!(status, 400, "default cannot be deleted");
    let (status, _) = s.call("GET", "sys/policies/acl/never-written", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn token_lifecycle_lookup_renew_revoke() {
    let s = dev().await;
    let (_, body) = s.call("POST", "auth/token/create", Some(json!({"policies": ["default"], "ttl": "10m", "explicit_max_ttl": "20m", "meta": {"team": "a"}}))).await;
    let token = body["auth"]["client_token"].as_str().unwrap().to_owned();
    let accessor = body["auth"]["accessor"].as_str().unwrap().to_owned();
    assert!(token.starts_with("wrd_") && token.len() == 42);

    let (status, body) = s
        .call("POST", "auth/token/lookup", Some(json!({"token": token})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["accessor"], accessor);
    assert_eq!(body["data"]["meta"]["team"], "a");
    assert!(body["data"]["ttl"].as_u64().unwrap() <= 600);
    let (_, body) = s
        .call(
            "POST",
            "auth/token/lookup-accessor",
            Some(json!({"accessor": accessor})),
        )
        .await;
    assert_eq!(
        body["data"]["id"], "",
        "lookup by accessor never reveals the token"
    );

    let (status, body) = s
        .call_as(
            &token,
            "POST",
            "auth/token/renew-self",
            Some(json!({"increment": "1h"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["auth"]["lease_duration"].as_u64().unwrap() <= 1200,
        "capped by explicit_max_ttl"
    );

    let (status, _) = s
        .call(
            "POST",
            "auth/token/revoke-accessor",
            Some(json!({"accessor": accessor})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = s
        .call_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 403);
    let (status, body) = s
        .call("POST", "auth/token/lookup", Some(json!({"token": token})))
        .await;
    assert_eq!(status, 400);
    assert_errors(&body);
}

#[tokio::test]
async fn revoking_a_parent_revokes_its_children_but_not_orphans() {
    let s = dev().await;
    s.call(
        "PUT",
        "sys/policy/p",
        Some(json!({"policy": r#"path "auth/token/create" { capabilities = ["update"] }"#})),
    )
    .await;
    let parent = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"policies": ["p"]}),
        )
        .await;
    let child = s
        .new_token(&parent, "auth/token/create", json!({"policies": ["p"]}))
        .await;
    let grandchild = s.new_token(&child, "auth/token/create", json!({})).await;
    let (_, body) = s
        .call(
            "POST",
            "auth/token/create-orphan",
            Some(json!({"policies": ["default"]})),
        )
        .await;
    let orphan = body["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(body["auth"]["orphan"], true);

    let (status, _) = s
        .call("POST", "auth/token/revoke", Some(json!({"token": parent})))
        .await;
    assert_eq!(status, 204);
    for t in [&parent, &child, &grandchild] {
        let (status, _) = s.call_as(t, "GET", "auth/token/lookup-self", None).await;
        assert_eq!(status, 403);
    }
    let (status, _) = s
        .call_as(&orphan, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn child_policies_must_be_a_subset_of_the_parent() {
    let s = dev().await;
    s.call(
        "PUT",
        "sys/policy/p",
        Some(json!({"policy": r#"path "auth/token/create" { capabilities = ["update"] }"#})),
    )
    .await;
    s.call(
        "PUT",
        "sys/policy/admin",
        Some(json!({"policy": r#"path "*" { capabilities = ["read"] }"#})),
    )
    .await;
    let parent = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"policies": ["p"]}),
        )
        .await;
    let (status, body) = s
        .call_as(
            &parent,
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["admin"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s
        .call_as(
            &parent,
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["root"]})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .call_as(
            &parent,
            "POST",
            "auth/token/create",
            Some(json!({"no_parent": true})),
        )
        .await;
    assert_eq!(status, 400, "only root makes orphans through create");
}

#[tokio::test]
async fn num_uses_is_enforced_even_under_concurrency() {
    let s = std::sync::Arc::new(dev().await);
    let token = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"policies": ["default"], "num_uses": 3}),
        )
        .await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (s, token) = (s.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            s.call_as(&token, "GET", "auth/token/lookup-self", None)
                .await
                .0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "exactly num_uses requests succeed");
}

#[tokio::test]
async fn cidr_bound_tokens_and_bearer_header() {
    let s = dev().await;
    let remote_only = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"token_bound_cidrs": ["10.0.0.0/8"]}),
        )
        .await;
    let (status, _) = s
        .call_as(&remote_only, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 403, "127.0.0.1 is outside 10.0.0.0/8");
    let local = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"token_bound_cidrs": "127.0.0.0/8"}),
        )
        .await;
    let resp = s
        .http
        .get(format!("{}/v1/auth/token/lookup-self", s.url))
        .header("Authorization", format!("Bearer {local}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = s
        .call(
            "POST",
            "auth/token/create",
            Some(json!({"token_bound_cidrs": ["not-a-cidr"]})),
        )
        .await;
    assert_eq!(status, 400);
    assert_errors(&body);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let s = dev().await;
    let token = s
        .new_token(&s.root_token, "auth/token/create", json!({"ttl": "1s"}))
        .await;
    let (status, _) = s
        .call_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _) = s
        .call_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn missing_or_unknown_tokens_are_403() {
    let s = dev().await;
    for t in ["", "wrd_unknown", "hvs.nope"] {
        let (status, body) = s.call_as(t, "GET", "secret/data/x", None).await;
        assert_eq!(status, 403);
        assert_errors(&body);
    }
}

/// Reads `path` as `token` from many tasks at once, spread over the runtime's workers (each
/// of which caches tokens and ACLs on its own), and returns the statuses.
async fn statuses_from_every_worker(
    s: &std::sync::Arc<support::TestServer>,
    token: &str,
    path: &str,
) -> Vec<u16> {
    let reads: Vec<_> = (0..64)
        .map(|_| {
            let (s, token, path) = (s.clone(), token.to_owned(), path.to_owned());
            tokio::spawn(async move { s.call_as(&token, "GET", &path, None).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for read in reads {
        statuses.push(read.await.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_narrowed_policy_and_a_revoked_token_hold_on_every_worker_at_once() {
    let s = std::sync::Arc::new(dev().await);
    s.put_policy("app", APP_POLICY).await;
    let (status, _) = s
        .call(
            "POST",
            "secret/data/app/one",
            Some(json!({"data": {"k": "v"}})),
        )
        .await;
    assert_eq!(status, 200);
    let token = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"policies": ["app"]}),
        )
        .await;

    // Every worker reads the token, its ACL and the secret into its own caches.
    for _ in 0..4 {
        let statuses = statuses_from_every_worker(&s, &token, "secret/data/app/one").await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }

    // The policy no longer grants the read: no worker may still authorise it.
    let narrowed = r#"path "secret/data/app/other" { capabilities = ["read"] }"#;
    s.put_policy("app", narrowed).await;
    let statuses = statuses_from_every_worker(&s, &token, "secret/data/app/one").await;
    assert!(statuses.iter().all(|s| *s == 403), "{statuses:?}");

    // Granted again, then the token is revoked: no worker may still accept it.
    s.put_policy("app", APP_POLICY).await;
    for _ in 0..4 {
        let statuses = statuses_from_every_worker(&s, &token, "secret/data/app/one").await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
    let (status, _) = s
        .call("POST", "auth/token/revoke", Some(json!({"token": token})))
        .await;
    assert_eq!(status, 204);
    let statuses = statuses_from_every_worker(&s, &token, "secret/data/app/one").await;
    assert!(statuses.iter().all(|s| *s == 403), "{statuses:?}");
}
