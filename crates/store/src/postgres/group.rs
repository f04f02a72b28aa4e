//! Group commit: the commits that arrive while others are being written go to PostgreSQL
//! together, as one transaction, one flush to disk and (in a cluster) one notification.
//!
//! A few writer tasks take whatever commits are queued, up to [`MAX_BATCH`], and apply them
//! in arrival order inside one transaction: first the advisory lock of every key of the
//! batch, in one global order (so batches, here or on another server, never wait on each
//! other in a cycle), then each commit's conditions are judged against the state as the
//! commits before it in the batch left it, exactly as if they had run one after another. A
//! commit whose condition fails gets [`StoreError::Conflict`] and changes nothing; the
//! others are written. If the transaction itself fails, every commit of the batch fails.
//!
//! Why it matters: PostgreSQL flushes each transaction's commit record on its own unless
//! they happen to coincide, and a transaction that sends a notification holds PostgreSQL's
//! notification lock until its commit is on disk, so notifying commits never share a flush.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, mpsc, oneshot};

use super::cluster::NotifyAs;
use super::{PostgresFailure, Statements, database, digest, lock_id};
use crate::backend::{Action, Expect, Op, StoreError};

/// Most commits written in one transaction.
const MAX_BATCH: usize = 128;
/// Transactions written at once (each on a connection of the pool).
pub(super) const WRITERS: usize = 4;

/// A commit waiting to be written, and where its outcome goes.
pub(super) struct Pending {
    pub(super) ops: Vec<Op>,
    pub(super) done: oneshot::Sender<Result<(), StoreError>>,
}

/// What the writer tasks share.
pub(super) struct Writers {
    pub(super) pool: deadpool_postgres::Pool,
    pub(super) sql: Arc<Statements>,
    pub(super) notify: Arc<OnceLock<NotifyAs>>,
    queue: Mutex<mpsc::UnboundedReceiver<Pending>>,
}

impl Writers {
    /// Starts the writer tasks; they end when the returned sender (and its clones) drop.
    pub(super) fn start(
        pool: deadpool_postgres::Pool,
        sql: Arc<Statements>,
        notify: Arc<OnceLock<NotifyAs>>,
    ) -> mpsc::UnboundedSender<Pending> {
        let (tx, rx) = mpsc::unbounded_channel();
        let writers = Arc::new(Self {
            pool,
            sql,
            notify,
            queue: Mutex::new(rx),
        });
        for _ in 0..WRITERS {
            tokio::spawn(Arc::clone(&writers).run());
        }
        tx
    }

    async fn run(self: Arc<Self>) {
        loop {
            let batch = {
                let mut queue = self.queue.lock().await;
                let Some(first) = queue.recv().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                batch
            };
            let ops: Vec<&[Op]> = batch.iter().map(|p| p.ops.as_slice()).collect();
            match self.write(&ops).await {
                Ok(outcomes) => {
                    for (pending, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = pending.done.send(outcome);
                    }
                }
                Err(e) => {
                    for pending in batch {
                        let _ = pending.done.send(Err(copy(&e)));
                    }
                }
            }
        }
    }

