//! Vault's snapshot container, so that `bao operator raft snapshot save` accepts what Ward
//! sends: a gzip'd tar whose last entry is a non-empty `SHA256SUMS.sealed` (the CLI checks
//! for it, nothing more). Ward's own snapshot travels inside, as entries
//! `ward-snapshot/000001`, `…/000002`, … in order: one per piece, because a tar entry states
//! its size before its bytes and a streamed snapshot's size is known only at its end.
//! `SHA256SUMS.sealed` holds the snapshot's digest in hex; the snapshot's own trailer is what
//! is checked. [`Decoder`](crate::Decoder) unwraps the container by itself.

use std::io::Write;

use flate2::Compression;
use flate2::write::{GzDecoder, GzEncoder};

use crate::SnapshotError;

/// The first bytes of a gzip stream.
pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BLOCK: usize = 512;
const PIECE_PREFIX: &str = "ward-snapshot/";
const SUMS_NAME: &str = "SHA256SUMS.sealed";
/// The largest tar entry read (Ward writes pieces of a few hundred KiB).
const MAX_ENTRY: u64 = 1 << 30;

/// Writes the container around a snapshot's pieces.
pub struct ArchiveWriter {
    gz: GzEncoder<Vec<u8>>,
    pieces: u64,
}

impl Default for ArchiveWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("pieces", &self.pieces)
            .finish()
    }
}

