//! The `sys/` endpoints that answer without a token: health, seal-status, init, unseal,
//! leader. They answer with bare objects, not the envelope, as Vault does.

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use ward_api::{HealthResponse, InitResponse, SealStatus};
use ward_core::{CoreError, Operation};

use super::AppState;
use super::reply::{core_error, error};

/// Whether `path` is one of the endpoints that answer without a token.
pub(super) fn answers_without_token(path: &str) -> bool {
    matches!(
        path.trim_matches('/'),
        "sys/health" | "sys/seal-status" | "sys/init" | "sys/unseal" | "sys/leader"
    )
}

/// Handles `path` if it is one of the open endpoints; `None` otherwise.
pub(super) async fn handle(
    state: &AppState,
    path: &str,
    method: &Method,
    op: Operation,
    data: &Map<String, Value>,
) -> Option<Response> {
    let path = path.trim_matches('/');
    let resp = match (path, op) {
        ("sys/health", Operation::Read) => health(state, method, data).await,
        ("sys/seal-status", Operation::Read) => seal_status(state).await,
        ("sys/init", Operation::Read) => match state.core.is_initialized().await {
            Ok(init) => Json(json!({ "initialized": init })).into_response(),
            Err(e) => core_error(e),
        },
        ("sys/init", Operation::Write) => init(state, data).await,
        ("sys/unseal", Operation::Write) => unseal(state, data).await,
        ("sys/leader", Operation::Read) => Json(json!({
            "ha_enabled": false,
            "is_self": true,
            "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby": false,
            "performance_standby_last_remote_wal": 0,
        }))
        .into_response(),
        ("sys/health" | "sys/seal-status" | "sys/init" | "sys/unseal" | "sys/leader", _) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation")
        }
        _ => return None,
    };
    Some(resp)
}

async fn status_body(state: &AppState) -> Result<SealStatus, CoreError> {
    let s = state.core.seal_status().await?;
    let config = state.core.config();
    Ok(SealStatus {
        seal_type: "shamir".into(),
        initialized: s.initialized,
        sealed: s.sealed,
        t: s.threshold.into(),
        n: s.shares.into(),
        progress: s.progress.into(),
        nonce: s.nonce,
        version: ward_core::VERSION.into(),
        build_date: String::new(),
        commit_date: None,
        migration: false,
        recovery_seal: false,
        storage_type: Some(config.storage_type.clone()),
        cluster_name: (!s.sealed).then(|| config.cluster_name.clone()),
        cluster_id: None,
    })
}

async fn seal_status(state: &AppState) -> Response {
    match status_body(state).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => core_error(e),
    }
}

fn code_param(data: &Map<String, Value>, name: &str, default: u16) -> StatusCode {
    data.get(name)
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::from_u16(default).unwrap_or(StatusCode::OK))
}

async fn health(state: &AppState, method: &Method, data: &Map<String, Value>) -> Response {
    let initialized = match state.core.is_initialized().await {
        Ok(i) => i,
        Err(e) => return core_error(e),
    };
    let sealed = state.core.is_sealed();
    let status = if !initialized {
        code_param(data, "uninitcode", 501)
    } else if sealed {
        code_param(data, "sealedcode", 503)
    } else {
        code_param(data, "activecode", 200)
    };
    let config = state.core.config();
    let body = HealthResponse {
        initialized,
        sealed,
        standby: false,
        performance_standby: false,
        replication_performance_mode: "disabled".into(),
        replication_dr_mode: "disabled".into(),
        server_time_utc: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        version: ward_core::VERSION.into(),
        cluster_name: (!sealed).then(|| config.cluster_name.clone()),
        cluster_id: None,
    };
    if method == Method::HEAD {
        return status.into_response();
    }
    (status, Json(body)).into_response()
}

fn small_int(data: &Map<String, Value>, name: &str) -> Result<Option<u8>, String> {
    match data.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|n| u8::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                format!("invalid value for '{name}': expected an integer from 1 to 255")
            }),
    }
}

async fn init(state: &AppState, data: &Map<String, Value>) -> Response {
    let (shares, threshold) = match (
        small_int(data, "secret_shares"),
        small_int(data, "secret_threshold"),
    ) {
        (Ok(s), Ok(t)) => (s.unwrap_or(5), t.unwrap_or(3)),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, m),
    };
    if data.get("pgp_keys").is_some_and(|v| !v.is_null())
        || data
            .get("stored_shares")
            .is_some_and(|v| !v.is_null() && v != 0)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "pgp_keys and stored_shares are not supported",
        );
    }
    match state.core.init(shares, threshold).await {
        Ok(out) => {
            let keys_hex = out.keys.iter().map(|k| hex::encode(k.expose())).collect();
            let keys_b64 = out
                .keys
                .iter()
                .map(|k| base64::engine::general_purpose::STANDARD.encode(k.expose()))
                .collect();
            Json(InitResponse {
                keys: keys_hex,
                keys_base64: keys_b64,
                root_token: out.root_token,
                ..InitResponse::default()
            })
            .into_response()
        }
        Err(e) => core_error(e),
    }
}

async fn unseal(state: &AppState, data: &Map<String, Value>) -> Response {
    let reset = data
        .get("reset")
        .is_some_and(|v| v == &json!(true) || v == &json!("true"));
    let result = if reset {
        state.core.unseal_reset().await
    } else {
        match data.get("key") {
            Some(Value::String(k)) if !k.is_empty() => state.core.unseal(k).await,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "'key' must be specified in request body as JSON, or 'reset' set to true",
                );
            }
        }
    };
    match result {
        Ok(_) => seal_status(state).await,
        Err(e) => core_error(e),
    }
}
