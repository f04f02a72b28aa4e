//! Group commit without a writer thread, for files: the request that finds no write in
//! progress becomes the leader, yields once (so that the other requests ready on its worker
//! reach their own audit write and queue their entries), then writes every queued entry (its
//! own included) in one `write(2)`; requests that arrive meanwhile queue their entries and
//! wait. When the leader is done it answers the waiters and hands the lead to the first
//! request still queued.
//!
//! Requests queue by the thread they run on (a slot per runtime worker, shared when there
//! are more threads than slots), and the slots' leaders take turns at the file. A batch's
//! waiters are then woken on the thread they ran on: one queue for the whole server made
//! every worker's requests wait for a leader on one of them, and be woken there, moving
//! them (and their connections' memory) from core to core.
//!
//! Appending to a file in the page cache takes microseconds, so doing it on the request's own
//! task costs less than waking a thread and being woken back (two context switches per entry,
//! and allocations freed on another thread). Sockets, which can block for seconds, and files
//! with `fsync` keep their writer thread ([`super::writer`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::oneshot;
use ward_api::audit::{ChainHead, Entry};

use super::checkpoint::Forced;
use super::sink::Sink;
use super::writer::{DeviceMetrics, write_checkpoint, write_entries};

/// Batching slots per device: more than the runtime has workers on most machines.
const SLOTS: usize = 16;

/// What a waiting request is told.
enum Turn {
    /// Its entries were written (`true`) or could not be (`false`).
    Written(bool),
    /// Its entries are still queued and no one is writing them: it leads the next batch.
    Lead,
}

/// Where a queued request stands.
enum Queued {
    /// It leads the next batch.
    Leading(u64),
    /// It waits to be told.
    Following(u64, oneshot::Receiver<Turn>),
}

struct Item {
    ticket: u64,
    entries: Vec<Entry>,
    /// `None` for the leader's own entries (it learns its result directly).
    done: Option<oneshot::Sender<Turn>>,
}

/// One thread's queue.
#[derive(Default)]
struct Slot {
    queue: VecDeque<Item>,
    /// A leader is writing this slot's batch.
    busy: bool,
    next_ticket: u64,
}

/// The file and where its chain stands, held by one leader at a time.
struct Out {
    sink: Sink,
    head: ChainHead,
    reopen: bool,
    last_error_log: Option<Instant>,
    /// Batches written so far.
    batches: u64,
}

/// A device's inline writer.
pub(crate) struct InlineWriter {
    metrics: DeviceMetrics,
    out: Mutex<Out>,
    slots: Box<[Mutex<Slot>]>,
}

