//! The audit entries, shaped like Vault's (`time`, `type`, `auth`, `request`, `response`,
//! `error`), with every secret value, token and accessor replaced by its HMAC under the
//! device's own key, as Vault writes them: `hmac-sha256:<hex>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::core::Caller;
use crate::mounts::MountEntry;
use crate::token::store::TokenEntry;
use crate::{AuthInfo, CoreError, Operation, Request, Response};

/// Callers whose HMAC'd auth block is remembered, per device; past this many the memo
/// starts over.
const CALLER_MEMO_ENTRIES: usize = 4096;

/// A device's HMAC key (prepared once; wiped on drop by aws-lc), with the HMAC'd auth
/// blocks of recent callers: a token's block is the same on every request it makes (two
/// HMACs and a JSON object), so it is made once per token and device.
pub(crate) struct Hasher {
    key: ward_crypto::HmacSha256Key,
    callers: Mutex<CallerMemo>,
}

/// By token hash: the token entry the parts were made from, and the parts.
type CallerMemo = HashMap<String, (Arc<TokenEntry>, Arc<CallerParts>)>;

/// The HMAC'd parts of an entry that depend only on the caller's token.
pub(crate) struct CallerParts {
    /// The `auth` object, serialised.
    auth: String,
    /// `hmac-sha256:` of the token.
    token: String,
    /// `hmac-sha256:` of its accessor.
    accessor: String,
}

impl Hasher {
    pub(crate) fn new(key: Zeroizing<Vec<u8>>) -> Self {
        Self {
            key: ward_crypto::HmacSha256Key::new(&key),
            callers: Mutex::default(),
        }
    }

    /// The caller's HMAC'd parts, remembered while its token entry stays the same one (a
    /// renewed or changed token is a new entry, and gets new parts).
    fn caller_parts(&self, caller: &Caller) -> Arc<CallerParts> {
        let entry = &caller.entry;
        if let Ok(memo) = self.callers.lock()
            && let Some((seen, parts)) = memo.get(&entry.hash)
            && Arc::ptr_eq(seen, entry)
        {
            return Arc::clone(parts);
        }
        let parts = Arc::new(self.make_caller_parts(caller));
        if let Ok(mut memo) = self.callers.lock() {
            if memo.len() >= CALLER_MEMO_ENTRIES {
                memo.clear();
            }
            memo.insert(entry.hash.clone(), (Arc::clone(entry), Arc::clone(&parts)));
        }
        parts
    }

    fn make_caller_parts(&self, caller: &Caller) -> CallerParts {
        let e = &caller.entry;
        let token = self.hash(&caller.token);
        let accessor = self.hash(&e.accessor);
        let auth = json!({
            "client_token": token,
            "accessor": accessor,
            "display_name": e.display_name,
            "policies": e.policies,
            "token_policies": e.policies,
            "metadata": if e.meta.is_empty() { Value::Null } else { self.hash_value(&Value::Object(e.meta.clone())) },
            "token_type": "service",
            "token_issue_time": rfc3339(e.issue_time),
        });
        CallerParts {
            auth: auth.to_string(),
            token,
            accessor,
        }
    }

    /// `hmac-sha256:<hex>` of `value`.
    pub(crate) fn hash(&self, value: &str) -> String {
        let mac = self.key.sign(value.as_bytes());
        let mut out = String::with_capacity(12 + 64);
        out.push_str("hmac-sha256:");
        ward_crypto::push_lower_hex(&mut out, &mac);
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

/// What every entry of one request shares, before any HMAC is applied.
pub(crate) struct RequestFacts<'a> {
    pub(crate) id: &'a str,
    pub(crate) request: &'a Request,
    pub(crate) caller: Option<&'a Caller>,
    pub(crate) mount: Option<&'a Arc<MountEntry>>,
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
    let caller = facts.caller.map(|c| h.caller_parts(c));
    let req = facts.request;
    // An unknown token is still a credential someone sent: never in clear.
    let unknown_token = match &caller {
        Some(_) => None,
        None => req
            .token
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| h.hash(t)),
    };
    let object = RequestObject {
        client_token: caller
            .as_ref()
            .map(|c| c.token.as_str())
            .or(unknown_token.as_deref()),
        client_token_accessor: caller.as_ref().map(|c| c.accessor.as_str()),
        id: facts.id,
        mount: MountFields::of(facts.mount.map(|m| &**m)),
        namespace: Namespace { id: "root" },
        operation: operation_name(req.operation),
        path: &req.path,
        remote_address: req.remote_addr,
        data: (!req.data.is_empty()).then_some(HashedMap(&req.data, h)),
    };
    let request = serde_json::to_string(&object).unwrap_or_else(|_| "{}".into());
    Parts { caller, request }
}

/// The `request` object of an entry, its fields in the order Vault's JSON has them.
#[derive(serde::Serialize)]
struct RequestObject<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token_accessor: Option<&'a str>,
    id: &'a str,
    #[serde(flatten)]
    mount: MountFields<'a>,
    namespace: Namespace,
    operation: &'static str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_address: Option<std::net::IpAddr>,
    /// The request's body, every string HMAC'd.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<HashedMap<'a>>,
}

