//! A device's writer thread: takes entries from a bounded queue, chains them, writes them in
//! batches, and tells each waiting request whether its line was written.
//!
//! Requests do not take turns at the sink: while one batch is being written, the entries of
//! concurrent requests queue up and go out together in the next write (a group flush). Each
//! request still waits for its own line, so "written before the response" holds.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use ward_api::audit::ChainHead;

use super::sink::Sink;

/// Entries one device may have waiting before requests wait to queue theirs.
pub(crate) const QUEUE_DEPTH: usize = 4096;
/// Most entries written in one batch.
const MAX_BATCH: usize = 512;

/// What a device's writer is asked to do.
pub(crate) enum Job {
    /// Chain and write one serialised entry; answer whether it was written.
    Line {
        /// The entry, a JSON object without the chain fields.
        entry: Vec<u8>,
        /// Told `true` once the line is written, `false` if it could not be.
        done: oneshot::Sender<bool>,
    },
    /// Close and reopen the destination (after log rotation).
    Reopen,
}

/// Starts the writer thread of the device at `path`. The thread ends once every sender of
/// the returned queue is dropped.
pub(crate) fn spawn(
    path: &str,
    mut sink: Sink,
    head: Arc<Mutex<ChainHead>>,
) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, mut rx) = mpsc::channel::<Job>(QUEUE_DEPTH);
    let device = path.to_owned();
    std::thread::Builder::new()
        .name(format!("audit-{}", path.trim_end_matches('/')))
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                write_batch(&device, &mut sink, &head, jobs);
            }
        })?;
    Ok(tx)
}

fn write_batch(device: &str, sink: &mut Sink, head: &Mutex<ChainHead>, jobs: Vec<Job>) {
    let mut next = match head.lock() {
        Ok(h) => h.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let mut lines = Vec::with_capacity(jobs.len());
    let mut waiting = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job {
            // Lines queued before the reopen go to the new file too: they are not yet
            // written, and the chain runs on across files anyway.
            Job::Reopen => sink.reopen(),
            Job::Line { entry, done } => {
                lines.push(next.chain(&entry));
                waiting.push(done);
            }
        }
    }
    if lines.is_empty() {
        return;
    }
    let started = Instant::now();
    let result = sink.write_batch(&lines);
    let count = lines.len() as u64;
    let labels = [("device", device.to_owned())];
    metrics::histogram!("ward_audit_flush_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    let ok = match result {
        Ok(()) => {
            match head.lock() {
                Ok(mut h) => *h = next,
                Err(p) => *p.into_inner() = next,
            }
            metrics::counter!("ward_audit_writes_total", &labels).increment(count);
            true
        }
        Err(e) => {
            // The chain head stays where it was: the next batch re-uses these sequence
            // numbers, so a verifier sees no gap for lines that never reached the sink.
            metrics::counter!("ward_audit_failures_total", &labels).increment(count);
            tracing::error!(device, error = %e, "audit device failed to write");
            false
        }
    };
    for done in waiting {
        let _ = done.send(ok);
    }
}
