//! Flush-behind for audit files: every [`CHUNK`] bytes appended, a helper thread asks the
//! kernel to start writing the new lines to disk and to drop from the page cache what it has
//! written since the last time (`posix_fadvise(DONTNEED)` does both).
//!
//! An audit log is written once and read rarely. Left to the kernel, it piles up dirty in the
//! page cache until writeback's 30-second timer or its memory thresholds. That is gigabytes at
//! a busy server's rate: they push the database's pages out of the cache, their loss on a power
//! cut is as large, and on the project's VM appending to a file at times grew six times dearer
//! once some 600 MB of it were cached (BENCHMARKS.md, 2026-12-04). Flushed behind, a device
//! keeps at most a few chunks of its file in memory, and appends cost the same at any size.
//! (RocksDB's `bytes_per_sync` and PostgreSQL's `wal_writer_flush_after` do this for the same
//! reasons.)
//!
//! The requests that write the file never wait for any of it: they only count bytes and, at a
//! chunk's end, nudge the thread.

use std::fs::File;
use std::io;
use std::sync::mpsc;

/// Bytes appended between two flushes.
pub(crate) const CHUNK: u64 = 8 << 20;

/// The flush-behind of one open audit file; the helper thread ends when this is dropped.
pub(crate) struct FlushBehind {
    /// Nudges the helper thread; `None` where the OS has no `posix_fadvise`.
    nudge: Option<mpsc::SyncSender<()>>,
    /// Bytes appended since the last nudge.
    unflushed: u64,
}

impl FlushBehind {
    /// Starts flushing `file` behind its writer.
    pub(crate) fn start(file: &File) -> io::Result<Self> {
        Ok(Self {
            nudge: spawn(file)?,
            unflushed: 0,
        })
    }

    /// Counts `bytes` appended to the file; at a chunk's end the helper thread is nudged.
    pub(crate) fn wrote(&mut self, bytes: usize) {
        self.unflushed += bytes as u64;
        if self.unflushed >= CHUNK
            && let Some(nudge) = &self.nudge
        {
            self.unflushed = 0;
            // A full channel means the thread has a nudge waiting: it will cover these bytes.
            let _ = nudge.try_send(());
        }
    }
}

#[cfg(target_os = "linux")]
fn spawn(file: &File) -> io::Result<Option<mpsc::SyncSender<()>>> {
    let file = file.try_clone()?;
    let (nudge, nudged) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("audit-flush".into())
        .spawn(move || flush_while_nudged(&file, &nudged))?;
    Ok(Some(nudge))
}

#[cfg(not(target_os = "linux"))]
fn spawn(_file: &File) -> io::Result<Option<mpsc::SyncSender<()>>> {
    Ok(None)
}

/// The helper thread: at each nudge, advises the kernel that the whole file is not needed.
/// The pages still dirty have their writeback started and stay cached; those written back
/// since have left the cache. Each chunk so leaves it a nudge or two after it was written, or
/// later if the disk is slow: always the whole file, so that a chunk whose writeback was
/// still running at its second nudge is not left behind. (Ranges the cache no longer holds
/// cost the kernel almost nothing to skip.)
#[cfg(target_os = "linux")]
fn flush_while_nudged(file: &File, nudged: &mpsc::Receiver<()>) {
    use rustix::fs::{Advice, fadvise};
    while nudged.recv().is_ok() {
        // Advice only: a failure leaves the pages where they are, as without this.
        let _ = fadvise(file, 0, None, Advice::DontNeed);
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// Bytes of `path` in the page cache, as util-linux's `fincore` counts them.
    fn cached_bytes(path: &std::path::Path) -> u64 {
        let out = std::process::Command::new("fincore")
            .args(["--bytes", "--noheadings", "--raw", "--output", "RES"])
            .arg(path)
            .output()
            .expect("fincore (util-linux) runs");
        assert!(out.status.success(), "fincore failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// A file appended to in chunk-sized steps keeps only its last chunks in the page cache;
    /// without flush-behind every byte of it stays there.
    #[test]
    fn an_appended_file_keeps_only_its_last_chunks_in_the_page_cache() {
        // On the checkout's disk: a temporary directory may be a tmpfs, whose pages are the
        // file itself and never leave memory.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let line = [b"x".repeat(4095), b"\n".to_vec()].concat();
        let open = |name: &str| {
            let path = dir.path().join(name);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            (path, file)
        };
        let append = |file: &mut File, mut flush: Option<&mut FlushBehind>, chunks: u64| {
            for _ in 0..chunks * CHUNK / line.len() as u64 {
                file.write_all(&line).unwrap();
                if let Some(flush) = flush.as_deref_mut() {
                    flush.wrote(line.len());
                }
            }
        };
        let chunks = 8;
        let (plain, mut file) = open("plain.log");
        append(&mut file, None, chunks);
        let cached = cached_bytes(&plain);
        assert!(
            cached > chunks * CHUNK / 2,
            "without flush-behind: {cached} cached"
        );

        let (flushed, mut file) = open("flushed.log");
        let mut flush = FlushBehind::start(&file).unwrap();
        append(&mut file, Some(&mut flush), chunks);
        // Writeback and the helper thread run on their own time: a busy server's next
        // chunks nudge the thread again, and pages written back by then leave the cache.
        // Up to 40 more chunks over 10 seconds, at 32 MB/s: slow for any disk.
        for more in 0.. {
            std::thread::sleep(Duration::from_millis(250));
            let cached = cached_bytes(&flushed);
            if cached <= 3 * CHUNK {
                break;
            }
            assert!(more < 40, "with flush-behind: {cached} cached");
            append(&mut file, Some(&mut flush), 1);
        }
    }
}
