//! Chaining the two audit lines of a KV read: each line hashed whole, against the two lines
//! sharing their `auth` and `request` objects as a prefix hashed once (`EntryPrefix`), side
//! by side in one run.
//!
//! ```text
//! cargo bench -p ward-api --bench audit_chain
//! ```
//!
//! The lines have the sizes of a KV read's (about 2,400 bytes together with their chain
//! fields, 774 of them the shared prefix). Each iteration builds both entries from their
//! bytes and chains them, as the server does for every audited read.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ward_api::audit::{ChainHead, Entry, EntryPrefix};

/// `{"auth":{...},"request":{...}` of the size a token's KV read has.
fn prefix() -> Vec<u8> {
    let hmac = format!("hmac-sha256:{}", "ab".repeat(32));
    format!(
        "{{\"auth\":{{\"accessor\":\"{hmac}\",\"client_token\":\"{hmac}\",\"display_name\":\"root\",\
         \"metadata\":null,\"policies\":[\"root\"],\"token_issue_time\":\"2026-12-04T08:00:45Z\",\
         \"token_policies\":[\"root\"],\"token_type\":\"service\"}},\"request\":{{\"client_token\":\
         \"{hmac}\",\"client_token_accessor\":\"{hmac}\",\"id\":\"b9332936-4771-4acd-9089-ce7ef54f488b\",\
         \"mount_accessor\":\"kv_aklbwgp1\",\"mount_point\":\"secret/\",\"mount_type\":\"kv\",\
         \"namespace\":{{\"id\":\"root\"}},\"operation\":\"read\",\"path\":\"secret/data/bench/read\",\
         \"remote_address\":\"127.0.0.1\"}}"
    )
    .into_bytes()
}

/// What follows the prefix in the request line and in the response line.
fn rests() -> [Vec<u8>; 2] {
    let hmac = format!("hmac-sha256:{}", "cd".repeat(32));
    let time = "\"time\":\"2026-12-04T08:00:49.707846694Z\"";
    let request = format!(",\"type\":\"request\",{time}").into_bytes();
    let response = format!(
        ",\"type\":\"response\",{time},\"response\":{{\"mount_accessor\":\"kv_aklbwgp1\",\
         \"mount_point\":\"secret/\",\"mount_type\":\"kv\",\"data\":{{\"data\":{{\"password\":\"{hmac}\",\
         \"username\":\"{hmac}\"}},\"metadata\":{{\"created_time\":\"{hmac}\",\"custom_metadata\":null,\
         \"deletion_time\":\"{hmac}\",\"destroyed\":false,\"version\":1}}}}}}"
    )
    .into_bytes();
    [request, response]
}

fn bench(c: &mut Criterion) {
    let prefix = prefix();
    let rests = rests();
    let bodies: Vec<Vec<u8>> = rests.iter().map(|r| [&prefix[..], r].concat()).collect();
    let objects: Vec<Vec<u8>> = bodies.iter().map(|b| [&b[..], b"}"].concat()).collect();
    // Each line also gets about 100 bytes of chain fields.
    let total: usize = objects.iter().map(Vec::len).sum::<usize>() + 2 * 100;
    assert!(
        (2_300..2_500).contains(&total),
        "{total} bytes, not a KV read's"
    );

    let mut group = c.benchmark_group("audit chain of a KV read");
    group.throughput(Throughput::Bytes(total as u64));
    let mut head = ChainHead::genesis("00ff");
    let mut out = Vec::with_capacity(4096);
    group.bench_function("each line hashed whole", |b| {
        b.iter(|| {
            out.clear();
            for object in &objects {
                head.chain_into(&Entry::from_object(black_box(object)), &mut out);
            }
            black_box(&out);
        });
    });
    group.bench_function("shared prefix hashed once", |b| {
        b.iter(|| {
            out.clear();
            let shared = EntryPrefix::new(black_box(&prefix).clone());
            for body in &bodies {
                head.chain_into(&shared.entry(black_box(body).clone()), &mut out);
            }
            black_box(&out);
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
