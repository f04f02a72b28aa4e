#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One conformance suite, run against every backend: each backend module below calls the
//! same checks with its own fresh store.

use std::sync::Arc;

use tempfile::TempDir;
use tokio::sync::Barrier;
use ward_store::{
    Action, CacheLimits, CachedStorage, Expect, MemoryStorage, Op, PostgresOptions,
    PostgresStorage, SqliteStorage, Storage, StoreError,
};

/// A fresh store and whatever must outlive it (its directory).
type Fixture = (Arc<dyn Storage>, Option<TempDir>);

async fn memory() -> Fixture {
    (Arc::new(MemoryStorage::new()), None)
}

fn sqlite_in(dir: &TempDir) -> SqliteStorage {
    SqliteStorage::open(dir.path().join("ward.db")).unwrap()
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(sqlite_in(&dir)), Some(dir))
}

async fn cached_sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = CachedStorage::new(sqlite_in(&dir), CacheLimits::default());
    (Arc::new(store), Some(dir))
}

/// A table of its own in the PostgreSQL cluster this test process shares.
async fn postgres() -> Fixture {
    let cluster = ward_test_postgres::shared();
    let options = PostgresOptions {
        connection_url: cluster.url("postgres"),
        table: ward_test_postgres::unique_table(),
        max_connections: 8,
        tls_ca_file: None,
    };
    (
        Arc::new(PostgresStorage::connect(&options).await.unwrap()),
        None,
    )
}

/// A cache so small that every check also runs through eviction.
async fn tiny_cached_memory() -> Fixture {
    let limits = CacheLimits {
        max_entries: 3,
        max_bytes: 400,
        max_value_bytes: 64,
    };
    (
        Arc::new(CachedStorage::new(MemoryStorage::new(), limits)),
        None,
    )
}

fn put(key: &str, value: &[u8]) -> Op {
    Op {
        key: key.into(),
        expect: Expect::Any,
        action: Action::Put(value.to_vec()),
    }
}

fn op(key: &str, expect: Expect, action: Action) -> Op {
    Op {
        key: key.into(),
        expect,
        action,
    }
}

async fn get_put_delete(s: &dyn Storage) {
    assert_eq!(s.get("k").await.unwrap(), None);
    s.put("k", b"one").await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"one"[..]));
    s.put("k", b"two").await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"two"[..]));
    s.delete("k").await.unwrap();
    assert_eq!(s.get("k").await.unwrap(), None);
    s.delete("k").await.unwrap();
    s.delete("never-there").await.unwrap();

    // An empty value is a value, not an absence; arbitrary bytes round-trip.
    s.put("empty", b"").await.unwrap();
    assert_eq!(s.get("empty").await.unwrap(), Some(Vec::new()));
    let bytes: Vec<u8> = (0..=255).collect();
    s.put("dir/bytes", &bytes).await.unwrap();
    assert_eq!(s.get("dir/bytes").await.unwrap(), Some(bytes));
}

async fn large_value(s: &dyn Storage) {
    let big: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i % 251) as u8).collect();
    s.put("big", &big).await.unwrap();
    assert_eq!(s.get("big").await.unwrap(), Some(big));
}

async fn invalid_keys(s: &dyn Storage) {
    for key in ["", "a\0b", "folder/"] {
        assert!(
            matches!(s.get(key).await, Err(StoreError::InvalidKey)),
            "{key:?}"
        );
        assert!(matches!(
            s.put(key, b"v").await,
            Err(StoreError::InvalidKey)
        ));
        assert!(matches!(s.delete(key).await, Err(StoreError::InvalidKey)));
        let ops = vec![put("fine", b"v"), put(key, b"v")];
        assert!(matches!(s.commit(ops).await, Err(StoreError::InvalidKey)));
    }
    // The valid op of the refused commit was not applied either.
    assert_eq!(s.get("fine").await.unwrap(), None);
    for prefix in ["a", "a\0/"] {
        assert!(
            matches!(s.list(prefix).await, Err(StoreError::InvalidKey)),
            "{prefix:?}"
        );
    }
    let too_long = "k".repeat(ward_store::MAX_BACKEND_KEY_LEN + 1);
    assert!(matches!(
        s.put(&too_long, b"v").await,
        Err(StoreError::InvalidKey)
    ));
}

