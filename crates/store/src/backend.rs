//! The storage contract: a sorted key/value map with prefix listing and atomic,
//! conditional multi-key commits (compare-and-set).

use async_trait::async_trait;

/// Errors a storage backend reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A condition of a [`Storage::commit`] did not hold; nothing was written.
    #[error("storage condition failed for a key (concurrent update)")]
    Conflict,
    /// The backend itself failed (I/O, corruption).
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend cannot be reached for now (a database restarting, a connection lost):
    /// nothing was done, and the same request may succeed later.
    #[error("storage backend unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A key that the backend cannot store (empty, NUL byte, too long).
    #[error("invalid storage key")]
    InvalidKey,
    /// Something above the backend failed to decrypt or authenticate an entry.
    #[error("storage entry failed authentication")]
    Integrity,
    /// The barrier is sealed: no key to decrypt or encrypt with.
    #[error("storage barrier is sealed")]
    Sealed,
    /// The backend cannot do this (an export or import from a backend without one).
    #[error("this storage backend cannot {0}")]
    Unsupported(&'static str),
    /// A [`Storage::replace_all`] ended without its [`Import::Commit`]: nothing changed.
    #[error("storage import abandoned before its end; nothing was changed")]
    ImportAborted,
}

/// Entries as stored (key, value), a batch of an [`Export`] or an [`Import`].
pub type Entries = Vec<(String, Vec<u8>)>;

/// A consistent copy of every entry, being read: what a snapshot is made of.
pub struct Export {
    /// How many entries the copy holds (counted in the same read as the entries).
    pub count: u64,
    /// The entries in key order (bytewise), a batch at a time; an `Err` ends the copy.
    /// The channel is bounded: the reader waits while the batches are not taken, so an
    /// export of any size holds only a few batches at once.
    pub batches: tokio::sync::mpsc::Receiver<Result<Entries, StoreError>>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("count", &self.count)
            .finish()
    }
}

/// One step of a [`Storage::replace_all`].
pub enum Import {
    /// More entries to write.
    Entries(Entries),
    /// The end: commit everything. Without it (the sender dropped) nothing changes.
    Commit,
}

/// Entries per batch of an export, and batches buffered between the reader and the writer
/// of the snapshot: a few hundred KiB in flight, whatever the size of the store.
pub const EXPORT_BATCH: usize = 256;
pub(crate) const EXPORT_QUEUE: usize = 4;

/// What must hold for an [`Op`] to apply.
#[derive(Clone, PartialEq, Eq)]
pub enum Expect {
    /// No condition.
    Any,
    /// The key must not exist.
    Absent,
    /// The key must exist and hold exactly these bytes.
    Value(Vec<u8>),
}

/// What an [`Op`] does once its condition holds.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this value.
    Put(Vec<u8>),
    /// Remove the key (absent keys are fine).
    Delete,
    /// Write nothing: the op only asserts its condition.
    Check,
}

/// One step of an atomic [`Storage::commit`].
#[derive(Clone, PartialEq, Eq)]
pub struct Op {
    /// The key the op applies to.
    pub key: String,
    /// The condition that must hold before any op of the commit applies.
    pub expect: Expect,
    /// What to do.
    pub action: Action,
}

impl Op {
    /// Writes `value` at `key`, if `expect` holds.
    pub fn put(key: impl Into<String>, expect: Expect, value: Vec<u8>) -> Self {
        let (key, action) = (key.into(), Action::Put(value));
        Self {
            key,
            expect,
            action,
        }
    }

    /// Removes `key`, if `expect` holds.
    pub fn delete(key: impl Into<String>, expect: Expect) -> Self {
        let (key, action) = (key.into(), Action::Delete);
        Self {
            key,
            expect,
            action,
        }
    }

    /// Writes nothing: fails the commit unless `expect` holds at `key`.
    pub fn check(key: impl Into<String>, expect: Expect) -> Self {
        let (key, action) = (key.into(), Action::Check);
        Self {
            key,
            expect,
            action,
        }
    }
}

// Values are ciphertext, but keep Debug short and content-free anyway.
impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let action = match self.action {
            Action::Put(_) => "put",
            Action::Delete => "delete",
            Action::Check => "check",
        };
        f.debug_struct("Op")
            .field("key", &self.key)
            .field("action", &action)
            .finish()
    }
}

/// A durable, sorted key/value store.
///
/// Keys are UTF-8 strings whose segments are separated by `/`. Every method that writes
/// returns only after the write is durable (it survives a crash or power loss).
///
/// Every backend accepts the same keys: non-empty, without a NUL byte, not ending in `/`
/// (that spelling names a folder in [`list`](Self::list) answers) and at most
/// [`MAX_BACKEND_KEY_LEN`](crate::MAX_BACKEND_KEY_LEN) bytes; any other key is refused with
/// [`StoreError::InvalidKey`]. Keys sort as bytes.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The value stored at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `value` at `key`, replacing what was there.
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Removes `key`; removing an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// The immediate children of `prefix` (which is empty or ends in `/`), sorted and
    /// deduplicated: a child that has children of its own is returned once with a trailing
    /// `/`, a leaf without one (both can appear for the same name).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Applies `ops` atomically: either every condition holds and every action applies,
    /// or nothing changes and [`StoreError::Conflict`] is returned.
    ///
    /// Every condition is judged against the state before the commit (an op never sees the
    /// action of an earlier op of the same commit), then the actions apply in order.
    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError>;

    /// Makes what has been deleted unrecoverable from the backend's own files, as far as the
    /// backend can: called after destructive operations (a mount disabled, a key destroyed),
    /// so that crypto-shredded key records do not linger in freed pages or a log. Backups and
    /// copies taken before are out of its reach. The default does nothing (nothing to erase).
    async fn erase_deleted(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Starts a consistent copy of every entry, as one read transaction sees them, while
    /// writes go on.
    async fn export(&self) -> Result<Export, StoreError> {
        Err(StoreError::Unsupported("export its entries"))
    }

    /// Replaces every entry by the ones `steps` bring, atomically: once
    /// [`Import::Commit`] arrives the store holds exactly those entries; if the sender is
    /// dropped before (the snapshot being restored turned out bad), or anything fails,
    /// nothing has changed. Other writes wait meanwhile. Returns how many entries it wrote.
    async fn replace_all(
        &self,
        steps: tokio::sync::mpsc::Receiver<Import>,
    ) -> Result<u64, StoreError> {
        drop(steps);
        Err(StoreError::Unsupported("import entries"))
    }
}
