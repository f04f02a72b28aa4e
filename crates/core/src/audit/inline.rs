//! Group commit without a writer thread, for files: the request that finds no write in
//! progress becomes the leader, yields once (so that the other requests ready on its worker
//! reach their own audit write and queue their entries), then writes every queued entry (its
//! own included) in one `write(2)`; requests that arrive meanwhile queue their entries and
//! wait. When the leader is done it answers the waiters and hands the lead to the first
//! request still queued.
//!
//! Appending to a file in the page cache takes microseconds, so doing it on the request's own
//! task costs less than waking a thread and being woken back (two context switches per entry,
//! and allocations freed on another thread). Sockets, which can block for seconds, and files
//! with `fsync` keep their writer thread ([`super::writer`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::oneshot;
use ward_api::audit::ChainHead;

use super::sink::Sink;
use super::writer::{DeviceMetrics, write_entries};

/// What a waiting request is told.
enum Turn {
    /// Its entry was written (`true`) or could not be (`false`).
    Written(bool),
    /// Its entry is still queued and no one is writing: it leads the next batch.
    Lead,
}

/// Where a queued entry stands.
enum Queued {
    /// Its request leads the next batch.
    Leading(u64),
    /// Its request waits to be told.
    Following(u64, oneshot::Receiver<Turn>),
}

struct Item {
    ticket: u64,
    entries: Vec<Vec<u8>>,
    /// `None` for the leader's own entry (it learns its result directly).
    done: Option<oneshot::Sender<Turn>>,
}

struct State {
    queue: VecDeque<Item>,
    /// A leader is writing (the sink is out of the state meanwhile).
    busy: bool,
    next_ticket: u64,
    sink: Option<Sink>,
    head: ChainHead,
    reopen: bool,
    last_error_log: Option<Instant>,
    /// Batches written so far.
    batches: u64,
}

/// A device's inline writer.
pub(crate) struct InlineWriter {
    metrics: DeviceMetrics,
    state: Mutex<State>,
}

impl InlineWriter {
    pub(crate) fn new(device: &str, sink: Sink, head: ChainHead) -> Self {
        Self {
            metrics: DeviceMetrics::new(device),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                busy: false,
                next_ticket: 0,
                sink: Some(sink),
                head,
                reopen: false,
                last_error_log: None,
                batches: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where the chain stands.
    pub(crate) fn head(&self) -> ChainHead {
        self.lock().head.clone()
    }

    /// Reopens the file before the next batch (after rotation).
    pub(crate) fn reopen(&self) {
        self.lock().reopen = true;
    }

    /// Writes one request's `entries`, in order; `true` once they are written.
    pub(crate) async fn write(&self, entries: Vec<Vec<u8>>) -> bool {
        let (ticket, rx) = match self.enqueue(entries) {
            Queued::Leading(ticket) => {
                // Let the other requests this worker has ready reach their own audit write
                // first, so that one write(2) carries their lines too.
                let mut leader = Leader {
                    writer: self,
                    ticket: Some(ticket),
                };
                tokio::task::yield_now().await;
                leader.ticket = None;
                return self.lead(ticket);
            }
            Queued::Following(ticket, rx) => (ticket, rx),
        };
        let mut guard = Follower {
            writer: self,
            rx: Some(rx),
        };
        let turn = match guard.rx.as_mut() {
            Some(rx) => rx.await,
            None => return false,
        };
        guard.rx = None;
        match turn {
            Ok(Turn::Written(ok)) => ok,
            Ok(Turn::Lead) => self.lead(ticket),
            Err(_) => false,
        }
    }

    /// Queues `entries`: the first request to find no write in progress leads the next batch.
    fn enqueue(&self, entries: Vec<Vec<u8>>) -> Queued {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        if !st.busy {
            st.busy = true;
            st.queue.push_back(Item {
                ticket,
                entries,
                done: None,
            });
            return Queued::Leading(ticket);
        }
        let (tx, rx) = oneshot::channel();
        st.queue.push_back(Item {
            ticket,
            entries,
            done: Some(tx),
        });
        Queued::Following(ticket, rx)
    }

    /// Writes one batch (which holds the leader's own entry), answers it, and passes the
    /// lead on. Synchronous: nothing here awaits, so a leader cannot be cancelled midway.
    fn lead(&self, own: u64) -> bool {
        let (batch, mut sink, mut head, reopen, mut last_error_log) = {
            let mut st = self.lock();
            let batch: Vec<Item> = st.queue.drain(..).collect();
            let reopen = std::mem::take(&mut st.reopen);
            (
                batch,
                st.sink.take(),
                st.head.clone(),
                reopen,
                st.last_error_log,
            )
        };
        let mut entries = Vec::with_capacity(batch.len() * 2);
        let mut waiting = Vec::with_capacity(batch.len());
        for item in batch {
            entries.extend(item.entries);
            waiting.push((item.ticket, item.done));
        }
        let ok = match sink.as_mut() {
            Some(sink) => {
                if reopen {
                    sink.reopen();
                }
                write_entries(
                    &self.metrics,
                    sink,
                    &mut head,
                    &entries,
                    &mut last_error_log,
                )
            }
            None => false,
        };
        let mut own_result = false;
        for (ticket, done) in waiting {
            if ticket == own {
                own_result = ok;
            } else if let Some(done) = done {
                let _ = done.send(Turn::Written(ok));
            }
        }
        let mut st = self.lock();
        st.batches += 1;
        st.sink = sink;
        st.head = head;
        st.last_error_log = last_error_log;
        // Hand the lead to the first queued request still waiting for an answer.
        loop {
            let Some(done) = st.queue.iter_mut().find_map(|i| i.done.take()) else {
                st.busy = false;
                // Entries whose requests went away are still written by the next leader;
                // with none left to lead, write them now.
                if !st.queue.is_empty() {
                    st.busy = true;
                    let ticket = st.queue.front().map_or(0, |i| i.ticket);
                    drop(st);
                    self.lead(ticket);
                }
                return own_result;
            };
            if done.send(Turn::Lead).is_ok() {
                return own_result;
            }
        }
    }
}

/// A leader between taking the lead and writing. If it is dropped there (the client went
/// away), it writes the batch before it goes, so the queue never stalls.
struct Leader<'a> {
    writer: &'a InlineWriter,
    ticket: Option<u64>,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.writer.lead(ticket);
        }
    }
}

