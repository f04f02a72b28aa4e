//! The hash chain of Ward's audit log: how a line is chained to the one before it, and the
//! offline verifier behind `ward audit verify`.
//!
//! Every audit line is one JSON object that ends with two fields:
//!
//! ```text
//! {"auth":...,"request":...,"type":...,"time":...,"seq":41,"prev_hash":"sha256:<hex of SHA-256 of line 40's bytes>"}
//! ```
//!
//! `seq` counts the device's lines from 0; `prev_hash` is the SHA-256 of the previous line's
//! exact bytes (without its newline). The first line of a device (`seq` 0) carries
//! `genesis:<hex>`, a random value chosen when the device was enabled. A rotated file starts
//! with the hash of the last line of the file before it, so a series of files verifies as one
//! chain. An edited line no longer matches the hash its successor recorded; a removed,
//! inserted or reordered line breaks the `seq` count. Only the very last line of a series can
//! be altered without a trace (nothing records its hash yet).
//!
//! The chain fields come last so that a line's hash can be started before the line's place
//! in the chain is known: an [`Entry`] carries the SHA-256 state after its own bytes, and
//! chaining it hashes only the closing fields. The two lines of one request start with the
//! same bytes (its `auth` and `request` objects), which an [`EntryPrefix`] hashes once for
//! both. The verifier does not depend on any of this: it hashes each line whole and reads
//! the fields wherever they are.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Prefix of a chained line's `prev_hash`.
pub const HASH_PREFIX: &str = "sha256:";
/// Prefix of the first line's `prev_hash`.
pub const GENESIS_PREFIX: &str = "genesis:";

/// Where a device's chain stands: the `seq` and `prev_hash` of the next line it writes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainHead {
    /// The next line's sequence number.
    pub seq: u64,
    /// The next line's `prev_hash`.
    pub prev_hash: String,
}

impl ChainHead {
    /// The head of a new chain anchored to `genesis` (hex).
    pub fn genesis(genesis_hex: &str) -> Self {
        Self {
            seq: 0,
            prev_hash: format!("{GENESIS_PREFIX}{genesis_hex}"),
        }
    }

    /// The head that follows `line` (a complete line without its newline), if it is a
    /// chained audit line.
    pub fn after(line: &[u8]) -> Option<Self> {
        let (seq, _) = chain_fields(line).ok()?;
        Some(Self {
            seq: seq.checked_add(1)?,
            prev_hash: line_hash(line),
        })
    }

    /// Chains `entry` as the next line and advances the head. Returns the line with its
    /// trailing newline.
    pub fn chain(&mut self, entry: &Entry) -> Vec<u8> {
        let mut line = Vec::with_capacity(entry.body.len() + 120);
        self.chain_into(entry, &mut line);
        line
    }

    /// Chains `entry` as the next line, appended to `out` with its trailing newline, and
    /// advances the head. A batch of lines is built in one buffer this way.
    pub fn chain_into(&mut self, entry: &Entry, out: &mut Vec<u8>) {
        out.reserve(entry.body.len() + 120);
        out.extend_from_slice(&entry.body);
        let closing = out.len();
        // An empty object (`{`) takes the fields without a comma before them.
        if entry.body.trim_ascii_end().last() != Some(&b'{') {
            out.push(b',');
        }
        out.extend_from_slice(b"\"seq\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        out.extend_from_slice(b",\"prev_hash\":\"");
        out.extend_from_slice(self.prev_hash.as_bytes());
        out.extend_from_slice(b"\"}");
        let mut state = entry.state.clone();
        state.update(&out[closing..]);
        self.prev_hash.clear();
        push_hash(&mut self.prev_hash, &state.finalize());
        self.seq += 1;
        out.push(b'\n');
    }
}

/// An audit entry waiting for its place in the chain: a JSON object without its closing
/// brace, and the SHA-256 state after exactly those bytes.
pub struct Entry {
    body: Vec<u8>,
    state: Sha256,
}

impl Entry {
    /// The entry holding `object`, a serialised JSON object (`{...}`), hashed here.
    pub fn from_object(object: &[u8]) -> Self {
        let body = object.strip_suffix(b"}").unwrap_or(object).to_vec();
        let state = Sha256::new_with_prefix(&body);
        Self { body, state }
    }

    /// The entry as a JSON object, without the chain's fields.
    pub fn to_object(&self) -> Vec<u8> {
        let mut object = Vec::with_capacity(self.body.len() + 1);
        object.extend_from_slice(&self.body);
        object.push(b'}');
        object
    }
}

