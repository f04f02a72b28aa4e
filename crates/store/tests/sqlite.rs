#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the SQLite backend promises: the file, its durability settings, its schema
//! version and its group commit.

use std::sync::Arc;

use ward_store::{Action, Expect, Op, SqliteOptions, SqliteStorage, Storage, StoreError};

fn db_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("ward.db")
}

#[tokio::test]
async fn data_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStorage::open(db_path(&dir)).unwrap();
        store.put("a/b", b"kept").await.unwrap();
        store.put("a/gone", b"x").await.unwrap();
        store.delete("a/gone").await.unwrap();
        let ops = vec![Op {
            key: "c".into(),
            expect: Expect::Absent,
            action: Action::Put(b"committed".to_vec()),
        }];
        store.commit(ops).await.unwrap();
    }
    let store = SqliteStorage::open(db_path(&dir)).unwrap();
    assert_eq!(
        store.get("a/b").await.unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(store.get("a/gone").await.unwrap(), None);
    assert_eq!(
        store.get("c").await.unwrap().as_deref(),
        Some(&b"committed"[..])
    );
    assert_eq!(store.list("").await.unwrap(), ["a/", "c"]);
}

#[tokio::test]
async fn durability_settings_are_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStorage::open(db_path(&dir)).unwrap();
    let settings = store.durability_settings().await.unwrap();
    assert_eq!(settings.journal_mode, "wal");
    assert_eq!(settings.synchronous, "FULL");
    assert_eq!(settings.schema_version, 1);

    // WAL and the schema version are properties of the file: another connection sees them.
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
    let without_rowid: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'entries'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(without_rowid.contains("WITHOUT ROWID"), "{without_rowid}");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStorage::open(db_path(&dir)).unwrap());
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    drop(conn);
    let err = SqliteStorage::open(db_path(&dir)).unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)));
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("newer")
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(db_path(&dir), vec![0x5a; 8192]).unwrap();
    assert!(matches!(
        SqliteStorage::open(db_path(&dir)),
        Err(StoreError::Backend(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStorage::open(db_path(&dir)).unwrap());
    let before = store.commit_stats();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.put(&format!("k{t}"), b"v").await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let after = store.commit_stats();
    assert_eq!(after.commits - before.commits, 64);
    // 64 writers queued within microseconds cannot each have had an fsync of their own.
    assert!(
        after.transactions - before.transactions < 64,
        "no grouping: {after:?}"
    );
    assert_eq!(store.list("").await.unwrap().len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_in_a_group_leaves_the_others_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStorage::open(db_path(&dir)).unwrap());
    store.put("taken", b"x").await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..40 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            // Every even writer also claims "taken", which exists: it must fail alone.
            let mut ops = vec![Op {
                key: format!("w{t:02}"),
                expect: Expect::Absent,
                action: Action::Put(b"v".to_vec()),
            }];
            if t % 2 == 0 {
                ops.push(Op {
                    key: "taken".into(),
                    expect: Expect::Absent,
                    action: Action::Put(b"mine".to_vec()),
                });
            }
            (t, store.commit(ops).await)
        }));
    }
    for task in tasks {
        let (t, outcome) = task.await.unwrap();
        let written = store.get(&format!("w{t:02}")).await.unwrap();
        if t % 2 == 0 {
            assert!(matches!(outcome, Err(StoreError::Conflict)), "writer {t}");
            assert_eq!(written, None);
        } else {
            assert!(outcome.is_ok(), "writer {t}");
            assert_eq!(written.as_deref(), Some(&b"v"[..]));
        }
    }
    assert_eq!(
        store.get("taken").await.unwrap().as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(store.commit_stats().conflicts, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_sees_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        readers: 3,
        ..SqliteOptions::default()
    };
    let store = SqliteStorage::open_with(db_path(&dir), options).unwrap();
    for i in 0..100u32 {
        store.put("seq", &i.to_be_bytes()).await.unwrap();
        // Several reads, so that they land on different reading threads.
        for _ in 0..3 {
            assert_eq!(store.get("seq").await.unwrap().unwrap(), i.to_be_bytes());
        }
    }
}

