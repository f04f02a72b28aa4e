//! Attacks on request handling and the mount table (issue 22, items 6, 7, 8, 10, 11): each
//! test reproduces what a hostile or unlucky client did to an earlier Ward, against a real
//! server over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{TestServer, assert_errors, dev};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ward_core::CoreConfig;

async fn mount_paths(s: &TestServer) -> Vec<String> {
    let (status, body) = s.call("GET", "sys/mounts", None).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_object().unwrap().keys().cloned().collect()
}

/// A mount's own path (`/v1/secret`, `LIST /v1/secret/`) once panicked the handler and
/// dropped the connection, for any valid token: the existence check ran before
/// authorisation. OpenBao answers 404; so does Ward, in Vault's error shape.
#[tokio::test]
async fn a_mounts_own_path_is_answered_never_a_dropped_connection() {
    let s = dev().await;
    let (status, _) = s
        .call(
            "POST",
            "sys/mounts/transit",
            Some(json!({"type": "transit"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = s
        .call("POST", "sys/mounts/team/kv", Some(json!({"type": "kv-v2"})))
        .await;
    assert_eq!(status, 204);
    s.put_policy("nothing", r#"path "x/*" { capabilities = ["read"] }"#)
        .await;
    let narrow = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"policies": ["nothing"]}),
        )
        .await;
    for token in [s.root_token.clone(), narrow] {
        for path in [
            "secret", "secret/", "transit", "transit/", "team/kv", "team/kv/",
        ] {
            for method in ["GET", "LIST", "POST", "PUT", "DELETE", "PATCH"] {
                let (status, body) = s.call_as(&token, method, path, Some(json!({}))).await;
                assert!(
                    (400..500).contains(&status),
                    "{method} {path} → {status} {body}"
                );
                assert_errors(&body);
            }
        }
    }
    // What the root token gets for the KV mount's own path is OpenBao's 404.
    let (status, body) = s.call("GET", "secret", None).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("Invalid path for a versioned K/V secrets engine"),
        "{body}"
    );
}

/// `bao write -f transit/keys/k` sends the body `null`: OpenBao takes it as `{}`.
#[tokio::test]
async fn a_null_body_is_an_empty_object() {
    let s = dev().await;
    let (status, _) = s
        .call(
            "POST",
            "sys/mounts/transit",
            Some(json!({"type": "transit"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = s.raw("POST", "/v1/transit/keys/k", b"null".to_vec()).await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, body) = s
        .raw("POST", "/v1/transit/keys/k/rotate", b" null\n".to_vec())
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, body) = s.call("GET", "transit/keys/k", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["latest_version"], 2);
    // Other bodies that are not objects stay refused.
    for bad in [&b"[null]"[..], b"1", b"\"x\"", b"true"] {
        let (status, body) = s.raw("POST", "/v1/transit/keys/k2", bad.to_vec()).await;
        assert_eq!(status, 400, "{body}");
        assert_errors(&body);
    }
}

/// 20 concurrent enables of different paths once all answered 204 while only 3–4 mounts
/// existed, and what memory showed diverged from what storage kept.
#[tokio::test]
async fn concurrent_enables_all_land_and_survive_a_restart() {
    let s = dev().await;
    let mut calls = Vec::new();
    for i in 0..20 {
        let (url, token, http) = (s.url.clone(), s.root_token.clone(), s.http.clone());
        calls.push(tokio::spawn(async move {
            http.post(format!("{url}/v1/sys/mounts/race{i}"))
                .header("X-Vault-Token", token)
                .json(&json!({"type": "kv-v2"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), 204);
    }
    for i in 0..20 {
        let (status, body) = s
            .call(
                "POST",
                &format!("race{i}/data/x"),
                Some(json!({"data": {"i": i}})),
            )
            .await;
        assert_eq!(status, 200, "race{i}: {body}");
    }
    let listed = mount_paths(&s).await;
    for i in 0..20 {
        assert!(listed.contains(&format!("race{i}/")), "race{i}/ lost");
    }
    let s = support::restart(s, CoreConfig::default()).await;
    for i in 0..20 {
        let (status, body) = s.call("GET", &format!("race{i}/data/x"), None).await;
        assert_eq!(status, 200, "race{i} after the restart: {body}");
        assert_eq!(body["data"]["data"]["i"], i);
    }
}

/// Enabling one path from many clients at once: exactly one succeeds, the others are told
/// the path is in use.
#[tokio::test]
async fn concurrent_enables_of_one_path_succeed_once() {
    let s = dev().await;
    let mut calls = Vec::new();
    for _ in 0..12 {
        let (url, token, http) = (s.url.clone(), s.root_token.clone(), s.http.clone());
        calls.push(tokio::spawn(async move {
            let resp = http
                .post(format!("{url}/v1/sys/mounts/same"))
                .header("X-Vault-Token", token)
                .json(&json!({"type": "kv-v2"}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }));
    }
    let mut created = 0;
    for call in calls {
        match call.await.unwrap() {
            (204, _) => created += 1,
            (400, body) => assert!(body.contains("already in use"), "{body}"),
            (status, body) => panic!("{status} {body}"),
        }
    }
    assert_eq!(created, 1);
}

/// A disable racing enables once left the disabled mount listed with its key destroyed
/// (every later use a 500).
#[tokio::test]
async fn a_disabled_mount_stays_disabled_under_concurrent_enables() {
    let s = dev().await;
    for round in 0..5 {
        let victim = format!("victim{round}");
        let (status, _) = s
            .call(
                "POST",
                &format!("sys/mounts/{victim}"),
                Some(json!({"type": "kv-v2"})),
            )
            .await;
        assert_eq!(status, 204);
        let mut calls = Vec::new();
        for i in 0..6 {
            let (url, token, http) = (s.url.clone(), s.root_token.clone(), s.http.clone());
            let (method, path, body) = if i == 3 {
                (
                    reqwest::Method::DELETE,
                    format!("sys/mounts/{victim}"),
                    None,
                )
            } else {
                (
                    reqwest::Method::POST,
                    format!("sys/mounts/other{round}x{i}"),
                    Some(json!({"type": "kv-v2"})),
                )
            };
            calls.push(tokio::spawn(async move {
                let mut req = http
                    .request(method, format!("{url}/v1/{path}"))
                    .header("X-Vault-Token", token);
                if let Some(b) = body {
                    req = req.json(&b);
                }
                req.send().await.unwrap().status().as_u16()
            }));
        }
        for call in calls {
            assert_eq!(call.await.unwrap(), 204);
        }
        let listed = mount_paths(&s).await;
        assert!(!listed.contains(&format!("{victim}/")), "{victim}/ is back");
        let (status, body) = s.call("GET", &format!("{victim}/data/x"), None).await;
        assert_eq!(status, 404, "{body}");
    }
}

/// Sends `head` on a fresh connection, then the body a byte every `gap`, and returns how
/// long the server kept the connection open (it should cut it, or answer 408).
async fn trickle_body(s: &TestServer, gap: Duration, budget: Duration) -> (Duration, String) {
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/secret/data/slow HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"data\":",
        s.root_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    while started.elapsed() < budget {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(gap, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {
                if stream.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

/// Headers fast, then the body a byte at a time: such connections once stayed open for
/// ever, each holding what it had sent. The body has a deadline (`http_read_timeout`).
#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off() {
    let s = support::dev_with_transport(|state| {
        state.body_read_timeout = Some(Duration::from_secs(2));
    })
    .await;
    let (held, answer) =
        trickle_body(&s, Duration::from_millis(300), Duration::from_secs(10)).await;
    assert!(held < Duration::from_secs(5), "held for {held:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"errors\""), "{answer}");
    // The server still serves.
    let (status, body) = s.call("GET", "sys/health", None).await;
    assert_eq!(status, 200, "{body}");
}

/// Over-long request lines and header sections get Vault's JSON error shape, not an empty
/// body.
#[tokio::test]
async fn oversized_heads_get_json_errors() {
    let s = dev().await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    for (head, want) in [
        (
            format!(
                "GET /v1/secret/data/{} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
                "a".repeat(70_000)
            ),
            "414",
        ),
        (
            format!(
                "GET /v1/sys/health HTTP/1.1\r\nHost: {addr}\r\nX-Big: {}\r\n\r\n",
                "b".repeat(1024 * 1024)
            ),
            "431",
        ),
        (
            format!(
                "GET /v1/sys/health HTTP/1.1\r\nHost: {addr}\r\n{}\r\n",
                (0..200)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            ),
            "431",
        ),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(head.as_bytes()).await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {want}")),
            "wanted {want}: {text}"
        );
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        assert_errors(&json);
    }
}

/// One address cannot hold every connection: past `max_connections_per_address`, a new
/// connection is answered 429 in Vault's shape and closed; a freed place is usable again.
#[tokio::test]
async fn connections_per_address_are_limited() {
    let s = support::dev_with_transport(|state| state.max_connections_per_address = 4).await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // Half a head: the connection stays open, counted.
        stream
            .write_all(b"GET /v1/sys/health HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    let json: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_errors(&json);
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = s.call("GET", "sys/health", None).await;
    assert_eq!(status, 200, "{body}");
}

/// A request with a body and no valid token is refused without waiting for the body: a
/// client without a token cannot make the server hold a megabyte for it.
#[tokio::test]
async fn a_body_is_not_read_for_an_invalid_token() {
    let s = dev().await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    for token_header in ["X-Vault-Token: not-a-token\r\n", ""] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /v1/secret/data/x HTTP/1.1\r\nHost: {addr}\r\n{token_header}\
             Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
            .await
            .expect("the server waited for the body")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    }
    // With a valid token the body is read and the write lands.
    let (status, body) = s
        .call("POST", "secret/data/x", Some(json!({"data": {"a": "b"}})))
        .await;
    assert_eq!(status, 200, "{body}");
}