/// A waiting request. If it is dropped (the client went away) after being told to lead, it
/// leads before it goes, so the queue never stalls.
struct Follower<'a> {
    writer: &'a InlineWriter,
    rx: Option<oneshot::Receiver<Turn>>,
}

impl Drop for Follower<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            // No answer can arrive after close: either it came before, or the sender sees
            // the request gone and picks someone else.
            rx.close();
            if let Ok(Turn::Lead) = rx.try_recv() {
                let own = {
                    let st = self.writer.lock();
                    st.queue.iter().find(|i| i.done.is_none()).map(|i| i.ticket)
                };
                self.writer.lead(own.unwrap_or(u64::MAX));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::sink::Target;
    use std::sync::Arc;

    fn writer(dir: &tempfile::TempDir) -> (Arc<InlineWriter>, std::path::PathBuf) {
        let path = dir.path().join("audit.log");
        let sink = Sink::new(Target::File {
            path: path.clone(),
            fsync: false,
        });
        let writer = InlineWriter::new("test/", sink, ChainHead::genesis("00"));
        (Arc::new(writer), path)
    }

    fn lines(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// On one thread, requests that are ready together share one write: the leader lets the
    /// others queue before it writes.
    #[tokio::test]
    async fn requests_ready_together_share_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, path) = writer(&dir);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let writer = Arc::clone(&writer);
            tasks.spawn(async move {
                writer
                    .write(vec![format!("{{\"i\":{i}}}").into_bytes()])
                    .await
            });
        }
        let mut written = 0;
        while let Some(ok) = tasks.join_next().await {
            assert!(ok.unwrap());
            written += 1;
        }
        assert_eq!(written, 16);
        assert_eq!(lines(&path).len(), 16);
        // The first request led a batch holding every line: the others queued while it
        // yielded.
        assert_eq!(writer.lock().batches, 1);
    }

    /// A leader whose request goes away while it waits for others to queue still writes the
    /// batch, and the writer goes on serving.
    #[tokio::test]
    async fn a_leader_dropped_before_writing_still_writes_and_frees_the_lead() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, path) = writer(&dir);
        {
            let mut leading = std::pin::pin!(writer.write(vec![b"{\"who\":\"gone\"}".to_vec()]));
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            assert!(leading.as_mut().poll(&mut cx).is_pending());
            assert!(writer.lock().busy);
        }
        assert!(!writer.lock().busy);
        assert_eq!(lines(&path).len(), 1);
        assert_eq!(writer.lock().batches, 1);
        assert!(writer.write(vec![b"{\"who\":\"next\"}".to_vec()]).await);
        let all = lines(&path);
        assert_eq!(all.len(), 2);
        assert!(all[0].contains("gone") && all[1].contains("next"));
    }
}
