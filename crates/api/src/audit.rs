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
//! The chain has no key, so whoever can write the file can also cut it or re-chain it from
//! any line. [`Checkpoint`] lines, signed with the device's Ed25519 key, close that gap: the
//! [`ChainVerifier`] given the device's key ([`CheckpointKey`]) checks each one, that the
//! series starts at its genesis or at a checkpoint that opened a file, and (given the head the
//! server reports) that no line was cut after the last one.
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
    out.push_str(HASH_PREFIX);
    push_hex(out, digest);
}

/// Appends the lower-case hex of `bytes` to `out`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

/// The `seq` and `prev_hash` of a line.
fn chain_fields(line: &[u8]) -> Result<(u64, String), &'static str> {
    parse_line(line).map(|(seq, prev, _)| (seq, prev))
}

/// The `seq`, `prev_hash` and whole object of a line.
fn parse_line(line: &[u8]) -> Result<(u64, String, Value), &'static str> {
    let value: Value =
        serde_json::from_slice(line).map_err(|_| "not a JSON audit entry (edited or truncated)")?;
    let seq = value
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("no \"seq\" field: not a chained audit line, or edited")?;
    let prev = value
        .get("prev_hash")
        .and_then(Value::as_str)
        .ok_or("no \"prev_hash\" field: not a chained audit line, or edited")?
        .to_owned();
    Ok((seq, prev, value))
}

/// The `type` of a checkpoint line.
pub const CHECKPOINT_TYPE: &str = "checkpoint";
/// Prefix of a checkpoint's public key and signature (hex follows).
pub const ED25519_PREFIX: &str = "ed25519:";
/// What a checkpoint signs first: the format, so a signature is never valid for anything else.
const CHECKPOINT_DOMAIN: &[u8] = b"ward-audit-checkpoint-v1\n";

/// A checkpoint: a line of the chain, written by the device at intervals, at seal and when
/// it opens a new file, that signs the chain head at its place with the device's Ed25519 key.
/// The head it signs is its own `seq` and `prev_hash`: with the chain, they fix every line
/// before it, so a file re-chained from any line before a checkpoint no longer matches its
/// signature. A line looks like
///
/// ```text
/// {"type":"checkpoint","time":"..","checkpoint":{"reason":"interval","opens_file":false,"public_key":"ed25519:<hex>","signature":"ed25519:<hex>"},"seq":41,"prev_hash":"sha256:.."}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// When it was written (RFC 3339).
    pub time: String,
    /// Why: `open` (the first line of a new file), `interval`, `seal`, `break`.
    pub reason: String,
    /// The first line of a file the device created: a file whose first line is not one
    /// (nor the chain's genesis) lost its first lines.
    pub opens_file: bool,
    /// A break the server found in the log (its tail no longer held the head it had saved),
    /// recorded in the log itself.
    pub chain_break: Option<String>,
}

