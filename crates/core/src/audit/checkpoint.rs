//! Signed checkpoints (../shared/DESIGN.md, Audit): the hash chain alone lets anyone who can
//! write the file cut its end, cut its start or re-chain it from any line, since the chain has
//! no key. A checkpoint is a line of the chain that signs the head at its place with the
//! device's Ed25519 key, which is kept behind the barrier; the head after it is saved behind
//! the barrier too. With the public key, `ward audit verify` finds a file rewritten before a
//! checkpoint or cut at its start offline; at unseal the server finds a file cut after the
//! head it saved.
//!
//! A device writes one when it creates a file (its first line), after `checkpoint_lines`
//! lines or `checkpoint_interval` since the last one (checked when a batch is written, and by
//! a timer for a device gone quiet), at seal (so at shutdown) and when it records a break.
//! A signature costs some 20 µs, once per interval: requests never wait for one otherwise.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use ward_api::audit::{ChainHead, Checkpoint, Entry, ed25519_text, line_hash};
use zeroize::Zeroizing;

use crate::{CoreError, CoreResult};

/// Lines between two checkpoints, unless the device's `checkpoint_lines` says otherwise.
pub(crate) const DEFAULT_LINES: u64 = 10_000;
/// Time between two checkpoints while lines are written, unless the device's
/// `checkpoint_interval` says otherwise.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// A device's signing key.
pub(crate) struct Signer {
    key: Ed25519KeyPair,
}

impl Signer {
    /// A new key, and its PKCS#8 document in hex (to store behind the barrier).
    pub(crate) fn generate() -> CoreResult<(Self, Zeroizing<String>)> {
        let key = Ed25519KeyPair::generate().map_err(|_| ward_crypto::CryptoError::Random)?;
        let document = key
            .to_pkcs8()
            .map_err(|_| CoreError::Invariant("a new Ed25519 key does not encode"))?;
        let text = Zeroizing::new(hex::encode(document.as_ref()));
        Ok((Self { key }, text))
    }

    /// The key stored as PKCS#8 in hex.
    pub(crate) fn from_hex(text: &str) -> CoreResult<Self> {
        let document = Zeroizing::new(
            hex::decode(text).map_err(|_| CoreError::corrupt("audit checkpoint key"))?,
        );
        let key = Ed25519KeyPair::from_pkcs8(&document)
            .map_err(|_| CoreError::corrupt("audit checkpoint key"))?;
        Ok(Self { key })
    }

    /// `ed25519:<hex>` of the public key, as `sys/audit` shows it and `verify` takes it.
    pub(crate) fn public_key_text(&self) -> String {
        ed25519_text(self.key.public_key().as_ref())
    }

    /// The signed checkpoint `checkpoint` as the line after `head`.
    fn entry(&self, checkpoint: &Checkpoint, head: &ChainHead) -> Entry {
        let signature = self
            .key
            .sign(&checkpoint.message(head.seq, &head.prev_hash));
        checkpoint.entry(self.key.public_key().as_ref(), signature.as_ref())
    }
}

/// Where the last checkpoint written stands: the head after it (so the line at `seq - 1`
/// is the checkpoint, and hashes to `prev_hash`), and when it was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mark {
    pub(crate) seq: u64,
    pub(crate) prev_hash: String,
    pub(crate) time: String,
}

/// When a device writes checkpoints (its options `checkpoint_lines`, `checkpoint_interval`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub(crate) lines: u64,
    pub(crate) interval: Duration,
}

/// A checkpoint asked for outside the batch rule.
pub(crate) struct Forced {
    pub(crate) reason: &'static str,
    pub(crate) chain_break: Option<String>,
    /// Only if one is due (the timer of a quiet device).
    pub(crate) only_if_due: bool,
}

/// A device's checkpoint state, shared by its sink (which writes them) and the device
/// (which shows and saves the last one). Holds the signing key while the server is
/// unsealed only.
pub(crate) struct Checkpointer {
    signer: Signer,
    policy: Policy,
    /// Lines written since the last checkpoint.
    lines_since: u64,
    last_at: Instant,
    last: Option<Mark>,
}

/// The slot of a device's checkpointer (empty while sealed).
pub(crate) type SharedCheckpointer = Arc<Mutex<Option<Checkpointer>>>;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Checkpointer {
    /// A checkpointer whose last checkpoint is `last`, with `lines_since` lines after it.
    pub(crate) fn new(
        signer: Signer,
        policy: Policy,
        last: Option<Mark>,
        lines_since: u64,
    ) -> Self {
        Self {
            signer,
            policy,
            lines_since,
            last_at: Instant::now(),
            last,
        }
    }

    pub(crate) fn last(&self) -> Option<&Mark> {
        self.last.as_ref()
    }

    /// Whether a batch of `lines` more lines is due a checkpoint after it.
    pub(crate) fn due_after(&self, lines: u64) -> bool {
        let pending = self.lines_since + lines;
        pending > 0
            && (pending >= self.policy.lines || self.last_at.elapsed() >= self.policy.interval)
    }

    /// Whether `forced` writes a checkpoint now.
    pub(crate) fn takes(&self, forced: &Forced) -> bool {
        if forced.chain_break.is_some() {
            return true;
        }
        if forced.only_if_due {
            return self.due_after(0);
        }
        self.lines_since > 0 || self.last.is_none()
    }

    /// Chains a signed checkpoint after `head` into `out` (with its newline); returns its
    /// mark, to keep once the batch is written.
    pub(crate) fn chain(
        &self,
        head: &mut ChainHead,
        out: &mut Vec<u8>,
        reason: &str,
        opens_file: bool,
        chain_break: Option<String>,
    ) -> Mark {
        let checkpoint = Checkpoint {
            time: ward_api::time::now_rfc3339_nanos(),
            reason: reason.to_owned(),
            opens_file,
            chain_break,
        };
        let entry = self.signer.entry(&checkpoint, head);
        head.chain_into(&entry, out);
        Mark {
            seq: head.seq,
            prev_hash: head.prev_hash.clone(),
            time: checkpoint.time,
        }
    }

    /// Records a written batch: `lines` lines, the last checkpoint among them `mark` (and
    /// whether it came after them, or only opened the file before them).
    pub(crate) fn wrote(&mut self, lines: u64, mark: Option<Mark>, after_lines: bool) {
        match mark {
            Some(mark) => {
                self.lines_since = if after_lines { 0 } else { lines };
                self.last_at = Instant::now();
                self.last = Some(mark);
            }
            None => self.lines_since += lines,
        }
    }
}

