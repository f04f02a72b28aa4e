//! Helpers shared by the transit test files: a dev server with transit mounted, and calls
//! that insist on Vault's status codes.

#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::support::{self, TestServer};

pub(crate) async fn transit() -> TestServer {
    let s = support::dev().await;
    let (status, body) = s
        .call(
            "POST",
            "sys/mounts/transit",
            Some(json!({"type": "transit"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    s
}

pub(crate) fn b64(s: &str) -> String {
    B64.encode(s)
}

pub(crate) async fn create(s: &TestServer, name: &str, body: Value) -> Value {
    let (status, resp) = s
        .call("POST", &format!("transit/keys/{name}"), Some(body))
        .await;
    assert_eq!(status, 200, "{resp}");
    resp["data"].clone()
}

pub(crate) async fn ok(s: &TestServer, path: &str, body: Value) -> Value {
    let (status, resp) = s.call("POST", &format!("transit/{path}"), Some(body)).await;
    assert_eq!(status, 200, "{path}: {resp}");
    resp["data"].clone()
}

pub(crate) async fn bad(s: &TestServer, path: &str, body: Value) -> String {
    let (status, resp) = s.call("POST", &format!("transit/{path}"), Some(body)).await;
    assert_eq!(status, 400, "{path}: {resp}");
    support::assert_errors(&resp);
    resp["errors"][0].as_str().unwrap_or_default().to_owned()
}
