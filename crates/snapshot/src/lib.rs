//! Ward's snapshot format: one home for its printer ([`Encoder`]) and its parser
//! ([`Decoder`]), used by the server (save, restore, scheduled snapshots) and by the CLI
//! (`inspect` and `verify`, offline). No I/O: bytes in, bytes out, so the same code serves a
//! socket, a file and a test.
//!
//! # Layout (every integer big-endian)
//!
//! ```text
//! header   "WARDSNAP"  version:u16  created_unix:i64  storage_len:u8 storage
//!          keyring_term:u32  key_id:[u8;8]  records:u64
//! records  (key_len:u32 key  value_len:u32 value) × records, keys strictly ascending
//! trailer  "WARDEND!"  sha256:[u8;32]  mac:[u8;32]
//! ```
//!
//! The records are the storage's entries exactly as stored: barrier ciphertext (keys and
//! values), except the three bootstrap records (seal configuration, root key wrapped under
//! the unseal key, keyring wrapped under the root key), which are ciphertext or public
//! already. A snapshot therefore holds no plaintext, and restores into either backend.
//!
//! # Why a digest and a MAC
//!
//! - `sha256` covers every byte before it (header, records, end marker): anyone can check it
//!   offline, without a key (`ward operator snapshot verify`), so a flipped byte or a cut
//!   file is found before an operator relies on it. It proves nothing against someone who
//!   means harm, who can recompute it.
//! - `mac` is HMAC-SHA256 over that digest under a key derived from the root key
//!   ([`SnapshotKey`]): only a server that holds the same root key can check it, when it
//!   restores. It tells "taken from this cluster, unchanged" apart from "from elsewhere":
//!   the latter needs `force`, as Vault's `snapshot-force`. `key_id` (from the same key)
//!   says which case it is without trying the MAC, so a snapshot of this cluster whose MAC
//!   fails is refused even with force (it was changed after it was written).
//!
//! The record count in the header lets the parser refuse a truncated file at the first
//! missing record rather than only at the trailer, and keys must ascend strictly so that a
//! restore never meets the same key twice.

#![forbid(unsafe_code)]

mod archive;
/// The fuzz targets' bodies (`fuzz/`), for cargo-fuzz and the corpus replay test.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use archive::ArchiveWriter;

use ward_crypto::{HmacSha256Key, Sha256Stream, constant_time_eq, hmac_sha256};

/// The first bytes of every snapshot.
pub const MAGIC: &[u8; 8] = b"WARDSNAP";
/// The marker before the trailer.
pub const END_MAGIC: &[u8; 8] = b"WARDEND!";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// The longest key a record may have (the storage layer's own bound on keys).
pub const MAX_KEY_LEN: usize = 64 * 1024;
/// The largest value a record may have: far above any entry Ward writes, and low enough
/// that a hostile length cannot make the parser reserve gigabytes.
pub const MAX_VALUE_LEN: usize = 32 * 1024 * 1024;
/// The longest storage kind name.
pub const MAX_STORAGE_LEN: usize = 32;

const DIGEST_LEN: usize = 32;
const TRAILER_LEN: usize = END_MAGIC.len() + 2 * DIGEST_LEN;
/// The fixed part of the header before the storage name.
const HEADER_FIXED: usize = 8 + 2 + 8 + 1;
/// The part of the header after the storage name.
const HEADER_TAIL: usize = 4 + 8 + 8;