impl Checkpoint {
    /// The bytes signed for this checkpoint at `seq` after `prev_hash`: each field on a line
    /// of its own, strings as JSON text (so no field can run into the next).
    pub fn message(&self, seq: u64, prev_hash: &str) -> Vec<u8> {
        let text = |s: &str| Value::from(s).to_string();
        let mut out = CHECKPOINT_DOMAIN.to_vec();
        for field in [
            seq.to_string(),
            text(prev_hash),
            text(&self.time),
            text(&self.reason),
            self.opens_file.to_string(),
            self.chain_break
                .as_deref()
                .map_or_else(|| "null".into(), text),
        ] {
            out.extend_from_slice(field.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// The checkpoint's entry, signed by `public_key` with `signature` (over
    /// [`Self::message`] at the place it is chained to).
    pub fn entry(&self, public_key: &[u8], signature: &[u8]) -> Entry {
        let mut body = serde_json::Map::new();
        body.insert("reason".into(), Value::from(self.reason.as_str()));
        body.insert("opens_file".into(), Value::from(self.opens_file));
        if let Some(text) = &self.chain_break {
            body.insert("break".into(), Value::from(text.as_str()));
        }
        body.insert("public_key".into(), Value::from(ed25519_text(public_key)));
        body.insert("signature".into(), Value::from(ed25519_text(signature)));
        let object = format!(
            "{{\"type\":\"{CHECKPOINT_TYPE}\",\"time\":{},\"checkpoint\":{}}}",
            Value::from(self.time.as_str()),
            Value::Object(body)
        );
        Entry::from_object(object.as_bytes())
    }

    /// The checkpoint of a line's object, with its public key and signature; `None` if the
    /// line is not a checkpoint, an error if it is one that cannot be read.
    pub fn from_line(value: &Value) -> Option<Result<SignedCheckpoint, &'static str>> {
        if value.get("type").and_then(Value::as_str) != Some(CHECKPOINT_TYPE) {
            return None;
        }
        Some((|| {
            let body = value
                .get("checkpoint")
                .and_then(Value::as_object)
                .ok_or("a checkpoint line without its \"checkpoint\" object")?;
            let text = |name: &str| body.get(name).and_then(Value::as_str);
            let checkpoint = Self {
                time: value
                    .get("time")
                    .and_then(Value::as_str)
                    .ok_or("a checkpoint line without its time")?
                    .to_owned(),
                reason: text("reason")
                    .ok_or("a checkpoint without its reason")?
                    .to_owned(),
                opens_file: body
                    .get("opens_file")
                    .and_then(Value::as_bool)
                    .ok_or("a checkpoint without \"opens_file\"")?,
                chain_break: text("break").map(str::to_owned),
            };
            let key = text("public_key")
                .and_then(parse_ed25519)
                .ok_or("a checkpoint without a readable public key")?;
            let signature = text("signature")
                .and_then(parse_ed25519)
                .ok_or("a checkpoint without a readable signature")?;
            Ok(SignedCheckpoint {
                checkpoint,
                public_key: key,
                signature,
            })
        })())
    }
}

/// A checkpoint as a line carries it: with the key it says it is signed by, and the
/// signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// What it says.
    pub checkpoint: Checkpoint,
    /// The public key it names.
    pub public_key: Vec<u8>,
    /// Its signature of [`Checkpoint::message`].
    pub signature: Vec<u8>,
}

/// `ed25519:<hex>` of a key or signature.
pub fn ed25519_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(ED25519_PREFIX.len() + bytes.len() * 2);
    out.push_str(ED25519_PREFIX);
    push_hex(&mut out, bytes);
    out
}

/// The bytes of `ed25519:<hex>` (or of the bare hex).
pub fn parse_ed25519(text: &str) -> Option<Vec<u8>> {
    let hex = text.trim();
    let hex = hex.strip_prefix(ED25519_PREFIX).unwrap_or(hex);
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks checkpoint signatures for a [`ChainVerifier`] (the crypto lives with the caller).
pub trait CheckpointKey: std::fmt::Debug {
    /// The public key, as the checkpoints carry it.
    fn public_key(&self) -> &[u8];
    /// Whether `signature` is this key's signature of `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool;
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

/// How a series of audit files starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesStart {
    /// At the device's genesis line (`seq` 0).
    Genesis,
    /// At a checkpoint that opened a file (a rotated file; the files before it not given).
    OpenedFile,
    /// Anywhere else: it continues lines that were not given, or lost its first lines.
    MidChain,
}

/// The last checkpoint met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSeen {
    /// Its file in the series and line number there.
    pub file: usize,
    /// Line number in its file (1-based).
    pub line: u64,
    /// Its sequence number.
    pub seq: u64,
}

