//! The real `ward server` process in production mode: starts sealed, comes back sealed after
//! a restart, hardens itself (no core dumps, locked memory), loses no acknowledged write
//! when killed with SIGKILL, refuses a database another server has open (SQLite and
//! PostgreSQL alike), cuts off clients that are slow to send a request's head, and stops at
//! once on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{terminate, wait_for_exit};
use serde_json::{Value, json};

struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, mlock: bool) -> PathBuf {
    write_config_with(dir, mlock, "")
}

/// A configuration with `extra` top-level lines.
fn write_config_with(dir: &Path, mlock: bool, extra: &str) -> PathBuf {
    let config = dir.join("ward.toml");
    let text = format!(
        "address = \"127.0.0.1:0\"\ndisable_mlock = {}\n{extra}\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n",
        !mlock,
        dir.join("data/ward.db").display()
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// A configuration whose storage is tables of their own in the PostgreSQL cluster this test
/// process shares.
fn write_postgres_config(dir: &Path) -> PathBuf {
    write_postgres_config_on(dir, ward_test_postgres::shared())
}

fn write_postgres_config_on(dir: &Path, cluster: &ward_test_postgres::TestPostgres) -> PathBuf {
    let config = dir.join("ward.toml");
    let text = format!(
        "address = \"127.0.0.1:0\"\ndisable_mlock = true\n[storage]\nbackend = \"postgres\"\n\
         connection_url = \"{}\"\ntable = \"{}\"\n",
        cluster.url("postgres"),
        ward_test_postgres::unique_table(),
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn start(config: &Path) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["server", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("server exited before printing its address")
            .unwrap();
        if let Some(addr) = line.trim().strip_prefix("Api Address: ") {
            break addr.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Proc { child, url }
}

async fn call(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{url}/v1/{path}"),
    );
    if !token.is_empty() {
        req = req.header("X-Vault-Token", token);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn init_and_unseal(url: &str) -> (Vec<String>, String) {
    let (status, init) = call(
        url,
        "",
        "PUT",
        "sys/init",
        Some(json!({"secret_shares": 3, "secret_threshold": 2})),
    )
    .await;
    assert_eq!(status, 200);
    let keys: Vec<String> = serde_json::from_value(init["keys_base64"].clone()).unwrap();
    let root = init["root_token"].as_str().unwrap().to_owned();
    unseal(url, &keys).await;
    (keys, root)
}

async fn unseal(url: &str, keys: &[String]) {
    for k in &keys[..2] {
        call(url, "", "PUT", "sys/unseal", Some(json!({"key": k}))).await;
    }
    let (_, status) = call(url, "", "GET", "sys/seal-status", None).await;
    assert_eq!(status["sealed"], false);
}

#[tokio::test]
async fn starts_sealed_hardened_and_restarts_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), true);
    let server = start(&config);
    let (status, body) = call(&server.url, "", "GET", "sys/seal-status", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["initialized"].clone(), body["sealed"].clone()),
        (json!(false), json!(true))
    );

    // Hardening, as the kernel sees it.
    let pid = server.child.id();
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

    let (keys, root) = init_and_unseal(&server.url).await;
    call(
        &server.url,
        &root,
        "POST",
        "sys/mounts/secret",
        Some(json!({"type": "kv-v2"})),
    )
    .await;
    let (status, _) = call(
        &server.url,
        &root,
        "POST",
        "secret/data/keep",
        Some(json!({"data": {"v": "kept"}})),
    )
    .await;
    assert_eq!(status, 200);
    drop(server);

    let server = start(&config);
    let (_, body) = call(&server.url, "", "GET", "sys/seal-status", None).await;
    assert_eq!(
        (body["initialized"].clone(), body["sealed"].clone()),
        (json!(true), json!(true))
    );
    let (status, _) = call(&server.url, &root, "GET", "secret/data/keep", None).await;
    assert_eq!(status, 503, "a restarted server is sealed");
    unseal(&server.url, &keys).await;
    let (status, body) = call(&server.url, &root, "GET", "secret/data/keep", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["data"]["v"], "kept");
}

#[tokio::test]
async fn disable_mlock_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&write_config(dir.path(), false));
    let status_file =
        std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let locked = status_file
        .lines()
        .find(|l| l.starts_with("VmLck:"))
        .unwrap();
    assert!(locked.split_whitespace().nth(1) == Some("0"), "{locked}");
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    acknowledged_writes_survive_sigkill_of(&write_config(dir.path(), false)).await;
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    acknowledged_writes_survive_sigkill_of(&write_postgres_config(dir.path())).await;
}