/// What is wrong with a snapshot, or why one cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The data does not start with [`MAGIC`]: not a Ward snapshot.
    #[error("not a Ward snapshot (wrong magic bytes)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("snapshot format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    /// The storage kind in the header is empty, too long or not plain ASCII.
    #[error("invalid storage kind in the snapshot header")]
    BadStorageKind,
    /// The data ended before the snapshot did.
    #[error("snapshot is truncated")]
    Truncated,
    /// Bytes follow the trailer.
    #[error("snapshot has data after its trailer")]
    TrailingData,
    /// A record's key is empty, too long, not UTF-8, holds a NUL byte or ends in `/`.
    #[error("snapshot record {index} has an invalid key")]
    BadKey {
        /// The record's position, from 0.
        index: u64,
    },
    /// A record's value is longer than [`MAX_VALUE_LEN`].
    #[error("snapshot record {index} has a value longer than the format allows")]
    ValueTooLong {
        /// The record's position, from 0.
        index: u64,
    },
    /// A key does not come after the one before it.
    #[error("snapshot record {index} is out of order (keys must ascend)")]
    OutOfOrder {
        /// The record's position, from 0.
        index: u64,
    },
    /// The end marker is missing where the header's record count says it should be.
    #[error("snapshot holds more records than its header says, or its end marker is damaged")]
    BadEndMarker,
    /// The gzip/tar container (Vault's, from `bao operator raft snapshot save`) is damaged.
    #[error("the snapshot's gzip/tar container is damaged")]
    BadArchive,
    /// The SHA-256 in the trailer does not match the data: changed or damaged.
    #[error("snapshot checksum mismatch: the file was changed or damaged")]
    DigestMismatch,
    /// The encoder was given fewer or more records than its header announced.
    #[error(
        "snapshot record count does not match its header ({announced} announced, {written} written)"
    )]
    CountMismatch {
        /// The count in the header.
        announced: u64,
        /// The records given.
        written: u64,
    },
}

/// The snapshot's header: what `ward operator snapshot inspect` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format version.
    pub version: u16,
    /// When the snapshot was taken (Unix seconds).
    pub created_unix: i64,
    /// The storage backend it was taken from (`sqlite`, `postgresql`).
    pub storage: String,
    /// The keyring's active term when it was taken.
    pub keyring_term: u32,
    /// Names the root key whose [`SnapshotKey`] made the MAC (see [`SnapshotKey::id`]).
    pub key_id: [u8; 8],
    /// How many records follow.
    pub records: u64,
}

/// The trailer: the digest of everything before it and the MAC of that digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// SHA-256 of the header, the records and the end marker (already checked by the
    /// [`Decoder`] when it hands the trailer out).
    pub digest: [u8; DIGEST_LEN],
    /// HMAC-SHA256 of `digest` under the [`SnapshotKey`] named in the header.
    pub mac: [u8; DIGEST_LEN],
}

impl Trailer {
    /// Whether the MAC is `key`'s over the digest (compared in constant time).
    pub fn mac_is_valid(&self, key: &SnapshotKey) -> bool {
        constant_time_eq(&key.mac(&self.digest), &self.mac)
    }
}

/// The key that MACs snapshots, derived from the root key: the root key itself never MACs
/// anything directly, and the derivation label keeps this use apart from every other.
pub struct SnapshotKey {
    mac: HmacSha256Key,
    id: [u8; 8],
}

impl SnapshotKey {
    /// Derives the snapshot key from the root key's bytes.
    pub fn derive(root_key: &[u8]) -> Self {
        let mut derived = hmac_sha256(root_key, b"ward/snapshot/v1/mac-key");
        let mac = HmacSha256Key::new(&derived);
        let tag = mac.sign(b"ward/snapshot/v1/key-id");
        let mut id = [0u8; 8];
        id.copy_from_slice(&tag[..8]);
        derived.fill(0);
        Self { mac, id }
    }

    /// A public name of the root key (8 bytes of a MAC under the derived key): equal ids
    /// mean the same root key, and it reveals nothing of the key.
    pub fn id(&self) -> [u8; 8] {
        self.id
    }

    fn mac(&self, digest: &[u8; DIGEST_LEN]) -> [u8; DIGEST_LEN] {
        self.mac.sign(digest)
    }
}

impl std::fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotKey").finish_non_exhaustive()
    }
}

/// Checks a record's key as the storage layer would accept it.
fn key_is_valid(key: &[u8]) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && !key.contains(&0)
        && key.last() != Some(&b'/')
        && std::str::from_utf8(key).is_ok()
}

fn storage_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_STORAGE_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Writes a snapshot piece by piece: the caller sends each piece on as it comes, so a
/// snapshot of any size is never held whole.
#[derive(Debug)]
pub struct Encoder {
    hash: Sha256Stream,
    announced: u64,
    written: u64,
    last_key: Vec<u8>,
}

