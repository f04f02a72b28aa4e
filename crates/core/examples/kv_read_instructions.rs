//! Instructions per KV read through `Core::handle`, for judging a speed trick by an
//! instruction count rather than by throughput on a shared machine.
//!
//! It builds a core over in-memory storage (behind the same read cache the server uses),
//! unseals it, writes a 100-byte KV v2 secret at `secret/bench/read` (as ward-bench does),
//! then reads it `READS` times, one request after another on a current-thread runtime.
//! Count the instructions of two runs and divide the difference by the reads:
//!
//! ```text
//! cargo build -j 1 --release -p ward-core --example kv_read_instructions
//! bin=target/release/examples/kv_read_instructions
//! for n in 0 20000; do
//!   valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null $bin $n [OPTIONS] 2>&1 | grep 'I *refs'
//! done
//! # Ir per read = (Ir at 20000 - Ir at 0) / 20000
//! ```
//!
//! Options:
//! - `--audit`: with a file audit device enabled (its log in a temporary directory);
//! - `--policy`: read with a token holding a `read` policy on `secret/data/*` instead of the
//!   root token (the ACL is then a real one);
//! - `--in-flight M`: M reads in flight at once (M tasks on the one thread), for what
//!   concurrent requests share (an audit device's writes, say).

use std::sync::Arc;

use serde_json::{Map, Value, json};
use ward_core::{Core, CoreConfig, Operation, Request};
use ward_store::{CacheLimits, CachedStorage, MemoryStorage, Storage};

const USAGE: &str = "usage: kv_read_instructions READS [--audit] [--policy] [--in-flight M]";

struct Options {
    reads: usize,
    audit: bool,
    policy: bool,
    in_flight: usize,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let reads = args
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| USAGE.to_owned())?;
    let mut options = Options {
        reads,
        audit: false,
        policy: false,
        in_flight: 1,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--audit" => options.audit = true,
            "--policy" => options.policy = true,
            "--in-flight" => {
                options.in_flight = args
                    .next()
                    .and_then(|m| m.parse().ok())
                    .filter(|m| *m > 0)
                    .ok_or_else(|| USAGE.to_owned())?;
            }
            _ => return Err(USAGE.to_owned()),
        }
    }
    Ok(options)
}

fn request(operation: Operation, path: &str, data: Value, token: &str) -> Request {
    Request {
        operation,
        path: path.into(),
        data: data.as_object().cloned().unwrap_or_else(Map::new),
        token: Some(token.into()),
        remote_addr: Some([127, 0, 0, 1].into()),
        mfa: None,
        client_certificates: None,
        body: None,
    }
}

async fn call(core: &Core, req: Request) -> Result<ward_core::Response, String> {
    let what = format!("{:?} {}", req.operation, req.path);
    core.handle(req)
        .await
        .map_err(|e| format!("{what} failed: {e}"))
}

async fn run(options: Options) -> Result<(), String> {
    let storage: Arc<dyn Storage> = Arc::new(CachedStorage::new(
        MemoryStorage::default(),
        CacheLimits::default(),
    ));
    let core = Arc::new(Core::new(storage, CoreConfig::default()));
    let root = core
        .dev_init(None)
        .await
        .map_err(|e| format!("dev init: {e}"))?
        .root_token
        .expose()
        .to_owned();
    let value: String = ('a'..='z').chain('A'..='Z').cycle().take(100).collect();
    call(
        &core,
        request(
            Operation::Write,
            "secret/data/bench/read",
            json!({"data": {"v": value}}),
            &root,
        ),
    )
    .await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    if options.audit {
        let log = dir.path().join("audit.log");
        call(
            &core,
            request(
                Operation::Write,
                "sys/audit/file",
                json!({"type": "file", "options": {"file_path": log}}),
                &root,
            ),
        )
        .await?;
    }
    let token = if options.policy {
        let rules = r#"path "secret/data/*" { capabilities = ["read"] }"#;
        call(
            &core,
            request(
                Operation::Write,
                "sys/policies/acl/read",
                json!({ "policy": rules }),
                &root,
            ),
        )
        .await?;
        let created = call(
            &core,
            request(
                Operation::Write,
                "auth/token/create",
                json!({"policies": ["read"]}),
                &root,
            ),
        )
        .await?;
        created
            .auth
            .ok_or("auth/token/create gave no token")?
            .client_token
            .expose()
            .to_owned()
    } else {
        root
    };

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..options.in_flight {
        let (core, token) = (Arc::clone(&core), token.clone());
        let reads = options.reads / options.in_flight
            + usize::from(task < options.reads % options.in_flight);
        tasks.spawn(async move {
            for _ in 0..reads {
                let read = request(Operation::Read, "secret/data/bench/read", json!({}), &token);
                let response = call(&core, read).await?;
                if response.data.is_none() {
                    return Err("a read returned no data".to_owned());
                }
            }
            Ok::<_, String>(reads)
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += joined.map_err(|e| e.to_string())??;
    }
    println!("{done} reads");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let outcome = options().and_then(|options| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(run(options))
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
