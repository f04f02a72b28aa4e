//! A whole reply ("secret") as Vault's CLI prints it for `read` and `write`: lease, token,
//! wrapping and data rows in one Key/Value table, and `-field` lookups.

use std::io::IsTerminal;

use serde_json::{Value, json};
use ward_api::Response;

use crate::cmd::token::auth_rows;
use crate::error::CliError;
use crate::output::{Format, display_value, human_duration, key_value_table, object_rows};

/// Whether a data key holds a duration in seconds (Vault's `looksLikeDuration`).
fn looks_like_duration(key: &str) -> bool {
    key == "period"
        || key.ends_with("_period")
        || key == "ttl"
        || key.ends_with("_ttl")
        || key == "duration"
        || key.ends_with("_duration")
        || key == "lease_max"
        || key == "ttl_max"
}

/// Whether the reply carries nothing Vault's table would show.
pub(crate) fn is_empty(response: &Response) -> bool {
    response.lease_duration == 0
        && response.auth.is_none()
        && response.wrap_info.is_none()
        && response
            .data
            .as_ref()
            .and_then(Value::as_object)
            .is_none_or(|data| data.is_empty())
}

/// The table of a reply: lease (or `refresh_interval`), token, wrapping and data rows, in
/// Vault's order; empty when there is nothing to show.
pub(crate) fn secret_table(response: &Response) -> String {
    let mut rows = Vec::new();
    if response.lease_duration > 0 {
        let duration = human_duration(response.lease_duration);
        if response.lease_id.is_empty() {
            // A KV-style refresh hint rather than a real lease, as Vault names it.
            rows.push(("refresh_interval".to_owned(), duration));
        } else {
            rows.push(("lease_id".to_owned(), response.lease_id.clone()));
            rows.push(("lease_duration".to_owned(), duration));
            rows.push(("lease_renewable".to_owned(), response.renewable.to_string()));
        }
    }
    if let Some(auth) = &response.auth {
        rows.extend(auth_rows(auth));
    }
    if let Some(wrap) = &response.wrap_info {
        rows.push(("wrapping_token:".to_owned(), wrap.token.clone()));
        rows.push(("wrapping_accessor:".to_owned(), wrap.accessor.clone()));
        rows.push(("wrapping_token_ttl:".to_owned(), human_duration(wrap.ttl)));
        rows.push((
            "wrapping_token_creation_time:".to_owned(),
            wrap.creation_time.clone(),
        ));
        rows.push((
            "wrapping_token_creation_path:".to_owned(),
            wrap.creation_path.clone(),
        ));
        if !wrap.wrapped_accessor.is_empty() {
            rows.push((
                "wrapped_accessor:".to_owned(),
                wrap.wrapped_accessor.clone(),
            ));
        }
    }
    if let Some(data) = &response.data {
        let durations: Vec<&str> = data
            .as_object()
            .map(|map| {
                map.keys()
                    .map(String::as_str)
                    .filter(|k| looks_like_duration(k))
                    .collect()
            })
            .unwrap_or_default();
        rows.extend(object_rows(data, &durations));
    }
    if rows.is_empty() {
        return String::new();
    }
    key_value_table(&rows)
}

/// One field of a reply, as Vault's `RawField` finds it: token fields when the reply
/// issued a token, lease fields, `data` (the nested `data` of a KV v2 read, else all of
/// it), else the data key. `None` when absent or null.
fn raw_field(response: &Response, field: &str) -> Option<Value> {
    let data_key = |key: &str| {
        response
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .filter(|v| !v.is_null())
            .cloned()
    };
    if let Some(auth) = &response.auth {
        return match field {
            "token" => Some(json!(auth.client_token)),
            "token_accessor" => Some(json!(auth.accessor)),
            "token_duration" => Some(json!(auth.lease_duration)),
            "token_renewable" => Some(json!(auth.renewable)),
            "token_policies" => Some(json!(auth.token_policies)),
            "policies" => Some(json!(auth.policies)),
            _ => data_key(field),
        };
    }
    match field {
        "lease_duration" | "refresh_interval" => Some(json!(response.lease_duration)),
        "lease_id" => Some(json!(response.lease_id)),
        "request_id" => Some(json!(response.request_id)),
        "renewable" => Some(json!(response.renewable)),
        "data" => data_key("data").or_else(|| response.data.clone()),
        _ => data_key(field),
    }
}

/// What `-field=NAME` prints: the value as Go's `%v` in table format, as JSON in json
/// format; no newline added when stdout is not a terminal, so `$(ward read -field=...)` is
/// exact. A missing field is an error (exit 1), as in Vault.
pub(crate) fn field_output(
    response: &Response,
    field: &str,
    format: Format,
) -> Result<String, CliError> {
    let value = raw_field(response, field)
        .ok_or_else(|| CliError::Failed(format!("Field \"{field}\" not present in secret")))?;
    let mut text = match format {
        Format::Table => display_value(&value),
        Format::Json => serde_json::to_string_pretty(&value)
            .map_err(|e| CliError::Failed(format!("Error encoding JSON output: {e}")))?,
    };
    if std::io::stdout().is_terminal() {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(data: Value, lease: u64) -> Response {
        Response {
            lease_duration: lease,
            ..Response::with_data(data)
        }
    }

    #[test]
    fn tables_show_refresh_interval_durations_and_na_like_vault() {
        let response = reply(
            json!({"x": "", "y": ["1", "2"], "auto_rotate_period": 0, "ttl": "60",
                   "keys": {"1": 1_795_437_383}}),
            60,
        );
        assert_eq!(
            secret_table(&response),
            "Key                   Value\n\
             ---                   -----\n\
             refresh_interval      1m\n\
             auto_rotate_period    0s\n\
             keys                  map[1:1795437383]\n\
             ttl                   60\n\
             x                     n/a\n\
             y                     [1 2]\n"
        );
        assert!(is_empty(&reply(json!({}), 0)));
        assert!(!is_empty(&reply(json!({}), 60)));
        assert_eq!(secret_table(&Response::default()), "");
    }

    #[test]
    fn fields_are_found_as_vaults_raw_field_does() {
        let kv2 = reply(json!({"data": {"a": "b"}, "metadata": {"version": 1}}), 0);
        assert_eq!(raw_field(&kv2, "data"), Some(json!({"a": "b"})));
        assert_eq!(raw_field(&kv2, "a"), None);
        let flat = reply(json!({"plaintext": "aGk=", "n": null}), 30);
        assert_eq!(
            raw_field(&flat, "data"),
            Some(json!({"plaintext": "aGk=", "n": null}))
        );
        assert_eq!(raw_field(&flat, "plaintext"), Some(json!("aGk=")));
        assert_eq!(raw_field(&flat, "n"), None);
        assert_eq!(raw_field(&flat, "refresh_interval"), Some(json!(30)));
        let error = field_output(&flat, "nope", Format::Table).unwrap_err();
        assert_eq!(error.to_string(), "Field \"nope\" not present in secret");
        assert_eq!(error.exit_code(), 1);
    }
}
