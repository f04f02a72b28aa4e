//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz, nightly), kept in the crate so that
//! a stable test (`tests/fuzz_corpus.rs`) replays the checked-in corpus through the same code
//! on every test run. Built only with the `fuzzing` feature.
//!
//! A body panics only when it finds a bug: a panic in the parser, a buffer grown beyond the
//! input it was given, or two readings of the same bytes that disagree. The first input byte
//! picks the size of the pieces the rest is pushed in (1 to 256 bytes), so that the fuzzer
//! explores the split points a socket might produce.

// A fuzz body reports a bug by panicking: that is what the fuzzer and the replay test catch.
#![allow(clippy::expect_used)]

use crate::archive::ArchiveReader;
use crate::{
    ArchiveWriter, Decoder, Encoder, FORMAT_VERSION, Header, Item, SnapshotError, SnapshotKey,
    archive,
};

/// Splits a fuzz input into the piece size it picks and the bytes to push.
fn split(data: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, input) = data.split_first()?;
    Some((usize::from(first) + 1, input))
}

/// Target `snapshot_decoder`: arbitrary bytes, in pieces, into [`Decoder`]. Checks that it
/// never panics, never holds more than it was given (no allocation from a length field),
/// reaches the same verdict whatever the split, and accepts only what [`Encoder`] writes.
pub fn snapshot_decoder(data: &[u8]) {
    let Some((piece, input)) = split(data) else {
        return;
    };
    let in_pieces = decode(input, piece);
    let whole = decode(input, input.len().max(1));
    let container = input.first() == Some(&archive::GZIP_MAGIC[0]);
    match (&in_pieces, &whole) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the split changed the items"),
        // Through the container, the gzip layer may find damage before or after the
        // snapshot inside does, depending on how much was pushed: only the verdict counts.
        (Err(_), Err(_)) if container => {}
        (Err(a), Err(b)) => assert_eq!(a, b, "the split changed the error"),
        _ => panic!("the split changed the verdict: {in_pieces:?} against {whole:?}"),
    }
    if let Ok(items) = &whole {
        let (bytes, digest) = reencode(items);
        if container {
            assert_eq!(Some(digest), trailer_digest(items));
        } else {
            // The format has one encoding of each snapshot: what parses is what the encoder
            // writes, byte for byte (the MAC aside: it is under a key the parser lacks).
            let body = input.len() - 32;
            assert_eq!(
                bytes[..body],
                input[..body],
                "a non-canonical snapshot parsed"
            );
        }
    }
}

/// Decodes `input` pushed `piece` bytes at a time: the items, or the first error.
fn decode(input: &[u8], piece: usize) -> Result<Vec<Item>, SnapshotError> {
    let mut decoder = Decoder::new();
    let result = decode_into(&mut decoder, input, piece);
    if let Err(e) = &result
        && decoder.error.is_some()
    {
        // Once failed, it stays failed with the same error.
        assert_eq!(decoder.next_item(), Err(e.clone()));
        assert_eq!(decoder.finish(), Err(e.clone()));
    }
    result
}

fn decode_into(
    decoder: &mut Decoder,
    input: &[u8],
    piece: usize,
) -> Result<Vec<Item>, SnapshotError> {
    let container = input.first() == Some(&archive::GZIP_MAGIC[0]);
    let mut items = Vec::new();
    for bytes in input.chunks(piece) {
        decoder.push(bytes);
        while let Some(item) = decoder.next_item()? {
            items.push(item);
        }
        if !container {
            // It buffers what it was given, never what a length field announces (the
            // container's bytes inflate, so only the bare format is bounded by its input).
            assert!(
                decoder.buf.capacity() <= 2 * input.len() + 64,
                "{} bytes reserved for {} bytes of input",
                decoder.buf.capacity(),
                input.len()
            );
        }
    }
    decoder.finish()?;
    Ok(items)
}

/// Writes the parsed items again with [`Encoder`]: the bytes and their digest.
fn reencode(items: &[Item]) -> (Vec<u8>, [u8; 32]) {
    let [Item::Header(header), records @ .., Item::End(_)] = items else {
        panic!("a parsed snapshot is not header, records, trailer: {items:?}");
    };
    assert_eq!(header.version, FORMAT_VERSION);
    let mut out = Vec::new();
    let mut encoder = Encoder::start(header, &mut out).expect("a parsed header encodes");
    for record in records {
        let Item::Record { key, value } = record else {
            panic!("a header or trailer among the records: {items:?}");
        };
        encoder
            .record(key, value, &mut out)
            .expect("a parsed record encodes");
    }
    let trailer = encoder
        .finish(&SnapshotKey::derive(&[0; 32]), &mut out)
        .expect("the parsed record count matches its header");
    (out, trailer.digest)
}