async fn acknowledged_writes_survive_sigkill_of(config: &Path) {
    let mut server = start(config);
    let (keys, root) = init_and_unseal(&server.url).await;
    call(
        &server.url,
        &root,
        "POST",
        "sys/mounts/secret",
        Some(json!({"type": "kv-v2"})),
    )
    .await;

    // Writers record each write the server acknowledged (key, version, value).
    let acked: Arc<Mutex<Vec<(String, u64, String)>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for w in 0..8 {
        let (url, root, acked) = (server.url.clone(), root.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0u64;
            loop {
                let key = format!("w{w}/k{}", n % 3);
                let value = format!("value-{w}-{n}");
                let sent = client
                    .post(format!("{url}/v1/secret/data/{key}"))
                    .header("X-Vault-Token", &root)
                    .json(&json!({"data": {"v": value}}))
                    .send()
                    .await;
                let Ok(resp) = sent else { break };
                if resp.status() != 200 {
                    break;
                }
                let Ok(body) = resp.json::<Value>().await else {
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
    tokio::time::sleep_until(deadline.into()).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the loop wrote only {} versions",
        acked.len()
    );

    let server = start(config);
    unseal(&server.url, &keys).await;
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
        let (status, body) = call(
            &server.url,
            &root,
            "GET",
            &format!("secret/data/{key}?version={version}"),
            None,
        )
        .await;
        assert_eq!(
            status, 200,
            "acknowledged {key} v{version} is missing after SIGKILL: {body}"
        );
        assert_eq!(body["data"]["data"]["v"], value.as_str());
        checked += 1;
    }
    assert!(checked > 0);
    for (key, newest) in latest {
        let (_, meta) = call(
            &server.url,
            &root,
            "GET",
            &format!("secret/metadata/{key}"),
            None,
        )
        .await;
        assert!(meta["data"]["current_version"].as_u64().unwrap() >= newest);
    }
}

#[tokio::test]
async fn a_database_outage_answers_503_and_the_server_recovers() {
    let cluster = ward_test_postgres::TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let server = start(&write_postgres_config_on(dir.path(), &cluster));
    let (_, root) = init_and_unseal(&server.url).await;
    let mount = Some(json!({"type": "kv-v2"}));
    call(&server.url, &root, "POST", "sys/mounts/secret", mount).await;
    let write = |key: &'static str| {
        let (url, root) = (server.url.clone(), root.clone());
        async move {
            let body = Some(json!({"data": {"v": key}}));
            call(&url, &root, "POST", &format!("secret/data/{key}"), body).await
        }
    };
    assert_eq!(write("before").await.0, 200);

    cluster.stop();
    let started = Instant::now();
    let (status, body) = write("during").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["errors"],
        json!(["storage is unavailable; try again shortly"])
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = write("after").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "the server did not reconnect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for key in ["before", "after"] {
        let (status, body) = call(
            &server.url,
            &root,
            "GET",
            &format!("secret/data/{key}"),
            None,
        )
        .await;
        assert_eq!((status, &body["data"]["data"]["v"]), (200, &json!(key)));
    }
    // The server took its lock on the tables again: a second server is still refused.
    let held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted";
    while cluster.psql("postgres", held).trim() == "0" {
        assert!(
            Instant::now() < deadline,
            "the server did not retake its lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_refused_as_second_server(&dir.path().join("ward.toml"));
}

/// Starts a server on `config`, which another server is using: it must exit, saying why.
fn assert_refused_as_second_server(config: &Path) {
    let mut second = Command::new(env!("CARGO_BIN_EXE_ward"))
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

#[tokio::test]
async fn a_second_server_on_the_same_database_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    a_second_server_refuses_to_start_on(&write_config(dir.path(), false)).await;
}

#[tokio::test]
async fn a_second_server_on_the_same_postgres_tables_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    a_second_server_refuses_to_start_on(&write_postgres_config(dir.path())).await;
}

async fn a_second_server_refuses_to_start_on(config: &Path) {
    let first = start(config);
    assert_refused_as_second_server(config);
    // The first one was not disturbed.
    let (status, _) = call(&first.url, "", "GET", "sys/seal-status", None).await;
    assert_eq!(status, 200);
    // Once it is gone, the database opens again (the lock dies with its process).
    drop(first);
    let again = start(config);
    let (status, body) = call(&again.url, "", "GET", "sys/seal-status", None).await;
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

#[tokio::test]
async fn a_client_slow_to_send_its_request_head_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), false, "http_read_header_timeout = \"1s\"\n");
    let server = start(&config);
    let addr = server.url.strip_prefix("http://").unwrap();

    // A slowloris client: half a request head, then nothing.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    slow.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: ward\r\n")
        .unwrap();
    // Meanwhile, others are served.
    let (status, _) = call(&server.url, "", "GET", "sys/seal-status", None).await;
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

#[tokio::test]
async fn a_bad_read_header_timeout_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_with(dir.path(), false, "http_read_header_timeout = \"soon\"\n");
    let output = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["server", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid duration \"soon\""), "{stderr}");
}

#[tokio::test]
async fn sigterm_stops_the_server_although_a_keep_alive_connection_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), false);
    let mut server = start(&config);
    let addr = server.url.strip_prefix("http://").unwrap().to_owned();
    let mut open = TcpStream::connect(&addr).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    open.write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: ward\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 17];
    open.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK\r\n");

    let signalled = Instant::now();
    assert!(terminate(&server.child));
    let exit = wait_for_exit(&mut server.child, Duration::from_secs(5))
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