impl Encoder {
    /// Starts a snapshot with `header` (its `version` is ignored: this build writes
    /// [`FORMAT_VERSION`]), appending the header's bytes to `out`.
    pub fn start(header: &Header, out: &mut Vec<u8>) -> Result<Self, SnapshotError> {
        if !storage_is_valid(&header.storage) {
            return Err(SnapshotError::BadStorageKind);
        }
        let begin = out.len();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&header.created_unix.to_be_bytes());
        out.push(u8::try_from(header.storage.len()).map_err(|_| SnapshotError::BadStorageKind)?);
        out.extend_from_slice(header.storage.as_bytes());
        out.extend_from_slice(&header.keyring_term.to_be_bytes());
        out.extend_from_slice(&header.key_id);
        out.extend_from_slice(&header.records.to_be_bytes());
        let mut hash = Sha256Stream::new();
        hash.update(&out[begin..]);
        Ok(Self {
            hash,
            announced: header.records,
            written: 0,
            last_key: Vec::new(),
        })
    }

    /// Appends one record to `out`. Keys must ascend strictly, as the storage lists them.
    pub fn record(
        &mut self,
        key: &str,
        value: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SnapshotError> {
        let index = self.written;
        if self.written >= self.announced {
            return Err(SnapshotError::CountMismatch {
                announced: self.announced,
                written: self.written + 1,
            });
        }
        if !key_is_valid(key.as_bytes()) {
            return Err(SnapshotError::BadKey { index });
        }
        if index > 0 && key.as_bytes() <= self.last_key.as_slice() {
            return Err(SnapshotError::OutOfOrder { index });
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(SnapshotError::ValueTooLong { index });
        }
        let begin = out.len();
        // Both lengths fit: checked against bounds far below u32::MAX above.
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
        self.hash.update(&out[begin..]);
        self.last_key.clear();
        self.last_key.extend_from_slice(key.as_bytes());
        self.written += 1;
        Ok(())
    }

    /// Appends the trailer (end marker, digest, MAC under `key`) to `out`.
    pub fn finish(
        mut self,
        key: &SnapshotKey,
        out: &mut Vec<u8>,
    ) -> Result<Trailer, SnapshotError> {
        if self.written != self.announced {
            return Err(SnapshotError::CountMismatch {
                announced: self.announced,
                written: self.written,
            });
        }
        self.hash.update(END_MAGIC);
        let digest = self.hash.digest();
        let mac = key.mac(&digest);
        out.extend_from_slice(END_MAGIC);
        out.extend_from_slice(&digest);
        out.extend_from_slice(&mac);
        Ok(Trailer { digest, mac })
    }
}

/// One piece of a parsed snapshot, in order: the header, each record, the trailer.
#[derive(PartialEq, Eq)]
pub enum Item {
    /// The header (first).
    Header(Header),
    /// One stored entry.
    Record {
        /// The key as stored.
        key: String,
        /// The value as stored.
        value: Vec<u8>,
    },
    /// The trailer (last), once its digest has been checked.
    End(Trailer),
}

// Records are ciphertext, but keep Debug short and content-free anyway.
impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Header(h) => f.debug_tuple("Header").field(h).finish(),
            Item::Record { key, value } => f
                .debug_struct("Record")
                .field("key_len", &key.len())
                .field("value_len", &value.len())
                .finish(),
            Item::End(t) => f.debug_tuple("End").field(t).finish(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Records { left: u64, index: u64 },
    Trailer,
    Done,
    Failed,
}

