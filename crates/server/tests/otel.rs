//! OpenTelemetry trace export (feature `otel`): a real `ward server --config` sends its request
//! spans over OTLP/HTTP to a collector listening on 127.0.0.1, with route templates and never a
//! secret's path or value; shutdown flushes the spans still queued.
//!
//! Run: `cargo test -p ward-server --features otel --test otel`.

#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

const MARKER_VALUE: &str = "otel-marker-value-7f3a9c";
const MARKER_NAME: &str = "otel-marker-path-51be";
const SERVICE: &str = "ward-otel-test";

/// What the collector received: each export request's raw body, in order.
type Received = Arc<Mutex<Vec<Bytes>>>;

/// A minimal OTLP/HTTP collector: accepts protobuf trace exports at `/v1/traces`.
async fn collector() -> (String, Received) {
    async fn traces(
        State(received): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, [(header::HeaderName, &'static str); 1]) {
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/x-protobuf"
        );
        received.lock().unwrap().push(body);
        // An empty ExportTraceServiceResponse: everything accepted.
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
        )
    }
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn spans(received: &Received) -> Vec<Span> {
    let mut out = Vec::new();
    for body in received.lock().unwrap().iter() {
        let export = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
        for rs in export.resource_spans {
            let resource = rs.resource.unwrap();
            assert_eq!(
                attr(&resource.attributes, "service.name").as_deref(),
                Some(SERVICE)
            );
            for ss in rs.scope_spans {
                out.extend(ss.spans);
            }
        }
    }
    out
}

/// An attribute as text (integers in decimal).
fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn find(spans: &[Span], request_id: &str) -> Option<Span> {
    spans
        .iter()
        .find(|s| attr(&s.attributes, "id").as_deref() == Some(request_id))
        .cloned()
}

async fn wait_for(received: &Received, request_id: &str, within: Duration) -> Span {
    let deadline = Instant::now() + within;
    loop {
        if let Some(span) = find(&spans(received), request_id) {
            return span;
        }
        assert!(
            Instant::now() < deadline,
            "no span with request id {request_id} exported within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}/v1/{path}", self.url));
        if !self.token.is_empty() {
            req = req.header("X-Vault-Token", &self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_collector_without_secrets() {
    let (collector_url, received) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    // A free port for the server (it binds the address from its configuration file).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("ward.toml");
    std::fs::write(
        &config,
        format!(
            "address = \"127.0.0.1:{port}\"\ndisable_mlock = true\nlog_level = \"warn\"\n\n\
             [storage]\nbackend = \"sqlite\"\npath = \"{}\"\n\n\
             [telemetry]\notlp_endpoint = \"{collector_url}\"\nservice_name = \"{SERVICE}\"\n",
            dir.path().join("ward.db").display()
        ),
    )
    .unwrap();
    let server = std::thread::spawn(move || {
        ward_server::serve(ward_server::ServeOptions {
            config: Some(config),
            ..Default::default()
        })
    });

    let mut client = Client {
        http: reqwest::Client::new(),
        url: format!("http://127.0.0.1:{port}"),
        token: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = client
            .http
            .get(format!("{}/v1/sys/health", client.url))
            .send()
            .await;
        if up.is_ok() {
            break;
        }
        assert!(!server.is_finished(), "the server exited at start-up");
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (status, init) = client
        .call(
            "PUT",
            "sys/init",
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
    assert_eq!(status, 200, "{init}");
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let (status, body) = client
        .call("PUT", "sys/unseal", Some(json!({"key": key})))
        .await;
    assert_eq!((status, body["sealed"].clone()), (200, json!(false)));
    client.token = root.clone();
    let (status, body) = client
        .call("POST", "sys/mounts/secret", Some(json!({"type": "kv-v2"})))
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");

    let path = format!("secret/data/{MARKER_NAME}");
    let (status, body) = client
        .call(
            "PUT",
            &path,
            Some(json!({"data": {"password": MARKER_VALUE}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let write_id = body["request_id"].as_str().unwrap().to_owned();
    let (status, body) = client.call("GET", &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["password"], MARKER_VALUE);
    let read_id = body["request_id"].as_str().unwrap().to_owned();
    let (status, _) = client
        .call("GET", &format!("secret/data/{MARKER_NAME}-missing"), None)
        .await;
    assert_eq!(status, 404);

    // The SDK's batch delay is 5 s.
    let read = wait_for(&received, &read_id, Duration::from_secs(30)).await;
    assert_eq!(read.name, "GET secret/data/:path");
    assert_eq!(
        attr(&read.attributes, "route").as_deref(),
        Some("secret/data/:path")
    );
    assert_eq!(attr(&read.attributes, "method").as_deref(), Some("GET"));
    assert_eq!(attr(&read.attributes, "status").as_deref(), Some("200"));
    assert_eq!(read.kind, 2, "SPAN_KIND_SERVER");
    assert!(read.end_time_unix_nano > read.start_time_unix_nano);
    assert_eq!(read.trace_id.len(), 16);
    let write = find(&spans(&received), &write_id).expect("the write's span");
    assert_eq!(write.name, "PUT secret/data/:path");
    assert_eq!(attr(&write.attributes, "status").as_deref(), Some("200"));
    let all = spans(&received);
    assert!(
        all.iter().any(|s| s.name == "GET secret/data/:path"
            && attr(&s.attributes, "status").as_deref() == Some("404")),
        "the missing secret's span"
    );
    assert!(
        all.iter().any(|s| s.name == "PUT sys/init"),
        "the init span"
    );
    // Log events are not exported: only the span's own fields.
    assert!(all.iter().all(|s| s.events.is_empty()));

    // Shutdown flushes: a request just before SIGTERM is exported without waiting for the
    // batch delay, by the time the server has stopped.
    let (status, body) = client.call("GET", "sys/mounts", None).await;
    assert_eq!(status, 200, "{body}");
    let last_id = body["request_id"].as_str().unwrap().to_owned();
    drop(client);
    let signalled = Instant::now();
    rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
        .unwrap();
    let result = tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    let all = spans(&received);
    let last = find(&all, &last_id).unwrap_or_else(|| {
        let names: Vec<_> = all.iter().map(|s| s.name.clone()).collect();
        panic!("the last request's span was not flushed at shutdown; exported: {names:?}")
    });
    assert_eq!(last.name, "GET sys/mounts");
    assert!(signalled.elapsed() < Duration::from_secs(5));

    // Nothing exported names the secret's path, its value or the root token.
    for body in received.lock().unwrap().iter() {
        for needle in [MARKER_VALUE, MARKER_NAME, root.as_str(), key.as_str()] {
            assert!(
                !body.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "an export contains {needle:?}"
            );
        }
    }
}
