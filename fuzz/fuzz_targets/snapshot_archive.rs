//! Vault's gzip'd tar container, in pieces the first byte picks, through the snapshot
//! crate's container reader; and the input wrapped by its writer and read back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ward_snapshot::fuzzing::snapshot_archive(data));
