//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`, minimised with `cargo fuzz
//! cmin`) and the generated seeds through the fuzz targets' bodies, so that every test run
//! exercises on stable what the fuzzer found, without a nightly toolchain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use ward_snapshot::fuzzing;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    // An empty or missing corpus would make this test pass while checking nothing.
    assert!(
        files.len() >= 5,
        "{}: only {} corpus files",
        dir.display(),
        files.len()
    );
    files
}

fn replay(target: &str, body: fn(&[u8])) {
    for file in corpus(target) {
        let bytes = std::fs::read(&file).unwrap();
        // The file's name first, so that a failure says which input it was.
        eprintln!("{target}: {}", file.display());
        body(&bytes);
    }
}

#[test]
fn snapshot_decoder_corpus() {
    replay("snapshot_decoder", fuzzing::snapshot_decoder);
}

#[test]
fn snapshot_archive_corpus() {
    replay("snapshot_archive", fuzzing::snapshot_archive);
}

#[test]
fn seeds_pass_both_bodies_and_the_valid_ones_parse() {
    let seeds = fuzzing::seeds();
    assert!(seeds.len() > 10);
    for (name, bytes) in &seeds {
        fuzzing::snapshot_decoder(bytes);
        fuzzing::snapshot_archive(bytes);
        let parsed = ward_snapshot::parse(&bytes[1..]);
        let damaged = name.ends_with("-cut") || name.ends_with("-flipped");
        assert_eq!(parsed.is_err(), damaged, "{name}: {parsed:?}");
    }
}