#[tokio::test]
async fn readers_run_beside_an_open_write_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStorage::open(db_path(&dir)).unwrap();
    store.put("k", b"committed").await.unwrap();
    // Another process holds the write lock: reads still answer (WAL), from the last commit.
    let other = rusqlite::Connection::open(db_path(&dir)).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; DELETE FROM entries;")
        .unwrap();
    assert_eq!(
        store.get("k").await.unwrap().as_deref(),
        Some(&b"committed"[..])
    );
    assert_eq!(store.list("").await.unwrap(), ["k"]);
    other.execute_batch("ROLLBACK").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_fails_every_commit_in_it_and_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        busy_timeout: std::time::Duration::from_millis(200),
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStorage::open_with(db_path(&dir), options).unwrap());
    store.put("before", b"1").await.unwrap();

    // Another process takes the write lock and keeps it past our busy timeout.
    let other = rusqlite::Connection::open(db_path(&dir)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tasks = Vec::new();
    for t in 0..10 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.put(&format!("blocked{t}"), b"x").await
        }));
    }
    for task in tasks {
        let outcome = task.await.unwrap();
        assert!(
            matches!(outcome, Err(StoreError::Backend(_))),
            "{outcome:?}"
        );
    }
    other.execute_batch("ROLLBACK").unwrap();

    // Nothing of the failed groups was written, and writing works again.
    assert_eq!(store.list("").await.unwrap(), ["before"]);
    store.put("after", b"2").await.unwrap();
    assert_eq!(
        store.get("after").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_waiting_write_does_not_block_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        busy_timeout: std::time::Duration::from_secs(10),
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStorage::open_with(db_path(&dir), options).unwrap());
    let other = rusqlite::Connection::open(db_path(&dir)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The write waits for the lock; on a single-threaded runtime, the rest must still run.
    let write = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.put("k", b"v").await })
    };
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(!write.is_finished());
    }
    assert_eq!(store.get("k").await.unwrap(), None); // Reads are not held up either.
    other.execute_batch("ROLLBACK").unwrap();
    write.await.unwrap().unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_writers_than_the_queue_holds_all_commit() {
    // The writer's queue is bounded (4,096 commits): writers beyond it wait for room, and
    // every one of them still commits.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStorage::open(db_path(&dir)).unwrap());
    let writers = 6_000;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..writers {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.put(&format!("k/{i}"), b"v").await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    assert_eq!(store.list("k/").await.unwrap().len(), writers);
}

/// With room for one queued read and one reading thread, many concurrent reads wait their
/// turn to queue and every one gets its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_beyond_the_queue_depth_wait_and_all_answer() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        readers: 1,
        read_queue_depth: 1,
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStorage::open_with(db_path(&dir), options).unwrap());
    for i in 0..64u32 {
        store.put(&format!("k{i}"), &i.to_be_bytes()).await.unwrap();
    }
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..64u32 {
        let store = Arc::clone(&store);
        reads.spawn(async move { (i, store.get(&format!("k{i}")).await.unwrap()) });
    }
    let mut answered = 0;
    while let Some(joined) = reads.join_next().await {
        let (i, value) = joined.unwrap();
        assert_eq!(value.unwrap(), i.to_be_bytes());
        answered += 1;
    }
    assert_eq!(answered, 64);
}

/// Whether `needle` occurs in any of the database's files (the database, its log).
fn files_contain(dir: &tempfile::TempDir, needle: &[u8]) -> bool {
    std::fs::read_dir(dir.path()).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

/// A deleted value must not stay in the file's free pages or in the write-ahead log once
/// `erase_deleted` has run (crypto-shredding a key means its record is gone from disk).
#[tokio::test]
async fn erase_deleted_leaves_no_trace_of_deleted_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStorage::open(db_path(&dir)).unwrap();
    let doomed: Vec<u8> = (0..3000u32).map(|i| (i * 7 + 13) as u8 ^ 0xA5).collect();
    let kept: Vec<u8> = (0..3000u32).map(|i| (i * 11 + 3) as u8 ^ 0x5A).collect();
    store.put("k/doomed", &doomed).await.unwrap();
    store.put("k/kept", &kept).await.unwrap();
    for i in 0..50 {
        store
            .put(&format!("k/filler{i}"), &[i as u8; 500])
            .await
            .unwrap();
    }
    assert!(files_contain(&dir, &doomed[..64]));
    store.delete("k/doomed").await.unwrap();
    store.erase_deleted().await.unwrap();
    assert!(
        !files_contain(&dir, &doomed[..64]),
        "the deleted value is still on disk"
    );
    assert!(files_contain(&dir, &kept[..64]), "the kept value is gone");
    assert_eq!(store.get("k/kept").await.unwrap().unwrap(), kept);
    drop(store);
    let store = SqliteStorage::open(db_path(&dir)).unwrap();
    assert_eq!(store.get("k/kept").await.unwrap().unwrap(), kept);
    assert_eq!(store.get("k/doomed").await.unwrap(), None);
}