impl std::fmt::Debug for Entry {
    // The bytes are HMAC'd already, but an entry has no use for them in a debug line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Opening bytes that several entries share, hashed once: an entry built from them hashes
/// only what follows.
pub struct EntryPrefix {
    bytes: Vec<u8>,
    state: Sha256,
}

impl EntryPrefix {
    /// The prefix `bytes` (the start of a JSON object, without its closing brace).
    pub fn new(bytes: Vec<u8>) -> Self {
        let state = Sha256::new_with_prefix(&bytes);
        Self { bytes, state }
    }

    /// The prefix's bytes, to start an entry's body with.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The entry whose object, without its closing brace, is `body`. A body that starts with
    /// the prefix hashes only the rest; any other body is hashed whole, so the state always
    /// covers exactly `body`.
    pub fn entry(&self, body: Vec<u8>) -> Entry {
        let state = match body.strip_prefix(self.bytes.as_slice()) {
            Some(rest) => {
                let mut state = self.state.clone();
                state.update(rest);
                state
            }
            None => Sha256::new_with_prefix(&body),
        };
        Entry { body, state }
    }
}

impl std::fmt::Debug for EntryPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryPrefix")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// `sha256:<hex>` of a line's bytes.
pub fn line_hash(line: &[u8]) -> String {
    let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
    push_hash(&mut out, &Sha256::digest(line));
    out
}

/// Appends `sha256:<hex of digest>` to `out`.
fn push_hash(out: &mut String, digest: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str(HASH_PREFIX);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

/// The `seq` and `prev_hash` of a line.
fn chain_fields(line: &[u8]) -> Result<(u64, String), &'static str> {
    let value: Value =
        serde_json::from_slice(line).map_err(|_| "not a JSON audit entry (edited or truncated)")?;
    let seq = value
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("no \"seq\" field: not a chained audit line, or edited")?;
    let prev = value
        .get("prev_hash")
        .and_then(Value::as_str)
        .ok_or("no \"prev_hash\" field: not a chained audit line, or edited")?;
    Ok((seq, prev.to_owned()))
}

/// Where verification failed: the first bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Index of the file in the series (0-based).
    pub file: usize,
    /// Line number in that file (1-based).
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// Checks a series of audit files line by line, in order, as one chain.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    /// The previous line: its file, line number, seq and hash.
    last: Option<(usize, u64, u64, String)>,
    file: usize,
    line: u64,
    started_mid_chain: Option<u64>,
    lines: u64,
}

impl ChainVerifier {
    /// A verifier at the start of a series.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves to the next file of the series (call before its first line, except the first file).
    pub fn next_file(&mut self) {
        if self.lines > 0 || self.line > 0 {
            self.file += 1;
        }
        self.line = 0;
    }

    /// Checks the next line (its bytes without the newline).
    pub fn push(&mut self, line: &[u8]) -> Result<(), ChainBreak> {
        self.line += 1;
        let here = |reason: String| ChainBreak {
            file: self.file,
            line: self.line,
            reason,
        };
        let (seq, prev) = chain_fields(line).map_err(|r| here(r.to_owned()))?;
        match &self.last {
            None => {
                if prev.starts_with(GENESIS_PREFIX) {
                    if seq != 0 {
                        return Err(here(format!(
                            "genesis line with sequence {seq} (expected 0): edited"
                        )));
                    }
                } else {
                    self.started_mid_chain = Some(seq);
                }
            }
            Some((file, line_no, last_seq, last_hash)) => {
                if prev.starts_with(GENESIS_PREFIX) {
                    return Err(here(format!(
                        "a new chain starts here after sequence {last_seq}: a line was inserted, or the log was truncated and restarted"
                    )));
                }
                let expected = last_seq + 1;
                if seq > expected {
                    return Err(here(format!(
                        "sequence jumps from {last_seq} to {seq}: {} line(s) removed before this line",
                        seq - expected
                    )));
                }
                if seq < expected {
                    return Err(here(format!(
                        "sequence {seq} follows {last_seq}: a line was inserted, duplicated or reordered here"
                    )));
                }
                if &prev != last_hash {
                    // The line before no longer hashes to what this line recorded: that line
                    // was edited (or this line's prev_hash was).
                    return Err(ChainBreak {
                        file: *file,
                        line: *line_no,
                        reason: format!(
                            "content does not match the hash recorded by the next line (sequence {expected}): this line was edited"
                        ),
                    });
                }
            }
        }
        self.last = Some((self.file, self.line, seq, line_hash(line)));
        self.lines += 1;
        Ok(())
    }

    /// Lines checked so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The sequence number the series starts at when it does not start at a genesis line
    /// (it continues a file that was not given).
    pub fn started_mid_chain(&self) -> Option<u64> {
        self.started_mid_chain
    }

