//! The single writer thread and its group commit.
//!
//! Every write (put, delete, commit) is queued to one thread that owns the only writing
//! connection. It takes everything queued, applies each logical commit inside its own
//! SAVEPOINT of ONE SQLite transaction, commits that transaction once (one fsync of the
//! write-ahead log for the whole group) and only then answers each waiter. Under concurrent
//! load the cost of the fsync is shared by the whole group; a lone writer pays it alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc::Receiver;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::{DurabilitySettings, SqliteFailure, schema};
use crate::backend::{Action, Expect, Import, Op, StoreError};
use crate::keys::validate_key;

/// The most logical commits folded into one SQLite transaction; bounds how long the first
/// waiter of a very large group waits behind the others.
const MAX_GROUP: usize = 512;

/// Where the answer to one logical commit goes.
type CommitReply = oneshot::Sender<Result<(), StoreError>>;

/// A request to the writer thread.
pub(super) enum WriteJob {
    /// Apply these ops atomically and durably.
    Commit { ops: Vec<Op>, reply: CommitReply },
    /// Checkpoint the write-ahead log into the database and truncate it.
    Checkpoint {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Replace every entry by the ones `steps` bring, in one transaction.
    Replace {
        steps: Receiver<Import>,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Report the writer connection's durability settings.
    Settings {
        reply: oneshot::Sender<Result<DurabilitySettings, StoreError>>,
    },
}

/// Counters the writer keeps, for benchmarks and metrics.
#[derive(Debug, Default)]
pub(super) struct WriterCounters {
    /// Logical commits answered Ok.
    pub(super) commits: AtomicU64,
    /// SQLite transactions committed (each one fsync).
    pub(super) transactions: AtomicU64,
    /// Logical commits answered Conflict.
    pub(super) conflicts: AtomicU64,
}

/// One queued commit waiting for the group's outcome.
struct Pending {
    reply: CommitReply,
    outcome: Result<(), StoreError>,
}

/// The writer thread's body: runs until every sender is dropped.
pub(super) fn run(
    mut conn: Connection,
    mut jobs: Receiver<WriteJob>,
    counters: Arc<WriterCounters>,
) {
    while let Some(first) = jobs.blocking_recv() {
        let mut group = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                WriteJob::Commit { ops, reply } => group.push((ops, reply)),
                WriteJob::Checkpoint { reply } => {
                    // Commits queued before it go first, so that what they delete is covered.
                    if !group.is_empty() {
                        commit_group(&mut conn, std::mem::take(&mut group), &counters);
                    }
                    let _ = reply.send(checkpoint(&conn));
                }
                WriteJob::Replace { steps, reply } => {
                    // Commits queued before it land first (and are then replaced).
                    if !group.is_empty() {
                        commit_group(&mut conn, std::mem::take(&mut group), &counters);
                    }
                    let _ = reply.send(replace_all(&conn, steps, &counters));
                }
                WriteJob::Settings { reply } => {
                    // The receiver may have gone away; nobody is left to tell.
                    let _ = reply.send(settings(&conn).map_err(StoreError::from));
                }
            }
            next = if group.len() < MAX_GROUP {
                jobs.try_recv().ok()
            } else {
                None
            };
        }
        if !group.is_empty() {
            commit_group(&mut conn, group, &counters);
        }
    }
}

/// Applies `group` in one transaction and answers every waiter.
fn commit_group(
    conn: &mut Connection,
    group: Vec<(Vec<Op>, CommitReply)>,
    counters: &WriterCounters,
) {
    let mut pending: Vec<Pending> = Vec::with_capacity(group.len());
    let mut failure: Option<Arc<rusqlite::Error>> = None;
    let mut jobs = group.into_iter();

    if let Err(err) = exec(conn, "BEGIN IMMEDIATE") {
        failure = Some(Arc::new(err));
    } else {
        for (ops, reply) in jobs.by_ref() {
            match apply_in_savepoint(conn, &ops) {
                Ok(outcome) => pending.push(Pending { reply, outcome }),
                Err(err) => {
                    // The transaction itself is broken (SQLite may already have rolled it
                    // back): nothing of this group can be committed.
                    pending.push(Pending {
                        reply,
                        outcome: Ok(()),
                    });
                    failure = Some(Arc::new(err));
                    break;
                }
            }
        }
        if failure.is_none()
            && let Err(err) = exec(conn, "COMMIT")
        {
            failure = Some(Arc::new(err));
        }
        if failure.is_some() && !conn.is_autocommit() {
            // Best effort: if even the rollback fails the connection is unusable and every
            // later group will fail at BEGIN and say so.
            let _ = conn.execute_batch("ROLLBACK");
        }
    }

    match &failure {
        None => {
            counters.transactions.fetch_add(1, Ordering::Relaxed);
        }
        Some(err) => {
            let commits = pending.len() + jobs.len();
            tracing::error!(error = %err, commits, "SQLite group commit failed; no commit of the group was applied");
        }
    }
    for job in pending {
        let outcome = match (&failure, job.outcome) {
            // A conflict wrote nothing, whatever became of the group.
            (_, Err(StoreError::Conflict)) => Err(StoreError::Conflict),
            (Some(err), _) => Err(SqliteFailure::Group(Arc::clone(err)).into()),
            (None, outcome) => outcome,
        };
        count(counters, &outcome);
        let _ = job.reply.send(outcome);
    }
    for (_, reply) in jobs {
        let outcome = match &failure {
            Some(err) => Err(SqliteFailure::Group(Arc::clone(err)).into()),
            None => Err(SqliteFailure::WorkerStopped.into()),
        };
        let _ = reply.send(outcome);
    }
}

