//! Vault-shaped replies: the envelope, `{"errors": [...]}`, and status codes by error variant.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use ward_core::{AuthInfo, CoreError};

/// `{"errors": [msg]}` with `status`.
pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "errors": [msg.into()] }))).into_response()
}

/// Maps a core error to its status. By variant only; internal details are logged, never sent.
pub(crate) fn core_error(e: CoreError) -> Response {
    match e {
        CoreError::BadRequest(msg) => error(StatusCode::BAD_REQUEST, msg),
        CoreError::PermissionDenied => error(StatusCode::FORBIDDEN, "permission denied"),
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
        CoreError::AuditFailed(msg) => {
            tracing::error!(error = %msg, "request refused: no audit device recorded it");
            error(StatusCode::INTERNAL_SERVER_ERROR, msg)
        }
        other => {
            tracing::error!(error = %other, source = ?std::error::Error::source(&other), "request failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The envelope for a successful core response (204 when it carries nothing), with the
/// request's id.
pub(crate) fn success(resp: ward_core::Response, request_id: &str) -> Response {
    let status = resp
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    if let Some(mut raw) = resp.raw {
        // A raw body shaped like the envelope carries this request's id, the one in the logs,
        // the audit entries and the exported span, not an id of its own.
        if let Some(id) = raw.get_mut("request_id") {
            *id = Value::String(request_id.to_owned());
        }
        return (status, Json(raw)).into_response();
    }
    if resp.data.is_none() && resp.auth.is_none() && resp.warnings.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let envelope = Envelope {
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
            client_token: &a.client_token,
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
