//! The embedded default backend: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! Writes go to a single writer thread that group-commits everything queued (see
//! [`writer`]); reads go to a small pool of reading threads with read-only connections.
//! The async methods only queue a job and await its answer, so they never block the
//! runtime's threads.

mod reader;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::backend::{Entries, Expect, Export, Import, Op, Storage, StoreError};
use crate::keys::{validate_key, validate_prefix};
use reader::ReadJob;
use writer::{WriteJob, WriterCounters};

/// Failures of the SQLite backend, reported as the source of [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
enum SqliteFailure {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction a commit was grouped into failed, so the commit was not applied.
    #[error("SQLite group commit failed: {0}")]
    Group(#[source] Arc<rusqlite::Error>),
    #[error("SQLite storage worker thread stopped")]
    WorkerStopped,
    #[error("could not start a SQLite storage thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("SQLite refused the WAL journal mode (it kept {0:?})")]
    NoWal(String),
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// Readers held an older snapshot past the busy timeout: the log still holds pages.
    #[error("SQLite checkpoint could not empty the write-ahead log: readers kept it busy")]
    CheckpointBusy,
}

impl From<SqliteFailure> for StoreError {
    fn from(failure: SqliteFailure) -> Self {
        StoreError::Backend(Box::new(failure))
    }
}

/// Commits that may wait for the writer thread before callers wait to queue theirs.
const WRITE_QUEUE_DEPTH: usize = 4096;

/// Tuning for [`SqliteStorage::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How many reading threads (each with its own read-only connection). At least one.
    pub readers: usize,
    /// Reads that may wait for a reading thread before callers wait to queue theirs
    /// (backpressure when the disk is slower than the requests). At least one.
    pub read_queue_depth: usize,
    /// How long a connection waits for a lock that another connection to the same file
    /// holds (another process, a backup) before its operation fails.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        // Reads of cached pages take microseconds; a few threads cover the ones that wait
        // on the disk without crowding a small machine.
        Self {
            readers: 4,
            read_queue_depth: 4096,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The settings that make commits durable, as the committing connection reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurabilitySettings {
    /// `PRAGMA journal_mode` (`wal`).
    pub journal_mode: String,
    /// `PRAGMA synchronous` by name (`FULL`).
    pub synchronous: String,
    /// `PRAGMA user_version`: the schema version of the file.
    pub schema_version: i64,
}

/// Counts of the writer's work since the storage was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    /// Writes (put, delete, commit) applied.
    pub commits: u64,
    /// Commits refused with [`StoreError::Conflict`].
    pub conflicts: u64,
    /// SQLite transactions committed, each one fsync; `commits / transactions` is the
    /// average size of a commit group.
    pub transactions: u64,
}

/// A [`Storage`] in one SQLite file: WAL journal, `synchronous=FULL`, group commit.
///
/// Dropping it stops its threads once their queued jobs are answered. A write whose caller
/// stops waiting (a cancelled future) may still be applied, as with any database.
pub struct SqliteStorage {
    writer: tokio::sync::mpsc::Sender<WriteJob>,
    readers: tokio::sync::mpsc::Sender<ReadJob>,
    counters: Arc<WriterCounters>,
    path: PathBuf,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file at `path` with the default options.
    ///
    /// This does blocking file I/O: call it at startup, or from `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the database file at `path`, migrates its schema, and
    /// starts the writer thread and `options.readers` reading threads.
    ///
    /// This does blocking file I/O: call it at startup, or from `spawn_blocking`.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let writer_conn = schema::open_writer(&path, options.busy_timeout)?;
        let reader_conns = (0..options.readers.max(1))
            .map(|_| schema::open_reader(&path, options.busy_timeout))
            .collect::<Result<Vec<_>, _>>()?;

        let counters = Arc::new(WriterCounters::default());
        let (writer, write_jobs) = tokio::sync::mpsc::channel(WRITE_QUEUE_DEPTH);
        let writer_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("ward-sqlite-writer".into())
            .spawn(move || writer::run(writer_conn, write_jobs, writer_counters))
            .map_err(SqliteFailure::Spawn)?;

