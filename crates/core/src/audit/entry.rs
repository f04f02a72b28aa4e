//! The audit entries, shaped like Vault's (`time`, `type`, `auth`, `request`, `response`,
//! `error`), with every secret value, token and accessor replaced by its HMAC under the
//! device's own key, as Vault writes them: `hmac-sha256:<hex>`.

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::core::Caller;
use crate::mounts::MountEntry;
use crate::{AuthInfo, CoreError, Operation, Request, Response};

/// A device's HMAC key (prepared once; wiped on drop by aws-lc).
pub(crate) struct Hasher {
    key: ward_crypto::HmacSha256Key,
}

impl Hasher {
    pub(crate) fn new(key: Zeroizing<Vec<u8>>) -> Self {
        Self {
            key: ward_crypto::HmacSha256Key::new(&key),
        }
    }

    /// `hmac-sha256:<hex>` of `value`.
    pub(crate) fn hash(&self, value: &str) -> String {
        let mac = self.key.sign(value.as_bytes());
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(12 + 64);
        out.push_str("hmac-sha256:");
        for b in mac {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
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

/// Serialises a value with every string HMAC'd, as [`Hasher::hash_value`] would, without
/// building the hashed copy first.
struct Hashed<'a>(&'a Value, &'a Hasher);

impl serde::Serialize for Hashed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self.0 {
            Value::String(v) => s.serialize_str(&self.1.hash(v)),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Hashed(item, self.1))?;
                }
                seq.end()
            }
            Value::Object(map) => HashedMap(map, self.1).serialize(s),
            other => other.serialize(s),
        }
    }
}

/// A map serialised with every string in its values HMAC'd.
struct HashedMap<'a>(&'a Map<String, Value>, &'a Hasher);

impl serde::Serialize for HashedMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut out = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            out.serialize_entry(k, &Hashed(v, self.1))?;
        }
        out.end()
    }
}

/// `object` (serialised JSON object) with `"key": <value>` added at the end, the value
/// serialised with its strings HMAC'd.
fn with_hashed(mut object: String, key: &str, value: &impl serde::Serialize) -> String {
    let hashed = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    object.pop();
    if object.len() > 1 {
        object.push(',');
    }
    object.push('"');
    object.push_str(key);
    object.push_str("\":");
    object.push_str(&hashed);
    object.push('}');
    object
}

/// What every entry of one request shares, before any HMAC is applied.
pub(crate) struct RequestFacts<'a> {
    pub(crate) id: &'a str,
    pub(crate) request: &'a Request,
    pub(crate) caller: Option<&'a Caller>,
    pub(crate) mount: Option<std::sync::Arc<MountEntry>>,
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
pub(crate) fn request_parts(h: &Hasher, facts: &RequestFacts<'_>) -> Parts {
    let hashed = facts
        .caller
        .map(|c| (h.hash(&c.token), h.hash(&c.entry.accessor)));
    let auth = match (facts.caller, &hashed) {
        (Some(c), Some((token, accessor))) => {
            let e = &c.entry;
            json!({
                "client_token": token,
                "accessor": accessor,
                "display_name": e.display_name,
                "policies": e.policies,
                "token_policies": e.policies,
                "metadata": if e.meta.is_empty() { Value::Null } else { h.hash_value(&Value::Object(e.meta.clone())) },
                "token_type": "service",
                "token_issue_time": rfc3339(e.issue_time),
            })
        }
        _ => json!({}),
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
        if let Some((token, accessor)) = hashed {
            obj.insert("client_token".into(), json!(token));
            obj.insert("client_token_accessor".into(), json!(accessor));
        } else if let Some(t) = req.token.as_deref().filter(|t| !t.is_empty()) {
            // An unknown token is still a credential someone sent: never in clear.
            obj.insert("client_token".into(), json!(h.hash(t)));
        }
        if let Some(ip) = req.remote_addr {
            obj.insert("remote_address".into(), json!(ip.to_string()));
        }
    }
    let request = if req.data.is_empty() {
        request.to_string()
    } else {
        with_hashed(request.to_string(), "data", &HashedMap(&req.data, h))
    };
    Parts {
        auth: auth.to_string(),
        request,
    }
}

/// The `auth` and `request` objects of a request, serialised once and shared by its two
/// entries.
pub(crate) struct Parts {
    auth: String,
    request: String,
}

impl Parts {
    /// `{"time":..,"type":..,"auth":..,"request":..` (the caller closes it).
    fn open(&self, time: &str, kind: &str, extra: usize) -> String {
        let mut out =
            String::with_capacity(64 + time.len() + self.auth.len() + self.request.len() + extra);
        out.push_str("{\"time\":\"");
        out.push_str(time);
        out.push_str("\",\"type\":\"");
        out.push_str(kind);
        out.push_str("\",\"auth\":");
        out.push_str(&self.auth);
        out.push_str(",\"request\":");
        out.push_str(&self.request);
        out
    }
}

fn push_error(out: &mut String, error: &CoreError) {
    out.push_str(",\"error\":");
    out.push_str(&Value::String(error.to_string()).to_string());
}

/// A serialised request entry.
pub(crate) fn request_entry(time: &str, parts: &Parts, error: Option<&CoreError>) -> Vec<u8> {
    let mut out = parts.open(time, "request", 0);
    if let Some(e) = error {
        push_error(&mut out, e);
    }
    out.push('}');
    out.into_bytes()
}

/// A serialised response entry.
pub(crate) fn response_entry(
    h: &Hasher,
    time: &str,
    parts: &Parts,
    mount: Option<&MountEntry>,
    result: &Result<Response, CoreError>,
) -> Vec<u8> {
    let mut response = Map::new();
    let mut data = None;
    if let Some(m) = mount {
        response.insert("mount_point".into(), json!(m.path));
        response.insert("mount_type".into(), json!(m.mount_type));
        response.insert("mount_accessor".into(), json!(m.accessor));
    }
    if let Ok(resp) = result {
        data = resp.data.as_ref().or(resp.raw.as_ref());
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
    let mut response = Value::Object(response).to_string();
    if let Some(data) = data {
        response = with_hashed(response, "data", &Hashed(data, h));
    }
    let mut out = parts.open(time, "response", response.len() + 16);
    out.push_str(",\"response\":");
    out.push_str(&response);
    if let Err(e) = result {
        push_error(&mut out, e);
    }
    out.push('}');
    out.into_bytes()
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

    #[test]
    fn streamed_hashing_matches_the_hashed_copy() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let v = json!({"a": "s3cret", "b": [1, "x", {"c": "y"}], "n": null});
        let streamed: Value =
            serde_json::from_str(&with_hashed("{}".into(), "data", &Hashed(&v, &h))).unwrap();
        assert_eq!(streamed, json!({"data": h.hash_value(&v)}));
        let map = v.as_object().unwrap();
        let added: Value = serde_json::from_str(&with_hashed(
            "{\"k\":1}".into(),
            "data",
            &HashedMap(map, &h),
        ))
        .unwrap();
        assert_eq!(added, json!({"k": 1, "data": h.hash_value(&v)}));
    }
}