fn trailer_digest(items: &[Item]) -> Option<[u8; 32]> {
    match items.last() {
        Some(Item::End(trailer)) => Some(trailer.digest),
        _ => None,
    }
}

/// Target `snapshot_archive`: the container alone. Arbitrary bytes, in pieces, through the
/// container reader (never a panic, the same bytes out whatever the split), then the input
/// itself wrapped by [`ArchiveWriter`] and read back unchanged.
pub fn snapshot_archive(data: &[u8]) {
    let Some((piece, input)) = split(data) else {
        return;
    };
    let in_pieces = unwrap_archive(input, piece);
    let whole = unwrap_archive(input, input.len().max(1));
    match (&in_pieces, &whole) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the split changed the bytes out"),
        (Err(_), Err(_)) => {}
        _ => panic!("the split changed the verdict: {in_pieces:?} against {whole:?}"),
    }

    // Each piece costs a 512-byte tar header and its padding: pieces of 31 to 7936 bytes
    // keep a run fast, and (31 being odd) still leave every padding length possible.
    let mut writer = ArchiveWriter::new();
    let mut wrapped = Vec::new();
    for bytes in input.chunks(piece * 31) {
        wrapped.extend(writer.piece(bytes));
    }
    wrapped.extend(writer.finish(&[0; 32]));
    assert_eq!(
        unwrap_archive(&wrapped, piece).as_deref(),
        Ok(input),
        "a wrapped snapshot came out changed"
    );
}

fn unwrap_archive(input: &[u8], piece: usize) -> Result<Vec<u8>, SnapshotError> {
    let mut reader = ArchiveReader::new();
    let mut out = Vec::new();
    for bytes in input.chunks(piece) {
        reader.push(bytes, &mut out)?;
    }
    reader.finish(&mut out)?;
    Ok(out)
}

/// Seeds for both targets: valid snapshots (bare and in the container, empty and not) and a
/// few near misses, each behind its piece-size byte. `(file name, bytes)`.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let records: &[(&str, &[u8])] = &[
        ("core/keyring", b"ring"),
        ("core/root-key", &[0x5a; 40]),
        ("logical/0f1e/abc", b"\x00\x01\x02"),
        ("logical/0f1e/abd", b""),
        ("sys/token/id/h1", &[0xff; 600]),
    ];
    let mut seeds = Vec::new();
    for (name, count) in [("empty", 0), ("one", 1), ("five", records.len())] {
        let bare = snapshot(&records[..count]);
        let wrapped = container(&bare, 7);
        for (piece, tag) in [(0u8, "byte"), (15, "16"), (255, "256")] {
            seeds.push((format!("bare-{name}-{tag}"), prefixed(piece, &bare)));
            seeds.push((format!("container-{name}-{tag}"), prefixed(piece, &wrapped)));
        }
    }
    let mut cut = snapshot(records);
    cut.truncate(cut.len() / 2);
    seeds.push(("bare-cut".into(), prefixed(31, &cut)));
    let mut flipped = snapshot(records);
    flipped[40] ^= 0x40;
    seeds.push(("bare-flipped".into(), prefixed(31, &flipped)));
    seeds
}

fn prefixed(piece: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![piece];
    out.extend_from_slice(bytes);
    out
}

fn snapshot(records: &[(&str, &[u8])]) -> Vec<u8> {
    let key = SnapshotKey::derive(&[7; 32]);
    let header = Header {
        version: FORMAT_VERSION,
        created_unix: 1_700_000_000,
        storage: "sqlite".into(),
        keyring_term: 1,
        key_id: key.id(),
        records: records.len() as u64,
    };
    let mut out = Vec::new();
    let mut encoder = Encoder::start(&header, &mut out).expect("a valid header");
    for (k, v) in records {
        encoder
            .record(k, v, &mut out)
            .expect("valid, ascending keys");
    }
    encoder.finish(&key, &mut out).expect("all records written");
    out
}

fn container(bare: &[u8], piece: usize) -> Vec<u8> {
    let (_, _, trailer) = crate::parse(bare).expect("a valid snapshot");
    let mut writer = ArchiveWriter::new();
    let mut out = Vec::new();
    for bytes in bare.chunks(piece) {
        out.extend(writer.piece(bytes));
    }
    out.extend(writer.finish(&trailer.digest));
    out
}
