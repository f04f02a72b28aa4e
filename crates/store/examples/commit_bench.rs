//! Durable commit throughput of the SQLite backend, one writer against many.
//!
//! Each commit looks like a KV v2 write: a compare-and-set of the secret's metadata, the new
//! version's value (1 KiB) and a small index entry, all in one atomic commit. Every commit is
//! durable (WAL, `synchronous=FULL`) before it is acknowledged; with many writers the group
//! commit shares each fsync between every commit queued behind it.
//!
//! Run: `cargo run --release -p ward-store --example commit_bench`
//! Options (environment): `COMMIT_BENCH_SECS` per scenario (default 3), `COMMIT_BENCH_DIR`
//! for the database (default: a temporary directory under the current one, so that it is
//! on the same disk as the project rather than on a RAM-backed /tmp).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_store::{
    Action, CacheLimits, CachedStorage, Expect, Op, SqliteStorage, Storage, StoreError,
};

const WRITER_COUNTS: [usize; 6] = [1, 4, 16, 64, 128, 256];

struct Outcome {
    commits: u64,
    latencies: Vec<Duration>,
}

async fn writer(
    store: Arc<SqliteStorage>,
    writer: usize,
    deadline: Instant,
) -> Result<Outcome, StoreError> {
    let mut latencies = Vec::new();
    let mut meta: Option<Vec<u8>> = None;
    let value = vec![0x5c; 1024];
    let mut version = 0u64;
    while Instant::now() < deadline {
        version += 1;
        let key = format!("kv/w{writer}/secret");
        let new_meta = format!("{{\"current_version\":{version}}}").into_bytes();
        let ops = vec![
            Op {
                key: format!("{key}/meta"),
                expect: meta.map_or(Expect::Absent, Expect::Value),
                action: Action::Put(new_meta.clone()),
            },
            Op {
                key: format!("{key}/v/{version:08}"),
                expect: Expect::Any,
                action: Action::Put(value.clone()),
            },
            Op {
                key: format!("idx/w{writer}"),
                expect: Expect::Any,
                action: Action::Put(version.to_be_bytes().to_vec()),
            },
        ];
        let started = Instant::now();
        store.commit(ops).await?;
        latencies.push(started.elapsed());
        meta = Some(new_meta);
    }
    Ok(Outcome {
        commits: version,
        latencies,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn scenario(dir: &std::path::Path, writers: usize, secs: u64) -> Result<(), StoreError> {
    let path = dir.join(format!("bench-{writers}.db"));
    let store = Arc::new(SqliteStorage::open(&path)?);
    let before = store.commit_stats();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..writers)
        .map(|w| tokio::spawn(writer(Arc::clone(&store), w, deadline)))
        .collect();
    let mut commits = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let outcome = task.await.map_err(|e| StoreError::Backend(Box::new(e)))??;
        commits += outcome.commits;
        latencies.extend(outcome.latencies);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = store.commit_stats();
    let transactions = after.transactions - before.transactions;
    latencies.sort_unstable();
    println!(
        "{writers:>7} {:>11.0} {:>9.0} {:>8.1} {:>9.2} {:>9.2}",
        commits as f64 / elapsed,
        transactions as f64 / elapsed,
        commits as f64 / transactions.max(1) as f64,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}

/// Point reads of 1 KiB values from `readers` tasks, for `secs` seconds: reads/s.
async fn reads(store: Arc<dyn Storage>, readers: usize, secs: u64) -> Result<f64, StoreError> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..readers)
        .map(|r| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let key = format!("r/{}", (r as u64 * 7919 + done) % 1000);
                    store.get(&key).await?;
                    done += 1;
                }
                Ok::<_, StoreError>(done)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.map_err(|e| StoreError::Backend(Box::new(e)))??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn read_scenarios(dir: &std::path::Path, secs: u64) -> Result<(), StoreError> {
    let sqlite = Arc::new(SqliteStorage::open(dir.join("reads.db"))?);
    let ops = (0..1000)
        .map(|i| Op {
            key: format!("r/{i}"),
            expect: Expect::Any,
            action: Action::Put(vec![0x3a; 1024]),
        })
        .collect();
    sqlite.commit(ops).await?;
    let cached: Arc<dyn Storage> = Arc::new(CachedStorage::new(
        SqliteStorage::open(dir.join("reads.db"))?,
        CacheLimits::default(),
    ));
    println!();
    println!("point reads of 1 KiB values (1000 keys), {secs} s per row");
    println!("readers   sqlite reads/s   cached reads/s");
    for readers in [1, 16] {
        let direct = reads(sqlite.clone(), readers, secs).await?;
        let through_cache = reads(Arc::clone(&cached), readers, secs).await?;
        println!("{readers:>7} {direct:>16.0} {through_cache:>16.0}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs = std::env::var("COMMIT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = match std::env::var_os("COMMIT_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir_in(".")?,
    };
    println!("durable commits of 3 ops (CAS + 1 KiB put + put), {secs} s per row");
    println!("writers   commits/s   fsyncs/s  per-sync   p50 ms    p99 ms");
    for writers in WRITER_COUNTS {
        scenario(dir.path(), writers, secs).await?;
    }
    read_scenarios(dir.path(), secs).await?;
    Ok(())
}