/// Parses a snapshot from bytes pushed in pieces of any size (sans-I/O). It never panics and
/// never buffers more than one record plus the last piece pushed; after an error every call
/// returns that error again. A snapshot in Vault's container (as `bao operator raft snapshot
/// save` writes it) is unwrapped on the way.
pub struct Decoder {
    /// Set when the input turned out to be the gzip'd container.
    archive: Option<archive::ArchiveReader>,
    sniffed: bool,
    buf: Vec<u8>,
    pos: usize,
    state: State,
    hash: Sha256Stream,
    last_key: Vec<u8>,
    error: Option<SnapshotError>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("state", &self.state)
            .field("archive", &self.archive.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder at the start of a snapshot.
    pub fn new() -> Self {
        Self {
            archive: None,
            sniffed: false,
            buf: Vec::new(),
            pos: 0,
            state: State::Header,
            hash: Sha256Stream::new(),
            last_key: Vec::new(),
            error: None,
        }
    }

    /// Adds the next bytes of the snapshot.
    pub fn push(&mut self, bytes: &[u8]) {
        // Drop what has been parsed before growing, so the buffer stays about one record.
        if self.pos > 0 && (self.pos >= self.buf.len() / 2 || self.pos > 1 << 20) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if !self.sniffed && !bytes.is_empty() {
            self.sniffed = true;
            if bytes[0] == archive::GZIP_MAGIC[0] {
                self.archive = Some(archive::ArchiveReader::new());
            }
        }
        match &mut self.archive {
            None => self.buf.extend_from_slice(bytes),
            Some(archive) => {
                if self.error.is_none()
                    && let Err(e) = archive.push(bytes, &mut self.buf)
                {
                    self.error = Some(e);
                    self.state = State::Failed;
                }
            }
        }
    }

    /// The next item, `Ok(None)` when more bytes are needed (or the snapshot is complete:
    /// see [`finish`](Self::finish)).
    pub fn next_item(&mut self) -> Result<Option<Item>, SnapshotError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.step();
        if let Err(e) = &result {
            self.error = Some(e.clone());
            self.state = State::Failed;
        }
        result
    }

