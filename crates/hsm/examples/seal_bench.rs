//! What the PKCS#11 seal costs: the first call (load the module, find the token, log in,
//! create the key) and each wrap and unwrap of a 32-byte root key, for both mechanisms.
//!
//! Needs a SoftHSM2 token labelled `ward` with user PIN 1234 (BENCHMARKS.md has the set-up):
//! `cargo run --release -p ward-hsm --example seal_bench`.

use std::time::Instant;

use ward_core::seals::Seal;
use ward_hsm::{Pkcs11Seal, Pkcs11Settings, WrapMechanism};
use zeroize::Zeroizing;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds = 2_000;
    for (mechanism, label) in [
        (WrapMechanism::AesGcm, "bench-gcm"),
        (WrapMechanism::AesKeyWrapPad, "bench-kwp"),
    ] {
        let seal = Pkcs11Seal::new(Pkcs11Settings {
            lib: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: Some("ward".into()),
            slot: None,
            pin: Zeroizing::new("1234".into()),
            key_label: label.into(),
            mechanism: Some(mechanism),
            generate_key: true,
        });
        let root = [7u8; 32];
        let start = Instant::now();
        let mut wrapped = seal.wrap(&root, b"ward/root-key")?;
        let first = start.elapsed();
        let start = Instant::now();
        for _ in 0..rounds {
            wrapped = seal.wrap(&root, b"ward/root-key")?;
        }
        let wrap = start.elapsed() / rounds;
        let start = Instant::now();
        for _ in 0..rounds {
            let plain = seal.unwrap(&wrapped, b"ward/root-key")?;
            assert_eq!(plain.expose(), root);
        }
        let unwrap = start.elapsed() / rounds;
        println!(
            "{mechanism:?}: first call (connect, log in, create key, wrap) {first:?}; \
             wrap {wrap:?}; unwrap {unwrap:?} (mean of {rounds})"
        );
    }
    Ok(())
}
