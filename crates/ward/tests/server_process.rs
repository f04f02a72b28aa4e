//! The real `ward server` process in production mode: starts sealed, comes back sealed after
//! a restart, hardens itself (no core dumps, locked memory), loses no acknowledged write
//! when killed with SIGKILL, refuses a database another server has open (SQLite and
//! PostgreSQL alike), cuts off clients that are slow to send a request's head, and stops at
//! once on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, sqlite_toml, wait_for_exit, ward_command};
use serde_json::{Value, json};

/// A production server with SQLite storage in a new temporary directory, memory locked when
/// `mlock`, and `extra` top-level configuration lines.
fn start_sqlite(mlock: bool, extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let toml = sqlite_toml(
        "127.0.0.1:0",
        &dir.path().join("data/ward.db"),
        mlock,
        extra,
    );
    Server::start_with_config_env(Arc::new(dir), &toml, &[])
}

/// A production server whose storage is tables of their own in the PostgreSQL cluster this
/// test process shares.
fn start_postgres() -> Server {
    start_postgres_on(ward_test_postgres::shared())
}

fn start_postgres_on(cluster: &ward_test_postgres::TestPostgres) -> Server {
    let toml = format!(
        "address = \"127.0.0.1:0\"\ndisable_mlock = true\n[storage]\nbackend = \"postgres\"\n\
         connection_url = \"{}\"\ntable = \"{}\"\n",
        cluster.url("postgres"),
        ward_test_postgres::unique_table(),
    );
    Server::start_with_config(&toml)
}

/// The configuration file `server` was started with.
fn config_of(server: &Server) -> std::path::PathBuf {
    server.dir().unwrap().join("ward.toml")
}

#[test]
fn starts_sealed_hardened_and_restarts_sealed() {
    let mut server = start_sqlite(true, "");
    let (status, body) = server.call_as("", "GET", "sys/seal-status", None);
    assert_eq!(status, 200);
    assert_eq!(
        (body["initialized"].clone(), body["sealed"].clone()),
        (json!(false), json!(true))
    );

    // Hardening, as the kernel sees it.
    let pid = server.pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core_line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core_line.split_whitespace().nth(4) == Some("0"),
        "core dumps must be off: {core_line}"
    );
    let status_file = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked_kb: u64 = status_file
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        locked_kb > 0,
        "memory must be locked (VmLck = {locked_kb} kB)"
    );

    let (keys, root) = server.init_and_unseal();
    server.call_as(
        &root,
        "POST",
        "sys/mounts/secret",
        Some(&json!({"type": "kv-v2"})),
    );
    let (status, _) = server.call_as(
        &root,
        "POST",
        "secret/data/keep",
        Some(&json!({"data": {"v": "kept"}})),
    );
    assert_eq!(status, 200);
    server.kill();

    let server = server.restart();
    let (_, body) = server.call_as("", "GET", "sys/seal-status", None);
    assert_eq!(
        (body["initialized"].clone(), body["sealed"].clone()),
        (json!(true), json!(true))
    );
    let (status, _) = server.call_as(&root, "GET", "secret/data/keep", None);
    assert_eq!(status, 503, "a restarted server is sealed");
    server.unseal(&keys);
    let (status, body) = server.call_as(&root, "GET", "secret/data/keep", None);
    assert_eq!(status, 200);
    assert_eq!(body["data"]["data"]["v"], "kept");
}

#[test]
fn disable_mlock_is_honoured() {
    let server = start_sqlite(false, "");
    let status_file = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let locked = status_file
        .lines()
        .find(|l| l.starts_with("VmLck:"))
        .unwrap();
    assert!(locked.split_whitespace().nth(1) == Some("0"), "{locked}");
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    acknowledged_writes_survive_sigkill_of(start_sqlite(false, ""));
}

#[test]
fn acknowledged_writes_survive_sigkill_on_postgres() {
    acknowledged_writes_survive_sigkill_of(start_postgres());
}

fn acknowledged_writes_survive_sigkill_of(mut server: Server) {
    let (keys, root) = server.init_and_unseal();
    server.call_as(
        &root,
        "POST",
        "sys/mounts/secret",
        Some(&json!({"type": "kv-v2"})),
    );

    // Writers record each write the server acknowledged (key, version, value).
    let acked: Arc<Mutex<Vec<(String, u64, String)>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for w in 0..8 {
        let (http, url, acked) = (
            server.http_with_token(Some(&root)),
            server.url("secret/data/"),
            acked.clone(),
        );
        writers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            loop {
                let key = format!("w{w}/k{}", n % 3);
                let value = format!("value-{w}-{n}");
                let sent = http
                    .post(format!("{url}{key}"))
                    .json(&json!({"data": {"v": value}}))
                    .send();
                let Ok(resp) = sent else { break };
                if resp.status() != 200 {
                    break;
                }
                let Ok(body) = resp.json::<Value>() else {
                    break;
                };
                acked
                    .lock()
                    .unwrap()
                    .push((key, body["data"]["version"].as_u64().unwrap(), value));
                n += 1;
                if Instant::now() > deadline + Duration::from_secs(5) {
                    break;
                }
            }
        }));
    }
    // Kill mid-loop, without warning.
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    server.kill();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the loop wrote only {} versions",
        acked.len()
    );

    let server = server.restart();
    server.unseal(&keys);
    // The newest versions of each key are readable. max_versions keeps the last 10, and each
    // key may have one more version than was acknowledged (a write in flight at the kill that
    // committed but whose answer never arrived), which prunes one more old version.
    let mut latest = std::collections::HashMap::new();
    for (key, version, _) in &acked {
        let e = latest.entry(key.clone()).or_insert(0u64);
        *e = (*e).max(*version);
    }
    let mut checked = 0;
    for (key, version, value) in &acked {
        if latest[key] - version >= 9 {
            continue;
        }
        let (status, body) = server.call_as(
            &root,
            "GET",
            &format!("secret/data/{key}?version={version}"),
            None,
        );
        assert_eq!(
            status, 200,
            "acknowledged {key} v{version} is missing after SIGKILL: {body}"
        );
        assert_eq!(body["data"]["data"]["v"], value.as_str());
        checked += 1;
    }
    assert!(checked > 0);
    for (key, newest) in latest {
        let (_, meta) = server.call_as(&root, "GET", &format!("secret/metadata/{key}"), None);
        assert!(meta["data"]["current_version"].as_u64().unwrap() >= newest);
    }
}

