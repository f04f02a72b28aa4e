//! The HTTP adapter: Vault's `/v1/` API on axum. It validates what arrives at the edge
//! (size, path, JSON), turns each request into a typed call into the core, and shapes the
//! result as Vault does (`{"errors": [...]}` on failure, the response envelope on success).

mod open;
mod reply;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value};
#[cfg(feature = "otel")]
use tracing::Instrument;
use ward_core::{Core, Operation, Request, Token};

use crate::{request_log, telemetry};

use reply::{core_error, error};

/// Largest request body accepted (Vault's default max_request_size).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest API path accepted, in bytes, after percent-decoding.
pub const MAX_PATH_BYTES: usize = 512;

/// The default of `http_read_header_timeout`, as Vault's.
pub const DEFAULT_HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The default of `http_read_timeout`, as Vault's: the time a client has to send a body.
pub const DEFAULT_BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The default of `max_connections_per_address`.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

/// What every connection and handler shares.
pub struct AppState {
    /// The core.
    pub core: Arc<Core>,
    /// How long a client may take to send a request's head, waiting included (`None`: no
    /// limit). It bounds slow-header clients and idle keep-alive connections alike, since
    /// hyper starts the clock when it waits for the next request.
    pub header_read_timeout: Option<std::time::Duration>,
    /// How long a client may take to send a request's body (`None`: no limit). A body that
    /// has not arrived by then is answered 408 and the connection closed, so a client that
    /// trickles bodies cannot hold connections, and what they carry, for ever.
    pub body_read_timeout: Option<std::time::Duration>,
    /// Most connections one client address may hold open (0: no limit).
    pub max_connections_per_address: usize,
    /// Serve Prometheus metrics at `/metrics` (no token).
    pub prometheus_endpoint: bool,
    /// Answer `/v1/sys/metrics` without a token.
    pub unauthenticated_metrics: bool,
}

impl AppState {
    /// State for `core` with metrics behind a token only. The core's webhooks go out
    /// through this transport's HTTP client.
    pub fn new(core: Arc<Core>) -> Self {
        core.set_webhook_sender(Arc::new(crate::webhook::HttpWebhooks::default()));
        Self {
            core,
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            body_read_timeout: Some(DEFAULT_BODY_READ_TIMEOUT),
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            prometheus_endpoint: false,
            unauthenticated_metrics: false,
        }
    }
}

/// Answers one request from `peer`: Vault's routing is dynamic (mounts), so every path
/// comes here.
pub(crate) async fn handle(
    state: Arc<AppState>,
    peer: SocketAddr,
    req: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let request_id: Arc<str> = new_request_id().into();
    let method = method_label(req.method());
    // The path is decoded and checked once; the route template (the metric label) comes
    // from the decoded path, never the raw one, since a raw path names a secret.
    let path = api_path(req.uri().path());
    let route = route_label(&state.core, req.uri().path(), &path);
    // Every log line of the request carries its id (the id of its audit entries too).
    let served = request_log::scope(
        Arc::clone(&request_id),
        dispatch(&state, peer, req, path, &request_id),
    );
    #[cfg(feature = "otel")]
    let span = request_span(&request_id, method, &route);
    #[cfg(feature = "otel")]
    let mut response = served.instrument(span.clone()).await;
    #[cfg(not(feature = "otel"))]
    let mut response = served.await;
    let status = response.status().as_u16();
    #[cfg(feature = "otel")]
    {
        span.record("status", status);
        if status >= 500 {
            span.record("otel.status_code", "error");
        }
    }
    // Checked first: setting the task-local costs something even when the line is filtered.
    if tracing::enabled!(tracing::Level::DEBUG) {
        request_log::sync_scope(Arc::clone(&request_id), || {
            tracing::debug!(
                method,
                route,
                status,
                elapsed_us = started.elapsed().as_micros() as u64,
                "request"
            );
        });
    }
    telemetry::record_request(&route, method, status, started);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A request id: a version 4 UUID, as Vault's are. An id must be unique, not secret, so
/// its 122 bits are SipHash-1-3, under two keys std seeds from the OS at first use, of
/// (thread number, that thread's counter): no system call and no DRBG per request (aws-lc's
/// mixes in RDRAND on every call), and no counter shared between threads (whose cache line
/// the cores would pass back and forth on every request).
fn new_request_id() -> String {
    use std::cell::Cell;
    use std::hash::BuildHasher as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEYS: std::sync::OnceLock<[std::hash::RandomState; 2]> = std::sync::OnceLock::new();
    static THREADS: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static NEXT: Cell<(u64, u64)> = Cell::new((THREADS.fetch_add(1, Ordering::Relaxed), 0));
    }
    let keys = KEYS.get_or_init(|| [std::hash::RandomState::new(), std::hash::RandomState::new()]);
    let n = NEXT.with(|next| {
        let (thread, count) = next.get();
        next.set((thread, count + 1));
        (thread, count)
    });
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&keys[0].hash_one(n).to_le_bytes());
    bytes[8..].copy_from_slice(&keys[1].hash_one(n).to_le_bytes());
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

