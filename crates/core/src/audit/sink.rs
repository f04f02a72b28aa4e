//! Where an audit device's lines go: a file (or stdout), a TCP or UDP socket, or syslog.
//! Blocking I/O: sockets and fsync'd files are driven by the device's own writer thread; files
//! without fsync, which append to the page cache in microseconds, by the requests themselves
//! ([`super::inline`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ward_api::audit::{ChainHead, Entry};

use super::checkpoint::{Forced, SharedCheckpointer, lock};
use super::flush_behind::FlushBehind;

/// How long a socket device waits to connect or to write before the batch counts as failed.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest last line read back when a file device starts (beyond it, the chain restarts).
const MAX_TAIL: u64 = 4 * 1024 * 1024;

/// A device's destination, from its type and options.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Append to a file (mode 0600; its directory must exist).
    File {
        /// The file.
        path: PathBuf,
        /// `fdatasync` after every batch.
        fsync: bool,
    },
    /// The server's standard output.
    Stdout,
    /// One JSON line per entry over a TCP connection (reconnected as needed).
    Tcp(String),
    /// One datagram per entry.
    Udp(String),
    /// RFC 3164 messages to a local syslog socket (`/dev/log`).
    Syslog {
        /// The Unix datagram socket of the syslog daemon.
        socket: PathBuf,
        /// `<PRI>` of every message: facility * 8 + severity (info).
        priority: u8,
        /// The tag before each message.
        tag: String,
    },
}

impl Target {
    /// Whether requests may write to it themselves: appends that never block for long
    /// (a file without fsync, stdout). Sockets and fsync'd files get a writer thread.
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self, Self::File { fsync: false, .. } | Self::Stdout)
    }
}

enum Conn {
    /// An appended file, and the thread that flushes it behind its writes.
    File(File, FlushBehind),
    Stdout,
    Tcp(TcpStream),
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

/// An open (or to-be-reopened) destination.
pub(crate) struct Sink {
    target: Target,
    conn: Option<Conn>,
    /// The device's checkpoints (empty while sealed, or for a device without a key).
    checkpoints: SharedCheckpointer,
    /// The open file was empty when opened and nothing is written to it yet: its first
    /// line is a checkpoint that says it opens the file.
    fresh: bool,
    /// A failed write could not be taken back: before the next one, the head is read
    /// again from the file's last complete line.
    resync: bool,
}

/// A batch of chained lines in one buffer, each ending in a newline.
#[derive(Default)]
struct Lines {
    bytes: Vec<u8>,
    /// Where each line ends (after its newline).
    ends: Vec<usize>,
}

/// A batch buffer grown past this is given back after its batch.
const KEEP_BATCH_BYTES: usize = 1 << 20;

impl Lines {
    fn clear(&mut self) {
        if self.bytes.capacity() > KEEP_BATCH_BYTES {
            *self = Self::default();
        }
        self.bytes.clear();
        self.ends.clear();
    }

    /// Every line, one after the other.
    fn all(&self) -> &[u8] {
        &self.bytes
    }

    /// Each line, with its newline.
    fn each(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.bytes[start..end])
    }
}

impl Sink {
    pub(crate) fn new(target: Target, checkpoints: SharedCheckpointer) -> Self {
        Self {
            target,
            conn: None,
            checkpoints,
            fresh: false,
            resync: false,
        }
    }

    /// Chains `entries` after `head` and writes them as one batch; `head` moves past them
    /// only if they were written. A checkpoint goes before them when they open a file, and
    /// after them when one is due (or `forced`).
    pub(crate) fn write_chained(
        &mut self,
        head: &mut ChainHead,
        entries: &[Entry],
        forced: Option<&Forced>,
    ) -> io::Result<()> {
        thread_local! {
            // The batch being written, kept between batches so that its memory is reused.
            // One per thread, not per device: the runtime's workers take turns leading a
            // file's batches, and a shared buffer's 10 to 40 KB would move from core to
            // core with every turn.
            static BATCH: std::cell::RefCell<Lines> = std::cell::RefCell::default();
        }
        let shared = Arc::clone(&self.checkpoints);
        let mut checkpoints = lock(&shared);
        let checkpointer = checkpoints.as_mut();
        let forced = forced.filter(|f| checkpointer.as_ref().is_some_and(|c| c.takes(f)));
        if entries.is_empty() && forced.is_none() {
            return Ok(());
        }
        if matches!(self.target, Target::File { .. }) && (checkpointer.is_some() || self.resync) {
            // Whether the file is new decides the first line.
            self.open()?;
            if std::mem::take(&mut self.resync)
                && let Some(after) = self.last_line().and_then(|l| ChainHead::after(&l))
            {
                *head = after;
            }
        }
        let lines = entries.len() as u64;
        BATCH.with_borrow_mut(|batch| {
            let mut next = head.clone();
            batch.clear();
            let mut mark = None;
            if let Some(c) = &checkpointer
                && self.fresh
            {
                mark = Some(c.chain(&mut next, &mut batch.bytes, "open", true, None));
                batch.ends.push(batch.bytes.len());
            }
            for entry in entries {
                next.chain_into(entry, &mut batch.bytes);
                batch.ends.push(batch.bytes.len());
            }
            let mut after_lines = false;
            if let Some(c) = &checkpointer {
                let reason = forced.map(|f| f.reason);
                if reason.is_some() || c.due_after(lines) {
                    let chain_break = forced.and_then(|f| f.chain_break.clone());
                    let reason = reason.unwrap_or("interval");
                    mark = Some(c.chain(&mut next, &mut batch.bytes, reason, false, chain_break));
                    batch.ends.push(batch.bytes.len());
                    after_lines = true;
                }
            }
            let result = self.write_batch(batch);
            if result.is_ok() {
                *head = next;
                self.fresh = false;
                if let Some(c) = checkpointer {
                    c.wrote(lines, mark, after_lines);
                }
            }
            result
        })
    }

