//! Transport-neutral requests and responses, shaped like Vault's logical requests.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, Value};

/// What a request does, independent of the HTTP method that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// GET.
    Read,
    /// POST or PUT: create or update, decided by whether the target exists.
    Write,
    /// PATCH (JSON merge patch).
    Patch,
    /// DELETE.
    Delete,
    /// LIST, or GET with `?list=true`.
    List,
}

/// A request to the core.
pub struct Request {
    /// The operation.
    pub operation: Operation,
    /// The path below `/v1/`, without leading or trailing slashes normalised away.
    pub path: String,
    /// The JSON body's fields (or query parameters for reads).
    pub data: Map<String, Value>,
    /// The client token, if one was sent.
    pub token: Option<crate::Token>,
    /// The client's address, for CIDR-bound tokens.
    pub remote_addr: Option<IpAddr>,
    /// Vault's `X-Vault-MFA` header, `[method:]passcode`: the second factor of a login.
    pub mfa: Option<String>,
    /// The certificate chain the client presented on its connection (DER, its own
    /// certificate first), when the transport has one: the transport checked that the client
    /// holds the certificate's key, not who issued it. The `cert` auth method decides that.
    pub client_certificates: Option<Arc<[Vec<u8>]>>,
    /// A body the transport streams instead of parsing (a snapshot to restore; `data` is
    /// then empty).
    pub body: Option<BodyStream>,
}

/// A request body streamed to the core in pieces, for the one request too large to hold
/// (a snapshot restore). The handler that wants it takes it, once.
pub struct BodyStream(
    std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>>>,
);

impl BodyStream {
    /// A body arriving through `pieces`.
    pub fn new(pieces: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>) -> Self {
        Self(std::sync::Mutex::new(Some(pieces)))
    }

    /// The pieces, unless taken already.
    pub(crate) fn take(&self) -> Option<tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyStream(..)")
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies and tokens are secret: show only the routing facts.
        f.debug_struct("Request")
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("has_token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

/// The auth block of a response that created or looked up a token. Not `Clone` or
/// `PartialEq`: it may hold a new token, which is handed out once and never compared.
pub struct AuthInfo {
    /// The token itself (only when it was just created).
    pub client_token: crate::Token,
    /// The token's accessor.
    pub accessor: String,
    /// Policies attached to the token.
    pub policies: Vec<String>,
    /// Free-form metadata.
    pub metadata: Map<String, Value>,
    /// Seconds until expiry; 0 for none.
    pub lease_duration: u64,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// Whether the token has no parent.
    pub orphan: bool,
    /// Uses left; 0 for unlimited.
    pub num_uses: u64,
}

impl std::fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthInfo")
            .field("policies", &self.policies)
            .finish_non_exhaustive()
    }
}

/// JSON text serialised by Ward, sent as it is.
pub type RawJson = Box<serde_json::value::RawValue>;

/// The `data` field of Vault's envelope.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum Data {
    /// Built as a tree.
    Tree(Value),
    /// Already serialised: a KV read sends the secret's stored JSON as it is, without
    /// parsing it into a tree and serialising it again.
    Serialised(RawJson),
}

/// A successful result. Its `Debug` output leaves out the bodies, which hold secrets.
#[derive(Default)]
pub struct Response {
    /// The `data` field of Vault's envelope; `None` means "no content".
    pub data: Option<Data>,
    /// The `auth` field, for token-issuing operations.
    pub auth: Option<AuthInfo>,
    /// Warnings for the client.
    pub warnings: Vec<String>,
    /// A reply sent as a bare object instead of the envelope (sys/health, sys/seal-status,
    /// sys/init and sys/leader answer so, as Vault does).
    pub bare: Option<Bare>,
    /// How the operation ended, when that is not plain success.
    pub outcome: Outcome,
    /// `data`'s fields are also sent at the envelope's top level (Vault's `sys/mounts`,
    /// `sys/audit` and `sys/audit-hash` answer so).
    pub data_at_top_level: bool,
}

/// A reply that is not an envelope, typed: the transport serialises it.
#[derive(Debug)]
pub enum Bare {
    /// `sys/health`: the transport chooses the status from it and the request's `*code`
    /// parameters.
    Health(ward_api::HealthResponse),
    /// `sys/seal-status` and `sys/unseal`.
    SealStatus(ward_api::SealStatus),
    /// `GET sys/init`.
    InitStatus(ward_api::InitStatus),
    /// `PUT sys/init`: the unseal shares and root token, shown once.
    Init(ward_api::InitResponse),
    /// `sys/leader`.
    Leader(ward_api::LeaderStatus),
    /// `sys/rekey/init`, and `sys/rekey/update` until the quorum is reached.
    Rekey(ward_api::RekeyStatus),
    /// `sys/rekey/update` at the quorum: the new shares, shown once.
    Rekeyed(ward_api::RekeyResult),
    /// `sys/generate-root/attempt` and `sys/generate-root/update`.
    GenerateRoot(ward_api::GenerateRootStatus),
    /// `GET sys/storage/snapshot`: the snapshot's bytes, streamed.
    Snapshot(crate::SnapshotStream),
}

/// How an operation that returns a response ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked.
    #[default]
    Done,
    /// What was asked for is gone (a deleted or destroyed KV version): the response still
    /// describes it, as Vault's 404 with data does.
    Gone,
    /// Answered 202 with warnings, as Vault answers a tidy it runs in the background (Ward's
    /// has finished by then).
    Accepted,
    /// Some items of a batch failed: the response has each item's result. `requested` is
    /// the status the client asked for when only some failed
    /// (`partial_failure_response_code`).
    BatchFailed {
        /// The client's `partial_failure_response_code`, when some items succeeded.
        requested: Option<u16>,
    },
}

impl Response {
    /// An envelope response with `data`.
    pub fn data(data: Value) -> Self {
        Self {
            data: Some(Data::Tree(data)),
            ..Self::default()
        }
    }

    /// An envelope response whose `data` is already serialised.
    pub fn data_json(data: RawJson) -> Self {
        Self {
            data: Some(Data::Serialised(data)),
            ..Self::default()
        }
    }

    /// The `data` tree, when the response was built with one (not for serialised data).
    pub fn data_tree(&self) -> Option<&Value> {
        match &self.data {
            Some(Data::Tree(data)) => Some(data),
            _ => None,
        }
    }

    /// A bare response (no envelope).
    pub fn bare(body: Bare) -> Self {
        Self {
            bare: Some(body),
            ..Self::default()
        }
    }

    /// This response, with `data`'s fields also at the envelope's top level.
    pub(crate) fn with_data_at_top_level(self) -> Self {
        Self {
            data_at_top_level: true,
            ..self
        }
    }

    /// A response with no body (HTTP 204).
    pub fn empty() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = |present: bool| if present { "<redacted>" } else { "None" };
        f.debug_struct("Response")
            .field("data", &held(self.data.is_some()))
            .field("auth", &self.auth)
            .field("warnings", &self.warnings)
            .field("bare", &held(self.bare.is_some()))
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debug_output_leaves_the_bodies_out() {
        let tree = Response::data(json!({"password": "s3cret-tree"}));
        let serialised = Response::data_json(
            serde_json::value::to_raw_value(&json!({"password": "s3cret-raw"})).unwrap(),
        );
        let bare = Response::bare(Bare::Init(ward_api::InitResponse {
            root_token: "s3cret-bare".into(),
            ..Default::default()
        }));
        for response in [tree, serialised, bare] {
            let text = format!("{response:?}");
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
        assert!(!format!("{:?}", Response::empty()).contains("<redacted>"));
    }
}
