//! Initialisation, unsealing and sealing over HTTP, with Vault's status codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{assert_errors, dev, fresh};

#[tokio::test]
async fn init_unseal_seal_cycle() {
    let s = fresh().await;
    let (status, body) = s.call("GET", "sys/init", None).await;
    assert_eq!((status, body["initialized"].clone()), (200, json!(false)));
    let (status, _) = s.call("GET", "sys/health", None).await;
    assert_eq!(status, 501, "uninitialised health is 501");
    let (status, body) = s.call("GET", "sys/seal-status", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["initialized"], false);

    let (status, init) = s
        .call(
            "PUT",
            "sys/init",
            Some(json!({"secret_shares": 5, "secret_threshold": 3})),
        )
        .await;
    assert_eq!(status, 200, "{init}");
    let keys: Vec<String> = serde_json::from_value(init["keys"].clone()).unwrap();
    let keys_b64: Vec<String> = serde_json::from_value(init["keys_base64"].clone()).unwrap();
    assert_eq!((keys.len(), keys_b64.len()), (5, 5));
    let root = init["root_token"].as_str().unwrap().to_owned();
    assert!(root.starts_with("wrd_"));

    let (status, body) = s
        .call(
            "PUT",
            "sys/init",
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
    assert_eq!(status, 400, "second init must fail: {body}");

    let (status, body) = s.call("GET", "sys/seal-status", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["sealed"].clone(), body["t"].clone(), body["n"].clone()),
        (json!(true), json!(3), json!(5))
    );
    let (status, _) = s.call("GET", "sys/health", None).await;
    assert_eq!(status, 503);
    let (status, _) = s.call("GET", "sys/health?sealedcode=200", None).await;
    assert_eq!(status, 200, "sealedcode overrides the status");
    let (status, body) = s.call_as(&root, "GET", "sys/mounts", None).await;
    assert_eq!(
        status, 503,
        "sealed servers serve nothing but status: {body}"
    );
    assert_errors(&body);

    // Two shares (one hex, one base64) are progress, not enough.
    let (_, body) = s
        .call("PUT", "sys/unseal", Some(json!({"key": keys[0]})))
        .await;
    assert_eq!(
        (body["sealed"].clone(), body["progress"].clone()),
        (json!(true), json!(1))
    );
    // The same share again does not count twice.
    let (_, body) = s
        .call("PUT", "sys/unseal", Some(json!({"key": keys_b64[0]})))
        .await;
    assert_eq!(body["progress"], 1);
    let (_, body) = s
        .call("PUT", "sys/unseal", Some(json!({"key": keys_b64[1]})))
        .await;
    assert_eq!(body["progress"], 2);
    // Reset discards progress.
    let (_, body) = s
        .call("PUT", "sys/unseal", Some(json!({"reset": true})))
        .await;
    assert_eq!(body["progress"], 0);
    for k in &keys[2..5] {
        s.call("PUT", "sys/unseal", Some(json!({"key": k}))).await;
    }
    let (_, body) = s.call("GET", "sys/seal-status", None).await;
    assert_eq!(body["sealed"], false);
    // Once unsealed, the cluster's name and id (a UUID, the same in both replies), as Vault.
    let cluster_id = body["cluster_id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&cluster_id).is_ok(), "{body}");
    assert_eq!(body["cluster_name"], "ward-cluster");
    let (status, body) = s.call("GET", "sys/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["sealed"], false);
    assert_eq!(body["performance_standby"], false);
    assert_eq!(body["cluster_id"], cluster_id.as_str());

    let (status, _) = s.call_as(&root, "GET", "sys/mounts", None).await;
    assert_eq!(status, 200);
    let (status, _) = s.call_as(&root, "PUT", "sys/seal", None).await;
    assert_eq!(status, 204);
    let (_, body) = s.call("GET", "sys/seal-status", None).await;
    assert_eq!(body["sealed"], true);
    assert!(body.get("cluster_id").is_none(), "{body}");
    let (status, _) = s
        .call_as(&root, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 503);
    // Kept in storage: the next unseal shows the same id.
    for k in &keys[..3] {
        s.call("PUT", "sys/unseal", Some(json!({"key": k}))).await;
    }
    let (_, body) = s.call("GET", "sys/seal-status", None).await;
    assert_eq!(body["cluster_id"], cluster_id.as_str());
}

#[tokio::test]
async fn wrong_and_foreign_shares_are_rejected_without_progress() {
    let a = fresh().await;
    let b = fresh().await;
    let (_, init_a) = a
        .call(
            "PUT",
            "sys/init",
            Some(json!({"secret_shares": 3, "secret_threshold": 2})),
        )
        .await;
    let (_, init_b) = b
        .call(
            "PUT",
            "sys/init",
            Some(json!({"secret_shares": 3, "secret_threshold": 2})),
        )
        .await;
    let key_a = |i: usize| init_a["keys"][i].as_str().unwrap().to_owned();
    let key_b = |i: usize| init_b["keys"][i].as_str().unwrap().to_owned();

    // Garbage, wrong encodings and a flipped byte: 400, progress untouched.
    let mut flipped = hex::decode(key_a(0)).unwrap();
    flipped[5] ^= 0x01;
    for bad in [
        json!("not-a-key"),
        json!(""),
        json!(12),
        json!(hex::encode(flipped)),
    ] {
        let (status, body) = a
            .call("PUT", "sys/unseal", Some(json!({ "key": bad })))
            .await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_errors(&body);
    }
    // A share from another server's init is rejected too: no mixed set can form.
    let (_, body) = a
        .call("PUT", "sys/unseal", Some(json!({"key": key_a(0)})))
        .await;
    assert_eq!(body["progress"], 1);
    let (status, _) = a
        .call("PUT", "sys/unseal", Some(json!({"key": key_b(1)})))
        .await;
    assert_eq!(status, 400);
    let (_, body) = a.call("GET", "sys/seal-status", None).await;
    assert_eq!(
        (body["sealed"].clone(), body["progress"].clone()),
        (json!(true), json!(1))
    );
    // The right second share unseals.
    let (_, body) = a
        .call("PUT", "sys/unseal", Some(json!({"key": key_a(2)})))
        .await;
    assert_eq!(body["sealed"], false);
}

#[tokio::test]
async fn init_parameters_are_validated() {
    let s = fresh().await;
    for bad in [
        json!({"secret_shares": 3, "secret_threshold": 4}),
        json!({"secret_shares": 3, "secret_threshold": 1}),
        json!({"secret_shares": 0, "secret_threshold": 0}),
        json!({"secret_shares": 300, "secret_threshold": 2}),
        json!({"secret_shares": "many", "secret_threshold": 2}),
    ] {
        let (status, body) = s.call("PUT", "sys/init", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_errors(&body);
    }
    let (_, body) = s.call("GET", "sys/init", None).await;
    assert_eq!(
        body["initialized"], false,
        "a rejected init changes nothing"
    );
    let (status, _) = s
        .call("PUT", "sys/unseal", Some(json!({"key": "abcd"})))
        .await;
    assert_eq!(status, 400, "unseal before init");
}

#[tokio::test]
async fn keyring_rotation_keeps_old_entries_readable() {
    let s = dev().await;
    s.call(
        "POST",
        "secret/data/before",
        Some(json!({"data": {"v": "old"}})),
    )
    .await;
    let (status, body) = s.call("GET", "sys/key-status", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["term"], 1);
    let (status, _) = s.call("PUT", "sys/rotate", None).await;
    assert_eq!(status, 204);
    let (_, body) = s.call("GET", "sys/key-status", None).await;
    assert_eq!(body["data"]["term"], 2);
    s.call(
        "POST",
        "secret/data/after",
        Some(json!({"data": {"v": "new"}})),
    )
    .await;
    // Seal and unseal: the rotated keyring was persisted and both terms still decrypt.
    s.call("PUT", "sys/seal", None).await;
    let (_, body) = s
        .call("PUT", "sys/unseal", Some(json!({"key": s.unseal_key})))
        .await;
    assert_eq!(body["sealed"], false);
    let (_, body) = s.call("GET", "secret/data/before", None).await;
    assert_eq!(body["data"]["data"]["v"], "old");
    let (_, body) = s.call("GET", "secret/data/after", None).await;
    assert_eq!(body["data"]["data"]["v"], "new");
    let (_, body) = s.call("GET", "sys/key-status", None).await;
    assert_eq!(body["data"]["term"], 2);
}

#[tokio::test]
async fn health_and_seal_status_have_vault_fields() {
    let s = dev().await;
    let (_, body) = s.call("GET", "sys/seal-status", None).await;
    for field in [
        "type",
        "initialized",
        "sealed",
        "t",
        "n",
        "progress",
        "nonce",
        "version",
        "migration",
        "recovery_seal",
        "storage_type",
    ] {
        assert!(
            body.get(field).is_some(),
            "seal-status lacks {field}: {body}"
        );
    }
    let (_, body) = s.call("GET", "sys/health", None).await;
    for field in [
        "initialized",
        "sealed",
        "standby",
        "performance_standby",
        "replication_dr_mode",
        "server_time_utc",
        "version",
    ] {
        assert!(body.get(field).is_some(), "health lacks {field}: {body}");
    }
    assert_eq!(body["standby"], Value::Bool(false));
}
