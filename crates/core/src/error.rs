//! The core's one error type. The HTTP adapter maps variants (never messages) to statuses.

use ward_store::StoreError;

/// Why a request failed. Messages are safe to show to the client: they never contain
/// secret values, tokens or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The request is malformed or its parameters are invalid (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// No valid token, or the token's policies do not allow this (HTTP 403).
    #[error("permission denied")]
    PermissionDenied,
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
    /// Audit devices are enabled and none of them recorded the request (HTTP 500): the
    /// request was refused (Vault's fail-closed rule). The message says so; details are logged.
    #[error("{0}")]
    AuditFailed(String),
    /// A stored record failed to decode or decrypt (HTTP 500); never caused by input.
    #[error("internal error")]
    Internal(String),
}

impl CoreError {
    /// Shorthand for [`CoreError::BadRequest`].
    pub fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Sealed => Self::Sealed,
            StoreError::InvalidKey => Self::bad("invalid path"),
            other => Self::Storage(other),
        }
    }
}

impl From<ward_crypto::CryptoError> for CoreError {
    fn from(e: ward_crypto::CryptoError) -> Self {
        Self::Internal(format!("cryptographic failure: {e}"))
    }
}

/// Result alias for core operations.
pub type CoreResult<T> = Result<T, CoreError>;
