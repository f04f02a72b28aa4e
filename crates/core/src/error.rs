//! The core's one error type. The HTTP adapter maps variants (never messages) to statuses.

use std::fmt;
use ward_store::StoreError;

/// Why a request failed. Messages never contain secret values, tokens or key material; the
/// client sees them for the variants that map to 4xx/503, and "internal error" for the rest
/// (whose message and causes go to the log and the audit trail).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The request is malformed or its parameters are invalid (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// No valid token, or the token's policies do not allow this (HTTP 403).
    #[error("permission denied")]
    PermissionDenied,
    /// The token's policies do not allow this, with Vault's explanation (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing at this path (HTTP 404); the message is Vault's wording where it has one.
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not for this operation (HTTP 405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// The server is sealed (HTTP 503).
    #[error("Vault is sealed")]
    Sealed,
    /// The server has not been initialised yet (HTTP 400 as Vault, 501 from sys/health).
    #[error("Vault is not initialized")]
    NotInitialized,
    /// A storage backend failure (HTTP 500); the source is logged, not shown.
    #[error("internal error")]
    Storage(#[source] StoreError),
    /// The storage backend cannot be reached for now (HTTP 503): retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] StoreError),
    /// Audit devices are enabled and none of them recorded the request (HTTP 500): the
    /// request was refused (Vault's fail-closed rule). The message says so; details are logged.
    #[error("{0}")]
    AuditFailed(String),
    /// A stored record is missing, fails to decode or names something that is not there
    /// (HTTP 500): the store was damaged or written by something else; never caused by input.
    /// `record` names the kind of record, never its key or content.
    #[error("stored record is corrupt: {record}")]
    Corrupt {
        /// The kind of record, e.g. "mount table".
        record: &'static str,
        /// The JSON decoding failure, when that is how the corruption showed.
        #[source]
        source: Option<DecodeError>,
    },
    /// The seal could not wrap or unwrap the root key (HTTP 503 when it is unreachable,
    /// 500 when it refused).
    #[error(transparent)]
    Seal(#[from] crate::seals::SealError),
    /// A cryptographic operation on stored or generated material failed (HTTP 500). Input
    /// the client sent is checked where it is read and fails as [`CoreError::BadRequest`].
    #[error("cryptographic failure")]
    Crypto(#[from] ward_crypto::CryptoError),
    /// A value could not be serialised to JSON (HTTP 500). serde_json's encoding errors name
    /// the rule broken (a map key that is not a string, say), never the value, so the error
    /// is kept whole.
    #[error("failed to encode a record")]
    Encode(#[source] serde_json::Error),
    /// Work handed to another thread did not come back: it panicked, its thread could not
    /// start, or its pool closed (HTTP 500). One variant for all of them because the caller
    /// can do nothing different for any of them; `what` says which work it was, the source
    /// (a join error, an I/O error) why, when there is one.
    #[error("{what} failed")]
    Task {
        /// The work that failed, e.g. "transit crypto task".
        what: &'static str,
        /// Why, when the failure carries a reason.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A read-modify-write lost the race for `record` on every attempt (HTTP 500); retrying
    /// the request is safe.
    #[error("{record} kept changing; try again")]
    Contended {
        /// The kind of record, e.g. "token entry".
        record: &'static str,
    },
    /// A snapshot is malformed, damaged or truncated (HTTP 400).
    #[error("invalid snapshot")]
    Snapshot(#[source] ward_snapshot::SnapshotError),
    /// Something this code guarantees did not hold (HTTP 500): a bug, never input or storage.
    #[error("internal invariant broken: {0}")]
    Invariant(&'static str),
}

/// Shows an error and every cause after it, `: `-separated: how log lines show errors, so
/// that no cause is lost and none is printed twice (an error's message never repeats its
/// source's).
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl CoreError {
    /// Shorthand for [`CoreError::BadRequest`].
    pub fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// The message and every cause after it, `: `-separated: what the log shows for an
    /// internal error (none of them contain secrets, see the variants).
    pub fn report(&self) -> String {
        Report(self).to_string()
    }

    /// A corrupt `record` with no further cause (missing, or not the expected encoding).
    pub(crate) fn corrupt(record: &'static str) -> Self {
        Self::Corrupt {
            record,
            source: None,
        }
    }

    /// For `map_err` on decoding `record`: a corrupt record caused by the JSON error.
    pub(crate) fn corrupt_json(record: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |e| Self::Corrupt {
            record,
            source: Some(DecodeError::from(&e)),
        }
    }

    /// A task doing `what` that failed with `source`.
    pub(crate) fn task(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Task {
            what,
            source: Some(source.into()),
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Sealed => Self::Sealed,
            StoreError::InvalidKey => Self::bad("invalid path"),
            unavailable @ StoreError::Unavailable(_) => Self::StorageUnavailable(unavailable),
            other => Self::Storage(other),
        }
    }
}

/// Why a stored record's JSON did not decode: what kind of failure and where, but not
/// serde's message, which quotes the offending value (`invalid type: string "..."`) and
/// the value may be a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    category: serde_json::error::Category,
    line: usize,
    column: usize,
}

impl From<&serde_json::Error> for DecodeError {
    fn from(e: &serde_json::Error) -> Self {
        Self {
            category: e.classify(),
            line: e.line(),
            column: e.column(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use serde_json::error::Category;
        let what = match self.category {
            Category::Io => "I/O failure",
            Category::Syntax => "malformed JSON",
            Category::Data => "JSON not of the record's shape",
            Category::Eof => "JSON cut short",
        };
        write!(f, "{what} at line {} column {}", self.line, self.column)
    }
}

impl std::error::Error for DecodeError {}

/// Result alias for core operations.
pub type CoreResult<T> = Result<T, CoreError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_corrupt_record_keeps_its_cause_but_not_the_content() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Record {
            count: u32,
        }
        let err = serde_json::from_slice::<Record>(br#"{"count":"hunter2"}"#)
            .map_err(CoreError::corrupt_json("test record"))
            .unwrap_err();
        assert_eq!(err.to_string(), "stored record is corrupt: test record");
        let cause = err.source().expect("the decoding error is kept");
        assert_eq!(
            cause.to_string(),
            "JSON not of the record's shape at line 1 column 18"
        );
        assert!(!format!("{err:?}").contains("hunter2"));
        assert_eq!(
            err.report(),
            "stored record is corrupt: test record: JSON not of the record's shape at line 1 column 18"
        );
    }

    #[test]
    fn crypto_failures_keep_their_cause() {
        let err = CoreError::from(ward_crypto::CryptoError::Authentication);
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("message authentication failed")
        );
    }
}