/// Most of a file read back from its end when it is compared with the saved head: a busy
/// device writes a few MB between two checkpoints.
const MAX_SCAN: u64 = 256 << 20;

/// Compares an audit file with the head saved after its last checkpoint: the line at
/// `mark.seq - 1` must be there and hash to `mark.prev_hash`. Lines after it are fine (the
/// requests in flight at a seal write theirs after the seal's checkpoint). `None` when the
/// file holds the head, or when it cannot tell (the head is in a file rotated away, or
/// further back than [`MAX_SCAN`]); otherwise what is wrong.
pub(crate) fn check_file(path: &Path, mark: &Mark) -> Option<String> {
    let target = mark.seq.checked_sub(1)?;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Some(format!(
                "the audit file is gone, but the device's last checkpoint is at sequence {target}: it was deleted (or rotated away and not recreated)"
            ));
        }
        Err(e) => return Some(format!("the audit file cannot be read: {e}")),
    };
    let mut last_seq: Option<u64> = None;
    let mut found: Option<Result<(), String>> = None;
    let scan = scan_back(&mut file, MAX_SCAN, |line| {
        let Some(seq) = seq_of(line) else {
            found = Some(Err(
                "a line near the end of the audit file is not an audit line: it was edited"
                    .to_owned(),
            ));
            return false;
        };
        let last = *last_seq.get_or_insert(seq);
        if seq > target {
            return true;
        }
        found = Some(if seq < target {
            if last < target {
                Err(format!(
                    "the audit file ends at sequence {last}, but the device's last checkpoint is at sequence {target}: {} line(s) were cut from its end",
                    target - last
                ))
            } else {
                Err(format!(
                    "the audit file has no line with sequence {target}, where the device's last checkpoint is: lines were removed"
                ))
            }
        } else if line_hash(line) == mark.prev_hash {
            Ok(())
        } else {
            Err(format!(
                "the line with sequence {target} is not the checkpoint the device wrote there: the log was edited or re-chained"
            ))
        });
        false
    });
    match (scan, found) {
        (Err(e), _) => Some(format!("the audit file cannot be read: {e}")),
        (Ok(_), Some(Ok(()))) => None,
        (Ok(_), Some(Err(reason))) => Some(reason),
        // Every line read is after the checkpoint: it is in a file rotated away, or further
        // back than was read.
        (Ok(_), None) if last_seq.is_some() => None,
        (Ok(_), None) => Some(format!(
            "the audit file is empty, but the device's last checkpoint is at sequence {target}: it was truncated (or rotated away)"
        )),
    }
}

fn seq_of(line: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(line)
        .ok()?
        .get("seq")?
        .as_u64()
}

/// Calls `each` with the complete lines of `file` (without newlines), last first, until it
/// returns `false` or `limit` bytes were read. A torn last line (no newline) is skipped.
fn scan_back(
    file: &mut std::fs::File,
    limit: u64,
    mut each: impl FnMut(&[u8]) -> bool,
) -> io::Result<()> {
    const CHUNK: u64 = 64 * 1024;
    let len = file.seek(SeekFrom::End(0))?;
    let mut end = len;
    // Bytes read but not yet cut into lines: the start of the earliest line seen.
    let mut pending: Vec<u8> = Vec::new();
    let mut first = true;
    while end > 0 && len - end < limit {
        let start = end.saturating_sub(CHUNK);
        let mut buf = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&pending);
        end = start;
        let mut cut = buf.len();
        if first {
            // Up to the last newline: what follows it is a torn line.
            cut = buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            if cut == 0 && end > 0 {
                pending = buf;
                continue;
            }
            first = false;
            cut = cut.saturating_sub(1);
        }
        while let Some(pos) = buf[..cut].iter().rposition(|b| *b == b'\n') {
            if pos + 1 < cut && !each(&buf[pos + 1..cut]) {
                return Ok(());
            }
            cut = pos;
        }
        pending = buf[..cut].to_vec();
    }
    if end == 0 && !pending.is_empty() && !first {
        each(&pending);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_back(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let mut got = Vec::new();
        scan_back(&mut std::fs::File::open(&path).unwrap(), u64::MAX, |l| {
            got.push(String::from_utf8(l.to_vec()).unwrap());
            true
        })
        .unwrap();
        got
    }

    #[test]
    fn lines_are_read_back_last_first_without_a_torn_tail() {
        assert_eq!(lines_back(""), Vec::<String>::new());
        assert_eq!(lines_back("a\n"), ["a"]);
        assert_eq!(lines_back("a\nb\nc\n"), ["c", "b", "a"]);
        assert_eq!(lines_back("a\nb\ntorn"), ["b", "a"]);
        assert_eq!(lines_back("torn"), Vec::<String>::new());
        let long = "x".repeat(150_000);
        assert_eq!(
            lines_back(&format!("a\n{long}\nb\n{long}")),
            ["b", long.as_str(), "a"]
        );
    }
}
