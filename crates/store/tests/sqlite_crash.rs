#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Kill -9 in the middle of a stream of group commits: every write that was acknowledged
//! before the kill is in the file afterwards, and the file opens cleanly.
//!
//! The writer is this same test binary, re-run as a child process with
//! `WARD_STORE_CRASH_CHILD` set to the database path: it runs only `crash_child_writer`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_store::{Action, Expect, Op, SqliteStorage, Storage};

const CHILD_ENV: &str = "WARD_STORE_CRASH_CHILD";
const WRITERS: usize = 8;

/// In the child: concurrent writers commit forever (bounded), printing each acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Not the child: nothing to do.
    };
    let store = Arc::new(SqliteStorage::open(path).unwrap());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while started.elapsed() < Duration::from_secs(60) {
                let key = format!("w{writer}/{i}");
                let ops = vec![
                    Op {
                        key: key.clone(),
                        expect: Expect::Absent,
                        action: Action::Put(vec![0xab; 200]),
                    },
                    Op {
                        key: format!("w{writer}/last"),
                        expect: Expect::Any,
                        action: Action::Put(i.to_string().into_bytes()),
                    },
                ];
                store.commit(ops).await.unwrap();
                println!("acked {key}");
                i += 1;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut lines = stdout.lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(key) = line.strip_prefix("acked ") {
            acked.push(key.to_owned());
            if acked.len() == 400 {
                child.kill().unwrap(); // SIGKILL: no destructor, no final checkpoint.
                break;
            }
        }
    }
    // Acknowledgements printed before the kill landed still count.
    for line in lines {
        if let Some(key) = line.unwrap().strip_prefix("acked ") {
            acked.push(key.to_owned());
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    assert!(
        acked.len() >= 400,
        "only {} writes acknowledged",
        acked.len()
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStorage::open(&path).unwrap();
        for key in &acked {
            assert!(store.get(key).await.unwrap().is_some(), "{key} was lost");
        }
        // Each writer's "last" marker is at least its last acknowledged index.
        for writer in 0..WRITERS {
            let last = store.get(&format!("w{writer}/last")).await.unwrap();
            let Some(last) = last else { continue };
            let last: u64 = String::from_utf8(last).unwrap().parse().unwrap();
            let acked_last = acked
                .iter()
                .filter_map(|k| k.strip_prefix(&format!("w{writer}/")))
                .map(|i| i.parse::<u64>().unwrap())
                .max();
            assert!(Some(last) >= acked_last, "writer {writer}");
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    });
}