/// The span the `otel` feature exports for a request: its fields name the route template,
/// never the raw path, since a path names a secret.
#[cfg(feature = "otel")]
fn request_span(request_id: &str, method: &'static str, route: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method,
        route,
        status = tracing::field::Empty,
        "otel.name" = tracing::field::Empty,
        "otel.kind" = tracing::field::Empty,
        "otel.status_code" = tracing::field::Empty,
    );
    // tracing-opentelemetry reads these as the exported span's name and kind.
    span.record("otel.name", format!("{method} {route}"));
    span.record("otel.kind", "server");
    span
}

async fn dispatch(
    state: &AppState,
    peer: SocketAddr,
    req: axum::extract::Request,
    path: Result<String, PathError>,
    request_id: &str,
) -> Response {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/metrics" && state.prometheus_endpoint && parts.method == Method::GET {
        return metrics_response(state).await;
    }
    let path = match path {
        Ok(p) => p,
        Err(PathError::NotApi) => {
            return error(
                StatusCode::NOT_FOUND,
                "unsupported path: the API lives under /v1/",
            );
        }
        Err(PathError::Invalid(msg)) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let query = parse_query(parts.uri.query());
    let list_query = query
        .get("list")
        .and_then(Value::as_str)
        .is_some_and(|v| v == "true" || v == "1");
    let operation = match (&parts.method, list_query) {
        (&Method::GET | &Method::HEAD, true) => Operation::List,
        (&Method::GET | &Method::HEAD, false) => Operation::Read,
        (&Method::POST | &Method::PUT, _) => Operation::Write,
        (&Method::PATCH, _) => Operation::Patch,
        (&Method::DELETE, _) => Operation::Delete,
        (m, _) if m.as_str() == "LIST" => Operation::List,
        _ => return error(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation"),
    };
    if let Some(refused) = wrapping_refused(&parts.headers) {
        return refused;
    }
    let token = token_from(&parts.headers);
    // A body is read only for a caller who may send one: a client without a valid token
    // cannot make the server hold a megabyte for it. Its request still goes through the core
    // (without a body) to be refused and audited there.
    let may_send = may_send_body(
        state,
        &path,
        &parts.headers,
        token.as_ref().map(ward_core::Token::expose),
        peer,
    )
    .await;
    // A snapshot to restore is streamed to the core, never held whole (nor parsed as JSON).
    let mut streamed = None;
    let body = if operation == Operation::Write && is_snapshot_restore(&path) {
        streamed = Some(stream_body(state, may_send.then_some(body)));
        axum::body::Bytes::new()
    } else if may_send {
        match read_body(state, &parts.headers, body).await {
            Ok(b) => b,
            Err(resp) => return resp,
        }
    } else {
        axum::body::Bytes::new()
    };
    let data = match parse_body(&body) {
        Ok(Some(d)) => d,
        Ok(None) if matches!(operation, Operation::Read | Operation::List) => query,
        Ok(None) => Map::new(),
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let is_metrics = path.trim_matches('/') == "sys/metrics" && operation == Operation::Read;
    if is_metrics {
        if data
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| f != "prometheus")
        {
            return error(
                StatusCode::BAD_REQUEST,
                "unsupported metrics format: use format=prometheus",
            );
        }
        if state.unauthenticated_metrics {
            return metrics_response(state).await;
        }
    }
    let head = parts.method == Method::HEAD;
    // Only `sys/health` reads its parameters back, to choose its status.
    let params = if path.trim_matches('/') == "sys/health" {
        data.clone()
    } else {
        Map::new()
    };
    let request = Request {
        operation,
        path,
        data,
        token,
        remote_addr: Some(peer.ip()),
        mfa: mfa_from(&parts.headers),
        client_certificates: parts
            .extensions
            .get::<crate::PeerCertificates>()
            .map(|chain| std::sync::Arc::clone(&chain.0)),
        body: streamed,
    };
    match state.core.handle_with_id(request, request_id).await {
        Ok(_) if is_metrics => metrics_response(state).await,
        Ok(resp) => reply::success(resp, request_id, &params, head),
        Err(e) => core_error(e),
    }
}

/// Prometheus's text exposition format.
async fn metrics_response(state: &AppState) -> Response {
    let text = telemetry::render(&state.core).await;
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The method as a metric label (a fixed set, whatever clients send).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ if method.as_str() == "LIST" => "LIST",
        _ => "other",
    }
}

