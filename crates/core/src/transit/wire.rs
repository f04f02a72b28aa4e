//! Vault's wire conventions for transit: `vault:v<N>:` prefixes, base64 fields, batches.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::params::Params;
use crate::{CoreError, CoreResult, Outcome, Response};

/// `vault:v<version>:<body>`.
pub(crate) fn versioned(version: u32, body: &str) -> String {
    format!("vault:v{version}:{body}")
}

/// The reply `{"<field>":"<text>"}`, with `"key_version":<N>` when given, for a `text` of
/// base64 and the `vault:v<N>:` prefix, in which JSON escapes nothing. It is written out as it
/// is rather than built as a tree and serialised, which for a 1 KiB message went through
/// 1.4 KiB of base64 a character at a time: most of what a transit reply cost.
pub(crate) fn base64_reply(
    field: &str,
    text: &str,
    key_version: Option<u32>,
) -> CoreResult<Response> {
    debug_assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=:".contains(&b))
    );
    let json = match key_version {
        Some(version) => format!(r#"{{"{field}":"{text}","key_version":{version}}}"#),
        None => format!(r#"{{"{field}":"{text}"}}"#),
    };
    let raw = serde_json::value::RawValue::from_string(json).map_err(CoreError::Encode)?;
    Ok(Response::data_json(raw))
}

/// Splits `vault:v<N>:<body>` into (N, body); `what` names the value in errors.
pub(crate) fn parse_versioned<'a>(text: &'a str, what: &str) -> CoreResult<(u32, &'a str)> {
    let rest = text
        .strip_prefix("vault:")
        .ok_or_else(|| CoreError::bad(format!("invalid {what}: no prefix")))?;
    let (version, body) = rest
        .split_once(':')
        .ok_or_else(|| CoreError::bad(format!("invalid {what}: wrong number of fields")))?;
    let version = version
        .strip_prefix('v')
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            CoreError::bad(format!(
                "invalid {what}: version number could not be decoded"
            ))
        })?;
    Ok((version, body))
}

/// A base64 field decoded into a wiping buffer; `None` when absent.
pub(crate) fn b64(p: &Params<'_>, name: &str) -> CoreResult<Option<Zeroizing<Vec<u8>>>> {
    match p.str(name)? {
        None => Ok(None),
        Some(s) => B64
            .decode(s.trim())
            .map(|v| Some(Zeroizing::new(v)))
            .map_err(|_| CoreError::bad(format!("failed to base64-decode {name}"))),
    }
}

/// The message of an error for a batch item (internal details stay in the log).
pub(crate) fn item_error(e: &CoreError) -> String {
    match e {
        CoreError::BadRequest(m) => m.clone(),
        CoreError::NotFound(m) if !m.is_empty() => m.clone(),
        other => {
            tracing::error!(error = %other.report(), "transit batch item failed");
            "internal error".to_owned()
        }
    }
}

/// Most items a `batch_input` may hold: a request's work stays bounded (split larger jobs
/// into several requests). RSA keys take fewer (see `pool::MAX_RSA_BATCH_ITEMS`).
pub(crate) const MAX_BATCH_ITEMS: usize = 1000;

/// The items of `batch_input`, or `None` for a single-item request.
pub(crate) fn batch_items<'a>(p: &Params<'a>) -> CoreResult<Option<Vec<&'a Map<String, Value>>>> {
    let invalid = || CoreError::bad("invalid value for 'batch_input': expected a list of objects");
    match p.0.get("batch_input") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(CoreError::bad("missing batch input to process"));
            }
            if items.len() > MAX_BATCH_ITEMS {
                return Err(CoreError::bad(format!(
                    "batch_input has {} items; at most {MAX_BATCH_ITEMS} are accepted per request",
                    items.len()
                )));
            }
            items
                .iter()
                .map(|v| v.as_object().ok_or_else(invalid))
                .collect::<CoreResult<Vec<_>>>()
                .map(Some)
        }
        Some(_) => Err(invalid()),
    }
}

/// A batch item's fields, falling back to the request's top-level fields (Vault lets a
/// batch share `context` and options given once at the top).
pub(crate) fn merged(top: &Map<String, Value>, item: &Map<String, Value>) -> Map<String, Value> {
    // Copy the top level without `batch_input`: cloning it per item would be quadratic.
    let mut out: Map<String, Value> = top
        .iter()
        .filter(|(k, _)| k.as_str() != "batch_input")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in item {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// The item's `reference`, echoed in its result ("" when it has none).
fn reference(item: &Map<String, Value>) -> Value {
    item.get("reference").cloned().unwrap_or_else(|| json!(""))
}

/// `batch_results` of a batch request: `one` runs on each item's fields merged over the
/// request's; a success is the object `one` returned, a failure `{"error": ...}` plus the
/// fields of `failed` (Vault fills some, such as decrypt's empty plaintext); both carry the
/// item's `reference`. Returns the results and how many items failed.
pub(crate) fn batch_results(
    p: &Params<'_>,
    items: &[&Map<String, Value>],
    failed: Value,
    mut one: impl FnMut(&Params<'_>) -> CoreResult<Value>,
) -> (Vec<Value>, usize) {
    let mut failures = 0;
    let results = items
        .iter()
        .map(|item| {
            let fields = merged(p.0, item);
            let mut result = match one(&Params(&fields)) {
                Ok(done) => done,
                Err(e) => {
                    failures += 1;
                    let mut result = failed.clone();
                    result["error"] = json!(item_error(&e));
                    result
                }
            };
            result["reference"] = reference(item);
            result
        })
        .collect();
    (results, failures)
}

/// The reply to a batch: 400 when any item failed (Vault's rule), unless some succeeded
/// and the request names a `partial_failure_response_code`.
pub(crate) fn batch_response(
    p: &Params<'_>,
    results: Vec<Value>,
    failures: usize,
) -> CoreResult<Response> {
    let total = results.len();
    let mut resp = Response::data(json!({ "batch_results": results }));
    if failures > 0 {
        let mut requested = None;
        if failures < total
            && let Some(code) = p.u64("partial_failure_response_code")?
        {
            match u16::try_from(code) {
                Ok(code) if (1..=599).contains(&code) => requested = Some(code),
                _ => resp.warnings.push(
                    "invalid HTTP status code given for partial_failure_response_code".into(),
                ),
            }
        }
        resp.outcome = Outcome::BatchFailed { requested };
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_values_parse_strictly() {
        assert_eq!(
            parse_versioned("vault:v3:abc", "ciphertext").unwrap(),
            (3, "abc")
        );
        assert_eq!(versioned(3, "abc"), "vault:v3:abc");
        for bad in [
            "",
            "abc",
            "vault:",
            "vault:v3",
            "vault:3:x",
            "vault:v0:x",
            "vault:vx:x",
            "vault:v-1:x",
        ] {
            assert!(parse_versioned(bad, "ciphertext").is_err(), "{bad}");
        }
        let e = parse_versioned("nope", "hmac").unwrap_err().to_string();
        assert_eq!(e, "invalid hmac: no prefix");
    }
}
