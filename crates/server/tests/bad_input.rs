//! Every client mistake gets a 4xx in Vault's `{"errors": [...]}` shape and changes nothing.
//! Never a 500, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{assert_errors, dev};

#[tokio::test]
async fn malformed_bodies_are_400() {
    let s = dev().await;
    for body in [
        &b"{not json"[..],
        b"[1,2]",
        b"\"str\"",
        b"{\"data\": ",
        b"\xff\xfe",
    ] {
        let (status, resp) = s.raw("POST", "/v1/secret/data/x", body.to_vec()).await;
        assert_eq!(status, 400, "{:?} → {resp}", String::from_utf8_lossy(body));
        assert_errors(&resp);
    }
    for body in [
        json!({"data": "string"}),
        json!({"data": [1]}),
        json!({}),
        json!({"data": {"a": 1}, "options": "x"}),
        json!({"data": {"a": 1}, "options": {"cas": "x"}}),
    ] {
        let (status, resp) = s.call("POST", "secret/data/x", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {resp}");
        assert_errors(&resp);
    }
    let (status, _) = s.call("GET", "secret/metadata/x", None).await;
    assert_eq!(status, 404, "nothing was written by the rejected requests");
}

#[tokio::test]
async fn wrong_types_are_400() {
    let s = dev().await;
    for (path, body) in [
        ("auth/token/create", json!({"ttl": "forever"})),
        ("auth/token/create", json!({"policies": {"a": 1}})),
        ("auth/token/create", json!({"num_uses": -1})),
        ("auth/token/create", json!({"renewable": "maybe"})),
        ("sys/mounts/newkv", json!({"type": 7})),
        ("sys/mounts/newkv", json!({"type": "kv-v2", "config": "x"})),
        ("secret/metadata/x", json!({"max_versions": "ten"})),
        ("secret/config", json!({"cas_required": [true]})),
    ] {
        let (status, resp) = s.call("POST", path, Some(body.clone())).await;
        assert_eq!(status, 400, "{path} {body} → {resp}");
        assert_errors(&resp);
    }
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let s = dev().await;
    let big = format!(
        "{{\"data\": {{\"v\": \"{}\"}}}}",
        "a".repeat(1024 * 1024 + 10)
    );
    let (status, resp) = s.raw("POST", "/v1/secret/data/big", big.into_bytes()).await;
    assert_eq!(status, 413);
    assert_errors(&resp);
    let (status, _) = s.call("GET", "secret/data/big", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_paths_are_400() {
    let s = dev().await;
    let long = format!("/v1/secret/data/{}", "a".repeat(600));
    for path in [
        "/v1/secret/data/../../sys/seal",
        "/v1/secret/data/%2e%2e/x",
        "/v1/secret/data/a%00b",
        "/v1/secret/data/a%0Db",
        "/v1/secret/data/a%1Fb",
        long.as_str(),
        "/v1/secret/data/%C3%28",
    ] {
        let (status, resp) = s.raw_request_line("GET", path).await;
        assert_eq!(status, 400, "{path} → {status} {resp}");
        assert_errors(&resp);
    }
    let (status, resp) = s.raw("GET", "/v1/secret/data/a%00b", Vec::new()).await;
    assert_eq!(status, 400, "{resp}");
    let (status, _) = s.raw("GET", "/not-v1", Vec::new()).await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call(
            "POST",
            "secret/data//double",
            Some(json!({"data": {"a": "b"}})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn unknown_mounts_routes_and_methods() {
    let s = dev().await;
    let (status, resp) = s.call("GET", "nomount/data/x", None).await;
    assert_eq!(status, 404);
    assert_errors(&resp);
    let (status, resp) = s.call("GET", "secret/bogus/x", None).await;
    assert_eq!(status, 404);
    assert_errors(&resp);
    let (status, resp) = s.raw("TRACE", "/v1/secret/data/x", Vec::new()).await;
    assert_eq!(status, 405);
    assert_errors(&resp);
    let (status, resp) = s.call("DELETE", "sys/seal-status", None).await;
    assert_eq!(status, 405);
    assert_errors(&resp);
    // A metadata PATCH changes metadata that exists (404 otherwise, as OpenBao).
    let body = Some(json!({"max_versions": 2}));
    assert_eq!(s.call("POST", "secret/metadata/x", body).await.0, 204);
    let (status, _) = s
        .call(
            "PATCH",
            "secret/metadata/x",
            Some(json!({"max_versions": 1})),
        )
        .await;
    assert_eq!(status, 204, "metadata PATCH is supported");
    let (status, resp) = s.call("LIST", "secret/data/x", None).await;
    assert_eq!(status, 405);
    assert_errors(&resp);
}

#[tokio::test]
async fn mount_management_errors() {
    let s = dev().await;
    for (path, body) in [
        ("sys/mounts/sys", json!({"type": "kv-v2"})),
        ("sys/mounts/secret", json!({"type": "kv-v2"})),
        ("sys/mounts/secret/nested", json!({"type": "kv-v2"})),
        (
            "sys/mounts/kv3",
            json!({"type": "kv", "options": {"version": "3"}}),
        ),
        ("sys/mounts/what", json!({"type": "nosuchengine"})),
        ("sys/mounts/what", json!({})),
    ] {
        let (status, resp) = s.call("POST", path, Some(body.clone())).await;
        assert_eq!(status, 400, "{path} {body} → {resp}");
        assert_errors(&resp);
    }
    let (status, _) = s
        .call(
            "POST",
            "sys/mounts/team/kv",
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, body) = s.call("GET", "sys/mounts", None).await;
    assert_eq!(body["team/kv/"]["options"]["version"], "2");
    assert_eq!(body["data"]["secret/"]["type"], "kv");
    s.call("POST", "team/kv/data/a", Some(json!({"data": {"x": "y"}})))
        .await;
    let (status, _) = s.call("DELETE", "sys/mounts/team/kv", None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call("GET", "team/kv/data/a", None).await;
    assert_eq!(status, 404);
    // Re-mounting the same path starts empty: the old data was shredded with its key.
    s.call("POST", "sys/mounts/team/kv", Some(json!({"type": "kv-v2"})))
        .await;
    let (status, _) = s.call("GET", "team/kv/data/a", None).await;
    assert_eq!(status, 404);
}