/// Why a request path is not an API path.
#[derive(Debug)]
enum PathError {
    /// It is not below `/v1/`.
    NotApi,
    /// It is below `/v1/` but malformed.
    Invalid(&'static str),
}

/// The decoded, validated path below `/v1/`.
fn api_path(uri_path: &str) -> Result<String, PathError> {
    let raw = uri_path.strip_prefix("/v1/").ok_or(PathError::NotApi)?;
    decode_path(raw).map_err(PathError::Invalid)
}

/// The route template of a request, as a metric label.
fn route_label(core: &Core, uri_path: &str, path: &Result<String, PathError>) -> String {
    match path {
        Ok(path) => core.route_template(path),
        Err(_) if uri_path == "/metrics" => "metrics".into(),
        Err(_) => "invalid".into(),
    }
}

/// Percent-decodes and validates the path below `/v1/`.
fn decode_path(raw: &str) -> Result<String, &'static str> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "invalid path: not valid UTF-8")?;
    if decoded.len() > MAX_PATH_BYTES {
        return Err("invalid path: longer than 512 bytes");
    }
    if decoded.chars().any(char::is_control) {
        return Err("invalid path: contains a control character");
    }
    if decoded.split('/').any(|s| s == ".." || s == ".") {
        return Err("invalid path: '.' and '..' segments are not allowed");
    }
    if decoded.trim_end_matches('/').contains("//") {
        return Err("invalid path: empty segment ('//')");
    }
    if decoded.trim_matches('/').is_empty() {
        return Err("missing path below /v1/");
    }
    Ok(decoded.into_owned())
}

fn parse_query(query: Option<&str>) -> Map<String, Value> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

/// Whether to read the body of a request for `path`: always for the endpoints that answer
/// without a token (the open `sys/` routes, the auth methods' logins), and when the request has no body; otherwise only with a token that is
/// valid now (checked without spending one of its uses; the core checks it again).
async fn may_send_body(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    token: Option<&str>,
    peer: SocketAddr,
) -> bool {
    let no_body = headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0")
        || (!headers.contains_key(header::CONTENT_LENGTH)
            && !headers.contains_key(header::TRANSFER_ENCODING));
    if no_body || state.core.answers_without_token(path) {
        return true;
    }
    match token {
        Some(token) => state.core.token_is_valid(token, Some(peer.ip())).await,
        None => false,
    }
}

async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, Response> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body larger than 1 MiB",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let reading = axum::body::to_bytes(body, MAX_BODY_BYTES);
    let read = match state.body_read_timeout {
        Some(limit) => match tokio::time::timeout(limit, reading).await {
            Ok(read) => read,
            Err(_) => {
                let mut resp = error(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time",
                );
                // What is left of the body would be read as the next request.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Err(resp);
            }
        },
        None => reading.await,
    };
    read.map_err(|e| {
        // to_bytes fails on the size limit or on a connection broken mid-body.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if err.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = err.source();
        }
        error(StatusCode::BAD_REQUEST, "failed to read the request body")
    })
}

/// Whether `path` restores a snapshot (ours, or Vault's raft spelling).
fn is_snapshot_restore(path: &str) -> bool {
    matches!(
        path.trim_matches('/'),
        "sys/storage/snapshot"
            | "sys/storage/snapshot-force"
            | "sys/storage/raft/snapshot"
            | "sys/storage/raft/snapshot-force"
    )
}

