//! Vault-shaped replies: the envelope, `{"errors": [...]}`, and status codes by error variant.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
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
    let body = json!({
        "request_id": request_id,
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": resp.data,
        "wrap_info": null,
        "warnings": if resp.warnings.is_empty() { Value::Null } else { json!(resp.warnings) },
        "auth": resp.auth.map(auth_json),
        "mount_type": "",
    });
    (status, Json(body)).into_response()
}

fn auth_json(a: AuthInfo) -> Value {
    let token_policies: Vec<&String> = a.policies.iter().collect();
    json!({
        "client_token": a.client_token,
        "accessor": a.accessor,
        "policies": a.policies,
        "token_policies": token_policies,
        "metadata": if a.metadata.is_empty() { Value::Null } else { Value::Object(a.metadata) },
        "lease_duration": a.lease_duration,
        "renewable": a.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": a.orphan,
        "mfa_requirement": null,
        "num_uses": a.num_uses,
    })
}
