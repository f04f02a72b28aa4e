//! A device's HMAC key and what it remembers: every secret value, token and accessor in an
//! audit entry is replaced by its HMAC under the device's own key, as Vault writes them
//! (`hmac-sha256:<hex>`), and the parts that repeat from request to request (a caller's
//! `auth` block, a hot secret's `data`) are HMAC'd once and remembered.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::hashed::write_hashed_json;
use crate::FastMap;
use crate::core::Caller;
use crate::request::DataSource;
use crate::token::store::TokenEntry;

/// Callers whose HMAC'd auth block is remembered, per device and thread; past this many the
/// memo starts over.
const CALLER_MEMO_ENTRIES: usize = 2048;
/// Response sources whose HMAC'd `data` is remembered, per device and thread; past this
/// many, or past [`SOURCE_MEMO_BYTES`] of it, the memo starts over.
const SOURCE_MEMO_ENTRIES: usize = 4096;
/// The most HMAC'd `data` a device remembers on one thread, in bytes (the runtime has a
/// thread per core).
const SOURCE_MEMO_BYTES: usize = 1 << 20;
/// HMAC'd `data` longer than this is not remembered: a few large secrets would fill the
/// memo, and their HMACs cost little next to reading them.
const SOURCE_MEMO_LARGEST: usize = 16 << 10;
/// What an HMAC'd value starts with, as in Vault's audit entries.
const HASHED_PREFIX: &str = "hmac-sha256:";
/// The length of an HMAC'd value: the prefix and 64 hex digits.
const HASHED_LEN: usize = HASHED_PREFIX.len() + 64;

/// Devices whose memos one thread keeps; a thread that meets one more forgets the oldest.
const MEMOS_PER_THREAD: usize = 4;

/// A device's HMAC key (prepared once; wiped on drop by aws-lc), with what it remembers:
/// the HMAC'd auth blocks of recent callers (a token's block is the same on every request
/// it makes: two HMACs and a JSON object), and the HMAC'd `data` of recent response
/// sources (a hot secret's value and metadata, the same on every read of its version).
///
/// Each thread remembers for itself ([`Memo`]): a memo shared by the runtime's workers had
/// them take turns at its lock, and at the reference count of what it handed out, on every
/// request. A thread makes its own copy of a block once, which costs two HMACs.
pub(crate) struct Hasher {
    /// Tells this device's memos from other devices' in a thread's [`MEMOS`].
    id: u64,
    key: ward_crypto::HmacSha256Key,
    /// `hmac-sha256:` of the empty string, which many responses carry (a KV version's
    /// `deletion_time`, say).
    empty: [u8; HASHED_LEN],
}

/// What one thread remembers for one device.
#[derive(Default)]
struct Memo {
    callers: CallerMemo,
    sources: SourceMemo,
}

thread_local! {
    /// This thread's memos, by [`Hasher::id`], the most recently added last.
    static MEMOS: RefCell<Vec<(u64, Memo)>> = const { RefCell::new(Vec::new()) };
}

/// By token hash: the token entry the parts were made from, and the parts. The entry is held
/// by weak reference, as response sources are ([`SeenSource`]): a thread's memo outlives its
/// device (until the thread meets newer ones), and must not keep a decrypted token entry in
/// memory after a seal or a revocation.
type CallerMemo = FastMap<String, (Weak<TokenEntry>, Arc<CallerParts>)>;

/// By the address of a response source's second object: the HMAC'd `data` made from it.
#[derive(Default)]
struct SourceMemo {
    seen: FastMap<usize, SeenSource>,
    /// The HMAC'd `data` held, in bytes.
    bytes: usize,
}

/// A response source seen before, and the HMAC'd `data` made from it. Holds weak references:
/// while one exists its object's memory is not reused, so an object at the same address is
/// the same object, and the memo keeps no object (nor the data key in a KV version) alive.
struct SeenSource {
    objects: [Weak<dyn Any + Send + Sync>; 2],
    detail: u64,
    hashed: Box<[u8]>,
}

impl SeenSource {
    fn is(&self, source: &DataSource) -> bool {
        self.detail == source.detail
            && self
                .objects
                .iter()
                .zip(&source.objects)
                .all(|(seen, now)| std::ptr::addr_eq(seen.as_ptr(), Arc::as_ptr(now)))
    }
}

