//! The audit entries, shaped like Vault's (`time`, `type`, `auth`, `request`, `response`,
//! `error`), with every secret value, token and accessor replaced by its HMAC under the
//! device's own key, as Vault writes them: `hmac-sha256:<hex>`.

use std::sync::Arc;

use serde_json::{Value, json};
use ward_api::audit::{Entry, EntryPrefix};

use super::hashed::{Hashed, HashedMap};
pub(crate) use super::hasher::Hasher;
use crate::core::Caller;
use crate::mounts::MountEntry;
use crate::{AuthInfo, CoreError, Data, Operation, Request, Response};

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
            .as_ref()
            .map(crate::Token::expose)
            .filter(|t| !t.is_empty())
            .map(|t| h.hash(t)),
    };
    let client_token = caller
        .as_ref()
        .map(|c| c.token.as_str())
        .or(unknown_token.as_deref());
    let request = request_object(
        h,
        facts,
        client_token,
        caller.as_ref().map(|c| c.accessor.as_str()),
    );
    let auth = caller.as_ref().map_or("{}", |c| c.auth.as_str());
    let mut prefix = Vec::with_capacity(24 + auth.len() + request.len());
    prefix.extend_from_slice(b"{\"auth\":");
    prefix.extend_from_slice(auth.as_bytes());
    prefix.extend_from_slice(b",\"request\":");
    prefix.extend_from_slice(request.as_bytes());
    Parts {
        prefix: EntryPrefix::new(prefix),
    }
}

/// The `request` object of an entry, its fields in the order Vault's JSON has them.
fn request_object(
    h: &Hasher,
    facts: &RequestFacts<'_>,
    client_token: Option<&str>,
    client_token_accessor: Option<&str>,
) -> String {
    let req = facts.request;
    let (mount_accessor, mount_point, mount_type) = mount_fields(facts.mount.map(Arc::as_ref));
    let object = RequestObject {
        client_token,
        client_token_accessor,
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
    serde_json::to_string(&object).unwrap_or_else(|_| "{}".into())
}

#[derive(serde::Serialize)]
struct Namespace {
    id: &'static str,
}

/// The `request` object of an entry.
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

/// The `auth` and `request` objects of a request, serialised and hashed once for its two
/// entries, which both start with them.
pub(crate) struct Parts {
    /// `{"auth":..,"request":..`.
    prefix: EntryPrefix,
}

impl Parts {
    /// `{"auth":..,"request":..,"type":..,"time":..` (the caller adds the rest, and the
    /// chain closes it).
    fn open(&self, time: &str, kind: &str, extra: usize) -> Vec<u8> {
        let prefix = self.prefix.bytes();
        let mut out = Vec::with_capacity(prefix.len() + 48 + time.len() + extra);
        out.extend_from_slice(prefix);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"time\":\"");
        out.extend_from_slice(time.as_bytes());
        out.push(b'"');
        out
    }
}

fn push_error(out: &mut Vec<u8>, error: &CoreError) {
    out.extend_from_slice(b",\"error\":");
    out.extend_from_slice(Value::String(error.to_string()).to_string().as_bytes());
}

/// A request entry.
pub(crate) fn request_entry(time: &str, parts: &Parts, error: Option<&CoreError>) -> Entry {
    let mut out = parts.open(time, "request", 0);
    if let Some(e) = error {
        push_error(&mut out, e);
    }
    parts.prefix.entry(out)
}

/// A response entry.
pub(crate) fn response_entry(
    h: &Hasher,
    time: &str,
    parts: &Parts,
    mount: Option<&MountEntry>,
    result: &Result<Response, CoreError>,
) -> Entry {
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
        warnings: resp
            .map(|r| r.warnings.as_slice())
            .filter(|w| !w.is_empty()),
        data: resp.and_then(|r| r.data_tree()).map(|d| Hashed(d, h)),
    };
    let extra = 256 + serialised.map_or(0, |json| json.len() * 2);
    let mut out = parts.open(time, "response", extra);
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
        if !h.write_hashed_data(&mut out, json) {
            out.truncate(mark);
        }
        out.push(b'}');
    }
    if let Err(e) = result {
        push_error(&mut out, e);
    }
    parts.prefix.entry(out)
}

