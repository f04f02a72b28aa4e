//! A device's HMAC key and what it remembers: every secret value, token and accessor in an
//! audit entry is replaced by its HMAC under the device's own key, as Vault writes them
//! (`hmac-sha256:<hex>`), and the parts that repeat from request to request (a caller's
//! `auth` block, a hot secret's `data`) are HMAC'd once per device and remembered. Without
//! them an audited KV read costs a quarter more (docs-machinery-figures.md).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::hashed::{HashedMap, write_hashed_json};
use crate::FastMap;
use crate::core::Caller;
use crate::token::store::TokenEntry;

/// What an HMAC'd value starts with, as in Vault's audit entries.
const HASHED_PREFIX: &str = "hmac-sha256:";
/// The length of an HMAC'd value: the prefix and 64 hex digits.
const HASHED_LEN: usize = HASHED_PREFIX.len() + 64;

/// Callers whose parts a device remembers; past this many it starts over.
const CALLER_MEMO_ENTRIES: usize = 2048;
/// Data texts whose HMAC'd copy a device remembers; past this many, or past
/// [`DATA_MEMO_BYTES`] of copies, it starts over.
const DATA_MEMO_ENTRIES: usize = 4096;
const DATA_MEMO_BYTES: usize = 4 << 20;
/// Data texts longer than this are HMAC'd on every entry: a few large secrets would fill
/// the memo, and their HMACs cost little next to reading them.
const DATA_MEMO_LARGEST: usize = 16 << 10;

/// A device's HMAC key (prepared once; wiped on drop by aws-lc), with what it remembers.
/// The memos live and die with the device (on seal, say).
pub(crate) struct Hasher {
    key: ward_crypto::HmacSha256Key,
    /// `hmac-sha256:` of the empty string, which many responses carry (a KV version's
    /// `deletion_time`, say).
    empty: [u8; HASHED_LEN],
    /// By token hash: the caller's parts, and the token entry they were made from, held
    /// weakly so that the memo keeps no decrypted entry alive. A renewed or changed token is
    /// a new entry, and gets new parts.
    callers: Mutex<CallerMemo>,
    /// The HMAC'd copy of a response's `data` by the SHA-256 of its JSON text, which alone
    /// fixes the copy: nothing to invalidate, and no secret kept in clear.
    data: Mutex<DataMemo>,
}

type CallerMemo = FastMap<String, (Weak<TokenEntry>, Arc<CallerParts>)>;

#[derive(Default)]
struct DataMemo {
    copies: FastMap<[u8; 32], Box<[u8]>>,
    bytes: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `auth` object of a request's entries, its fields in the order Vault's JSON has them.
#[derive(serde::Serialize)]
struct AuthObject<'a> {
    accessor: &'a str,
    client_token: &'a str,
    display_name: &'a str,
    /// The token's metadata, every value HMAC'd; `null` when it has none.
    metadata: Option<HashedMap<'a>>,
    policies: &'a [String],
    token_issue_time: String,
    token_policies: &'a [String],
    token_type: &'static str,
}

/// The HMAC'd parts of an entry that depend only on the caller's token.
pub(crate) struct CallerParts {
    /// The `auth` object, serialised.
    pub(super) auth: String,
    /// `hmac-sha256:` of the token.
    pub(super) token: String,
    /// `hmac-sha256:` of its accessor.
    pub(super) accessor: String,
}

impl Hasher {
    pub(crate) fn new(key: Zeroizing<Vec<u8>>) -> Self {
        let key = ward_crypto::HmacSha256Key::new(&key);
        let empty = hashed_with(&key, "");
        Self {
            key,
            empty,
            callers: Mutex::default(),
            data: Mutex::default(),
        }
    }

    /// The caller's HMAC'd parts, made once per token entry.
    pub(super) fn caller_parts(&self, caller: &Caller) -> Arc<CallerParts> {
        let entry = &caller.entry;
        if let Some((made_from, parts)) = lock(&self.callers).get(&entry.hash)
            && std::ptr::eq(made_from.as_ptr(), Arc::as_ptr(entry))
        {
            return Arc::clone(parts);
        }
        let parts = Arc::new(self.make_caller_parts(caller));
        let mut callers = lock(&self.callers);
        if callers.len() >= CALLER_MEMO_ENTRIES {
            callers.clear();
        }
        callers.insert(
            entry.hash.clone(),
            (Arc::downgrade(entry), Arc::clone(&parts)),
        );
        parts
    }

    /// Appends the JSON text `json` with every string HMAC'd (see [`write_hashed_json`]),
    /// made once per text. `false` if `json` is not valid JSON (`out` may then hold part of
    /// it).
    pub(super) fn write_hashed_data(&self, out: &mut Vec<u8>, json: &str) -> bool {
        if json.len() > DATA_MEMO_LARGEST {
            return write_hashed_json(out, json, self).is_ok();
        }
        let text = ward_crypto::sha256(json.as_bytes());
        if let Some(copy) = lock(&self.data).copies.get(&text) {
            out.extend_from_slice(copy);
            return true;
        }
        let start = out.len();
        if write_hashed_json(out, json, self).is_err() {
            return false;
        }
        let copy: Box<[u8]> = out[start..].into();
        let mut memo = lock(&self.data);
        if memo.copies.len() >= DATA_MEMO_ENTRIES || memo.bytes + copy.len() > DATA_MEMO_BYTES {
            *memo = DataMemo::default();
        }
        memo.bytes += copy.len();
        if let Some(replaced) = memo.copies.insert(text, copy) {
            memo.bytes -= replaced.len();
        }
        true
    }