        let (readers, read_jobs) = tokio::sync::mpsc::channel(options.read_queue_depth.max(1));
        let read_jobs = Arc::new(Mutex::new(read_jobs));
        for (index, conn) in reader_conns.into_iter().enumerate() {
            let jobs = Arc::clone(&read_jobs);
            std::thread::Builder::new()
                .name(format!("ward-sqlite-reader-{index}"))
                .spawn(move || reader::run(conn, jobs))
                .map_err(SqliteFailure::Spawn)?;
        }
        Ok(Self {
            writer,
            readers,
            counters,
            path,
        })
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal mode, `synchronous` level and schema version of the committing
    /// connection, read back from SQLite (for startup logs and tests).
    pub async fn durability_settings(&self) -> Result<DurabilitySettings, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriteJob::Settings { reply })
            .await
            .map_err(|_| SqliteFailure::WorkerStopped)?;
        answer.await.map_err(|_| SqliteFailure::WorkerStopped)?
    }

    /// What the writer has done since the storage was opened.
    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            conflicts: self.counters.conflicts.load(Ordering::Relaxed),
            transactions: self.counters.transactions.load(Ordering::Relaxed),
        }
    }

    async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        for op in &ops {
            validate_key(&op.key)?;
        }
        let (reply, answer) = oneshot::channel();
        // A full queue makes the caller wait here (backpressure) instead of growing without
        // bound while the disk is slower than the writers.
        self.writer
            .send(WriteJob::Commit { ops, reply })
            .await
            .map_err(|_| SqliteFailure::WorkerStopped)?;
        answer.await.map_err(|_| SqliteFailure::WorkerStopped)?
    }

    async fn read<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> ReadJob,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        // As for writes: a full queue makes the caller wait here.
        self.readers
            .send(job(reply))
            .await
            .map_err(|_| SqliteFailure::WorkerStopped)?;
        answer.await.map_err(|_| SqliteFailure::WorkerStopped)?
    }
}

/// The body of an export's thread: one read transaction (a WAL snapshot, which writers do
/// not disturb) counts the entries and reads them in key order.
fn export_rows(
    conn: &mut rusqlite::Connection,
    count: &mut Option<oneshot::Sender<Result<u64, StoreError>>>,
    batches: &tokio::sync::mpsc::Sender<Result<Entries, StoreError>>,
) -> Result<(), SqliteFailure> {
    let tx = conn.transaction()?;
    let total: i64 = tx.query_row("SELECT count(*) FROM entries", [], |row| row.get(0))?;
    if let Some(count) = count.take()
        && count.send(Ok(u64::try_from(total).unwrap_or(0))).is_err()
    {
        return Ok(());
    }
    let mut select = tx.prepare("SELECT key, value FROM entries ORDER BY key")?;
    let mut rows = select.query([])?;
    let mut batch = Vec::with_capacity(crate::EXPORT_BATCH);
    while let Some(row) = rows.next()? {
        batch.push((row.get(0)?, row.get(1)?));
        if batch.len() == crate::EXPORT_BATCH
            && batches
                .blocking_send(Ok(std::mem::take(&mut batch)))
                .is_err()
        {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(Ok(batch));
    }
    Ok(())
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.path)
            .field("stats", &self.commit_stats())
            .finish()
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        validate_key(key)?;
        let key = key.to_owned();
        self.read(|reply| ReadJob::Get { key, reply }).await
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(vec![Op::put(key.to_owned(), Expect::Any, value.to_vec())])
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write(vec![Op::delete(key.to_owned(), Expect::Any)])
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.read(|reply| ReadJob::List { prefix, reply }).await
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.write(ops).await
    }

    /// Reads on a thread of its own, with its own read-only connection, so that a long
    /// export takes no reading thread from the requests.
    async fn export(&self) -> Result<Export, StoreError> {
        let mut conn = schema::open_reader(&self.path, SqliteOptions::default().busy_timeout)?;
        let (count_tx, count_rx) = oneshot::channel();
        let (sender, batches) = tokio::sync::mpsc::channel(crate::backend::EXPORT_QUEUE);
        std::thread::Builder::new()
            .name("ward-sqlite-export".into())
            .spawn(move || {
                let mut count_tx = Some(count_tx);
                if let Err(e) = export_rows(&mut conn, &mut count_tx, &sender) {
                    // A failure before the count is reported in its place, after it in
                    // the batches' stream.
                    match count_tx.take() {
                        Some(tx) => {
                            let _ = tx.send(Err(e.into()));
                        }
                        None => {
                            let _ = sender.blocking_send(Err(e.into()));
                        }
                    }
                }
            })
            .map_err(SqliteFailure::Spawn)?;
        let count = count_rx.await.map_err(|_| SqliteFailure::WorkerStopped)??;
        Ok(Export { count, batches })
    }

    async fn replace_all(
        &self,
        steps: tokio::sync::mpsc::Receiver<Import>,
    ) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriteJob::Replace { steps, reply })
            .await
            .map_err(|_| SqliteFailure::WorkerStopped)?;
        answer.await.map_err(|_| SqliteFailure::WorkerStopped)?
    }

    /// Deleted rows' pages are zeroed as SQLite frees them (`secure_delete`, set on the
    /// writer), but the write-ahead log still holds earlier images of those pages: this
    /// checkpoints the log into the database and truncates it to nothing.
    async fn erase_deleted(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriteJob::Checkpoint { reply })
            .await
            .map_err(|_| SqliteFailure::WorkerStopped)?;
        answer.await.map_err(|_| SqliteFailure::WorkerStopped)?
    }
}