fn auth_info(h: &Hasher, a: &AuthInfo) -> Value {
    json!({
        "client_token": h.hash(a.client_token.expose()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;
    use zeroize::Zeroizing;

    /// The parts of a read of `secret/data/app` without a token.
    fn anonymous_read(h: &Hasher) -> Parts {
        let request = Request {
            operation: Operation::Read,
            path: "secret/data/app".into(),
            data: Map::new(),
            token: None,
            remote_addr: None,
            mfa: None,
            client_certificates: None,
            body: None,
        };
        let facts = RequestFacts {
            id: "id-1",
            request: &request,
            caller: None,
            mount: None,
        };
        request_parts(h, &facts)
    }

    /// Each response's serialised data is HMAC'd as it is: what it returned is what is
    /// logged, for small and large data alike.
    #[test]
    fn serialised_data_is_logged_as_each_response_has_it() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let parts = anonymous_read(&h);
        let logged = |data: &Value| {
            let raw = serde_json::value::to_raw_value(data).unwrap();
            let entry = response_entry(&h, "t", &parts, None, &Ok(Response::data_json(raw)));
            let entry: Value = serde_json::from_slice(&entry.to_object()).unwrap();
            entry["response"]["data"].clone()
        };
        let large: Value = (0..300).map(|i| (format!("k{i}"), json!("v"))).collect();
        for data in [json!({"v": "one"}), json!({"v": "two"}), large] {
            assert_eq!(logged(&data), h.hash_value(&data));
        }
    }

    /// A response whose data is held serialised (a KV read) gets the same entry as one
    /// whose data is a tree.
    #[test]
    fn a_serialised_response_is_audited_as_its_tree_would_be() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let data =
            json!({"data": {"value": "s3cret"}, "metadata": {"version": 3, "deletion_time": ""}});
        let raw = serde_json::value::to_raw_value(&data).unwrap();
        let parts = anonymous_read(&h);
        let time = "2026-12-02T00:00:00.000000000Z";
        let tree =
            response_entry(&h, time, &parts, None, &Ok(Response::data(data.clone()))).to_object();
        let text =
            response_entry(&h, time, &parts, None, &Ok(Response::data_json(raw))).to_object();
        assert_eq!(
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(&tree)
        );
        let entry: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(entry["response"]["data"], h.hash_value(&data));
        assert!(!String::from_utf8_lossy(&text).contains("s3cret"));
    }

    /// The `request` object carries each fact of the request in its own field: with and
    /// without a token, a mount, an address and a body, and with paths that need escaping.
    #[test]
    fn request_object_is_the_json_serde_would_write() {
        let h = Hasher::new(Zeroizing::new(b"key".to_vec()));
        let mount = Arc::new(MountEntry {
            path: "secret/".into(),
            mount_type: crate::engine::MountType::Kv,
            description: String::new(),
            uuid: "u".into(),
            accessor: "kv_1234".into(),
            options: Map::new(),
            config: Map::new(),
            created: 0,
            tainted: false,
        });
        let paths = [
            "secret/data/app",
            "secret/data/a \"quoted\" \\ name",
            "secret/data/tab\there\u{1}\u{7f}",
            "secret/data/ünïcode\u{2028}✓",
            "",
        ];
        let addresses = [
            None,
            Some("127.0.0.1".parse().unwrap()),
            Some("2001:db8::1".parse().unwrap()),
        ];
        let bodies = [
            Map::new(),
            json!({"v": "s3cret", "n": 1, "l": ["x"]})
                .as_object()
                .unwrap()
                .clone(),
        ];
        let tokens = [None, Some("hmac-sha256:aa")];
        // Every path with every address and body; each then with and without a token and
        // a mount.
        let bodies = &bodies;
        let requests: Vec<Request> = paths
            .iter()
            .flat_map(|path| {
                addresses.iter().flat_map(move |&remote_addr| {
                    bodies.iter().map(move |data| Request {
                        operation: Operation::Write,
                        path: (*path).into(),
                        data: data.clone(),
                        token: None,
                        remote_addr,
                        mfa: None,
                        client_certificates: None,
                        body: None,
                    })
                })
            })
            .collect();
        assert_eq!(requests.len(), 30);
        for request in &requests {
            for token in tokens {
                for mount in [None, Some(&mount)] {
                    let facts = RequestFacts {
                        id: "id-1",
                        request,
                        caller: None,
                        mount,
                    };
                    let accessor = token.map(|_| "hmac-sha256:bb");
                    let by_serde = serde_json::to_string(&RequestObject {
                        client_token: token,
                        client_token_accessor: accessor,
                        id: facts.id,
                        mount_accessor: mount.map(|m| m.accessor.as_str()),
                        mount_point: mount.map(|m| m.path.as_str()),
                        mount_type: mount.map(|m| m.mount_type.as_str()),
                        namespace: Namespace { id: "root" },
                        operation: "update",
                        path: &request.path,
                        remote_address: request.remote_addr,
                        data: (!request.data.is_empty()).then_some(HashedMap(&request.data, &h)),
                    })
                    .unwrap();
                    assert_eq!(request_object(&h, &facts, token, accessor), by_serde);
                }
            }
        }
    }
}