    /// Whether the whole snapshot, trailer included, has been parsed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Called when the input has ended: an error unless exactly one whole snapshot was read.
    pub fn finish(&mut self) -> Result<(), SnapshotError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if let Some(archive) = &mut self.archive {
            let mut rest = Vec::new();
            archive.finish(&mut rest)?;
            // Everything came out as it was pushed: anything now is beyond the trailer.
            if !rest.is_empty() {
                return Err(SnapshotError::TrailingData);
            }
        }
        match self.state {
            State::Done if self.pos == self.buf.len() => Ok(()),
            State::Done => Err(SnapshotError::TrailingData),
            _ => Err(SnapshotError::Truncated),
        }
    }

    fn available(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Consumes `n` bytes (known to be available) into the digest.
    fn consume(&mut self, n: usize) {
        let end = self.pos + n;
        if let Some(bytes) = self.buf.get(self.pos..end) {
            self.hash.update(bytes);
        }
        self.pos = end;
    }

    fn step(&mut self) -> Result<Option<Item>, SnapshotError> {
        match self.state {
            State::Header => self.header(),
            State::Records { left: 0, .. } => {
                self.state = State::Trailer;
                self.trailer()
            }
            State::Records { left, index } => self.record(left, index),
            State::Trailer => self.trailer(),
            State::Done => {
                if self.pos < self.buf.len() {
                    Err(SnapshotError::TrailingData)
                } else {
                    Ok(None)
                }
            }
            State::Failed => Err(SnapshotError::Truncated),
        }
    }

    fn header(&mut self) -> Result<Option<Item>, SnapshotError> {
        let data = self.available();
        // The magic is checked as soon as it can be, so that a wrong file fails at once.
        let seen = data.len().min(MAGIC.len());
        if data[..seen] != MAGIC[..seen] {
            return Err(SnapshotError::BadMagic);
        }
        if data.len() < HEADER_FIXED {
            return Ok(None);
        }
        let mut r = Reader(data);
        r.take(MAGIC.len());
        let version = r.u16();
        if version != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let created_unix = r.i64();
        let storage_len = usize::from(r.u8());
        if storage_len == 0 || storage_len > MAX_STORAGE_LEN {
            return Err(SnapshotError::BadStorageKind);
        }
        if data.len() < HEADER_FIXED + storage_len + HEADER_TAIL {
            return Ok(None);
        }
        let storage = std::str::from_utf8(r.take(storage_len))
            .ok()
            .filter(|s| storage_is_valid(s))
            .ok_or(SnapshotError::BadStorageKind)?
            .to_owned();
        let keyring_term = r.u32();
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(r.take(8));
        let records = r.u64();
        let header = Header {
            version,
            created_unix,
            storage,
            keyring_term,
            key_id,
            records,
        };
        self.consume(HEADER_FIXED + storage_len + HEADER_TAIL);
        self.state = State::Records {
            left: records,
            index: 0,
        };
        Ok(Some(Item::Header(header)))
    }

    fn record(&mut self, left: u64, index: u64) -> Result<Option<Item>, SnapshotError> {
        let data = self.available();
        // Where the trailer should be, a record was announced: a damaged count or a
        // truncated file shows here as an end marker in the record's place. Bytes that may
        // still turn out to be that marker decide nothing yet, so that the error does not
        // depend on how the input was split (as a key length, "WARD" is too long: waiting
        // never holds up a valid record).
        let seen = data.len().min(END_MAGIC.len());
        if data[..seen] == END_MAGIC[..seen] {
            return if seen == END_MAGIC.len() {
                Err(SnapshotError::Truncated)
            } else {
                Ok(None)
            };
        }
        if data.len() < 4 {
            return Ok(None);
        }
        let mut r = Reader(data);
        let key_len = r.u32() as usize;
        if key_len == 0 || key_len > MAX_KEY_LEN {
            return Err(SnapshotError::BadKey { index });
        }
        if data.len() < 4 + key_len + 4 {
            return Ok(None);
        }
        let key = r.take(key_len);
        if !key_is_valid(key) {
            return Err(SnapshotError::BadKey { index });
        }
        if index > 0 && key <= self.last_key.as_slice() {
            return Err(SnapshotError::OutOfOrder { index });
        }
        let value_len = r.u32() as usize;
        if value_len > MAX_VALUE_LEN {
            return Err(SnapshotError::ValueTooLong { index });
        }
        let total = 4 + key_len + 4 + value_len;
        if data.len() < total {
            return Ok(None);
        }
        let value = r.take(value_len).to_vec();
        // Valid UTF-8: key_is_valid checked it.
        let key = String::from_utf8_lossy(key).into_owned();
        self.last_key.clear();
        self.last_key.extend_from_slice(key.as_bytes());
        self.consume(total);
        self.state = State::Records {
            left: left - 1,
            index: index + 1,
        };
        Ok(Some(Item::Record { key, value }))
    }

    fn trailer(&mut self) -> Result<Option<Item>, SnapshotError> {
        let data = self.available();
        let seen = data.len().min(END_MAGIC.len());
        if data[..seen] != END_MAGIC[..seen] {
            return Err(SnapshotError::BadEndMarker);
        }
        if data.len() < TRAILER_LEN {
            return Ok(None);
        }
        let mut r = Reader(data);
        r.take(END_MAGIC.len());
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(r.take(DIGEST_LEN));
        let mut mac = [0u8; DIGEST_LEN];
        mac.copy_from_slice(r.take(DIGEST_LEN));
        self.consume(END_MAGIC.len());
        self.pos += 2 * DIGEST_LEN;
        if !constant_time_eq(&self.hash.digest(), &digest) {
            return Err(SnapshotError::DigestMismatch);
        }
        self.state = State::Done;
        Ok(Some(Item::End(Trailer { digest, mac })))
    }
}

/// Reads fixed-size fields from a slice whose length the caller has checked; a short slice
/// yields zeros rather than a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let bytes = self.take(N);
        out[..bytes.len()].copy_from_slice(bytes);
        out
    }

    fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.array())
    }
}

/// A snapshot's records in order: (key, value) as stored.
pub type Records = Vec<(String, Vec<u8>)>;