async fn long_keys(s: &dyn Storage) {
    // Keys as long as the barrier can make them (about 25 KiB at worst) are stored, read,
    // listed in order and deleted like short ones.
    let long = |tail: &str| format!("deep/{}{tail}", "s".repeat(20 * 1024));
    s.put(&long("b"), b"2").await.unwrap();
    s.put(&long("a"), b"1").await.unwrap();
    s.put(&long("a/c"), b"3").await.unwrap();
    assert_eq!(s.get(&long("a")).await.unwrap().as_deref(), Some(&b"1"[..]));
    let base = "s".repeat(20 * 1024);
    assert_eq!(
        s.list("deep/").await.unwrap(),
        [format!("{base}a"), format!("{base}a/"), format!("{base}b")]
    );
    s.delete(&long("a")).await.unwrap();
    assert_eq!(s.get(&long("a")).await.unwrap(), None);
}

async fn list_children(s: &dyn Storage) {
    for key in [
        "a", "a/b", "a/c/d", "a/c/e", "a-z", "a.z", "b/x/y/z", "c", "ca/d",
    ] {
        s.put(key, key.as_bytes()).await.unwrap();
    }
    let root = s.list("").await.unwrap();
    assert_eq!(root, ["a", "a-z", "a.z", "a/", "b/", "c", "ca/"]);
    let mut sorted = root.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(root, sorted);
    assert_eq!(s.list("a/").await.unwrap(), ["b", "c/"]);
    assert_eq!(s.list("a/c/").await.unwrap(), ["d", "e"]);
    assert_eq!(s.list("b/").await.unwrap(), ["x/"]);
    assert_eq!(s.list("b/x/y/").await.unwrap(), ["z"]);
    assert!(s.list("nope/").await.unwrap().is_empty());
    assert!(s.list("c/").await.unwrap().is_empty());

    // A folder disappears with its last entry.
    s.delete("a/c/d").await.unwrap();
    s.delete("a/c/e").await.unwrap();
    assert_eq!(s.list("a/").await.unwrap(), ["b"]);
}

async fn list_many(s: &dyn Storage) {
    // Many leaves and many sub-folders side by side: each child exactly once, in order.
    let mut ops = Vec::new();
    for i in 0..300 {
        ops.push(put(&format!("m/leaf{i:03}"), b"v"));
        ops.push(put(&format!("m/dir{i:03}/x"), b"v"));
        ops.push(put(&format!("m/dir{i:03}/y/z"), b"v"));
    }
    s.commit(ops).await.unwrap();
    let children = s.list("m/").await.unwrap();
    let mut expected: Vec<String> = (0..300)
        .flat_map(|i| [format!("leaf{i:03}"), format!("dir{i:03}/")])
        .collect();
    expected.sort();
    assert_eq!(children, expected);
}

async fn commit_is_atomic(s: &dyn Storage) {
    s.put("acct/a", b"100").await.unwrap();
    s.put("acct/b", b"0").await.unwrap();
    let failing = vec![
        put("acct/a", b"50"),
        put("acct/c", b"new"),
        op(
            "acct/b",
            Expect::Value(b"999".to_vec()),
            Action::Put(b"50".to_vec()),
        ),
        op("acct/a", Expect::Any, Action::Delete),
    ];
    assert!(matches!(s.commit(failing).await, Err(StoreError::Conflict)));
    assert_eq!(s.get("acct/a").await.unwrap().as_deref(), Some(&b"100"[..]));
    assert_eq!(s.get("acct/b").await.unwrap().as_deref(), Some(&b"0"[..]));
    assert_eq!(s.get("acct/c").await.unwrap(), None);

    let transfer = vec![
        op(
            "acct/a",
            Expect::Value(b"100".to_vec()),
            Action::Put(b"50".to_vec()),
        ),
        op(
            "acct/b",
            Expect::Value(b"0".to_vec()),
            Action::Put(b"50".to_vec()),
        ),
        op("acct/c", Expect::Absent, Action::Check),
        op("acct/old", Expect::Any, Action::Delete),
    ];
    s.commit(transfer).await.unwrap();
    assert_eq!(s.get("acct/a").await.unwrap().as_deref(), Some(&b"50"[..]));
    assert_eq!(s.get("acct/b").await.unwrap().as_deref(), Some(&b"50"[..]));

    s.commit(Vec::new()).await.unwrap();
}