fn tar_header(name: &str, size: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let field = |h: &mut [u8; BLOCK], at: usize, bytes: &[u8]| {
        h[at..at + bytes.len()].copy_from_slice(bytes);
    };
    field(&mut h, 0, name.as_bytes());
    field(&mut h, 100, b"0000600\0");
    field(&mut h, 108, b"0000000\0");
    field(&mut h, 116, b"0000000\0");
    field(&mut h, 124, format!("{size:011o}\0").as_bytes());
    field(&mut h, 136, b"00000000000\0");
    field(&mut h, 148, b"        ");
    h[156] = b'0';
    field(&mut h, 257, b"ustar\0");
    field(&mut h, 263, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    field(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    h
}

fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

impl ArchiveWriter {
    /// A container with nothing in it yet.
    pub fn new() -> Self {
        Self {
            // Ciphertext does not compress: spend as little time as gzip allows.
            gz: GzEncoder::new(Vec::new(), Compression::fast()),
            pieces: 0,
        }
    }

    fn entry(&mut self, name: &str, bytes: &[u8]) -> Vec<u8> {
        let size = bytes.len() as u64;
        // Writing into a Vec cannot fail.
        let _ = self.gz.write_all(&tar_header(name, size));
        let _ = self.gz.write_all(bytes);
        let _ = self.gz.write_all(&[0u8; BLOCK][..padding(size)]);
        std::mem::take(self.gz.get_mut())
    }

    /// The container's bytes for the next piece of the snapshot (possibly none yet: gzip
    /// holds some back until it has enough).
    pub fn piece(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pieces += 1;
        let name = format!("{PIECE_PREFIX}{:06}", self.pieces);
        self.entry(&name, bytes)
    }

    /// The container's last bytes: `SHA256SUMS.sealed` with `digest`, the end of the tar,
    /// the end of the gzip stream.
    pub fn finish(mut self, digest: &[u8; 32]) -> Vec<u8> {
        let sums = format!("{}  ward.snap\n", ward_crypto::lower_hex(digest));
        let mut out = self.entry(SUMS_NAME, sums.as_bytes());
        let _ = self.gz.write_all(&[0u8; 2 * BLOCK]);
        if let Ok(rest) = self.gz.finish() {
            out.extend_from_slice(&rest);
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TarState {
    Header,
    /// Inside an entry: bytes of it left, whether they belong to the snapshot, then padding.
    Data {
        left: u64,
        keep: bool,
        pad: usize,
    },
    Padding(usize),
    End,
}

/// Unwraps the container: gzip'd bytes in, the snapshot's bytes out.
pub(crate) struct ArchiveReader {
    gz: GzDecoder<Vec<u8>>,
    tar: Vec<u8>,
    state: TarState,
}

impl ArchiveReader {
    pub(crate) fn new() -> Self {
        Self {
            gz: GzDecoder::new(Vec::new()),
            tar: Vec::new(),
            state: TarState::Header,
        }
    }

    /// Takes the next gzip'd bytes; appends the snapshot bytes they complete to `out`.
    pub(crate) fn push(
        &mut self,
        mut bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SnapshotError> {
        while !bytes.is_empty() {
            let n = self
                .gz
                .write(bytes)
                .map_err(|_| SnapshotError::BadArchive)?;
            if n == 0 {
                return Err(SnapshotError::TrailingData);
            }
            bytes = &bytes[n..];
            // What has been decompressed so far comes out now, not at the next write.
            self.gz.flush().map_err(|_| SnapshotError::BadArchive)?;
            let plain = std::mem::take(self.gz.get_mut());
            self.tar.extend_from_slice(&plain);
            self.untar(out)?;
        }
        Ok(())
    }

    /// At the end of the input: the gzip stream and the tar must both be complete.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
        self.gz.try_finish().map_err(|_| SnapshotError::Truncated)?;
        let plain = std::mem::take(self.gz.get_mut());
        self.tar.extend_from_slice(&plain);
        self.untar(out)?;
        if self.state == TarState::End {
            Ok(())
        } else {
            Err(SnapshotError::Truncated)
        }
    }

    fn untar(&mut self, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
        let mut at = 0;
        loop {
            let data = &self.tar[at..];
            match self.state {
                TarState::Header => {
                    if data.len() < BLOCK {
                        break;
                    }
                    let block = &data[..BLOCK];
                    at += BLOCK;
                    if block.iter().all(|&b| b == 0) {
                        self.state = TarState::End;
                        continue;
                    }
                    let stored: u32 =
                        parse_octal(&block[148..156]).ok_or(SnapshotError::BadArchive)? as u32;
                    let sum: u32 = block
                        .iter()
                        .enumerate()
                        .map(|(i, &b)| {
                            if (148..156).contains(&i) {
                                32
                            } else {
                                u32::from(b)
                            }
                        })
                        .sum();
                    if stored != sum {
                        return Err(SnapshotError::BadArchive);
                    }
                    let name_end = block[..100].iter().position(|&b| b == 0).unwrap_or(100);
                    let name = &block[..name_end];
                    let size = parse_octal(&block[124..136]).ok_or(SnapshotError::BadArchive)?;
                    if size > MAX_ENTRY {
                        return Err(SnapshotError::BadArchive);
                    }
                    let keep = name.starts_with(PIECE_PREFIX.as_bytes());
                    self.state = TarState::Data {
                        left: size,
                        keep,
                        pad: padding(size),
                    };
                }
                TarState::Data { left: 0, pad, .. } => self.state = TarState::Padding(pad),
                TarState::Data { left, keep, pad } => {
                    if data.is_empty() {
                        break;
                    }
                    let take = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    if keep {
                        out.extend_from_slice(&data[..take]);
                    }
                    at += take;
                    self.state = TarState::Data {
                        left: left - take as u64,
                        keep,
                        pad,
                    };
                }
                TarState::Padding(0) => self.state = TarState::Header,
                TarState::Padding(n) => {
                    if data.is_empty() {
                        break;
                    }
                    let take = data.len().min(n);
                    at += take;
                    self.state = TarState::Padding(n - take);
                }
                // The second zero block, and whatever tar writers pad with: ignored.
                TarState::End => {
                    at = self.tar.len();
                    break;
                }
            }
        }
        self.tar.drain(..at);
        Ok(())
    }
}

/// A tar numeric field: octal digits, padded with spaces or NULs.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}