/// Where a source is remembered.
fn source_key(source: &DataSource) -> usize {
    Arc::as_ptr(&source.objects[1]).cast::<()>() as usize
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
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let key = ward_crypto::HmacSha256Key::new(&key);
        let empty = hashed_with(&key, "");
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            key,
            empty,
        }
    }

    /// Runs `f` on this thread's memo for this device. `f` must not call back into it.
    fn with_memo<R>(&self, f: impl FnOnce(&mut Memo) -> R) -> R {
        MEMOS.with_borrow_mut(|memos| {
            let index = match memos.iter().position(|(id, _)| *id == self.id) {
                Some(index) => index,
                None => {
                    if memos.len() >= MEMOS_PER_THREAD {
                        memos.remove(0);
                    }
                    memos.push((self.id, Memo::default()));
                    memos.len() - 1
                }
            };
            f(&mut memos[index].1)
        })
    }

    /// The caller's HMAC'd parts, remembered while its token entry stays the same one (a
    /// renewed or changed token is a new entry, and gets new parts).
    pub(super) fn caller_parts(&self, caller: &Caller) -> Arc<CallerParts> {
        let entry = &caller.entry;
        let seen = self.with_memo(|memo| {
            memo.callers
                .get(&entry.hash)
                .filter(|(seen, _)| std::ptr::eq(seen.as_ptr(), Arc::as_ptr(entry)))
                .map(|(_, parts)| Arc::clone(parts))
        });
        if let Some(parts) = seen {
            return parts;
        }
        let parts = Arc::new(self.make_caller_parts(caller));
        self.with_memo(|memo| {
            if memo.callers.len() >= CALLER_MEMO_ENTRIES {
                memo.callers.clear();
            }
            memo.callers.insert(
                entry.hash.clone(),
                (Arc::downgrade(entry), Arc::clone(&parts)),
            );
        });
        parts
    }

    fn make_caller_parts(&self, caller: &Caller) -> CallerParts {
        let e = &caller.entry;
        let token = self.hash(caller.token.expose());
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

    /// Appends the JSON text `json` with every string HMAC'd (see [`write_hashed_json`]).
    /// With a `source` (what fixed the text), the copy made for the same source before is
    /// reused. `false` if `json` is not valid JSON (`out` may then hold part of it).
    pub(super) fn write_hashed_data(
        &self,
        out: &mut Vec<u8>,
        json: &str,
        source: Option<&DataSource>,
    ) -> bool {
        let Some(source) = source else {
            return write_hashed_json(out, json, self).is_ok();
        };
        let key = source_key(source);
        let found = self.with_memo(|memo| match memo.sources.seen.get(&key) {
            Some(seen) if seen.is(source) => {
                out.extend_from_slice(&seen.hashed);
                true
            }
            _ => false,
        });
        if found {
            return true;
        }
        let start = out.len();
        if write_hashed_json(out, json, self).is_err() {
            return false;
        }
        let hashed = &out[start..];
        if hashed.len() <= SOURCE_MEMO_LARGEST {
            let seen = SeenSource {
                objects: source.objects.each_ref().map(Arc::downgrade),
                detail: source.detail,
                hashed: hashed.into(),
            };
            self.with_memo(|memo| {
                let sources = &mut memo.sources;
                if sources.seen.len() >= SOURCE_MEMO_ENTRIES
                    || sources.bytes + seen.hashed.len() > SOURCE_MEMO_BYTES
                {
                    *sources = SourceMemo::default();
                }
                sources.bytes += seen.hashed.len();
                if let Some(replaced) = sources.seen.insert(key, seen) {
                    sources.bytes -= replaced.hashed.len();
                }
            });
        }
        true
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
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
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

    /// Memos are per device and per thread: one device never gets another's HMACs (their
    /// keys differ), not even past the devices a thread keeps memos for, and a thread makes
    /// its own copy of what another thread remembered.
    #[test]
    fn each_device_remembers_its_own_hmacs_on_each_thread() {
        let devices: Vec<Hasher> = (0..MEMOS_PER_THREAD + 2)
            .map(|i| Hasher::new(Zeroizing::new(format!("key {i}").into_bytes())))
            .collect();
        let who = caller("someone");
        let object: Arc<dyn Any + Send + Sync> = Arc::new(1u8);
        let source = DataSource {
            objects: [Arc::clone(&object), Arc::clone(&object)],
            detail: 7,
        };
        let check = |h: &Hasher| {
            let parts = h.caller_parts(&who);
            assert_eq!(parts.token, h.hash("wrd_token"));
            assert_eq!(parts.accessor, h.hash("acc"));
            assert!(parts.auth.contains(&h.hash("wrd_token")));
            let mut data = Vec::new();
            assert!(h.write_hashed_data(&mut data, r#"{"value":"s3cret"}"#, Some(&source)));
            let expected = format!("{{\"value\":\"{}\"}}", h.hash("s3cret"));
            assert_eq!(String::from_utf8(data).unwrap(), expected);
            parts
        };
        // Twice round all of them: the second round finds the first devices' memos gone
        // (more devices than a thread keeps) and the last ones' still there.
        let first: Vec<_> = devices.iter().map(check).collect();
        let second: Vec<_> = devices.iter().map(check).collect();
        let last = devices.len() - 1;
        assert!(!Arc::ptr_eq(&first[0], &second[0]));
        assert!(Arc::ptr_eq(&second[last], &check(&devices[last])));
        // Another thread makes its own, with the same text.
        let elsewhere = std::thread::scope(|s| s.spawn(|| check(&devices[last])).join().unwrap());
        assert!(!Arc::ptr_eq(&elsewhere, &second[last]));
        assert_eq!(elsewhere.auth, second[last].auth);
    }
}