async fn expect_absent(s: &dyn Storage) {
    let create = || vec![op("once", Expect::Absent, Action::Put(b"first".to_vec()))];
    s.commit(create()).await.unwrap();
    assert!(matches!(
        s.commit(create()).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.get("once").await.unwrap().as_deref(), Some(&b"first"[..]));
    // An empty value still exists.
    s.put("empty", b"").await.unwrap();
    let on_empty = vec![op("empty", Expect::Absent, Action::Delete)];
    assert!(matches!(
        s.commit(on_empty).await,
        Err(StoreError::Conflict)
    ));
    // Check-only ops write nothing.
    s.commit(vec![op("ghost", Expect::Absent, Action::Check)])
        .await
        .unwrap();
    assert_eq!(s.get("ghost").await.unwrap(), None);
}

async fn expect_value(s: &dyn Storage) {
    let cas = |from: &[u8], to: &[u8]| {
        vec![op(
            "v",
            Expect::Value(from.to_vec()),
            Action::Put(to.to_vec()),
        )]
    };
    // On an absent key, any expected value fails, the empty one included.
    assert!(matches!(
        s.commit(cas(b"", b"x")).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.get("v").await.unwrap(), None);
    s.put("v", b"1").await.unwrap();
    assert!(matches!(
        s.commit(cas(b"2", b"3")).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.commit(cas(b"1 ", b"3")).await,
        Err(StoreError::Conflict)
    ));
    s.commit(cas(b"1", b"2")).await.unwrap();
    assert_eq!(s.get("v").await.unwrap().as_deref(), Some(&b"2"[..]));
    let delete = vec![op("v", Expect::Value(b"2".to_vec()), Action::Delete)];
    s.commit(delete).await.unwrap();
    assert_eq!(s.get("v").await.unwrap(), None);
}

async fn conditions_see_the_state_before_the_commit(s: &dyn Storage) {
    // Conditions are all judged before any action applies, whatever their order.
    let ops = vec![put("k", b"1"), op("k", Expect::Absent, Action::Check)];
    s.commit(ops).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"1"[..]));
    let ops = vec![
        op("k", Expect::Any, Action::Delete),
        op(
            "k",
            Expect::Value(b"1".to_vec()),
            Action::Put(b"2".to_vec()),
        ),
    ];
    s.commit(ops).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"2"[..]));
}

async fn concurrent_cas(s: Arc<dyn Storage>) {
    const TASKS: usize = 12;
    const ROUNDS: u64 = 15;
    s.put("counter", b"0").await.unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            for round in 0..ROUNDS {
                // Everyone reads the same value, then all race to increment it.
                let current = s.get("counter").await.unwrap().unwrap();
                assert_eq!(current, round.to_string().as_bytes());
                barrier.wait().await;
                let ops = vec![op(
                    "counter",
                    Expect::Value(current),
                    Action::Put((round + 1).to_string().into_bytes()),
                )];
                match s.commit(ops).await {
                    Ok(()) => wins.push(round),
                    Err(StoreError::Conflict) => {}
                    Err(other) => panic!("unexpected error: {other}"),
                }
                barrier.wait().await;
            }
            wins
        }));
    }
    let mut wins = Vec::new();
    for task in tasks {
        wins.extend(task.await.unwrap());
    }
    wins.sort_unstable();
    assert_eq!(
        wins,
        (0..ROUNDS).collect::<Vec<_>>(),
        "exactly one winner per round"
    );
    let last = s.get("counter").await.unwrap().unwrap();
    assert_eq!(last, ROUNDS.to_string().as_bytes());
}

async fn concurrent_writers(s: Arc<dyn Storage>) {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let key = format!("w/{t}/{i}");
                s.commit(vec![
                    put(&key, key.as_bytes()),
                    put(&format!("w/{t}/last"), b"x"),
                ])
                .await
                .unwrap();
                // Each writer reads its own write back at once.
                assert_eq!(s.get(&key).await.unwrap().unwrap(), key.as_bytes());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for t in 0..8 {
        assert_eq!(s.list(&format!("w/{t}/")).await.unwrap().len(), 26);
    }
}

/// An export reads one consistent view: writes made after it started are not in it.
async fn export_is_a_consistent_copy(s: Arc<dyn Storage>) {
    for i in 0..600 {
        s.put(&format!("e/{i:04}"), format!("v{i}").as_bytes())
            .await
            .unwrap();
    }
    let mut export = s.export().await.unwrap();
    assert_eq!(export.count, 600);
    // Changed while the copy is read: none of it may show.
    for i in 0..50 {
        s.delete(&format!("e/{i:04}")).await.unwrap();
        s.put(&format!("e/late{i}"), b"late").await.unwrap();
    }
    s.put("e/0100", b"changed").await.unwrap();
    let mut copied = Vec::new();
    while let Some(batch) = export.batches.recv().await {
        copied.extend(batch.unwrap());
    }
    let expected: Vec<(String, Vec<u8>)> = (0..600)
        .map(|i| (format!("e/{i:04}"), format!("v{i}").into_bytes()))
        .collect();
    assert_eq!(copied, expected);
}

