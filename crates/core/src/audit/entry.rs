//! The audit entries, shaped like Vault's (`time`, `type`, `auth`, `request`, `response`,
//! `error`), with every secret value, token and accessor replaced by its HMAC under the
//! device's own key, as Vault writes them: `hmac-sha256:<hex>`.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::hashed::{Hashed, HashedMap, write_hashed_json};
use crate::core::Caller;
use crate::mounts::MountEntry;
use crate::token::store::TokenEntry;
use crate::{AuthInfo, CoreError, Data, FastMap, Operation, Request, Response};

/// Callers whose HMAC'd auth block is remembered, per device; past this many the memo
/// starts over.
const CALLER_MEMO_ENTRIES: usize = 4096;
/// What an HMAC'd value starts with, as in Vault's audit entries.
const HASHED_PREFIX: &str = "hmac-sha256:";
/// The length of an HMAC'd value: the prefix and 64 hex digits.
const HASHED_LEN: usize = HASHED_PREFIX.len() + 64;

/// A device's HMAC key (prepared once; wiped on drop by aws-lc), with the HMAC'd auth
/// blocks of recent callers: a token's block is the same on every request it makes (two
/// HMACs and a JSON object), so it is made once per token and device.
pub(crate) struct Hasher {
    key: ward_crypto::HmacSha256Key,
    /// `hmac-sha256:` of the empty string, which many responses carry (a KV version's
    /// `deletion_time`, say).
    empty: [u8; HASHED_LEN],
    callers: Mutex<CallerMemo>,
}