    /// Writes `commits` in one transaction; the outcome of each.
    async fn write(&self, commits: &[&[Op]]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let digests: HashMap<&str, Vec<u8>> = commits
            .iter()
            .flat_map(|ops| ops.iter())
            .map(|op| (op.key.as_str(), digest(&op.key)))
            .collect();
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::from(PostgresFailure::from(e)))?;
        let tx = client.transaction().await.map_err(database)?;
        if self.notify.get().is_some() {
            // Before the keys' locks, as a restore takes it before anything else.
            let commit_lock = tx
                .prepare_cached(&self.sql.commit_lock)
                .await
                .map_err(database)?;
            tx.execute(&commit_lock, &[]).await.map_err(database)?;
        }
        let lock = tx.prepare_cached(self.sql.lock).await.map_err(database)?;
        let mut locks: Vec<i64> = digests.values().map(|d| lock_id(d)).collect();
        locks.sort_unstable();
        locks.dedup();
        for id in &locks {
            tx.execute(&lock, &[id]).await.map_err(database)?;
        }
        // The stored value of every key a condition is on.
        let conditioned: Vec<&Vec<u8>> = commits
            .iter()
            .flat_map(|ops| ops.iter())
            .filter(|op| op.expect != Expect::Any)
            .map(|op| &digests[op.key.as_str()])
            .collect();
        let mut stored: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        if !conditioned.is_empty() {
            let read = tx
                .prepare_cached(&self.sql.read_for_check)
                .await
                .map_err(database)?;
            for row in tx.query(&read, &[&conditioned]).await.map_err(database)? {
                stored.insert(row.get(0), row.get(1));
            }
        }
        // What the batch has written so far, by digest: (key, value or deleted).
        let mut written: HashMap<&[u8], (&str, Option<&[u8]>)> = HashMap::new();
        let mut outcomes = Vec::with_capacity(commits.len());
        for ops in commits {
            let now = |d: &[u8]| -> Option<&[u8]> {
                match written.get(d) {
                    Some((_, value)) => *value,
                    None => stored.get(d).map(Vec::as_slice),
                }
            };
            let holds = ops.iter().all(|op| {
                let d = digests[op.key.as_str()].as_slice();
                match &op.expect {
                    Expect::Any => true,
                    Expect::Absent => now(d).is_none(),
                    Expect::Value(v) => now(d) == Some(v.as_slice()),
                }
            });
            if !holds {
                outcomes.push(Err(StoreError::Conflict));
                continue;
            }
            for op in ops.iter() {
                let d = digests[op.key.as_str()].as_slice();
                match &op.action {
                    Action::Put(v) => {
                        written.insert(d, (op.key.as_str(), Some(v.as_slice())));
                    }
                    Action::Delete => {
                        written.insert(d, (op.key.as_str(), None));
                    }
                    Action::Check => {}
                }
            }
            outcomes.push(Ok(()));
        }
        if written.is_empty() {
            tx.commit().await.map_err(database)?;
            return Ok(outcomes);
        }
        if let Some(notify) = self.notify.get() {
            // Sent after the restore lock and before the writes: a restore that committed
            // before this batch had the lock makes it fail here (and none can start until
            // it ends). Its values were encrypted for the storage as it was (another
            // keyring, perhaps another cluster's), so none of them may land in the restored
            // one.
            let payload = notify.payload(written.values().map(|(key, _)| *key));
            let epoch = notify.epoch.load(std::sync::atomic::Ordering::SeqCst);
            let send = tx
                .prepare_cached(&self.sql.notify_fenced)
                .await
                .map_err(database)?;
            let sent = tx
                .execute(&send, &[&notify.channel, &payload, &epoch])
                .await
                .map_err(database)?;
            if sent == 0 {
                return Err(StoreError::Unavailable(
                    "a snapshot was restored while this write waited: it was not applied; \
                     try again"
                        .into(),
                ));
            }
        }
        let (mut put_digests, mut put_keys, mut put_values) = (Vec::new(), Vec::new(), Vec::new());
        let mut deleted = Vec::new();
        for (d, (key, value)) in written {
            match value {
                Some(v) => {
                    put_digests.push(d);
                    put_keys.push(key);
                    put_values.push(v);
                }
                None => deleted.push(d),
            }
        }
        if !put_digests.is_empty() {
            let upsert = tx
                .prepare_cached(&self.sql.upsert)
                .await
                .map_err(database)?;
            tx.execute(&upsert, &[&put_digests, &put_keys, &put_values])
                .await
                .map_err(database)?;
        }
        if !deleted.is_empty() {
            let delete = tx
                .prepare_cached(&self.sql.delete)
                .await
                .map_err(database)?;
            tx.execute(&delete, &[&deleted]).await.map_err(database)?;
        }
        tx.commit().await.map_err(database)?;
        Ok(outcomes)
    }
}

/// The failure of a batch, for each of its commits (errors are not `Clone`).
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Unavailable(source) => {
            StoreError::Unavailable(super::describe(source.as_ref()).into())
        }
        StoreError::Backend(source) => StoreError::Backend(super::describe(source.as_ref()).into()),
        StoreError::InvalidKey => StoreError::InvalidKey,
        StoreError::Integrity => StoreError::Integrity,
        StoreError::Sealed => StoreError::Sealed,
        StoreError::Unsupported(what) => StoreError::Unsupported(what),
        StoreError::ImportAborted => StoreError::ImportAborted,
    }
}