fn count(counters: &WriterCounters, outcome: &Result<(), StoreError>) {
    match outcome {
        Ok(()) => counters.commits.fetch_add(1, Ordering::Relaxed),
        Err(StoreError::Conflict) => counters.conflicts.fetch_add(1, Ordering::Relaxed),
        Err(_) => 0,
    };
}

/// Applies one logical commit inside a savepoint. The inner `Result` is the answer for this
/// commit (`Conflict`, or an error confined to it and rolled back); the outer `Err` means
/// the enclosing transaction can no longer be trusted.
fn apply_in_savepoint(
    conn: &Connection,
    ops: &[Op],
) -> Result<Result<(), StoreError>, rusqlite::Error> {
    exec(conn, "SAVEPOINT logical_commit")?;
    match check_and_apply(conn, ops) {
        Ok(true) => {
            exec(conn, "RELEASE logical_commit")?;
            Ok(Ok(()))
        }
        Ok(false) => {
            // Nothing was written (conditions are checked first), but undo symmetrically.
            roll_back_savepoint(conn)?;
            Ok(Err(StoreError::Conflict))
        }
        Err(err) => {
            if conn.is_autocommit() {
                // SQLite rolled the whole transaction back on its own (disk full, I/O).
                return Err(err);
            }
            roll_back_savepoint(conn)?;
            Ok(Err(StoreError::from(SqliteFailure::Sqlite(err))))
        }
    }
}

/// Runs a statement without parameters, prepared once per connection: these run for every
/// logical commit, so parsing them each time would be measurable.
/// `PRAGMA wal_checkpoint(TRUNCATE)`: copies every page of the log into the database, then
/// truncates the log to zero bytes. It waits (up to the busy timeout) for readers still on
/// an older snapshot; if they outlast it, the log is not emptied and the caller is told.
fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .map_err(|e| StoreError::from(SqliteFailure::from(e)))?;
    if busy != 0 {
        return Err(SqliteFailure::CheckpointBusy.into());
    }
    Ok(())
}

fn exec(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Undoes everything since `SAVEPOINT logical_commit` and closes it.
fn roll_back_savepoint(conn: &Connection) -> Result<(), rusqlite::Error> {
    exec(conn, "ROLLBACK TO logical_commit")?;
    exec(conn, "RELEASE logical_commit")
}

/// Checks every condition against the state before the commit, then applies every action
/// in order. `Ok(false)` when a condition does not hold (nothing written).
fn check_and_apply(conn: &Connection, ops: &[Op]) -> Result<bool, rusqlite::Error> {
    let mut select = conn.prepare_cached("SELECT value FROM entries WHERE key = ?1")?;
    for op in ops {
        let holds = match &op.expect {
            Expect::Any => true,
            Expect::Absent => select
                .query_row([&op.key], |_| Ok(()))
                .optional()?
                .is_none(),
            Expect::Value(expected) => {
                let current: Option<Vec<u8>> =
                    select.query_row([&op.key], |row| row.get(0)).optional()?;
                current.as_ref() == Some(expected)
            }
        };
        if !holds {
            return Ok(false);
        }
    }
    for op in ops {
        match &op.action {
            Action::Put(value) => {
                conn.prepare_cached(
                    "INSERT INTO entries (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )?
                .execute(rusqlite::params![op.key, value])?;
            }
            Action::Delete => {
                conn.prepare_cached("DELETE FROM entries WHERE key = ?1")?
                    .execute([&op.key])?;
            }
            Action::Check => {}
        }
    }
    Ok(true)
}

/// Deletes every entry and writes the imported ones in one transaction, committed only when
/// the import says so. This thread waits for the steps meanwhile, so every other write
/// waits too: the store is never seen half replaced.
fn replace_all(
    conn: &Connection,
    mut steps: Receiver<Import>,
    counters: &WriterCounters,
) -> Result<u64, StoreError> {
    let sqlite = |e: rusqlite::Error| StoreError::from(SqliteFailure::Sqlite(e));
    exec(conn, "BEGIN IMMEDIATE").map_err(sqlite)?;
    let outcome = (|| {
        exec(conn, "DELETE FROM entries").map_err(sqlite)?;
        let mut insert = conn
            .prepare_cached("INSERT INTO entries (key, value) VALUES (?1, ?2)")
            .map_err(sqlite)?;
        let mut written = 0u64;
        loop {
            match steps.blocking_recv() {
                Some(Import::Entries(batch)) => {
                    for (key, value) in batch {
                        validate_key(&key)?;
                        insert
                            .execute(rusqlite::params![key, value])
                            .map_err(sqlite)?;
                        written += 1;
                    }
                }
                Some(Import::Commit) => break,
                None => return Err(StoreError::ImportAborted),
            }
        }
        exec(conn, "COMMIT").map_err(sqlite)?;
        Ok(written)
    })();
    match &outcome {
        Ok(_) => {
            counters.transactions.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) if !conn.is_autocommit() => {
            // Best effort, as for a failed group: a connection that cannot roll back fails
            // at the next BEGIN and says so.
            let _ = conn.execute_batch("ROLLBACK");
        }
        Err(_) => {}
    }
    outcome
}

/// Reads back the settings that make commits durable, from the connection that commits.
fn settings(conn: &Connection) -> Result<DurabilitySettings, SqliteFailure> {
    let journal_mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |row| row.get(0))?;
    let schema_version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Ok(DurabilitySettings {
        journal_mode,
        synchronous: schema::synchronous_name(synchronous).to_owned(),
        schema_version,
    })
}