    /// Opens the destination now (the check `sys/audit` runs before enabling a device).
    pub(crate) fn open(&mut self) -> io::Result<()> {
        if self.conn.is_none() {
            let (conn, empty) = connect(&self.target)?;
            self.conn = Some(conn);
            self.fresh = empty;
        }
        Ok(())
    }

    /// Closes the destination; the next write opens it again (a rotated file is recreated).
    pub(crate) fn reopen(&mut self) {
        self.conn = None;
    }

    /// Writes a batch of lines (each ending in a newline), all or nothing as far as the
    /// writer can tell. On failure the connection is dropped so the next batch reconnects.
    fn write_batch(&mut self, lines: &Lines) -> io::Result<()> {
        let result = self.try_write(lines);
        if result.is_err() {
            self.conn = None;
            // A socket may have died since the last batch: one fresh connection, one retry.
            if matches!(self.target, Target::Tcp(_)) {
                return self.try_write(lines).inspect_err(|_| self.conn = None);
            }
        }
        result
    }

    fn try_write(&mut self, lines: &Lines) -> io::Result<()> {
        if let Some(Conn::Tcp(stream)) = &self.conn
            && !peer_alive(stream)
        {
            self.conn = None;
        }
        self.open()?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(io::Error::other("not connected"));
        };
        match conn {
            Conn::File(file, flush) => {
                let fsync = matches!(self.target, Target::File { fsync: true, .. });
                if let Err(e) = append_whole(file, lines.all(), fsync) {
                    if e.untaken > 0 {
                        self.resync = true;
                    }
                    return Err(e.error);
                }
                flush.wrote(lines.all().len());
            }
            Conn::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(lines.all())?;
                out.flush()?;
            }
            Conn::Tcp(stream) => stream.write_all(lines.all())?,
            Conn::Udp(socket) => {
                for line in lines.each() {
                    socket.send(line)?;
                }
            }
            Conn::Unix(socket) => {
                let Target::Syslog { priority, tag, .. } = &self.target else {
                    return Err(io::Error::other(
                        "syslog connection without a syslog target",
                    ));
                };
                for line in lines.each() {
                    let mut msg = format!("<{priority}>{tag}: ").into_bytes();
                    msg.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
                    socket.send(&msg)?;
                }
            }
        }
        Ok(())
    }

    /// The last complete line of a file destination (none for sockets, empty or absent
    /// files). Used when a device starts, to continue the chain already in the file.
    pub(crate) fn last_line(&self) -> Option<Vec<u8>> {
        let Target::File { path, .. } = &self.target else {
            return None;
        };
        last_line(&mut File::open(path).ok()?).ok().flatten()
    }
}

/// A failed append: the error, and how many of its bytes are still in the file (could not
/// be taken back).
struct AppendError {
    error: io::Error,
    untaken: u64,
}

