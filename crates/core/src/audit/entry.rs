//! The audit entries, shaped like Vault's (`time`, `type`, `auth`, `request`, `response`,
//! `error`), with every secret value, token and accessor replaced by its HMAC under the
//! device's own key, as Vault writes them: `hmac-sha256:<hex>`.

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::core::Caller;
use crate::mounts::MountEntry;
use crate::{AuthInfo, CoreError, Operation, Request, Response};

/// A device's HMAC key.
pub(crate) struct Hasher {
    key: Zeroizing<Vec<u8>>,
}

impl Hasher {
    pub(crate) fn new(key: Zeroizing<Vec<u8>>) -> Self {
        Self { key }
    }

    /// `hmac-sha256:<hex>` of `value`.
    pub(crate) fn hash(&self, value: &str) -> String {
        let mac = ward_crypto::hmac_sha256(&self.key, value.as_bytes());
        format!("hmac-sha256:{}", hex::encode(mac))
    }

    /// `value` with every string in it (map values, list items, at any depth) HMAC'd.
    /// Keys, numbers, booleans and nulls are kept: they say what the data is, not what it holds.
    pub(crate) fn hash_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.hash(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.hash_value(v)).collect()),
            Value::Object(map) => Value::Object(self.hash_map(map)),
            other => other.clone(),
        }
    }

    fn hash_map(&self, map: &Map<String, Value>) -> Map<String, Value> {
        map.iter()
            .map(|(k, v)| (k.clone(), self.hash_value(v)))
            .collect()
    }
}

/// What every entry of one request shares, before any HMAC is applied.
pub(crate) struct RequestFacts<'a> {
    pub(crate) id: &'a str,
    pub(crate) request: &'a Request,
    pub(crate) caller: Option<&'a Caller>,
    pub(crate) mount: Option<MountEntry>,
}

fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Read => "read",
        Operation::Write => "update",
        Operation::Patch => "patch",
        Operation::Delete => "delete",
        Operation::List => "list",
    }
}

/// The `auth` and `request` objects of a request's entries, HMAC'd for one device.
pub(crate) fn request_parts(h: &Hasher, facts: &RequestFacts<'_>) -> (Value, Value) {
    let auth = match facts.caller {
        Some(c) => {
            let e = &c.entry;
            json!({
                "client_token": h.hash(&c.token),
                "accessor": h.hash(&e.accessor),
                "display_name": e.display_name,
                "policies": e.policies,
                "token_policies": e.policies,
                "metadata": if e.meta.is_empty() { Value::Null } else { h.hash_value(&Value::Object(e.meta.clone())) },
                "token_type": "service",
                "token_issue_time": rfc3339(e.issue_time),
            })
        }
        None => json!({}),
    };
    let req = facts.request;
    let mut request = json!({
        "id": facts.id,
        "operation": operation_name(req.operation),
        "path": req.path,
        "namespace": {"id": "root"},
    });
    if let Some(obj) = request.as_object_mut() {
        if let Some(m) = &facts.mount {
            obj.insert("mount_point".into(), json!(m.path));
            obj.insert("mount_type".into(), json!(m.mount_type));
            obj.insert("mount_accessor".into(), json!(m.accessor));
        }
        if let Some(c) = facts.caller {
            obj.insert("client_token".into(), json!(h.hash(&c.token)));
            obj.insert(
                "client_token_accessor".into(),
                json!(h.hash(&c.entry.accessor)),
            );
        } else if let Some(t) = req.token.as_deref().filter(|t| !t.is_empty()) {
            // An unknown token is still a credential someone sent: never in clear.
            obj.insert("client_token".into(), json!(h.hash(t)));
        }
        if let Some(ip) = req.remote_addr {
            obj.insert("remote_address".into(), json!(ip.to_string()));
        }
        if !req.data.is_empty() {
            obj.insert("data".into(), Value::Object(h.hash_map(&req.data)));
        }
    }
    (auth, request)
}

/// A serialised request entry.
pub(crate) fn request_entry(
    time: &str,
    auth: &Value,
    request: &Value,
    error: Option<&CoreError>,
) -> Vec<u8> {
    let mut entry = json!({
        "time": time,
        "type": "request",
        "auth": auth,
        "request": request,
    });
    if let (Some(e), Some(obj)) = (error, entry.as_object_mut()) {
        obj.insert("error".into(), json!(e.to_string()));
    }
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// A serialised response entry.
pub(crate) fn response_entry(
    h: &Hasher,
    time: &str,
    auth: &Value,
    request: &Value,
    mount: Option<&MountEntry>,
    result: &Result<Response, CoreError>,
) -> Vec<u8> {
    let mut response = Map::new();
    if let Some(m) = mount {
        response.insert("mount_point".into(), json!(m.path));
        response.insert("mount_type".into(), json!(m.mount_type));
        response.insert("mount_accessor".into(), json!(m.accessor));
    }
    let mut entry = json!({
        "time": time,
        "type": "response",
        "auth": auth,
        "request": request,
    });
    match result {
        Ok(resp) => {
            if let Some(data) = resp.data.as_ref().or(resp.raw.as_ref()) {
                response.insert("data".into(), h.hash_value(data));
            }
            if let Some(a) = &resp.auth {
                response.insert("auth".into(), auth_info(h, a));
            }
            if !resp.warnings.is_empty() {
                response.insert("warnings".into(), json!(resp.warnings));
            }
            if let Some(status) = resp.status {
                response.insert("status".into(), json!(status));
            }
        }
        Err(e) => {
            if let Some(obj) = entry.as_object_mut() {
                obj.insert("error".into(), json!(e.to_string()));
            }
        }
    }
    if let Some(obj) = entry.as_object_mut() {
        obj.insert("response".into(), Value::Object(response));
    }
    serde_json::to_vec(&entry).unwrap_or_default()
}

fn auth_info(h: &Hasher, a: &AuthInfo) -> Value {
    json!({
        "client_token": h.hash(&a.client_token),
        "accessor": h.hash(&a.accessor),
        "policies": a.policies,
        "token_policies": a.policies,
        "metadata": if a.metadata.is_empty() { Value::Null } else { h.hash_value(&Value::Object(a.metadata.clone())) },
        "lease_duration": a.lease_duration,
        "renewable": a.renewable,
        "orphan": a.orphan,
        "num_uses": a.num_uses,
        "token_type": "service",
    })
}

/// Now, as Vault writes times in audit entries.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_hashed_at_any_depth_and_nothing_else_is() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let v = h.hash_value(&json!({"a": "s3cret", "b": [1, "x"], "c": {"d": true, "e": "y"}}));
        let text = v.to_string();
        assert!(!text.contains("s3cret"));
        assert_eq!(v["b"][0], json!(1));
        assert_eq!(v["c"]["d"], json!(true));
        assert_eq!(v["a"], json!(h.hash("s3cret")));
        assert!(v["c"]["e"].as_str().unwrap().starts_with("hmac-sha256:"));
        // RFC 4231-style check that it is a real HMAC-SHA256 under the device key.
        let other = Hasher::new(Zeroizing::new(b"other".to_vec()));
        assert_ne!(h.hash("s3cret"), other.hash("s3cret"));
    }
}
