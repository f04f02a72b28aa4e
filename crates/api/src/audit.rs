//! The hash chain of Ward's audit log: how a line is chained to the one before it, and the
//! offline verifier behind `ward audit verify`.
//!
//! Every audit line is one JSON object that starts with two fields:
//!
//! ```text
//! {"seq":41,"prev_hash":"sha256:<hex of SHA-256 of line 40's bytes>","time":...}
//! ```
//!
//! `seq` counts the device's lines from 0; `prev_hash` is the SHA-256 of the previous line's
//! exact bytes (without its newline). The first line of a device (`seq` 0) carries
//! `genesis:<hex>`, a random value chosen when the device was enabled. A rotated file starts
//! with the hash of the last line of the file before it, so a series of files verifies as one
//! chain. An edited line no longer matches the hash its successor recorded; a removed,
//! inserted or reordered line breaks the `seq` count. Only the very last line of a series can
//! be altered without a trace (nothing records its hash yet).

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

    /// Chains `entry` (a serialised JSON object) as the next line and advances the head.
    /// Returns the line with its trailing newline.
    pub fn chain(&mut self, entry: &[u8]) -> Vec<u8> {
        let mut line = Vec::with_capacity(entry.len() + 100);
        self.chain_into(entry, &mut line);
        line
    }

    /// Chains `entry` as the next line, appended to `out` with its trailing newline, and
    /// advances the head. A batch of lines is built in one buffer this way.
    pub fn chain_into(&mut self, entry: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(entry.len() + 100);
        out.extend_from_slice(b"{\"seq\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        out.extend_from_slice(b",\"prev_hash\":\"");
        out.extend_from_slice(self.prev_hash.as_bytes());
        out.push(b'"');
        let rest = entry.strip_prefix(b"{").unwrap_or(entry);
        if rest.first().is_some_and(|b| *b != b'}') {
            out.push(b',');
        }
        out.extend_from_slice(rest);
        self.prev_hash = line_hash(&out[start..]);
        self.seq += 1;
        out.push(b'\n');
    }
}

/// `sha256:<hex>` of a line's bytes.
pub fn line_hash(line: &[u8]) -> String {
    let digest = Sha256::digest(line);
    let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
    out.push_str(HASH_PREFIX);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
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
                let mut l = head.chain(format!("{{\"type\":\"request\",\"i\":{i}}}").as_bytes());
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
        assert!(lines[0].starts_with(b"{\"seq\":0,\"prev_hash\":\"genesis:00ff\",\"type\""));
        verify(&lines).unwrap();
        assert_eq!(
            ChainHead::after(&lines[4]).unwrap().prev_hash,
            line_hash(&lines[4])
        );
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