#[test]
fn a_database_outage_answers_503_and_the_server_recovers() {
    let cluster = ward_test_postgres::TestPostgres::start();
    let server = start_postgres_on(&cluster);
    let (_, root) = server.init_and_unseal();
    let mount = json!({"type": "kv-v2"});
    server.call_as(&root, "POST", "sys/mounts/secret", Some(&mount));
    let write = |key: &str| {
        let body = json!({"data": {"v": key}});
        server.call_as(&root, "POST", &format!("secret/data/{key}"), Some(&body))
    };
    assert_eq!(write("before").0, 200);

    cluster.stop();
    let started = Instant::now();
    let (status, body) = write("during");
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["errors"],
        json!(["storage is unavailable; try again shortly"])
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = write("after");
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "the server did not reconnect");
        std::thread::sleep(Duration::from_millis(200));
    }
    for key in ["before", "after"] {
        let (status, body) = server.call_as(&root, "GET", &format!("secret/data/{key}"), None);
        assert_eq!((status, &body["data"]["data"]["v"]), (200, &json!(key)));
    }
    // The server took its lock on the tables again: a second server is still refused.
    let held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted";
    while cluster.psql("postgres", held).trim() == "0" {
        assert!(
            Instant::now() < deadline,
            "the server did not retake its lock"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_refused_as_second_server(&config_of(&server));
}

/// Starts a server on `config`, which another server is using: it must exit, saying why.
fn assert_refused_as_second_server(config: &Path) {
    let mut second = ward_command()
        .args(["server", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if wait_for_exit(&mut second, Duration::from_secs(20)).is_none() {
        let _ = second.kill();
        panic!("a second server started on a database another server has open");
    }
    let second = second.wait_with_output().unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another Ward server"), "{err}");
}

#[test]
fn a_second_server_on_the_same_database_refuses_to_start() {
    a_second_server_refuses_to_start_on(start_sqlite(false, ""));
}

#[test]
fn a_second_server_on_the_same_postgres_tables_refuses_to_start() {
    a_second_server_refuses_to_start_on(start_postgres());
}

fn a_second_server_refuses_to_start_on(mut first: Server) {
    assert_refused_as_second_server(&config_of(&first));
    // The first one was not disturbed.
    let (status, _) = first.call_as("", "GET", "sys/seal-status", None);
    assert_eq!(status, 200);
    // Once it is gone, the database opens again (the lock dies with its process).
    first.kill();
    let again = first.restart();
    let (status, body) = again.call_as("", "GET", "sys/seal-status", None);
    assert_eq!(status, 200);
    assert_eq!(body["sealed"], true, "{body}");
}

/// Reads `stream` to its end; the time that took.
fn read_to_close(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).unwrap();
    (received, started.elapsed())
}

#[test]
fn a_client_slow_to_send_its_request_head_is_cut_off() {
    let server = start_sqlite(false, "http_read_header_timeout = \"1s\"\n");
    let addr = server.addr().strip_prefix("http://").unwrap();

    // A slowloris client: half a request head, then nothing.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    slow.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: ward\r\n")
        .unwrap();
    // Meanwhile, others are served.
    let (status, _) = server.call_as("", "GET", "sys/seal-status", None);
    assert_eq!(status, 200);
    let (received, waited) = read_to_close(&mut slow);
    assert!(received.is_empty(), "no response to half a request");
    assert!(
        waited < Duration::from_secs(5),
        "closed after {waited:?}, not about 1 s"
    );

    // An idle keep-alive connection counts the same time, from its last response.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    idle.write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: ward\r\n\r\n")
        .unwrap();
    let (received, waited) = read_to_close(&mut idle);
    assert!(
        received.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        (Duration::from_millis(500)..Duration::from_secs(5)).contains(&waited),
        "idle connection closed after {waited:?}"
    );
}

#[test]
fn a_bad_read_header_timeout_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ward.toml");
    let toml = sqlite_toml(
        "127.0.0.1:0",
        &dir.path().join("data/ward.db"),
        false,
        "http_read_header_timeout = \"soon\"\n",
    );
    std::fs::write(&config, toml).unwrap();
    let output = ward_command()
        .args(["server", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid duration \"soon\""), "{stderr}");
}

#[test]
fn sigterm_stops_the_server_although_a_keep_alive_connection_is_open() {
    let mut server = start_sqlite(false, "");
    let addr = server.addr().strip_prefix("http://").unwrap().to_owned();
    let mut open = TcpStream::connect(&addr).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    open.write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: ward\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 17];
    open.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK\r\n");

    let signalled = Instant::now();
    let exit = server
        .terminate_and_wait(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running {:?} after SIGTERM", signalled.elapsed()));
    assert!(exit.success(), "{exit}");
    // The keep-alive connection was closed, not left half-open.
    let (_, waited) = read_to_close(&mut open);
    assert!(waited < Duration::from_secs(5));
    assert!(
        TcpStream::connect(&addr).is_err(),
        "nothing listens any more"
    );
}
