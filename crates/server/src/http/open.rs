//! The status of Vault's bare replies: `sys/health` chooses its status from the server's
//! state and the request's `*code` parameters, so that load balancers can ask for what they
//! need.

use axum::http::StatusCode;
use serde_json::{Map, Value};
use ward_api::HealthResponse;

/// The status of a `sys/health` reply, as Vault chooses it.
pub(super) fn health_status(health: &HealthResponse, params: &Map<String, Value>) -> StatusCode {
    if !health.initialized {
        code_param(params, "uninitcode", 501)
    } else if health.sealed {
        code_param(params, "sealedcode", 503)
    } else if health.standby && !flag_param(params, "standbyok") {
        code_param(params, "standbycode", 429)
    } else {
        code_param(params, "activecode", 200)
    }
}

fn code_param(params: &Map<String, Value>, name: &str, default: u16) -> StatusCode {
    params
        .get(name)
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::from_u16(default).unwrap_or(StatusCode::OK))
}

/// A boolean query parameter (`?standbyok=true`, or present without a value).
fn flag_param(params: &Map<String, Value>, name: &str) -> bool {
    match params.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.is_empty() || s.parse::<bool>().unwrap_or(false),
        _ => false,
    }
}