/// The `response` object of an entry.
#[derive(serde::Serialize)]
struct ResponseObject<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<Value>,
    #[serde(flatten)]
    mount: MountFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [String]>,
    /// The response's data, every string HMAC'd.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Hashed<'a>>,
}

/// The mount fields of a `request` or `response` object (absent for paths outside mounts).
#[derive(serde::Serialize)]
struct MountFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_accessor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_point: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_type: Option<&'a str>,
}

impl<'a> MountFields<'a> {
    fn of(mount: Option<&'a MountEntry>) -> Self {
        Self {
            mount_accessor: mount.map(|m| m.accessor.as_str()),
            mount_point: mount.map(|m| m.path.as_str()),
            mount_type: mount.map(|m| m.mount_type.as_str()),
        }
    }
}

#[derive(serde::Serialize)]
struct Namespace {
    id: &'static str,
}

/// The `auth` and `request` objects of a request, serialised once and shared by its two
/// entries.
pub(crate) struct Parts {
    /// The caller's parts; `None` for a request without a valid token (`auth` is `{}`).
    caller: Option<Arc<CallerParts>>,
    request: String,
}

impl Parts {
    /// `{"time":..,"type":..,"auth":..,"request":..` (the caller closes it).
    fn open(&self, time: &str, kind: &str, extra: usize) -> String {
        let auth = self.caller.as_ref().map_or("{}", |c| c.auth.as_str());
        let mut out =
            String::with_capacity(64 + time.len() + auth.len() + self.request.len() + extra);
        out.push_str("{\"time\":\"");
        out.push_str(time);
        out.push_str("\",\"type\":\"");
        out.push_str(kind);
        out.push_str("\",\"auth\":");
        out.push_str(auth);
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
    let resp = result.as_ref().ok();
    // A KV read carries its data serialised: the audit entry needs the tree, to HMAC it.
    let data = resp.and_then(Response::data_value);
    let object = ResponseObject {
        auth: resp.and_then(|r| r.auth.as_ref()).map(|a| auth_info(h, a)),
        mount: MountFields::of(mount),
        status: resp.and_then(|r| r.status),
        warnings: resp
            .map(|r| r.warnings.as_slice())
            .filter(|w| !w.is_empty()),
        data: resp
            .and_then(|r| data.as_deref().or(r.raw.as_ref()))
            .map(|d| Hashed(d, h)),
    };
    let response = serde_json::to_string(&object).unwrap_or_else(|_| "{}".into());
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
    rfc3339_nanos(chrono::Utc::now())
}

/// `time` in RFC 3339 with nanoseconds (`2026-11-23T17:40:12.000123456Z`), as chrono writes
/// it. Every request writes two of these: each thread formats the date and time of day once
/// per second and appends the nanoseconds.
fn rfc3339_nanos(time: chrono::DateTime<chrono::Utc>) -> String {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let nanos = time.timestamp_subsec_nanos();
    if nanos >= 1_000_000_000 {
        // A leap second: rare enough to format in full.
        return time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    }
    SECOND.with_borrow_mut(|(second, prefix)| {
        if *second != time.timestamp() {
            *second = time.timestamp();
            *prefix = time.format("%Y-%m-%dT%H:%M:%S.").to_string();
        }
        let mut out = String::with_capacity(prefix.len() + 10);
        out.push_str(prefix);
        let mut digits = [b'0'; 9];
        let mut rest = nanos;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend(digits.iter().map(|&d| char::from(d)));
        out.push('Z');
        out
    })
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        use chrono::{DateTime, Utc};
        let times = [
            (1_764_000_000, 0),
            (1_764_000_000, 123_456_789),
            (1_764_000_000, 999_999_999),
            (1_764_000_001, 5),
            (1_764_000_000, 40),
            (0, 1),
            (4_102_444_799, 999_000_000),
        ];
        for (secs, nanos) in times {
            let time = DateTime::<Utc>::from_timestamp(secs, nanos).unwrap();
            assert_eq!(
                rfc3339_nanos(time),
                time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            );
        }
    }

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

    fn caller(display_name: &str) -> Caller {
        let entry: TokenEntry = serde_json::from_value(json!({
            "hash": "h1", "accessor": "acc", "parent": null, "policies": ["default"],
            "meta": {}, "display_name": display_name, "num_uses": 0, "creation_time": 0,
            "ttl": 0, "explicit_max_ttl": 0, "expire_time": null, "issue_time": 0,
            "renewable": false, "bound_cidrs": [], "path": "auth/token/create", "orphan": false,
        }))
        .unwrap();
        Caller {
            entry: Arc::new(entry),
            token: "wrd_token".into(),
        }
    }

    #[test]
    fn a_callers_auth_block_is_made_once_per_token_entry() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let first = caller("first");
        let a = h.caller_parts(&first);
        assert!(Arc::ptr_eq(&a, &h.caller_parts(&first)));
        assert_eq!(a.token, h.hash("wrd_token"));
        assert_eq!(a.accessor, h.hash("acc"));
        assert!(!a.auth.contains("wrd_token") && a.auth.contains("\"first\""));
        // The same token hash with a changed entry (renewed, say) gets a new block.
        let changed = caller("second");
        let b = h.caller_parts(&changed);
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(b.auth.contains("\"second\""));
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
