//! A device's writer thread: takes entries from a bounded queue, chains them, writes them in
//! batches, and tells each waiting request whether its line was written.
//!
//! Requests do not take turns at the sink: while one batch is being written, the entries of
//! concurrent requests queue up and go out together in the next write (a group flush). Each
//! request still waits for its own line, so "written before the response" holds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use ward_api::audit::{ChainHead, Entry};

use super::checkpoint::Forced;
use super::inline::InlineWriter;
use super::sink::Sink;

/// How a device's lines reach its sink.
pub(crate) enum Writer {
    /// Written by the requests themselves, one leader per batch (plain files, stdout).
    Inline(Box<InlineWriter>),
    /// Written by the device's own thread (sockets, syslog, files with `fsync`).
    Thread {
        /// The thread's bounded queue.
        queue: mpsc::Sender<Job>,
        /// Where the chain stands (updated by the thread).
        head: Arc<Mutex<ChainHead>>,
    },
}

impl Writer {
    /// Starts the writer of the device at `path`.
    pub(crate) fn start(
        path: &str,
        sink: Sink,
        head: ChainHead,
        inline: bool,
    ) -> std::io::Result<Self> {
        if inline {
            return Ok(Self::Inline(Box::new(InlineWriter::new(path, sink, head))));
        }
        let head = Arc::new(Mutex::new(head));
        let queue = spawn(path, sink, head.clone())?;
        Ok(Self::Thread { queue, head })
    }

    /// Writes one request's entries, in order and next to each other; `true` once they
    /// are written.
    pub(crate) async fn write(&self, entries: Vec<Entry>) -> bool {
        match self {
            Self::Inline(w) => w.write(entries).await,
            Self::Thread { queue, .. } => {
                let (done, wait) = oneshot::channel();
                if queue.send(Job::Lines { entries, done }).await.is_err() {
                    return false;
                }
                wait.await.unwrap_or(false)
            }
        }
    }

    /// Writes a checkpoint now, if `forced` takes one; `true` unless it could not be
    /// written.
    pub(crate) async fn checkpoint(&self, forced: Forced) -> bool {
        match self {
            Self::Inline(w) => w.checkpoint(&forced),
            Self::Thread { queue, .. } => {
                let (done, wait) = oneshot::channel();
                if queue.send(Job::Checkpoint { forced, done }).await.is_err() {
                    return false;
                }
                wait.await.unwrap_or(false)
            }
        }
    }

    /// Reopens the destination before the next write (after rotation).
    pub(crate) fn reopen(&self) {
        match self {
            Self::Inline(w) => w.reopen(),
            Self::Thread { queue, .. } => {
                let _ = queue.try_send(Job::Reopen);
            }
        }
    }

    /// Where the chain stands.
    pub(crate) fn head(&self) -> ChainHead {
        match self {
            Self::Inline(w) => w.head(),
            Self::Thread { head, .. } => match head.lock() {
                Ok(h) => h.clone(),
                Err(p) => p.into_inner().clone(),
            },
        }
    }
}

/// Entries one device may have waiting before requests wait to queue theirs.
pub(crate) const QUEUE_DEPTH: usize = 4096;
/// Most entries written in one batch.
const MAX_BATCH: usize = 512;

/// What a device's writer is asked to do.
pub(crate) enum Job {
    /// Chain and write one request's serialised entries; answer whether they were written.
    Lines {
        /// The entries, JSON objects without the chain fields.
        entries: Vec<Entry>,
        /// Told `true` once the lines are written, `false` if they could not be.
        done: oneshot::Sender<bool>,
    },
    /// Close and reopen the destination (after log rotation).
    Reopen,
    /// Write a checkpoint (after the lines of the same batch); answer whether it was
    /// written.
    Checkpoint {
        forced: Forced,
        done: oneshot::Sender<bool>,
    },
}

/// Starts the writer thread of the device at `path`. The thread ends once every sender of
/// the returned queue is dropped.
fn spawn(
    path: &str,
    mut sink: Sink,
    head: Arc<Mutex<ChainHead>>,
) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, mut rx) = mpsc::channel::<Job>(QUEUE_DEPTH);
    let metrics = DeviceMetrics::new(path);
    std::thread::Builder::new()
        .name(format!("audit-{}", path.trim_end_matches('/')))
        .spawn(move || {
            let mut last_error_log: Option<Instant> = None;
            while let Some(first) = rx.blocking_recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                write_batch(&metrics, &mut sink, &head, jobs, &mut last_error_log);
            }
        })?;
    Ok(tx)
}