/// Appends `bytes` (whole lines) to `file` and, with `fsync`, flushes them to disk. On
/// failure (a full disk, a quota, an I/O error) whatever part of them reached the file is
/// taken back, so the file never holds a partial line, nor lines whose request was refused.
fn append_whole(file: &mut File, bytes: &[u8], fsync: bool) -> Result<(), AppendError> {
    let mut written = 0usize;
    let mut result = Ok(());
    while written < bytes.len() {
        match file.write(&bytes[written..]) {
            Ok(0) => {
                result = Err(io::Error::from(io::ErrorKind::WriteZero));
                break;
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() && fsync {
        result = file.sync_data();
    }
    let Err(error) = result else {
        return Ok(());
    };
    if written == 0 {
        return Err(AppendError { error, untaken: 0 });
    }
    // Appending only: the file's end is where these bytes end.
    let taken_back = file
        .metadata()
        .and_then(|m| file.set_len(m.len().saturating_sub(written as u64)));
    match taken_back {
        Ok(()) => {
            tracing::warn!(
                bytes = written,
                "audit write failed midway: the partial lines were taken back"
            );
            Err(AppendError { error, untaken: 0 })
        }
        Err(e) => {
            tracing::error!(bytes = written, error = %crate::Report(&e), "audit write failed midway and could not be taken back");
            Err(AppendError {
                error,
                untaken: written as u64,
            })
        }
    }
}

/// Opens the destination; for a file, also whether it is empty (new).
fn connect(target: &Target) -> io::Result<(Conn, bool)> {
    Ok(match target {
        Target::File { path, .. } => {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .mode(0o600)
                .open(path)?;
            let len = drop_torn_tail(&mut file)?;
            let flush = FlushBehind::start(&file)?;
            (Conn::File(file, flush), len == 0)
        }
        Target::Stdout => (Conn::Stdout, false),
        Target::Tcp(address) => {
            let mut last = io::Error::other("address resolves to nothing");
            for addr in address.to_socket_addrs()? {
                match TcpStream::connect_timeout(&addr, SOCKET_TIMEOUT) {
                    Ok(stream) => {
                        stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
                        stream.set_nodelay(true)?;
                        return Ok((Conn::Tcp(stream), false));
                    }
                    Err(e) => last = e,
                }
            }
            return Err(last);
        }
        Target::Udp(address) => {
            let addr = address
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::other("address resolves to nothing"))?;
            let local = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(local)?;
            socket.connect(addr)?;
            (Conn::Udp(socket), false)
        }
        Target::Syslog { socket, .. } => {
            let s = UnixDatagram::unbound()?;
            s.connect(socket)?;
            (Conn::Unix(s), false)
        }
    })
}

/// Whether the collector at the other end of `stream` still has it open. A collector that
/// closed its side makes the next write "succeed" into the kernel's buffer and only the one
/// after fail; peeking for end-of-stream first makes the failure immediate.
fn peer_alive(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let alive = match stream.peek(&mut byte) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).is_ok() && alive
}

/// Takes back a line torn by a crash mid-write (or by a failed write that could not be
/// taken back then): its request never got an answer, and a verifier would report it as an
/// edit forever. Returns the file's length after.
fn drop_torn_tail(file: &mut File) -> io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    let complete = complete_len(file, len)?;
    if complete < len {
        file.set_len(complete)?;
        tracing::warn!(
            bytes = len - complete,
            "audit file ended in a torn line (a crash or a failed write): it was taken back"
        );
    }
    Ok(complete)
}

/// The length of `file` (`len` bytes) up to and with its last newline.
fn complete_len(file: &mut File, len: u64) -> io::Result<u64> {
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(pos) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + pos as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The last line of `file` (without its newline), reading backwards in chunks.
fn last_line(file: &mut File) -> io::Result<Option<Vec<u8>>> {
    // A torn line after the last newline is not a line (the next open takes it back).
    let whole = file.seek(SeekFrom::End(0))?;
    let len = complete_len(file, whole)?;
    let mut end = len;
    let mut tail: Vec<u8> = Vec::new();
    // Skip the final newline.
    loop {
        if end == 0 {
            return Ok((!tail.is_empty()).then_some(tail));
        }
        let chunk = end.min(64 * 1024);
        let start = end - chunk;
        let mut buf = vec![0u8; usize::try_from(chunk).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&tail);
        tail = buf;
        end = start;
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(pos) = body.iter().rposition(|b| *b == b'\n') {
            return Ok(Some(body[pos + 1..].to_vec()));
        }
        if len - end > MAX_TAIL {
            return Ok(None);
        }
        if end == 0 {
            return Ok((!body.is_empty()).then(|| body.to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_reads_back_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(last_line(&mut File::open(&path).unwrap()).unwrap(), None);
        std::fs::write(&path, b"one\n").unwrap();
        assert_eq!(
            last_line(&mut File::open(&path).unwrap()).unwrap().unwrap(),
            b"one"
        );
        let long = "x".repeat(200_000);
        std::fs::write(&path, format!("one\n{long}\n")).unwrap();
        assert_eq!(
            last_line(&mut File::open(&path).unwrap()).unwrap().unwrap(),
            long.as_bytes()
        );
        // A torn last line is not a line.
        std::fs::write(&path, "one\ntwo").unwrap();
        assert_eq!(
            last_line(&mut File::open(&path).unwrap()).unwrap().unwrap(),
            b"one"
        );
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        assert_eq!(drop_torn_tail(&mut file).unwrap(), 4);
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
    }
}