/// `replace_all` swaps the whole content at its commit, and changes nothing without one.
async fn replace_all_is_atomic(s: &dyn Storage) {
    use ward_store::Import;
    s.put("old/a", b"1").await.unwrap();
    s.put("old/b", b"2").await.unwrap();

    // Abandoned (a bad snapshot found at its end): nothing changes.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(Import::Entries(vec![("new/x".into(), b"x".to_vec())]))
        .await
        .unwrap();
    drop(tx);
    assert!(matches!(
        s.replace_all(rx).await,
        Err(StoreError::ImportAborted)
    ));
    // An invalid key fails the import: nothing changes either.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(Import::Entries(vec![("bad/".into(), b"x".to_vec())]))
        .await
        .unwrap();
    tx.send(Import::Commit).await.unwrap();
    assert!(s.replace_all(rx).await.is_err());
    assert_eq!(s.get("old/a").await.unwrap().unwrap(), b"1");
    assert_eq!(s.get("new/x").await.unwrap(), None);

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(Import::Entries(vec![
        ("new/x".into(), b"x".to_vec()),
        ("new/y".into(), b"y".to_vec()),
    ]))
    .await
    .unwrap();
    tx.send(Import::Entries(vec![("other".into(), b"o".to_vec())]))
        .await
        .unwrap();
    tx.send(Import::Commit).await.unwrap();
    assert_eq!(s.replace_all(rx).await.unwrap(), 3);
    assert_eq!(s.get("old/a").await.unwrap(), None);
    assert_eq!(s.get("new/y").await.unwrap().unwrap(), b"y");
    assert_eq!(s.list("").await.unwrap(), vec!["new/", "other"]);
    // The store goes on working as usual.
    s.put("new/z", b"z").await.unwrap();
    assert_eq!(s.list("new/").await.unwrap(), vec!["x", "y", "z"]);
}

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {

            #[tokio::test]
            async fn get_put_delete() {
                let (s, _dir) = super::$backend().await;
                super::get_put_delete(&*s).await;
            }

            #[tokio::test]
            async fn large_value() {
                let (s, _dir) = super::$backend().await;
                super::large_value(&*s).await;
            }

            #[tokio::test]
            async fn invalid_keys() {
                let (s, _dir) = super::$backend().await;
                super::invalid_keys(&*s).await;
            }

            #[tokio::test]
            async fn long_keys() {
                let (s, _dir) = super::$backend().await;
                super::long_keys(&*s).await;
            }

            #[tokio::test]
            async fn list_children() {
                let (s, _dir) = super::$backend().await;
                super::list_children(&*s).await;
            }

            #[tokio::test]
            async fn list_many() {
                let (s, _dir) = super::$backend().await;
                super::list_many(&*s).await;
            }

            #[tokio::test]
            async fn commit_is_atomic() {
                let (s, _dir) = super::$backend().await;
                super::commit_is_atomic(&*s).await;
            }

            #[tokio::test]
            async fn expect_absent() {
                let (s, _dir) = super::$backend().await;
                super::expect_absent(&*s).await;
            }

            #[tokio::test]
            async fn expect_value() {
                let (s, _dir) = super::$backend().await;
                super::expect_value(&*s).await;
            }

            #[tokio::test]
            async fn conditions_see_the_state_before_the_commit() {
                let (s, _dir) = super::$backend().await;
                super::conditions_see_the_state_before_the_commit(&*s).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_cas() {
                let (s, _dir) = super::$backend().await;
                super::concurrent_cas(s).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn export_is_a_consistent_copy() {
                let (s, _dir) = super::$backend().await;
                super::export_is_a_consistent_copy(s).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn replace_all_is_atomic() {
                let (s, _dir) = super::$backend().await;
                super::replace_all_is_atomic(&*s).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_writers() {
                let (s, _dir) = super::$backend().await;
                super::concurrent_writers(s).await;
            }
        }
    };
}

conformance!(memory);
conformance!(sqlite);
conformance!(cached_sqlite);
conformance!(tiny_cached_memory);
conformance!(postgres);