/// By token hash: the token entry the parts were made from, and the parts.
type CallerMemo = FastMap<String, (Arc<TokenEntry>, Arc<CallerParts>)>;

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
        let key = ward_crypto::HmacSha256Key::new(&key);
        let empty = hashed_with(&key, "");
        Self {
            key,
            empty,
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

    /// `hmac-sha256:<hex>` of `value`, as ASCII.
    fn hashed(&self, value: &str) -> [u8; HASHED_LEN] {
        if value.is_empty() {
            return self.empty;
        }
        hashed_with(&self.key, value)
    }

    /// `hmac-sha256:<hex>` of `value`.
    pub(crate) fn hash(&self, value: &str) -> String {
        // ASCII throughout, so nothing is replaced.
        String::from_utf8_lossy(&self.hashed(value)).into_owned()
    }

    /// Appends `"hmac-sha256:<hex>"` of `value`, as a JSON string, to `out`.
    pub(super) fn write_hash(&self, out: &mut Vec<u8>, value: &str) {
        out.push(b'"');
        out.extend_from_slice(&self.hashed(value));
        out.push(b'"');
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

/// `hmac-sha256:<hex>` of `value` under `key`, as ASCII.
fn hashed_with(key: &ward_crypto::HmacSha256Key, value: &str) -> [u8; HASHED_LEN] {
    let mut out = [0u8; HASHED_LEN];
    let (prefix, digits) = out.split_at_mut(HASHED_PREFIX.len());
    prefix.copy_from_slice(HASHED_PREFIX.as_bytes());
    // Cannot fail: 32 bytes make exactly 64 hex digits.
    let _ = hex::encode_to_slice(key.sign(value.as_bytes()), digits);
    out
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
    let (mount_accessor, mount_point, mount_type) = mount_fields(facts.mount.map(|m| &**m));
    let object = RequestObject {
        client_token: caller
            .as_ref()
            .map(|c| c.token.as_str())
            .or(unknown_token.as_deref()),
        client_token_accessor: caller.as_ref().map(|c| c.accessor.as_str()),
        id: facts.id,
        mount_accessor,
        mount_point,
        mount_type,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_accessor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_point: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_type: Option<&'a str>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_accessor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_point: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [String]>,
    /// The response's data, every string HMAC'd.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Hashed<'a>>,
}

/// The mount fields of a `request` or `response` object (absent for paths outside mounts):
/// its accessor, path and type. (Fields of their own in both objects: a flattened struct
/// would make serde write the objects as maps, field by field through a buffer.)
fn mount_fields(mount: Option<&MountEntry>) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        mount.map(|m| m.accessor.as_str()),
        mount.map(|m| m.path.as_str()),
        mount.map(|m| m.mount_type.as_str()),
    )
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

fn push_error(out: &mut Vec<u8>, error: &CoreError) {
    out.extend_from_slice(b",\"error\":");
    out.extend_from_slice(Value::String(error.to_string()).to_string().as_bytes());
}

/// A serialised request entry.
pub(crate) fn request_entry(time: &str, parts: &Parts, error: Option<&CoreError>) -> Vec<u8> {
    let mut out = parts.open(time, "request", 0).into_bytes();
    if let Some(e) = error {
        push_error(&mut out, e);
    }
    out.push(b'}');
    out
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
    // A KV read carries its data serialised: it is HMAC'd from the text, below.
    let serialised = match resp.and_then(|r| r.data.as_ref()) {
        Some(Data::Serialised(json)) => Some(json.get()),
        _ => None,
    };
    let (mount_accessor, mount_point, mount_type) = mount_fields(mount);
    let object = ResponseObject {
        auth: resp.and_then(|r| r.auth.as_ref()).map(|a| auth_info(h, a)),
        mount_accessor,
        mount_point,
        mount_type,
        status: resp.and_then(|r| r.status),
        warnings: resp
            .map(|r| r.warnings.as_slice())
            .filter(|w| !w.is_empty()),
        data: resp
            .and_then(|r| r.data_tree().or(r.raw.as_ref()))
            .map(|d| Hashed(d, h)),
    };
    let extra = 256 + serialised.map_or(0, |json| json.len() * 2);
    let mut out = parts.open(time, "response", extra).into_bytes();
    out.extend_from_slice(b",\"response\":");
    let start = out.len();
    if serde_json::to_writer(&mut out, &object).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"{}");
    }
    if let Some(json) = serialised {
        // The object's last field, as `data` is in `ResponseObject`.
        out.pop();
        let mark = out.len();
        if out.len() > start + 1 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"data\":");
        if write_hashed_json(&mut out, json, h).is_err() {
            out.truncate(mark);
        }
        out.push(b'}');
    }
    if let Err(e) = result {
        push_error(&mut out, e);
    }
    out.push(b'}');
    out
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
        // The Wikipedia HMAC-SHA256 example, and the empty string's, made once.
        assert_eq!(
            h.hash("The quick brown fox jumps over the lazy dog"),
            "hmac-sha256:f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert_eq!(
            h.hash(""),
            "hmac-sha256:5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0"
        );
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

    /// A response whose data is held serialised (a KV read) gets the same entry as one
    /// whose data is a tree.
    #[test]
    fn a_serialised_response_is_audited_as_its_tree_would_be() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let data =
            json!({"data": {"value": "s3cret"}, "metadata": {"version": 3, "deletion_time": ""}});
        let raw = serde_json::value::to_raw_value(&data).unwrap();
        let request = Request {
            operation: Operation::Read,
            path: "secret/data/app".into(),
            data: Map::new(),
            token: None,
            remote_addr: None,
        };
        let facts = RequestFacts {
            id: "id-1",
            request: &request,
            caller: None,
            mount: None,
        };
        let parts = request_parts(&h, &facts);
        let time = "2026-12-02T00:00:00.000000000Z";
        let tree = response_entry(&h, time, &parts, None, &Ok(Response::data(data.clone())));
        let text = response_entry(&h, time, &parts, None, &Ok(Response::data_json(raw)));
        assert_eq!(
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(&tree)
        );
        let entry: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(entry["response"]["data"], h.hash_value(&data));
        assert!(!String::from_utf8_lossy(&text).contains("s3cret"));
    }
}