/// Checks a series of audit files line by line, in order, as one chain. With a
/// [`CheckpointKey`] it also checks every checkpoint's signature; with the head the server
/// reports, that the series reaches it (no line cut after the last checkpoint).
#[derive(Debug, Default)]
pub struct ChainVerifier {
    /// The previous line: its file, line number, seq and hash.
    last: Option<(usize, u64, u64, String)>,
    file: usize,
    line: u64,
    started_mid_chain: Option<u64>,
    lines: u64,
    key: Option<Box<dyn CheckpointKey>>,
    expected_head: Option<ChainHead>,
    head_reached: bool,
    start: Option<SeriesStart>,
    checkpoints: u64,
    last_checkpoint: Option<CheckpointSeen>,
    after_checkpoint: u64,
    breaks: Vec<ChainBreak>,
}

impl ChainVerifier {
    /// A verifier at the start of a series.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks each checkpoint's signature with `key` (see [`Self::finish`] for the rest).
    pub fn with_key(mut self, key: Box<dyn CheckpointKey>) -> Self {
        self.key = Some(key);
        self
    }

    /// Expects the series to reach `head` (the head the server reports for the device).
    pub fn expect_head(mut self, head: ChainHead) -> Self {
        self.expected_head = Some(head);
        self
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
        let (seq, prev, value) = parse_line(line).map_err(|r| here(r.to_owned()))?;
        let checkpoint = match Checkpoint::from_line(&value) {
            None => None,
            Some(Ok(found)) => Some(found),
            Some(Err(reason)) => return Err(here(reason.to_owned())),
        };
        match &self.last {
            None => {
                let opens_file = checkpoint.as_ref().is_some_and(|c| c.checkpoint.opens_file);
                self.start = Some(if prev.starts_with(GENESIS_PREFIX) {
                    SeriesStart::Genesis
                } else if opens_file {
                    SeriesStart::OpenedFile
                } else {
                    SeriesStart::MidChain
                });
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
        match checkpoint {
            Some(SignedCheckpoint {
                checkpoint,
                public_key,
                signature,
            }) => {
                if let Some(key) = &self.key {
                    if public_key.as_slice() != key.public_key() {
                        return Err(here(format!(
                            "checkpoint signed by another key ({}): the log was rewritten, or it is another device's",
                            ed25519_text(&public_key)
                        )));
                    }
                    if !key.verify(&checkpoint.message(seq, &prev), &signature) {
                        return Err(here(
                            "checkpoint signature does not verify: the lines before it were rewritten (re-chained), or the checkpoint was edited".into(),
                        ));
                    }
                }
                if let Some(text) = checkpoint.chain_break {
                    self.breaks.push(here(format!(
                        "the server recorded a break in this log here: {text}"
                    )));
                }
                self.checkpoints += 1;
                self.last_checkpoint = Some(CheckpointSeen {
                    file: self.file,
                    line: self.line,
                    seq,
                });
                self.after_checkpoint = 0;
            }
            None => self.after_checkpoint += 1,
        }
        let hash = line_hash(line);
        if let Some(head) = &self.expected_head
            && head.seq == seq + 1
        {
            if head.prev_hash != hash {
                return Err(here(format!(
                    "this line (sequence {seq}) is not the one the server's head records: the log was edited or re-chained"
                )));
            }
            self.head_reached = true;
        }
        self.last = Some((self.file, self.line, seq, hash));
        self.lines += 1;
        Ok(())
    }

    /// The checks that need the whole series, once every line is pushed: with a key, that
    /// the series holds a checkpoint and starts at its genesis or at a file-opening
    /// checkpoint (else its first lines were cut); with a head, that the series reaches it;
    /// and that the server recorded no break in it.
    pub fn finish(&self) -> Result<(), ChainBreak> {
        let at_end = |reason: String| ChainBreak {
            file: self.last.as_ref().map_or(0, |l| l.0),
            line: self.last.as_ref().map_or(0, |l| l.1),
            reason,
        };
        if self.key.is_some() {
            if self.checkpoints == 0 {
                return Err(at_end(
                    "no checkpoint in the log: it was rewritten from scratch (or written before the device made checkpoints)".into(),
                ));
            }
            if self.start == Some(SeriesStart::MidChain) {
                return Err(ChainBreak {
                    file: 0,
                    line: 1,
                    reason: format!(
                        "the log starts at sequence {}, neither at its genesis nor at a checkpoint that opened a file: its first lines were removed (or it continues a file that was not given)",
                        self.started_mid_chain.unwrap_or(0)
                    ),
                });
            }
        }
        if let Some(head) = &self.expected_head
            && !self.head_reached
        {
            let last_seq = self.last.as_ref().map(|l| l.2);
            return Err(at_end(match last_seq {
                Some(last) if last + 1 < head.seq => format!(
                    "the log ends at sequence {last} but the server's head is at sequence {}: {} line(s) were cut from its end",
                    head.seq - 1,
                    head.seq - 1 - last
                ),
                _ => format!(
                    "the server's head (sequence {}) is not in these files",
                    head.seq.saturating_sub(1)
                ),
            }));
        }
        if let Some(first) = self.breaks.first() {
            return Err(first.clone());
        }
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

    /// How the series starts (`None` before its first line).
    pub fn series_start(&self) -> Option<SeriesStart> {
        self.start
    }

    /// Checkpoints met so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    /// The last checkpoint met.
    pub fn last_checkpoint(&self) -> Option<&CheckpointSeen> {
        self.last_checkpoint.as_ref()
    }

    /// Lines after the last checkpoint (all of them if there is none): no signature covers
    /// them, only the server's head can.
    pub fn lines_after_checkpoint(&self) -> u64 {
        self.after_checkpoint
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

    /// A stand-in key for the verifier's own tests: its "signature" is the SHA-256 of the
    /// message (real keys are checked in ward-core and the CLI).
    #[derive(Debug)]
    struct FakeKey;

    impl CheckpointKey for FakeKey {
        fn public_key(&self) -> &[u8] {
            &[7; 32]
        }
        fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
            Sha256::digest(message).as_slice() == signature
        }
    }

    /// A chain of `n` request lines with a checkpoint opening it and one every `every` lines.
    fn checkpointed(n: usize, every: usize) -> Vec<Vec<u8>> {
        let mut head = ChainHead::genesis("00ff");
        let mut out = Vec::new();
        let checkpoint = |head: &mut ChainHead, opens_file: bool| {
            let c = Checkpoint {
                time: "t".into(),
                reason: if opens_file { "open" } else { "interval" }.into(),
                opens_file,
                chain_break: None,
            };
            let signature = Sha256::digest(c.message(head.seq, &head.prev_hash));
            let mut line = head.chain(&c.entry(&[7; 32], &signature));
            line.pop();
            line
        };
        out.push(checkpoint(&mut head, true));
        for i in 0..n {
            let mut line = head.chain(&Entry::from_object(format!("{{\"i\":{i}}}").as_bytes()));
            line.pop();
            out.push(line);
            if (i + 1) % every == 0 {
                out.push(checkpoint(&mut head, false));
            }
        }
        out
    }

    fn verify_keyed(lines: &[Vec<u8>], head: Option<ChainHead>) -> Result<(), ChainBreak> {
        let mut v = ChainVerifier::new().with_key(Box::new(FakeKey));
        if let Some(head) = head {
            v = v.expect_head(head);
        }
        lines.iter().try_for_each(|l| v.push(l))?;
        v.finish()
    }

    /// Re-chains `lines` from `from` on, keeping every line's content.
    fn rechain(lines: &[Vec<u8>], from: usize) -> Vec<Vec<u8>> {
        let mut head = ChainHead::after(&lines[from - 1]).unwrap();
        let mut out = lines[..from].to_vec();
        for line in &lines[from..] {
            let mut object: serde_json::Map<String, Value> = serde_json::from_slice(line).unwrap();
            object.remove("seq");
            object.remove("prev_hash");
            let mut l = head.chain(&Entry::from_object(
                Value::Object(object).to_string().as_bytes(),
            ));
            l.pop();
            out.push(l);
        }
        out
    }

    #[test]
    fn checkpoints_round_trip_and_sign_their_place() {
        let c = Checkpoint {
            time: "2026-12-06T00:00:00Z".into(),
            reason: "break".into(),
            opens_file: false,
            chain_break: Some("cut\nhere".into()),
        };
        let mut head = ChainHead::genesis("00");
        let line = head.chain(&c.entry(&[1, 2], &[3, 4]));
        let value: Value = serde_json::from_slice(line.strip_suffix(b"\n").unwrap()).unwrap();
        let signed = Checkpoint::from_line(&value).unwrap().unwrap();
        assert_eq!(signed.checkpoint, c);
        assert_eq!(
            (signed.public_key, signed.signature),
            (vec![1, 2], vec![3, 4])
        );
        // The message binds the place and every field.
        let base = c.message(5, "sha256:aa");
        assert_ne!(base, c.message(6, "sha256:aa"));
        assert_ne!(base, c.message(5, "sha256:ab"));
        let opened = Checkpoint {
            opens_file: true,
            ..c.clone()
        };
        assert_ne!(base, opened.message(5, "sha256:aa"));
        let unbroken = Checkpoint {
            chain_break: None,
            ..c
        };
        assert_ne!(base, unbroken.message(5, "sha256:aa"));
        assert!(Checkpoint::from_line(&serde_json::json!({"type": "request"})).is_none());
        assert!(
            Checkpoint::from_line(&serde_json::json!({"type": "checkpoint"}))
                .unwrap()
                .is_err()
        );
        assert_eq!(parse_ed25519(&ed25519_text(&[0, 255])), Some(vec![0, 255]));
        assert_eq!(parse_ed25519("ed25519:0"), None);
    }

    #[test]
    fn with_the_key_rechained_headless_and_bare_logs_fail() {
        let lines = checkpointed(9, 3);
        verify_keyed(&lines, None).unwrap();
        verify(&lines).unwrap();
        // Re-chained from line 3 (after its content changed): the chain holds, a signature
        // does not.
        let mut edited = lines.clone();
        edited[2] = b"{\"i\":99,\"seq\":2,\"prev_hash\":\"x\"}".to_vec();
        let rechained = rechain(&edited, 2);
        verify(&rechained).unwrap();
        let bad = verify_keyed(&rechained, None).unwrap_err();
        assert!(bad.reason.contains("signature"), "{bad:?}");
        // The first lines cut.
        let headless = &lines[2..];
        verify(headless).unwrap();
        let bad = verify_keyed(headless, None).unwrap_err();
        assert!(bad.reason.contains("first lines were removed"), "{bad:?}");
        // No checkpoint at all.
        let bare: Vec<Vec<u8>> = chain(4);
        let bad = verify_keyed(&bare, None).unwrap_err();
        assert!(bad.reason.contains("no checkpoint"), "{bad:?}");
    }

    #[test]
    fn the_head_finds_lines_cut_after_the_last_checkpoint() {
        let lines = checkpointed(7, 3);
        let head = ChainHead::after(lines.last().unwrap()).unwrap();
        verify_keyed(&lines, Some(head.clone())).unwrap();
        let cut = &lines[..lines.len() - 1];
        verify_keyed(cut, None).unwrap();
        let bad = verify_keyed(cut, Some(head.clone())).unwrap_err();
        assert!(bad.reason.contains("cut from its end"), "{bad:?}");
        // A line at the head's place that is not the one it records.
        let mut other = lines.clone();
        let last = other.len() - 1;
        other[last] = rechain(
            &{
                let mut l = lines.clone();
                l[last] = b"{\"i\":42,\"seq\":0,\"prev_hash\":\"x\"}".to_vec();
                l
            },
            last,
        )[last]
            .clone();
        let bad = verify_keyed(&other, Some(head)).unwrap_err();
        assert!(bad.reason.contains("server's head"), "{bad:?}");
    }
}