    fn make_caller_parts(&self, caller: &Caller) -> CallerParts {
        let e = &caller.entry;
        let token = self.hash(caller.token.expose());
        let accessor = self.hash(&e.accessor);
        let auth = AuthObject {
            accessor: &accessor,
            client_token: &token,
            display_name: &e.display_name,
            metadata: (!e.meta.is_empty()).then_some(HashedMap(&e.meta, self)),
            policies: &e.policies,
            token_issue_time: rfc3339(e.issue_time),
            token_policies: &e.policies,
            token_type: "service",
        };
        CallerParts {
            auth: serde_json::to_string(&auth).unwrap_or_else(|_| "{}".into()),
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

    /// `value` with every leaf in it (strings, numbers and booleans; map values, list
    /// items, at any depth) HMAC'd, numbers and booleans as their JSON text. Keys and nulls
    /// are kept: they say what the data is, not what it holds.
    pub(crate) fn hash_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.hash(s)),
            Value::Number(n) => Value::String(self.hash(&n.to_string())),
            Value::Bool(b) => Value::String(self.hash(if *b { "true" } else { "false" })),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.hash_value(v)).collect()),
            Value::Object(map) => Value::Object(self.hash_map(map)),
            Value::Null => Value::Null,
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

fn rfc3339(unix: i64) -> String {
    ward_api::time::rfc3339_seconds(unix).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_leaf_is_hashed_at_any_depth_and_keys_and_nulls_are_kept() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let v = h.hash_value(
            &json!({"a": "s3cret", "b": [1234, "x"], "c": {"d": true, "e": "y", "f": null, "g": -0.5}}),
        );
        let text = v.to_string();
        assert!(!text.contains("s3cret") && !text.contains("1234") && !text.contains("true"));
        assert_eq!(v["b"][0], json!(h.hash("1234")));
        assert_eq!(v["c"]["d"], json!(h.hash("true")));
        assert_eq!(v["c"]["g"], json!(h.hash("-0.5")));
        assert_eq!(v["c"]["f"], Value::Null);
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
        // Remembered without keeping the token entry alive.
        assert_eq!(Arc::strong_count(&first.entry), 1);
        assert_eq!(a.token, h.hash("wrd_token"));
        assert_eq!(a.accessor, h.hash("acc"));
        assert!(!a.auth.contains("wrd_token") && a.auth.contains("\"first\""));
        // The same token hash with a changed entry (renewed, say) gets a new block.
        let changed = caller("second");
        let b = h.caller_parts(&changed);
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(b.auth.contains("\"second\""));
    }

    /// The same data text is HMAC'd once, each text gets its own copy, and a large text is
    /// not remembered.
    #[test]
    fn data_is_hmacd_once_per_text() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let hashed = |json: &str| {
            let mut out = Vec::new();
            assert!(h.write_hashed_data(&mut out, json));
            serde_json::from_slice::<Value>(&out).unwrap()
        };
        let (one, two) = (r#"{"v":"one"}"#, r#"{"v":"two"}"#);
        for _ in 0..2 {
            assert_eq!(hashed(one), json!({"v": h.hash("one")}));
            assert_eq!(hashed(two), json!({"v": h.hash("two")}));
        }
        assert_eq!(lock(&h.data).copies.len(), 2);
        let large: Value = (0..2000).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(hashed(&large.to_string()), h.hash_value(&large));
        assert_eq!(lock(&h.data).copies.len(), 2);
        let mut out = Vec::new();
        assert!(!h.write_hashed_data(&mut out, r#"{"v":"#));
    }

    /// Memos are per device: one device never gets another's HMACs (their keys differ).
    #[test]
    fn each_device_remembers_its_own_hmacs() {
        let devices: Vec<Hasher> = (0..3)
            .map(|i| Hasher::new(Zeroizing::new(format!("key {i}").into_bytes())))
            .collect();
        let who = caller("someone");
        let check = |h: &Hasher| {
            let parts = h.caller_parts(&who);
            assert_eq!(parts.token, h.hash("wrd_token"));
            assert_eq!(parts.accessor, h.hash("acc"));
            assert!(parts.auth.contains(&h.hash("wrd_token")));
            let mut data = Vec::new();
            assert!(h.write_hashed_data(&mut data, r#"{"value":"s3cret"}"#));
            let expected = format!("{{\"value\":\"{}\"}}", h.hash("s3cret"));
            assert_eq!(String::from_utf8(data).unwrap(), expected);
            parts
        };
        // Twice round all of them: each device's second answer is its own remembered one.
        let first: Vec<_> = devices.iter().map(check).collect();
        let second: Vec<_> = devices.iter().map(check).collect();
        for (a, b) in first.iter().zip(&second) {
            assert!(Arc::ptr_eq(a, b));
        }
        assert_ne!(first[0].auth, first[1].auth);
    }
}
