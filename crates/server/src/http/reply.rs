//! Vault-shaped replies: the envelope, `{"errors": [...]}`, and status codes by error variant.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use ward_core::{AuthInfo, Bare, CoreError, Data, Outcome};

/// `{"errors": [msg]}` with `status`.
pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "errors": [msg.into()] }))).into_response()
}

/// Maps a core error to its status. By variant only; internal details are logged, never sent.
pub(crate) fn core_error(e: CoreError) -> Response {
    match e {
        CoreError::BadRequest(msg) => error(StatusCode::BAD_REQUEST, msg),
        CoreError::PermissionDenied => error(StatusCode::FORBIDDEN, "permission denied"),
        CoreError::Forbidden(msg) => error(StatusCode::FORBIDDEN, msg),
        // Vault answers a plain 404 with an empty error list.
        CoreError::NotFound(msg) if msg.is_empty() => {
            (StatusCode::NOT_FOUND, Json(json!({ "errors": [] }))).into_response()
        }
        CoreError::NotFound(msg) => error(StatusCode::NOT_FOUND, msg),
        CoreError::UnsupportedOperation => {
            error(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation")
        }
        CoreError::Sealed => error(StatusCode::SERVICE_UNAVAILABLE, "Vault is sealed"),
        CoreError::NotInitialized => error(StatusCode::BAD_REQUEST, "Vault is not initialized"),
        CoreError::Snapshot(e) => error(StatusCode::BAD_REQUEST, format!("invalid snapshot: {e}")),
        unavailable @ CoreError::StorageUnavailable(_) => {
            tracing::warn!(error = %unavailable.report(), "request failed: storage unavailable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage is unavailable; try again shortly",
            )
        }
        CoreError::Seal(unreachable @ ward_core::seals::SealError::Unreachable { .. }) => {
            tracing::warn!(error = %CoreError::Seal(unreachable).report(), "request failed: seal unreachable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the seal is unreachable; try again shortly",
            )
        }
        CoreError::Seal(refused @ ward_core::seals::SealError::CredentialsRefused { .. }) => {
            tracing::error!(error = %CoreError::Seal(refused).report(), "request failed: the seal refused the PIN");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the seal refused this server's credentials; fix the seal configuration and \
                 restart the server",
            )
        }
        CoreError::AuditFailed(msg) => {
            tracing::error!(error = %msg, "request refused: no audit device recorded it");
            error(StatusCode::INTERNAL_SERVER_ERROR, msg)
        }
        other => {
            tracing::error!(error = %other.report(), "request failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The reply to a successful core response: Vault's envelope with the request's id (204
/// when it carries nothing), or a bare object. `params` are the request's parameters
/// (`sys/health` takes its status codes from them); `head` leaves the body out.
pub(crate) fn success(
    resp: ward_core::Response,
    request_id: &str,
    params: &Map<String, Value>,
    head: bool,
) -> Response {
    if let Some(bare) = resp.bare {
        let (status, body) = match bare {
            Bare::Snapshot(snapshot) => return snapshot_response(snapshot, head),
            Bare::Health(h) => (super::open::health_status(&h, params), json!(h)),
            Bare::SealStatus(s) => (StatusCode::OK, json!(s)),
            Bare::InitStatus(s) => (StatusCode::OK, json!(s)),
            Bare::Init(i) => (StatusCode::OK, json!(i)),
            Bare::Leader(l) => (StatusCode::OK, json!(l)),
            Bare::Rekey(r) => (StatusCode::OK, json!(r)),
            Bare::Rekeyed(r) => (StatusCode::OK, json!(r)),
            Bare::GenerateRoot(g) => (StatusCode::OK, json!(g)),
        };
        if head {
            return status.into_response();
        }
        return (status, Json(body)).into_response();
    }
    let status = match resp.outcome {
        Outcome::Done => StatusCode::OK,
        // Vault answers 404 for a deleted version, with its metadata.
        Outcome::Gone => StatusCode::NOT_FOUND,
        Outcome::Accepted => StatusCode::ACCEPTED,
        // Vault's rule for batches: 400, unless some items succeeded and the client asked
        // for another status.
        Outcome::BatchFailed { requested } => requested
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::BAD_REQUEST),
    };
    if resp.data.is_none() && resp.auth.is_none() && resp.warnings.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let top_level = match &resp.data {
        Some(Data::Tree(Value::Object(map))) if resp.data_at_top_level => Some(map),
        _ => None,
    };
    let envelope = Envelope {
        top_level,
        request_id,
        lease_id: "",
        renewable: false,
        lease_duration: 0,
        data: resp.data.as_ref(),
        wrap_info: None,
        warnings: (!resp.warnings.is_empty()).then_some(resp.warnings.as_slice()),
        auth: resp.auth.as_ref().map(AuthBlock::from),
    };
    json_response(status, &envelope)
}

/// A snapshot, streamed as it is read from the storage. A failure half-way cuts the body
/// short (the connection is closed without its last chunk), so the client never mistakes a
/// partial snapshot for a whole one; the file would fail `verify` anyway.
fn snapshot_response(snapshot: ward_core::SnapshotStream, head: bool) -> Response {
    if head {
        return StatusCode::OK.into_response();
    }
    let mut response = Response::new(axum::body::Body::new(SnapshotBody(snapshot.chunks)));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    response
}

/// The body of a snapshot response: the core's chunks as they come.
struct SnapshotBody(tokio::sync::mpsc::Receiver<ward_core::CoreResult<Vec<u8>>>);

impl http_body::Body for SnapshotBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        match self.0.poll_recv(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                Poll::Ready(Some(Ok(http_body::Frame::data(bytes.into()))))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::error!(error = %e.report(), "snapshot failed while streaming");
                Poll::Ready(Some(Err(std::io::Error::other("snapshot failed"))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// `body` as JSON with `status`: serialised straight from borrowed fields into one buffer
/// (no intermediate `serde_json::Value`).
fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut buf = Vec::with_capacity(512);
    if serde_json::to_writer(&mut buf, body).is_err() {
        // Only a map with non-string keys fails to serialise; none is built here.
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    }
    let mut response = (status, buf).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Vault's response envelope, in the order Vault writes its fields.
#[derive(Serialize)]
struct Envelope<'a> {
    /// `data`'s fields, repeated at the top level where Vault does so (`sys/mounts`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    top_level: Option<&'a Map<String, Value>>,
    request_id: &'a str,
    lease_id: &'static str,
    renewable: bool,
    lease_duration: u64,
    data: Option<&'a ward_core::Data>,
    wrap_info: Option<()>,
    warnings: Option<&'a [String]>,
    auth: Option<AuthBlock<'a>>,
    // No `mount_type`: OpenBao 2.7.2 leaves it out (Vault 1.15+ sends the engine type;
    // clients ignore it).
}

/// The envelope's `auth` block.
#[derive(Serialize)]
struct AuthBlock<'a> {
    client_token: &'a str,
    accessor: &'a str,
    policies: &'a [String],
    token_policies: &'a [String],
    metadata: Option<&'a Map<String, Value>>,
    lease_duration: u64,
    renewable: bool,
    entity_id: &'static str,
    token_type: &'static str,
    orphan: bool,
    mfa_requirement: Option<()>,
    num_uses: u64,
}

impl<'a> From<&'a AuthInfo> for AuthBlock<'a> {
    fn from(a: &'a AuthInfo) -> Self {
        Self {
            client_token: a.client_token.expose(),
            accessor: &a.accessor,
            policies: &a.policies,
            token_policies: &a.policies,
            metadata: (!a.metadata.is_empty()).then_some(&a.metadata),
            lease_duration: a.lease_duration,
            renewable: a.renewable,
            entity_id: "",
            token_type: "service",
            orphan: a.orphan,
            mfa_requirement: None,
            num_uses: a.num_uses,
        }
    }
}