/// Hands `body` to the core in pieces, as they arrive (none when the caller may not send
/// one). The body read timeout bounds the wait for each piece, not the whole upload: a
/// snapshot may take longer than any one request, a stalled client still may not.
fn stream_body(state: &AppState, body: Option<Body>) -> ward_core::BodyStream {
    use http_body_util::BodyExt;
    let (sender, pieces) = tokio::sync::mpsc::channel(4);
    let idle = state.body_read_timeout;
    if let Some(mut body) = body {
        tokio::spawn(async move {
            loop {
                let next = body.frame();
                let frame = match idle {
                    Some(limit) => match tokio::time::timeout(limit, next).await {
                        Ok(frame) => frame,
                        Err(_) => Some(Err(axum::Error::new("timed out"))),
                    },
                    None => next.await,
                };
                let piece = match frame {
                    None => return,
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => Ok(data.to_vec()),
                        Err(_) => continue,
                    },
                    Some(Err(_)) => Err(std::io::Error::other("request body failed")),
                };
                let failed = piece.is_err();
                if failed {
                    return;
                }
                if sender.send(piece).await.is_err() {
                    // The core refused the snapshot before its end: read the rest (still
                    // under the idle limit) so the client hears why instead of a broken pipe.
                    while let Ok(Some(Ok(_))) = match idle {
                        Some(limit) => tokio::time::timeout(limit, body.frame()).await,
                        None => Ok(body.frame().await),
                    } {}
                    return;
                }
            }
        });
    }
    ward_core::BodyStream::new(pieces)
}

fn parse_body(body: &[u8]) -> Result<Option<Map<String, Value>>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        // `bao write -f` sends `null` for a write without data: OpenBao takes it as `{}`.
        Ok(Value::Null) => Ok(None),
        Ok(_) => Err("request body must be a JSON object".into()),
        Err(e) => Err(format!("failed to parse JSON input: {e}")),
    }
}

fn token_from(headers: &HeaderMap) -> Option<Token> {
    // A typed name: looking a header up by `&str` parses and checks the name every time.
    const VAULT_TOKEN: header::HeaderName = header::HeaderName::from_static("x-vault-token");
    if let Some(t) = headers.get(VAULT_TOKEN).and_then(|v| v.to_str().ok()) {
        return Some(Token::new(t.trim()));
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| Token::new(t.trim()))
}

/// A request asking for Vault's response wrapping (`X-Vault-Wrap-TTL`, which `-wrap-ttl`
/// and `VAULT_WRAP_TTL` send) is refused before anything is done: Ward does not wrap, and
/// answering in clear a client that asked for its secret to be wrapped would hand the secret
/// to whoever relays the reply, where the client expected a single-use token.
fn wrapping_refused(headers: &HeaderMap) -> Option<Response> {
    const VAULT_WRAP_TTL: header::HeaderName = header::HeaderName::from_static("x-vault-wrap-ttl");
    headers.get(VAULT_WRAP_TTL)?;
    Some(error(
        StatusCode::BAD_REQUEST,
        "response wrapping (X-Vault-Wrap-TTL, -wrap-ttl) is not supported by Ward; the request \
         was not carried out, so that nothing asked for wrapped is answered in clear",
    ))
}

/// Vault's `X-Vault-MFA` header: the second factor of a login.
fn mfa_from(headers: &HeaderMap) -> Option<String> {
    const VAULT_MFA: header::HeaderName = header::HeaderName::from_static("x-vault-mfa");
    let value = headers.get(VAULT_MFA)?.to_str().ok()?;
    Some(value.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_validated_after_decoding() {
        assert_eq!(decode_path("secret/data/a%20b").unwrap(), "secret/data/a b");
        assert!(decode_path("secret/%2e%2e/sys").is_err());
        assert!(decode_path("secret/../sys").is_err());
        assert!(decode_path("secret/a%00b").is_err());
        assert!(decode_path("secret/a%0Ab").is_err());
        assert!(decode_path(&"a".repeat(513)).is_err());
        assert!(decode_path("%ff").is_err());
    }

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        // Four threads, each with its own counter starting at zero.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..5_000).map(|_| new_request_id()).collect::<Vec<_>>())
            })
            .collect();
        let ids: std::collections::HashSet<String> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(ids.len(), 20_000);
        for id in ids.iter().take(100) {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(parsed.hyphenated().to_string(), *id);
        }
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert!(parse_body(b"").unwrap().is_none());
        assert!(parse_body(b" null ").unwrap().is_none());
        assert!(parse_body(b"[1]").is_err());
        assert!(parse_body(b"{bad").is_err());
        assert_eq!(parse_body(b"{\"a\":1}").unwrap().unwrap().len(), 1);
    }
}
