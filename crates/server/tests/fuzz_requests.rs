//! A property test over request paths and JSON bodies against a real server, as a hostile
//! client would send them: whatever arrives, the answer is a well-formed HTTP response, never
//! a 5xx, never a dropped connection (a panic in a handler drops it), and every error is in
//! Vault's `{"errors": [...]}` shape.
//!
//! It runs for `WARD_FUZZ_SECONDS` (default 60) and prints how many requests it sent. A
//! failure is shrunk by proptest to a small request and shown with its method, path and body.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

/// Words the engines route on, so that generated paths reach their handlers.
const WORDS: &[&str] = &[
    "secret",
    "transit",
    "team",
    "kv",
    "data",
    "metadata",
    "config",
    "delete",
    "undelete",
    "destroy",
    "keys",
    "k",
    "encrypt",
    "decrypt",
    "rewrap",
    "datakey",
    "plaintext",
    "wrapped",
    "sign",
    "verify",
    "hmac",
    "hash",
    "random",
    "rotate",
    "export",
    "encryption-key",
    "signing-key",
    "backup",
    "restore",
    "trim",
    "sha2-256",
    "sys",
    "auth",
    "token",
    "mounts",
    "tune",
    "policy",
    "policies",
    "acl",
    "default",
    "capabilities",
    "capabilities-self",
    "capabilities-accessor",
    "internal",
    "ui",
    "lookup",
    "lookup-self",
    "lookup-accessor",
    "renew",
    "renew-self",
    "create",
    "create-orphan",
    "accessors",
    "rotation",
    "status",
    "key-status",
    "metrics",
    "health",
    "seal-status",
    "init",
    "leader",
    "mount",
    "a",
    "b",
    "x",
];

/// Body fields the engines read.
const FIELDS: &[&str] = &[
    "data",
    "options",
    "cas",
    "versions",
    "version",
    "max_versions",
    "cas_required",
    "delete_version_after",
    "custom_metadata",
    "rotation_period",
    "type",
    "description",
    "config",
    "plaintext",
    "ciphertext",
    "context",
    "nonce",
    "associated_data",
    "key_version",
    "batch_input",
    "input",
    "signature",
    "hmac",
    "algorithm",
    "hash_algorithm",
    "signature_algorithm",
    "prehashed",
    "marshaling_algorithm",
    "bits",
    "format",
    "bytes",
    "convergent_encryption",
    "derived",
    "exportable",
    "allow_plaintext_backup",
    "deletion_allowed",
    "min_decryption_version",
    "min_encryption_version",
    "auto_rotate_period",
    "policies",
    "policy",
    "ttl",
    "explicit_max_ttl",
    "period",
    "num_uses",
    "renewable",
    "no_parent",
    "no_default_policy",
    "display_name",
    "meta",
    "bound_cidrs",
    "increment",
    "token",
    "accessor",
    "path",
    "paths",
    "default_lease_ttl",
    "max_lease_ttl",
];

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        2 => "[a-zA-Z0-9_.-]{1,12}",
        1 => "\\PC{0,6}",
        1 => Just(String::new()),
        1 => Just("%2e%2e".to_owned()),
        1 => "[a-z]{200,600}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (proptest::collection::vec(segment(), 0..6), any::<bool>()).prop_map(|(segments, trailing)| {
        let mut path = segments.join("/");
        if trailing {
            path.push('/');
        }
        path
    })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u64..5000).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        proptest::sample::select(WORDS).prop_map(|w| json!(w)),
        "\\PC{0,24}".prop_map(Value::String),
        "[A-Za-z0-9+/]{0,40}={0,2}".prop_map(Value::String),
        "vault:v[0-9]{1,3}:[A-Za-z0-9+/]{0,60}".prop_map(Value::String),
        "[0-9]{1,4}[smhd]".prop_map(Value::String),
        proptest::sample::select(
            &[
                "aes256-gcm96",
                "chacha20-poly1305",
                "ed25519",
                "ecdsa-p256",
                "hmac",
                "kv-v2",
                "transit",
                "kv"
            ][..]
        )
        .prop_map(|w| json!(w)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((field(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(FIELDS).prop_map(str::to_owned),
        1 => "[a-z_]{1,10}",
    ]
}

fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        6 => proptest::collection::vec((field(), value()), 0..6).prop_map(|kv| {
            let object: Map<String, Value> = kv.into_iter().collect();
            Some(serde_json::to_vec(&Value::Object(object)).unwrap())
        }),
        1 => value().prop_map(|v| Some(serde_json::to_vec(&v).unwrap())),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Some),
    ]
}

fn method() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&["GET", "LIST", "POST", "PUT", "PATCH", "DELETE", "HEAD"][..])
}

/// Percent-encodes what may not stand in a request target as it is (so that the request
/// reaches Ward's own path decoder), leaving `%` itself alone.
fn encode_target(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_graphic() && byte != b'?' && byte != b'#' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Paths that would stop the fuzzing itself (seal the server, revoke the root token) or
/// reach outside the test (an audit device's file).
fn is_excluded(path: &str) -> bool {
    let p = path.trim_start_matches('/');
    [
        "sys/seal",
        "sys/audit",
        "auth/token/revoke",
        "sys/step-down",
    ]
    .iter()
    .any(|x| p.starts_with(x))
}

/// Sends one request on its own connection; the status and body, or why there was none.
fn send(
    addr: &str,
    token: &str,
    method: &str,
    target: &str,
    body: Option<&[u8]>,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} /v1/{target} HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: {token}\r\n\
         Connection: close\r\n"
    );
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&request).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line (connection dropped?): {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_owned()))
}

#[test]
fn any_request_gets_a_well_formed_answer() {
    let seconds: u64 = std::env::var("WARD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        let s = support::dev().await;
        for (path, body) in [
            ("sys/mounts/transit", json!({"type": "transit"})),
            ("sys/mounts/team/kv", json!({"type": "kv-v2"})),
            ("transit/keys/k", json!({})),
            ("transit/keys/x", json!({"type": "ed25519"})),
            ("transit/keys/a", json!({"type": "hmac"})),
            ("secret/data/a", json!({"data": {"x": "y"}})),
        ] {
            let (status, reply) = s.call("POST", path, Some(body)).await;
            assert!(status < 300, "{path}: {status} {reply}");
        }
        s
    });
    let addr = server.url.trim_start_matches("http://").to_owned();
    let token = server.root_token.clone();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let sent = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    while Instant::now() < deadline {
        let result = runner.run(&(method(), path(), body()), |(method, path, body)| {
            if is_excluded(&path) {
                return Ok(());
            }
            sent.set(sent.get() + 1);
            let target = encode_target(&path);
            let (status, reply) = send(&addr, &token, method, &target, body.as_deref())
                .map_err(TestCaseError::fail)?;
            prop_assert!(status < 500, "{method} {target} → {status} {reply}");
            if status >= 400 && method != "HEAD" {
                let json: Value = serde_json::from_str(&reply).map_err(|e| {
                    TestCaseError::fail(format!(
                        "{method} {target} → {status}, not JSON ({e}): {reply:?}"
                    ))
                })?;
                prop_assert!(
                    json.get("errors").and_then(Value::as_array).is_some(),
                    "{method} {target} → {status}, not Vault's error shape: {reply}"
                );
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
    eprintln!(
        "fuzz_requests: {} requests in {seconds} s, none failed",
        sent.get()
    );
    // The server still serves.
    let (status, _) = runtime.block_on(server.call("GET", "secret/data/a", None));
    assert_eq!(status, 200);
}
