//! The pool of reading threads. WAL lets readers run alongside the writer, each on its own
//! read-only connection, and each read sees every commit acknowledged before it started.

use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::mpsc::Receiver;
use tokio::sync::oneshot;

use super::SqliteFailure;
use crate::backend::StoreError;
use crate::keys::{child_of, folder_end};

/// A request to a reading thread.
pub(super) enum ReadJob {
    /// The value at `key`.
    Get {
        key: String,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, StoreError>>,
    },
    /// The immediate children of `prefix`.
    List {
        prefix: String,
        reply: oneshot::Sender<Result<Vec<String>, StoreError>>,
    },
}

/// A reading thread's body: takes jobs from the shared queue until every sender is dropped.
pub(super) fn run(mut conn: Connection, jobs: Arc<Mutex<Receiver<ReadJob>>>) {
    loop {
        // Hold the queue's lock only while waiting for one job, so the other readers take
        // the next ones. A poisoned lock means another reader panicked: stop too, and the
        // callers see "worker stopped" once every reader is gone.
        let job = match jobs.lock() {
            Ok(mut queue) => match queue.blocking_recv() {
                Some(job) => job,
                None => return,
            },
            Err(_) => return,
        };
        // The receivers may have gone away (caller cancelled); nobody is left to tell.
        match job {
            ReadJob::Get { key, reply } => {
                let _ = reply.send(get(&conn, &key).map_err(StoreError::from));
            }
            ReadJob::List { prefix, reply } => {
                let _ = reply.send(list(&mut conn, &prefix).map_err(StoreError::from));
            }
        }
    }
}

fn get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, SqliteFailure> {
    let mut select = conn.prepare_cached("SELECT value FROM entries WHERE key = ?1")?;
    Ok(select.query_row([key], |row| row.get(0)).optional()?)
}

/// Walks the keys under `prefix` in order, folding them into child names; after a
/// sub-folder's first key it seeks past the whole sub-folder instead of reading it.
fn list(conn: &mut Connection, prefix: &str) -> Result<Vec<String>, SqliteFailure> {
    // One read transaction, so that every seek sees the same snapshot.
    let tx = conn.transaction()?;
    let end = folder_end(prefix);
    let mut children: Vec<String> = Vec::new();
    let mut start = prefix.to_owned();
    let mut bounded =
        tx.prepare_cached("SELECT key FROM entries WHERE key >= ?1 AND key < ?2 ORDER BY key")?;
    let mut unbounded =
        tx.prepare_cached("SELECT key FROM entries WHERE key >= ?1 ORDER BY key")?;
    loop {
        let mut rows = match &end {
            Some(end) => bounded.query([start.as_str(), end.as_str()])?,
            None => unbounded.query([start.as_str()])?,
        };
        let mut next_start = None;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let Some(child) = child_of(prefix, &key) else {
                continue;
            };
            if children.last().map(String::as_str) != Some(child) {
                children.push(child.to_owned());
            }
            if child.ends_with('/') {
                next_start = folder_end(&format!("{prefix}{child}"));
                break;
            }
        }
        match next_start {
            Some(next) => start = next,
            None => break,
        }
    }
    drop(bounded);
    drop(unbounded);
    tx.finish()?;
    Ok(children)
}