    /// The head after the last line checked.
    pub fn head(&self) -> Option<ChainHead> {
        self.last.as_ref().map(|(_, _, seq, hash)| ChainHead {
            seq: seq + 1,
            prev_hash: hash.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<Vec<u8>> {
        let mut head = ChainHead::genesis("00ff");
        (0..n)
            .map(|i| {
                let entry = format!("{{\"type\":\"request\",\"i\":{i}}}");
                let mut l = head.chain(&Entry::from_object(entry.as_bytes()));
                l.pop();
                l
            })
            .collect()
    }

    fn verify(lines: &[Vec<u8>]) -> Result<(), ChainBreak> {
        let mut v = ChainVerifier::new();
        lines.iter().try_for_each(|l| v.push(l))
    }

    #[test]
    fn an_intact_chain_verifies() {
        let lines = chain(5);
        assert_eq!(
            lines[0],
            b"{\"type\":\"request\",\"i\":0,\"seq\":0,\"prev_hash\":\"genesis:00ff\"}"
        );
        verify(&lines).unwrap();
        assert_eq!(
            ChainHead::after(&lines[4]).unwrap().prev_hash,
            line_hash(&lines[4])
        );
    }

    /// An entry made from a shared prefix chains to the same line, and the same hash, as
    /// the whole object hashed at once; so does a body that does not start with the prefix,
    /// and an empty object.
    #[test]
    fn a_prefixed_entry_chains_as_the_whole_object_would() {
        let prefix = EntryPrefix::new(b"{\"auth\":{},\"request\":{\"id\":\"1\"}".to_vec());
        let bodies: [&[u8]; 3] = [
            b"{\"auth\":{},\"request\":{\"id\":\"1\"},\"type\":\"request\"",
            b"{\"auth\":{},\"request\":{\"id\":\"2\"},\"type\":\"request\"",
            b"{",
        ];
        let mut by_prefix = ChainHead::genesis("00ff");
        let mut whole = ChainHead::genesis("00ff");
        for body in bodies {
            let line = by_prefix.chain(&prefix.entry(body.to_vec()));
            let mut object = body.to_vec();
            object.push(b'}');
            assert_eq!(line, whole.chain(&Entry::from_object(&object)));
            assert_eq!(by_prefix, whole);
            let line = line.strip_suffix(b"\n").unwrap();
            serde_json::from_slice::<Value>(line).unwrap();
            assert_eq!(by_prefix.prev_hash, line_hash(line));
        }
        assert_eq!(by_prefix.seq, 3);
    }

    /// A log written with the chain fields first (before 08083cc) goes on with lines that
    /// end with them, and the whole file verifies as one chain.
    #[test]
    fn a_log_with_the_chain_fields_first_continues_and_verifies() {
        let old = b"{\"seq\":0,\"prev_hash\":\"genesis:00ff\",\"type\":\"request\"}".to_vec();
        let mut head = ChainHead::after(&old).unwrap();
        let mut lines = vec![old];
        for i in 0..2 {
            let mut line = head.chain(&Entry::from_object(format!("{{\"i\":{i}}}").as_bytes()));
            line.pop();
            lines.push(line);
        }
        verify(&lines).unwrap();
        let mut edited = lines.clone();
        edited[0][30] = b'1';
        assert_eq!(verify(&edited).unwrap_err().line, 1);
    }

    #[test]
    fn edits_removals_and_swaps_name_the_right_line() {
        let lines = chain(6);
        let mut edited = lines.clone();
        let pos = edited[2].len() - 2;
        edited[2][pos] = b'7';
        assert_eq!(verify(&edited).unwrap_err().line, 3);

        let mut removed = lines.clone();
        removed.remove(3);
        assert_eq!(verify(&removed).unwrap_err().line, 4);

        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(&swapped).unwrap_err().line, 2);

        let mut inserted = lines.clone();
        inserted.insert(4, lines[1].clone());
        assert_eq!(verify(&inserted).unwrap_err().line, 5);

        let mut garbage = lines;
        garbage[0] = b"not json".to_vec();
        assert_eq!(verify(&garbage).unwrap_err().line, 1);
    }

    #[test]
    fn a_series_continues_across_files() {
        let lines = chain(6);
        let mut v = ChainVerifier::new();
        lines[..3].iter().for_each(|l| v.push(l).unwrap());
        v.next_file();
        lines[3..].iter().for_each(|l| v.push(l).unwrap());
        assert_eq!(v.lines(), 6);

        let mut v = ChainVerifier::new();
        lines[3..].iter().for_each(|l| v.push(l).unwrap());
        assert_eq!(v.started_mid_chain(), Some(3));
    }
}
