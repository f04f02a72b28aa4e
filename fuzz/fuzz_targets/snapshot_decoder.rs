//! Snapshot bytes, in pieces the first byte picks, into `ward_snapshot::Decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ward_snapshot::fuzzing::snapshot_decoder(data));