fn write_batch(
    metrics: &DeviceMetrics,
    sink: &mut Sink,
    head: &Mutex<ChainHead>,
    jobs: Vec<Job>,
    last_error_log: &mut Option<Instant>,
) {
    let mut next = match head.lock() {
        Ok(h) => h.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let mut entries = Vec::with_capacity(jobs.len());
    let mut waiting = Vec::with_capacity(jobs.len());
    let mut checkpoints = Vec::new();
    for job in jobs {
        match job {
            Job::Checkpoint { forced, done } => checkpoints.push((forced, done)),
            // Lines queued before the reopen go to the new file too: they are not yet
            // written, and the chain runs on across files anyway.
            Job::Reopen => sink.reopen(),
            Job::Lines {
                entries: mine,
                done,
            } => {
                entries.extend(mine);
                waiting.push(done);
            }
        }
    }
    if !entries.is_empty() {
        let ok = write_entries(metrics, sink, &mut next, &entries, last_error_log);
        for done in waiting {
            let _ = done.send(ok);
        }
    }
    for (forced, done) in checkpoints {
        let ok = write_checkpoint(metrics, sink, &mut next, &forced, last_error_log);
        let _ = done.send(ok);
    }
    match head.lock() {
        Ok(mut h) => *h = next,
        Err(p) => *p.into_inner() = next,
    }
}

/// Writes a checkpoint after `head`, if `forced` takes one; `true` unless it failed.
pub(crate) fn write_checkpoint(
    metrics: &DeviceMetrics,
    sink: &mut Sink,
    head: &mut ChainHead,
    forced: &Forced,
    last_error_log: &mut Option<Instant>,
) -> bool {
    match sink.write_chained(head, &[], Some(forced)) {
        Ok(()) => true,
        Err(e) => {
            metrics.failures.increment(1);
            if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                tracing::error!(device = %metrics.device, error = %crate::Report(&e), "audit device failed to write a checkpoint");
                *last_error_log = Some(Instant::now());
            }
            false
        }
    }
}

/// A device's metric handles, registered once: registering a labelled metric builds and
/// hashes its key, which a batch need not pay for.
pub(crate) struct DeviceMetrics {
    /// The device's path, for log lines.
    device: String,
    /// Seconds to chain and write one batch.
    flush: metrics::Histogram,
    writes: metrics::Counter,
    failures: metrics::Counter,
}

impl DeviceMetrics {
    /// The handles of the device at `device`.
    pub(crate) fn new(device: &str) -> Self {
        let labels = [("device", device.to_owned())];
        Self {
            device: device.to_owned(),
            flush: metrics::histogram!("ward_audit_flush_seconds", &labels),
            writes: metrics::counter!("ward_audit_writes_total", &labels),
            failures: metrics::counter!("ward_audit_failures_total", &labels),
        }
    }
}

/// Chains `entries` after `head` and writes them in one batch. On success `head` moves past
/// them; on failure it stays, so the next batch re-uses these sequence numbers and a
/// verifier sees no gap for lines that never reached the sink.
pub(crate) fn write_entries(
    metrics: &DeviceMetrics,
    sink: &mut Sink,
    head: &mut ChainHead,
    entries: &[Entry],
    last_error_log: &mut Option<Instant>,
) -> bool {
    let started = Instant::now();
    let result = sink.write_chained(head, entries, None);
    let count = entries.len() as u64;
    metrics.flush.record(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            metrics.writes.increment(count);
            true
        }
        Err(e) => {
            metrics.failures.increment(count);
            // A dead destination fails every batch: one log line per second is enough.
            if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                tracing::error!(device = %metrics.device, error = %crate::Report(&e), "audit device failed to write");
                *last_error_log = Some(Instant::now());
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::sink::Target;

    /// Requests writing a file at once each get their lines in, next to each other, in one
    /// chain.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_append_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let target = Target::File {
            path: path.clone(),
            fsync: false,
        };
        let sink = Sink::new(target, Arc::default());
        let writer =
            Arc::new(Writer::start("test/", sink, ChainHead::genesis("00"), true).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let writer = Arc::clone(&writer);
            tasks.spawn(async move {
                let entry = |part: &str| {
                    Entry::from_object(format!("{{\"i\":{i},\"part\":\"{part}\"}}").as_bytes())
                };
                writer
                    .write(vec![entry("request"), entry("response")])
                    .await
            });
        }
        while let Some(written) = tasks.join_next().await {
            assert!(written.unwrap());
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 128);
        for pair in lines.chunks(2) {
            let request: serde_json::Value = serde_json::from_str(pair[0]).unwrap();
            let response: serde_json::Value = serde_json::from_str(pair[1]).unwrap();
            assert_eq!(request["i"], response["i"]);
            assert_eq!(request["part"], "request");
            assert_eq!(response["part"], "response");
        }
        let mut verifier = ward_api::audit::ChainVerifier::new();
        for line in &lines {
            verifier.push(line.as_bytes()).unwrap();
        }
        assert_eq!(writer.head().seq, 128);
    }
}
