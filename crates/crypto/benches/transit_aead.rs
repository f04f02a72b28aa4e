//! Transit's AEADs against the raw library, side by side in one run (issue 4: "the crypto itself
//! within 10% of the raw library's speed").
//!
//! ```text
//! cargo bench -p ward-crypto --bench transit_aead
//! ```
//!
//! `ward` is `ward_crypto::kms::AeadKey` (a prepared key: random nonce drawn from aws-lc's
//! CSPRNG for each seal, as `raw` does, output laid out as Vault's `nonce || ciphertext ||
//! tag`; until issue 22 the nonce came from a per-thread pool, about 400 ns faster per seal,
//! dropped because a fork or a resumed VM snapshot would repeat a pool's nonces). `raw` is the least a caller of
//! aws-lc-rs can do for the same result: a prepared `LessSafeKey`, a random nonce from aws-lc-rs'
//! `SystemRandom`, one output buffer. Both seal and open 1 KiB with 16 bytes of associated data.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use aws_lc_rs::aead::{
    AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey,
};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ward_crypto::kms::Aead;

const PLAINTEXT_BYTES: usize = 1024;
const AAD: &[u8] = b"bench-associated";

fn raw_seal(key: &LessSafeKey, rng: &SystemRandom, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).unwrap();
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut out[NONCE_LEN..],
        )
        .unwrap();
    out.extend_from_slice(tag.as_ref());
    out
}

fn raw_open(key: &LessSafeKey, sealed: &[u8]) -> Vec<u8> {
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let mut buf = rest.to_vec();
    let len = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).unwrap(),
            Aad::from(AAD),
            &mut buf,
        )
        .unwrap()
        .len();
    buf.truncate(len);
    buf
}

fn compare(c: &mut Criterion, name: &str, aead: Aead, algorithm: &'static Algorithm) {
    let key_bytes = vec![7u8; aead.key_len()];
    let ward = aead.prepare(&key_bytes).unwrap();
    let raw = LessSafeKey::new(UnboundKey::new(algorithm, &key_bytes).unwrap());
    let rng = SystemRandom::new();
    let plaintext = vec![0x5au8; PLAINTEXT_BYTES];
    let sealed = ward.seal(None, &plaintext, AAD).unwrap();
    // The two produce the same layout: each opens the other's output.
    assert_eq!(raw_open(&raw, &sealed), plaintext);
    let raw_sealed = raw_seal(&raw, &rng, &plaintext);
    assert_eq!(
        ward.open(&raw_sealed, AAD).unwrap().expose(),
        &plaintext[..]
    );

    let mut group = c.benchmark_group(format!("{name} 1KiB"));
    group.throughput(Throughput::Bytes(PLAINTEXT_BYTES as u64));
    group.bench_function("seal/raw", |b| {
        b.iter(|| raw_seal(&raw, &rng, black_box(&plaintext)))
    });
    group.bench_function("seal/ward", |b| {
        b.iter(|| ward.seal(None, black_box(&plaintext), AAD).unwrap())
    });
    group.bench_function("open/raw", |b| {
        b.iter(|| raw_open(&raw, black_box(&sealed)))
    });
    group.bench_function("open/ward", |b| {
        b.iter(|| ward.open(black_box(&sealed), AAD).unwrap())
    });
    group.finish();
}

fn aeads(c: &mut Criterion) {
    compare(c, "aes256-gcm96", Aead::Aes256Gcm, &AES_256_GCM);
    compare(
        c,
        "chacha20-poly1305",
        Aead::ChaCha20Poly1305,
        &CHACHA20_POLY1305,
    );
}

criterion_group!(benches, aeads);
criterion_main!(benches);
