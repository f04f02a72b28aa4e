//! Attacks on the token lifecycle (issue 22, items 3, 4, 5 and the `num_uses` half of 10),
//! each against a real server: a revoked token must stay revoked whatever races its
//! revocation, a limited-use token must serve exactly its uses, and no token may outlive its
//! maximum TTL or its parent. The expected answers were taken from OpenBao 2.7.2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{TestServer, assert_errors, dev, dev_with};

/// Reads KV and manages its own children.
const WORKER: &str = r#"
path "secret/data/*" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["create", "update"] }
"#;

async fn server() -> Arc<TestServer> {
    let s = Arc::new(dev().await);
    s.put_policy("worker", WORKER).await;
    let (status, reply) = s
        .call(
            "POST",
            "secret/data/app",
            Some(json!({ "data": { "k": "v" } })),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    s
}

async fn token(s: &TestServer, parent: &str, body: Value) -> String {
    let mut body = body;
    body["policies"] = json!(["worker"]);
    s.new_token(parent, "auth/token/create", body).await
}

async fn status_of(s: &TestServer, token: &str, method: &str, path: &str) -> u16 {
    s.call_as(token, method, path, None).await.0
}

/// Whether `token` still authenticates or is still known to the token store.
async fn is_alive(s: &TestServer, token: &str) -> bool {
    let read = status_of(s, token, "GET", "secret/data/app").await;
    let (lookup, _) = s
        .call("POST", "auth/token/lookup", Some(json!({ "token": token })))
        .await;
    read == 200 || lookup == 200
}

async fn renew_self(s: &TestServer, token: &str, increment: &str) -> (u16, Value) {
    s.call_as(
        token,
        "POST",
        "auth/token/renew-self",
        Some(json!({ "increment": increment })),
    )
    .await
}

/// Item 3: three loops renew a token while root revokes it. Before the fix, the renewal's
/// write-back recreated the entry after the revocation deleted it, in most runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_racing_renew_never_brings_a_token_back() {
    let s = server().await;
    let started = Instant::now();
    let mut runs = 0;
    while runs < 30 && started.elapsed() < Duration::from_secs(6) {
        runs += 1;
        let victim = token(&s, &s.root_token, json!({ "ttl": "1h" })).await;
        let renewers: Vec<_> = (0..3)
            .map(|_| {
                let (s, victim) = (s.clone(), victim.clone());
                tokio::spawn(async move {
                    for _ in 0..200 {
                        if renew_self(&s, &victim, "1h").await.0 != 200 {
                            break;
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (status, reply) = s
            .call(
                "POST",
                "auth/token/revoke",
                Some(json!({ "token": victim })),
            )
            .await;
        assert_eq!(status, 204, "{reply}");
        for r in renewers {
            r.await.unwrap();
        }
        assert!(
            !is_alive(&s, &victim).await,
            "run {runs}: the revoked token came back"
        );
    }
}

/// Item 3: children minted while their parent is being revoked do not survive it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_child_minted_during_its_parents_revocation_does_not_survive() {
    let s = server().await;
    let started = Instant::now();
    let mut runs = 0;
    while runs < 20 && started.elapsed() < Duration::from_secs(6) {
        runs += 1;
        let parent = token(&s, &s.root_token, json!({ "ttl": "1h" })).await;
        let minters: Vec<_> = (0..3)
            .map(|_| {
                let (s, parent) = (s.clone(), parent.clone());
                tokio::spawn(async move {
                    let mut children = Vec::new();
                    for _ in 0..100 {
                        let (status, reply) = s
                            .call_as(
                                &parent,
                                "POST",
                                "auth/token/create",
                                Some(json!({ "policies": ["worker"] })),
                            )
                            .await;
                        if status != 200 {
                            break;
                        }
                        children.push(reply["auth"]["client_token"].as_str().unwrap().to_owned());
                    }
                    children
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (status, _) = s
            .call(
                "POST",
                "auth/token/revoke",
                Some(json!({ "token": parent })),
            )
            .await;
        assert_eq!(status, 204);
        for m in minters {
            for child in m.await.unwrap() {
                assert!(
                    !is_alive(&s, &child).await,
                    "run {runs}: a child outlived its revoked parent"
                );
            }
        }
    }
}

/// Item 4: a `num_uses=10` token used by many clients at once, half of them renewing it,
/// is let in exactly 10 times (before the fix, renewals wrote back the count they had read
/// and it served dozens). A renewal let in while concurrent requests spend the last uses
/// finds the token gone (400 "token not found"): it was let in, and it must not revive it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn num_uses_is_spent_exactly_under_concurrent_reads_and_renews() {
    let s = server().await;
    for run in 0..5 {
        let limited = token(&s, &s.root_token, json!({ "ttl": "1h", "num_uses": 10 })).await;
        let clients: Vec<_> = (0..40)
            .map(|i| {
                let (s, limited) = (s.clone(), limited.clone());
                tokio::spawn(async move {
                    let mut replies = Vec::new();
                    for _ in 0..3 {
                        replies.push(if i % 2 == 0 {
                            renew_self(&s, &limited, "1h").await
                        } else {
                            s.call_as(&limited, "GET", "secret/data/app", None).await
                        });
                    }
                    replies
                })
            })
            .collect();
        let mut let_in = 0;
        for c in clients {
            for (status, reply) in c.await.unwrap() {
                match status {
                    200 => let_in += 1,
                    400 if reply["errors"][0] == "token not found" => let_in += 1,
                    403 => {}
                    _ => panic!("run {run}: {status} {reply}"),
                }
            }
        }
        assert_eq!(
            let_in, 10,
            "run {run}: a num_uses=10 token was let in {let_in} times"
        );
        assert!(!is_alive(&s, &limited).await);
    }
}

/// Item 10: 40 parallel clients on a limited-use token are served or refused by the uses
/// left, never by contention ("in use by too many concurrent requests").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_parallel_clients_are_served_or_refused_by_the_uses_left() {
    let s = server().await;
    for run in 0..5 {
        let limited = token(&s, &s.root_token, json!({ "num_uses": 25 })).await;
        let clients: Vec<_> = (0..40)
            .map(|_| {
                let (s, limited) = (s.clone(), limited.clone());
                tokio::spawn(
                    async move { s.call_as(&limited, "GET", "secret/data/app", None).await },
                )
            })
            .collect();
        let mut statuses = Vec::new();
        for c in clients {
            let (status, reply) = c.await.unwrap();
            assert!(
                status == 200 || status == 403,
                "run {run}: {status} {reply}"
            );
            statuses.push(status);
        }
        let served = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(served, 25, "run {run}: {statuses:?}");
    }
}

/// Item 4: renewing a used-up token fails and does not revive it (OpenBao: 400 "token not
/// found" when the renewal spends the last use).
#[tokio::test]
async fn a_used_up_token_is_not_revived_by_renewal() {
    let s = server().await;
    let once = token(&s, &s.root_token, json!({ "ttl": "1h", "num_uses": 1 })).await;
    let (status, reply) = renew_self(&s, &once, "1h").await;
    assert_eq!(status, 400, "{reply}");
    assert_errors(&reply);
    assert!(
        !is_alive(&s, &once).await,
        "renew-self revived a used-up token"
    );

    let twice = token(&s, &s.root_token, json!({ "ttl": "1h", "num_uses": 2 })).await;
    assert_eq!(status_of(&s, &twice, "GET", "secret/data/app").await, 200);
    let (status, reply) = renew_self(&s, &twice, "1h").await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        !is_alive(&s, &twice).await,
        "renew-self revived a used-up token"
    );

    // Renewed by another token, a used-up token stays dead too.
    let used = token(&s, &s.root_token, json!({ "ttl": "1h", "num_uses": 1 })).await;
    assert_eq!(status_of(&s, &used, "GET", "secret/data/app").await, 200);
    let (status, reply) = s
        .call(
            "POST",
            "auth/token/renew",
            Some(json!({ "token": used, "increment": "1h" })),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(!is_alive(&s, &used).await);
}

/// Item 4: a limited-use token cannot create children (OpenBao's answers), so no unlimited
/// child outlives it.
#[tokio::test]
async fn a_limited_use_token_cannot_create_children() {
    let s = server().await;
    let accessors = |s: Arc<TestServer>| async move {
        let (_, reply) = s.call("LIST", "auth/token/accessors", None).await;
        reply["data"]["keys"].as_array().unwrap().len()
    };
    let before = accessors(s.clone()).await;
    let once = token(&s, &s.root_token, json!({ "num_uses": 1 })).await;
    let (status, reply) = s
        .call_as(&once, "POST", "auth/token/create", Some(json!({})))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_errors(&reply);
    let thrice = token(&s, &s.root_token, json!({ "num_uses": 3 })).await;
    let (status, reply) = s
        .call_as(&thrice, "POST", "auth/token/create", Some(json!({})))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        reply["errors"][0],
        "restricted use token cannot generate child tokens"
    );
    // `once` is gone; `thrice` has one use left; no child exists.
    assert_eq!(accessors(s.clone()).await, before + 1);
}

/// Item 4: a revoked or expired token cannot be renewed.
#[tokio::test]
async fn renewing_a_dead_token_fails() {
    let s = server().await;
    let revoked = token(&s, &s.root_token, json!({ "ttl": "1h" })).await;
    let (status, _) = s
        .call(
            "POST",
            "auth/token/revoke",
            Some(json!({ "token": revoked })),
        )
        .await;
    assert_eq!(status, 204);
    let expired = token(&s, &s.root_token, json!({ "ttl": "1s" })).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for dead in [&revoked, &expired] {
        let (status, reply) = s
            .call(
                "POST",
                "auth/token/renew",
                Some(json!({ "token": dead, "increment": "1h" })),
            )
            .await;
        assert_eq!(status, 400, "{reply}");
        let (status, _) = renew_self(&s, dead, "1h").await;
        assert_eq!(status, 403);
        assert!(!is_alive(&s, dead).await);
    }
}

/// Item 5: renewal never extends a token past its maximum TTL counted from its creation
/// (before the fix, each renewal granted the whole maximum again).
#[tokio::test]
async fn renewal_is_capped_by_the_max_ttl_from_creation() {
    let s = dev_with(ward_core::CoreConfig {
        max_token_ttl: 6,
        ..ward_core::CoreConfig::default()
    })
    .await;
    let t = s
        .new_token(&s.root_token, "auth/token/create", json!({ "ttl": "5s" }))
        .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, reply) = renew_self(&s, &t, "1h").await;
    assert_eq!(status, 200, "{reply}");
    let lease = reply["auth"]["lease_duration"].as_u64().unwrap();
    assert!(lease <= 4, "renewed to {lease}s, past creation + max TTL");

    let explicit = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({ "ttl": "1h", "explicit_max_ttl": "5s" }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, reply) = renew_self(&s, &explicit, "1h").await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["auth"]["lease_duration"].as_u64().unwrap() <= 4,
        "{reply}"
    );
}

/// Item 5: a child of a short-lived parent cannot renew itself past the parent's expiry,
/// and stops working when the parent expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_cannot_outlive_its_parent_by_renewing() {
    let s = server().await;
    let parent = token(&s, &s.root_token, json!({ "ttl": "3s" })).await;
    let child = token(&s, &parent, json!({ "ttl": "1h" })).await;
    let (status, reply) = renew_self(&s, &child, "1h").await;
    assert_eq!(status, 200, "{reply}");
    let lease = reply["auth"]["lease_duration"].as_u64().unwrap();
    assert!(
        lease <= 3,
        "child renewed to {lease}s past its parent's expiry"
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(status_of(&s, &child, "GET", "secret/data/app").await, 403);
    assert!(!is_alive(&s, &child).await);
}

/// Item 5: expiry is a revocation. A parent that shortens its own life by renewing with a
/// small increment takes its descendants with it when it expires: they are refused on use at
/// once, and the expiry sweep removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_parent_expires_its_descendants_are_revoked() {
    let s = server().await;
    let parent = token(&s, &s.root_token, json!({ "ttl": "1h" })).await;
    let child = token(&s, &parent, json!({ "ttl": "1h" })).await;
    let grandchild = token(&s, &child, json!({ "ttl": "1h" })).await;
    let (_, reply) = s
        .call(
            "POST",
            "auth/token/lookup",
            Some(json!({ "token": grandchild })),
        )
        .await;
    let accessor = reply["data"]["accessor"].as_str().unwrap().to_owned();
    let (status, reply) = renew_self(&s, &parent, "1s").await;
    assert_eq!(status, 200, "{reply}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for t in [&parent, &child, &grandchild] {
        assert_eq!(status_of(&s, t, "GET", "secret/data/app").await, 403);
    }
    // The sweep deletes the whole tree (the scheduler looks every second).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = s
            .call(
                "POST",
                "auth/token/lookup-accessor",
                Some(json!({ "accessor": accessor })),
            )
            .await;
        if status != 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the expired parent's grandchild is still stored"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!is_alive(&s, &child).await);
}