/// Parses a whole snapshot held in memory (tests, small files): the header, the records
/// and the trailer, or the first thing wrong with it.
pub fn parse(bytes: &[u8]) -> Result<(Header, Records, Trailer), SnapshotError> {
    let mut decoder = Decoder::new();
    decoder.push(bytes);
    let mut header = None;
    let mut records = Vec::new();
    let mut trailer = None;
    while let Some(item) = decoder.next_item()? {
        match item {
            Item::Header(h) => header = Some(h),
            Item::Record { key, value } => records.push((key, value)),
            Item::End(t) => trailer = Some(t),
        }
    }
    decoder.finish()?;
    match (header, trailer) {
        (Some(h), Some(t)) => Ok((h, records, t)),
        _ => Err(SnapshotError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SnapshotKey {
        SnapshotKey::derive(&[7u8; 32])
    }

    fn sample(records: &[(&str, &[u8])]) -> Vec<u8> {
        let header = Header {
            version: FORMAT_VERSION,
            created_unix: 1_700_000_000,
            storage: "sqlite".into(),
            keyring_term: 3,
            key_id: key().id(),
            records: records.len() as u64,
        };
        let mut out = Vec::new();
        let mut enc = Encoder::start(&header, &mut out).unwrap();
        for (k, v) in records {
            enc.record(k, v, &mut out).unwrap();
        }
        enc.finish(&key(), &mut out).unwrap();
        out
    }

    const RECORDS: &[(&str, &[u8])] = &[
        ("core/keyring", b"ring"),
        ("core/root-key", b"root"),
        ("logical/abc", b"\x00\x01\x02"),
        ("logical/abd", b""),
    ];

    #[test]
    fn round_trip_in_one_piece_and_byte_by_byte() {
        let bytes = sample(RECORDS);
        let (header, records, trailer) = parse(&bytes).unwrap();
        assert_eq!(header.storage, "sqlite");
        assert_eq!(header.keyring_term, 3);
        assert_eq!(header.records, 4);
        assert_eq!(records.len(), 4);
        assert_eq!(records[2].1, b"\x00\x01\x02");
        assert!(trailer.mac_is_valid(&key()));
        assert!(!trailer.mac_is_valid(&SnapshotKey::derive(&[8u8; 32])));

        let mut decoder = Decoder::new();
        let mut items = 0;
        for b in &bytes {
            decoder.push(std::slice::from_ref(b));
            while let Some(_item) = decoder.next_item().unwrap() {
                items += 1;
            }
        }
        decoder.finish().unwrap();
        assert_eq!(items, 6);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let bytes = sample(RECORDS);
        // The MAC's bytes are checked by the restoring server, not the parser.
        for i in 0..bytes.len() - DIGEST_LEN {
            for bit in [0x01u8, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                assert!(parse(&bad).is_err(), "flip at {i} went unnoticed");
            }
        }
        let mut bad_mac = bytes.clone();
        let last = bad_mac.len() - 1;
        bad_mac[last] ^= 1;
        let (_, _, trailer) = parse(&bad_mac).unwrap();
        assert!(!trailer.mac_is_valid(&key()));
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = sample(RECORDS);
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len]).is_err(), "cut at {len} went unnoticed");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(parse(&longer).unwrap_err(), SnapshotError::TrailingData);
    }

    #[test]
    fn vault_container_round_trip_and_damage() {
        let raw = sample(RECORDS);
        let (_, _, trailer) = parse(&raw).unwrap();
        let mut wrapped = Vec::new();
        let mut writer = ArchiveWriter::new();
        for piece in raw.chunks(7) {
            wrapped.extend(writer.piece(piece));
        }
        wrapped.extend(writer.finish(&trailer.digest));
        assert_eq!(&wrapped[..2], &[0x1f, 0x8b]);
        let (header, records, unwrapped_trailer) = parse(&wrapped).unwrap();
        assert_eq!(header.records, 4);
        assert_eq!(records, parse(&raw).unwrap().1);
        assert_eq!(unwrapped_trailer, trailer);
        for len in 0..wrapped.len() {
            assert!(
                parse(&wrapped[..len]).is_err(),
                "cut at {len} went unnoticed"
            );
        }
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x10;
            // The gzip header's time and OS bytes protect nothing: the snapshot inside
            // must come out whole or not at all.
            match parse(&bad) {
                Err(_) => {}
                Ok((_, r, t)) => {
                    assert_eq!((r, t), (records.clone(), trailer.clone()), "flip at {i}")
                }
            }
        }
    }

    #[test]
    fn typed_errors() {
        assert_eq!(parse(b"NOTASNAPSHOT").unwrap_err(), SnapshotError::BadMagic);
        let mut v2 = sample(RECORDS);
        v2[9] = 2;
        assert_eq!(
            parse(&v2).unwrap_err(),
            SnapshotError::UnsupportedVersion(2)
        );
        assert_eq!(
            parse(&sample(RECORDS)[..100]).unwrap_err(),
            SnapshotError::Truncated
        );
    }

    #[test]
    fn encoder_refuses_what_the_parser_would() {
        let header = Header {
            version: 1,
            created_unix: 0,
            storage: "sqlite".into(),
            keyring_term: 1,
            key_id: [0; 8],
            records: 2,
        };
        let mut out = Vec::new();
        let mut enc = Encoder::start(&header, &mut out).unwrap();
        enc.record("b", b"", &mut out).unwrap();
        assert_eq!(
            enc.record("a", b"", &mut out).unwrap_err(),
            SnapshotError::OutOfOrder { index: 1 }
        );
        assert_eq!(
            enc.record("c/", b"", &mut out).unwrap_err(),
            SnapshotError::BadKey { index: 1 }
        );
        assert!(matches!(
            enc.finish(&key(), &mut out),
            Err(SnapshotError::CountMismatch { .. })
        ));
        let bad = Header {
            storage: "no spaces".into(),
            ..header
        };
        assert_eq!(
            Encoder::start(&bad, &mut Vec::new()).unwrap_err(),
            SnapshotError::BadStorageKind
        );
    }

    /// Pushes `bytes` one at a time, reading every item as soon as it is whole: the first
    /// error, or what `finish` says.
    fn parse_bytewise(bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut decoder = Decoder::new();
        for b in bytes {
            decoder.push(std::slice::from_ref(b));
            while decoder.next_item()?.is_some() {}
        }
        decoder.finish()
    }

    #[test]
    fn an_end_marker_in_a_records_place_is_the_same_error_however_it_arrives() {
        // Found by the fuzzer (snapshot_decoder): byte by byte, the marker's first four
        // bytes were read as a key length (BadKey) before the whole marker was there.
        let mut bytes = sample(&RECORDS[..1]);
        let count_at = HEADER_FIXED + "sqlite".len() + 4 + 8;
        bytes[count_at..count_at + 8].copy_from_slice(&2u64.to_be_bytes());
        assert_eq!(parse(&bytes).unwrap_err(), SnapshotError::Truncated);
        assert_eq!(
            parse_bytewise(&bytes).unwrap_err(),
            SnapshotError::Truncated
        );
        // Cut inside the marker, it is a truncated file either way.
        let cut = &bytes[..bytes.len() - TRAILER_LEN + 5];
        assert_eq!(parse(cut).unwrap_err(), SnapshotError::Truncated);
        assert_eq!(parse_bytewise(cut).unwrap_err(), SnapshotError::Truncated);
        // And a valid snapshot still parses byte by byte.
        assert_eq!(parse_bytewise(&sample(RECORDS)), Ok(()));
    }

    #[test]
    fn hostile_lengths_do_not_allocate_or_panic() {
        let mut bytes = sample(&[]);
        // Announce a record and give it a huge value length.
        let count_at = HEADER_FIXED + "sqlite".len() + 4 + 8;
        bytes[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        bytes.truncate(count_at + 8);
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.push(b'k');
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            parse(&bytes).unwrap_err(),
            SnapshotError::ValueTooLong { index: 0 }
        );
        // Pseudo-random garbage after a valid magic never panics.
        let mut state = 0x1234_5678_u64;
        for _ in 0..2000 {
            let mut junk = MAGIC.to_vec();
            for _ in 0..64 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                junk.push((state >> 33) as u8);
            }
            assert!(parse(&junk).is_err());
        }
    }
}