/// The slot of the calling thread: threads take slots in turn, on their first write.
fn slot_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|slot| *slot)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl InlineWriter {
    pub(crate) fn new(device: &str, sink: Sink, head: ChainHead) -> Self {
        Self {
            metrics: DeviceMetrics::new(device),
            out: Mutex::new(Out {
                sink,
                head,
                reopen: false,
                last_error_log: None,
                batches: 0,
            }),
            slots: (0..SLOTS).map(|_| Mutex::default()).collect(),
        }
    }

    fn slot(&self, index: usize) -> std::sync::MutexGuard<'_, Slot> {
        lock(&self.slots[index])
    }

    /// Where the chain stands.
    pub(crate) fn head(&self) -> ChainHead {
        lock(&self.out).head.clone()
    }

    /// Writes a checkpoint now, if `forced` takes one; `true` unless it failed.
    pub(crate) fn checkpoint(&self, forced: &Forced) -> bool {
        let mut out = lock(&self.out);
        let out = &mut *out;
        if std::mem::take(&mut out.reopen) {
            out.sink.reopen();
        }
        write_checkpoint(
            &self.metrics,
            &mut out.sink,
            &mut out.head,
            forced,
            &mut out.last_error_log,
        )
    }

    /// Reopens the file before the next batch (after rotation).
    pub(crate) fn reopen(&self) {
        lock(&self.out).reopen = true;
    }

    /// Writes one request's `entries`, in order; `true` once they are written.
    pub(crate) async fn write(&self, entries: Vec<Entry>) -> bool {
        let slot = slot_index();
        let (ticket, rx) = match self.enqueue(slot, entries) {
            Queued::Leading(ticket) => {
                // Let the other requests this worker has ready reach their own audit write
                // first, so that one write(2) carries their lines too. (Not tokio's
                // `yield_now`: it waits for the worker's queue to empty, and a worker whose
                // queue is empty first steals from the other workers and polls for I/O.)
                let mut leader = Leader {
                    writer: self,
                    slot,
                    ticket: Some(ticket),
                };
                RequeueOnce(false).await;
                leader.ticket = None;
                return self.lead(slot, ticket);
            }
            Queued::Following(ticket, rx) => (ticket, rx),
        };
        let mut guard = Follower {
            writer: self,
            slot,
            rx: Some(rx),
        };
        let turn = match guard.rx.as_mut() {
            Some(rx) => rx.await,
            None => return false,
        };
        guard.rx = None;
        match turn {
            Ok(Turn::Written(ok)) => ok,
            Ok(Turn::Lead) => self.lead(slot, ticket),
            Err(_) => false,
        }
    }

    /// Queues `entries` in `slot`: the first request to find the slot's batch not being
    /// written leads the next one.
    fn enqueue(&self, slot: usize, entries: Vec<Entry>) -> Queued {
        let mut st = self.slot(slot);
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

    /// Writes one batch of `slot` (which holds the leader's own entries), answers it, and
    /// passes the lead on. Synchronous: nothing here awaits, so a leader cannot be cancelled
    /// midway. The file is held only while the batch is chained and written; another
    /// slot's leader waits for it that long.
    fn lead(&self, slot: usize, own: u64) -> bool {
        let batch: Vec<Item> = self.slot(slot).queue.drain(..).collect();
        let mut entries = Vec::with_capacity(batch.len() * 2);
        let mut waiting = Vec::with_capacity(batch.len());
        for item in batch {
            entries.extend(item.entries);
            waiting.push((item.ticket, item.done));
        }
        let ok = {
            let mut out = lock(&self.out);
            let out = &mut *out;
            if std::mem::take(&mut out.reopen) {
                out.sink.reopen();
            }
            out.batches += 1;
            write_entries(
                &self.metrics,
                &mut out.sink,
                &mut out.head,
                &entries,
                &mut out.last_error_log,
            )
        };
        let mut own_result = false;
        for (ticket, done) in waiting {
            if ticket == own {
                own_result = ok;
            } else if let Some(done) = done {
                let _ = done.send(Turn::Written(ok));
            }
        }
        let mut st = self.slot(slot);
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
                    self.lead(slot, ticket);
                }
                return own_result;
            };
            if done.send(Turn::Lead).is_ok() {
                return own_result;
            }
        }
    }
}

/// Puts the task at the back of its worker's run queue once: a task that wakes itself while
/// it runs is queued behind the tasks already ready.
struct RequeueOnce(bool);

impl std::future::Future for RequeueOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// A leader between taking the lead and writing. If it is dropped there (the client went
/// away), it writes the batch before it goes, so the queue never stalls.
struct Leader<'a> {
    writer: &'a InlineWriter,
    slot: usize,
    ticket: Option<u64>,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.writer.lead(self.slot, ticket);
        }
    }
}

/// A waiting request. If it is dropped (the client went away) after being told to lead, it
/// leads before it goes, so the queue never stalls.
struct Follower<'a> {
    writer: &'a InlineWriter,
    slot: usize,
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
                    let st = self.writer.slot(self.slot);
                    st.queue.iter().find(|i| i.done.is_none()).map(|i| i.ticket)
                };
                self.writer.lead(self.slot, own.unwrap_or(u64::MAX));
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
        let sink = Sink::new(
            Target::File {
                path: path.clone(),
                fsync: false,
            },
            Arc::default(),
        );
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
                    .write(vec![Entry::from_object(
                        format!("{{\"i\":{i}}}").as_bytes(),
                    )])
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
        assert_eq!(lock(&writer.out).batches, 1);
    }

    /// A leader whose request goes away while it waits for others to queue still writes the
    /// batch, and the writer goes on serving.
    #[tokio::test]
    async fn a_leader_dropped_before_writing_still_writes_and_frees_the_lead() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, path) = writer(&dir);
        {
            let mut leading =
                std::pin::pin!(writer.write(vec![Entry::from_object(b"{\"who\":\"gone\"}")]));
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            assert!(leading.as_mut().poll(&mut cx).is_pending());
            assert!(writer.slot(slot_index()).busy);
        }
        assert!(!writer.slot(slot_index()).busy);
        assert_eq!(lines(&path).len(), 1);
        assert_eq!(lock(&writer.out).batches, 1);
        assert!(
            writer
                .write(vec![Entry::from_object(b"{\"who\":\"next\"}")])
                .await
        );
        let all = lines(&path);
        assert_eq!(all.len(), 2);
        assert!(all[0].contains("gone") && all[1].contains("next"));
    }
}
