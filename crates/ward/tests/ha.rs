//! Several `ward server` processes over one PostgreSQL database (`ha_enabled = true`): a
//! write on one is read on the others at once, keyring rotation, token revocation, policy
//! and mount changes made on one take effect on all, one server is active (`sys/leader`,
//! `sys/ha-status`, `sys/health` 429 on standbys, `sys/step-down`), a standby takes over
//! within 10 s when the active one is killed, and scheduled work runs once per period.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ward_test_postgres::TestPostgres;

struct Node {
    child: Child,
    url: String,
    /// The server's working directory (relative audit file paths land here).
    dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a clustered server on `table` of `pg`.
fn start_node(pg: &TestPostgres, table: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ward.toml");
    let text = format!(
        "address = \"127.0.0.1:0\"\ndisable_mlock = true\n\
         [storage]\nbackend = \"postgres\"\nconnection_url = \"{}\"\ntable = \"{table}\"\n\
         ha_enabled = true\nlock_timeout = \"3s\"\n\
         [rotation]\nmin_period = \"1s\"\n",
        pg.url("postgres"),
    );
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["server", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
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
    Node { child, url, dir }
}

fn call(url: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
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
    match req.send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

fn ok(url: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, reply) = call(url, token, method, path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path} on {url}: {status} {reply}"
    );
    reply
}

/// `count` servers on fresh tables, initialised through the first with `shares` unseal
/// shares (of which two unseal, or the only one) and each unsealed: the tables, the
/// servers, the shares and the root token.
fn servers(
    pg: &TestPostgres,
    count: usize,
    shares: u8,
) -> (String, Vec<Node>, Vec<String>, String) {
    let table = ward_test_postgres::unique_table();
    let nodes: Vec<Node> = (0..count).map(|_| start_node(pg, &table)).collect();
    let init = ok(
        &nodes[0].url,
        "",
        "PUT",
        "sys/init",
        Some(json!({"secret_shares": shares, "secret_threshold": shares.min(2)})),
    );
    let keys: Vec<String> = serde_json::from_value(init["keys_base64"].clone()).unwrap();
    let root = init["root_token"].as_str().unwrap().to_owned();
    for node in &nodes {
        unseal(node, &keys);
    }
    (table, nodes, keys, root)
}

/// Three servers, three shares of which two unseal: the servers, the shares, the root token.
fn three_servers(pg: &TestPostgres) -> (Vec<Node>, Vec<String>, String) {
    let (_, nodes, keys, root) = servers(pg, 3, 3);
    (nodes, keys, root)
}

fn unseal(node: &Node, keys: &[String]) {
    for key in keys.iter().take(2) {
        ok(
            &node.url,
            "",
            "PUT",
            "sys/unseal",
            Some(json!({ "key": key })),
        );
    }
}

/// The index of the server that says it is active, once exactly one does (within `within`).
fn active_among(nodes: &[Option<&Node>], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let active: Vec<usize> = nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let n = (*n)?;
                let (status, leader) = call(&n.url, "", "GET", "sys/leader", None);
                (status == 200 && leader["is_self"] == true).then_some(i)
            })
            .collect();
        if active.len() == 1 {
            return active[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single active server: {active:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_servers_share_one_database() {
    let pg = ward_test_postgres::shared();
    let (nodes, _keys, root) = three_servers(pg);
    let [a, b, c] = [&nodes[0].url, &nodes[1].url, &nodes[2].url];
    let active = active_among(
        &nodes.iter().map(Some).collect::<Vec<_>>(),
        Duration::from_secs(10),
    );

    // sys/leader, sys/health and sys/ha-status as Vault shapes them; one cluster id on all.
    let (_, first) = call(a, "", "GET", "sys/seal-status", None);
    let cluster_id = first["cluster_id"].as_str().unwrap().to_owned();
    for (i, node) in nodes.iter().enumerate() {
        let (_, sealed) = call(&node.url, "", "GET", "sys/seal-status", None);
        assert_eq!(sealed["cluster_id"], cluster_id.as_str(), "{sealed}");
        let (_, leader) = call(&node.url, "", "GET", "sys/leader", None);
        assert_eq!(leader["ha_enabled"], true);
        assert_eq!(leader["leader_address"], nodes[active].url.as_str());
        let (status, health) = call(&node.url, "", "GET", "sys/health", None);
        assert_eq!(health["standby"], i != active);
        assert_eq!(status, if i == active { 200 } else { 429 });
        let (status, _) = call(&node.url, "", "GET", "sys/health?standbyok=true", None);
        assert_eq!(status, 200);
        let (status, _) = call(&node.url, "", "GET", "sys/health?standbycode=299", None);
        assert_eq!(status, if i == active { 200 } else { 299 });
    }
    let status = ok(b, &root, "GET", "sys/ha-status", None);
    let listed = status["data"]["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{status}");
    let actives: Vec<&Value> = listed.iter().filter(|n| n["active_node"] == true).collect();
    assert_eq!(actives.len(), 1);
    assert_eq!(actives[0]["api_address"], nodes[active].url.as_str());

    // A mount made on A is there on B and C; a write on any server is read on every other
    // at once, also when the reader had the old value cached.
    ok(
        a,
        &root,
        "POST",
        "sys/mounts/secret",
        Some(json!({"type": "kv-v2"})),
    );
    for round in 0..30 {
        let writer = &nodes[round % 3].url;
        let body = json!({"data": {"n": round}});
        ok(writer, &root, "POST", "secret/data/shared", Some(body));
        for reader in [a, b, c] {
            let read = ok(reader, &root, "GET", "secret/data/shared", None);
            assert_eq!(read["data"]["data"]["n"], round, "read on {reader}");
        }
    }

    // The keyring rotated on B: A reads what was written before and after, and writes
    // under the new term.
    let before = ok(a, &root, "GET", "sys/key-status", None)["term"].clone();
    ok(b, &root, "PUT", "sys/rotate", None);
    ok(
        b,
        &root,
        "POST",
        "secret/data/after-rotation",
        Some(json!({"data": {"v": 1}})),
    );
    let term = ok(a, &root, "GET", "sys/key-status", None)["term"].clone();
    assert_eq!(term.as_u64(), before.as_u64().map(|t| t + 1));
    assert_eq!(
        ok(a, &root, "GET", "secret/data/after-rotation", None)["data"]["data"]["v"],
        1
    );
    ok(
        a,
        &root,
        "POST",
        "secret/data/from-a",
        Some(json!({"data": {"v": 2}})),
    );
    assert_eq!(
        ok(c, &root, "GET", "secret/data/from-a", None)["data"]["data"]["v"],
        2
    );
    assert_eq!(
        ok(c, &root, "GET", "secret/data/shared", None)["data"]["data"]["n"],
        29
    );

    // A policy written on A is enforced on B at once, and so is its change.
    let policy = |capabilities: &str| json!({"policy": format!("path \"secret/data/*\" {{ capabilities = [{capabilities}] }}")});
    ok(
        a,
        &root,
        "PUT",
        "sys/policies/acl/reader",
        Some(policy("\"read\"")),
    );
    let created = ok(
        a,
        &root,
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["reader"]})),
    );
    let reader = created["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(call(b, &reader, "GET", "secret/data/shared", None).0, 200);
    ok(
        a,
        &root,
        "PUT",
        "sys/policies/acl/reader",
        Some(policy("\"list\"")),
    );
    assert_eq!(call(b, &reader, "GET", "secret/data/shared", None).0, 403);
    ok(
        a,
        &root,
        "PUT",
        "sys/policies/acl/reader",
        Some(policy("\"read\"")),
    );
    assert_eq!(call(b, &reader, "GET", "secret/data/shared", None).0, 200);

    // A token revoked on C is refused on A and B at once (both had it cached).
    assert_eq!(call(a, &reader, "GET", "secret/data/shared", None).0, 200);
    ok(
        c,
        &root,
        "POST",
        "auth/token/revoke",
        Some(json!({ "token": reader })),
    );
    for url in [a, b, c] {
        assert_eq!(call(url, &reader, "GET", "secret/data/shared", None).0, 403);
    }

    // A mount disabled on C is gone on A.
    ok(c, &root, "DELETE", "sys/mounts/secret", None);
    assert_eq!(call(a, &root, "GET", "secret/data/shared", None).0, 404);

    // Step-down asked of a standby: another server becomes active.
    let standby = (active + 1) % 3;
    ok(&nodes[standby].url, &root, "PUT", "sys/step-down", None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now_active = active_among(
            &nodes.iter().map(Some).collect::<Vec<_>>(),
            Duration::from_secs(10),
        );
        if now_active != active {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the active server did not step down"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // `ward status` shows the server's part, as `vault status` does.
    let all: Vec<Option<&Node>> = nodes.iter().map(Some).collect();
    let active = active_among(&all, Duration::from_secs(10));
    for (i, node) in nodes.iter().enumerate() {
        let status = Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(["status", "-address", &node.url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&status.stdout);
        let row = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(str::trim))
                .map(str::to_owned)
        };
        let mode = if i == active { "active" } else { "standby" };
        assert_eq!(row("HA Enabled").as_deref(), Some("true"), "{text}");
        assert_eq!(row("HA Mode").as_deref(), Some(mode), "{text}");
    }

    // A sealed server is never the active one: sealing the active hands over.
    ok(&nodes[active].url, &root, "PUT", "sys/seal", None);
    let unsealed: Vec<Option<&Node>> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (i != active).then_some(n))
        .collect();
    active_among(&unsealed, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    let (_, leader) = call(&nodes[active].url, "", "GET", "sys/leader", None);
    assert_eq!(leader["is_self"], false, "{leader}");
}

#[test]
fn a_standby_takes_over_when_the_active_server_is_killed() {
    let pg = ward_test_postgres::shared();
    let (mut nodes, _keys, root) = three_servers(pg);
    let all: Vec<Option<&Node>> = nodes.iter().map(Some).collect();
    let first = active_among(&all, Duration::from_secs(10));
    let url = nodes[0].url.clone();
    ok(
        &url,
        &root,
        "POST",
        "sys/mounts/secret",
        Some(json!({"type": "kv-v2"})),
    );
    ok(
        &url,
        &root,
        "POST",
        "sys/mounts/transit",
        Some(json!({"type": "transit"})),
    );
    ok(
        &url,
        &root,
        "POST",
        "transit/keys/scheduled",
        Some(json!({"auto_rotate_period": "2s"})),
    );

    // A write load spread over the three servers; every acknowledged write is remembered.
    let stop = Arc::new(AtomicBool::new(false));
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (stop, urls, root) = (stop.clone(), urls.clone(), root.clone());
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("w{w}-{i}");
                    let url = &urls[(w + i) % 3];
                    let body = Some(json!({"data": {"v": key}}));
                    if call(url, &root, "POST", &format!("secret/data/{key}"), body).0 == 200 {
                        acknowledged.push(key);
                    }
                    i += 1;
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = Instant::now();
    nodes[first].child.kill().unwrap();
    let _ = nodes[first].child.wait();
    let survivors: Vec<Option<&Node>> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (i != first).then_some(n))
        .collect();
    let second = active_among(&survivors, Duration::from_secs(10));
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(10), "failover took {took:?}");
    assert_ne!(second, first);
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    let acknowledged: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(acknowledged.len() > 30, "{} writes", acknowledged.len());

    let reader = &nodes[second].url;
    for key in &acknowledged {
        let read = ok(reader, &root, "GET", &format!("secret/data/{key}"), None);
        assert_eq!(read["data"]["data"]["v"], key.as_str());
    }

    // The transit key kept rotating on its 2 s period through the failover, and no period
    // ran twice: versions are at least a period apart (times are whole seconds).
    let key = ok(reader, &root, "GET", "transit/keys/scheduled", None);
    let versions = key["data"]["keys"].as_object().unwrap();
    assert!(versions.len() >= 3, "{key}");
    let mut times: Vec<i64> = versions.values().map(|t| t.as_i64().unwrap()).collect();
    times.sort_unstable();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= 1,
            "two rotations in one period: {times:?}"
        );
    }
}

#[test]
fn a_database_restart_under_load_loses_no_acknowledged_write() {
    let pg = TestPostgres::start();
    let (_, nodes, _keys, root) = servers(&pg, 2, 1);
    let url = nodes[0].url.clone();
    ok(
        &url,
        &root,
        "POST",
        "sys/mounts/secret",
        Some(json!({"type": "kv-v2"})),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (stop, urls, root) = (stop.clone(), urls.clone(), root.clone());
            std::thread::spawn(move || {
                let (mut acknowledged, mut refusals) = (Vec::new(), Vec::new());
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("w{w}-{i}");
                    let body = Some(json!({"data": {"v": key}}));
                    let (status, reply) = call(
                        &urls[(w + i) % 2],
                        &root,
                        "POST",
                        &format!("secret/data/{key}"),
                        body,
                    );
                    match status {
                        200 => acknowledged.push(key),
                        _ => refusals.push((status, reply)),
                    }
                    i += 1;
                    if status != 200 {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                (acknowledged, refusals)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    pg.stop();
    std::thread::sleep(Duration::from_secs(2));
    pg.restart();
    // Both servers serve again once the database is back.
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in &nodes {
        while call(&node.url, &root, "GET", "secret/config", None).0 != 200 {
            assert!(Instant::now() < deadline, "{} did not recover", node.url);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for writer in writers {
        let (acked, refusals) = writer.join().unwrap();
        acknowledged.extend(acked);
        for (status, reply) in refusals {
            assert_eq!(status, 503, "{reply}");
            assert_eq!(
                reply["errors"],
                json!(["storage is unavailable; try again shortly"])
            );
        }
    }
    for key in &acknowledged {
        for node in &nodes {
            let read = ok(&node.url, &root, "GET", &format!("secret/data/{key}"), None);
            assert_eq!(read["data"]["data"]["v"], key.as_str());
        }
    }
    // Still one database for both: a write on one is read on the other.
    ok(
        &nodes[1].url,
        &root,
        "POST",
        "secret/data/last",
        Some(json!({"data": {"v": 9}})),
    );
    assert_eq!(
        ok(&nodes[0].url, &root, "GET", "secret/data/last", None)["data"]["data"]["v"],
        9
    );
}

#[test]
fn concurrent_rotations_of_one_transit_key_on_two_servers_are_all_kept() {
    let pg = ward_test_postgres::shared();
    let (nodes, _keys, root) = three_servers(pg);
    let url = nodes[0].url.clone();
    ok(
        &url,
        &root,
        "POST",
        "sys/mounts/transit",
        Some(json!({"type": "transit"})),
    );
    ok(&url, &root, "POST", "transit/keys/shared", None);
    // Each server has the key cached before the race.
    for node in &nodes {
        ok(&node.url, &root, "GET", "transit/keys/shared", None);
    }
    let rotators: Vec<_> = nodes
        .iter()
        .map(|n| {
            let (url, root) = (n.url.clone(), root.clone());
            std::thread::spawn(move || {
                let mut done = Vec::new();
                for _ in 0..15 {
                    let (status, reply) =
                        call(&url, &root, "POST", "transit/keys/shared/rotate", None);
                    match status {
                        200 | 204 => {
                            // Encrypt under the version this rotation made visible.
                            let enc = ok(
                                &url,
                                &root,
                                "POST",
                                "transit/encrypt/shared",
                                Some(json!({"plaintext": "aGk="})),
                            );
                            done.push(enc["data"]["ciphertext"].as_str().unwrap().to_owned());
                        }
                        _ => assert_eq!(status, 400, "{reply}"),
                    }
                }
                done
            })
        })
        .collect();
    let ciphertexts: Vec<String> = rotators
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    assert!(!ciphertexts.is_empty());
    // Every acknowledged rotation made a version of its own: none was overwritten by
    // another server's, so everything encrypted under any of them decrypts.
    let key = ok(&nodes[1].url, &root, "GET", "transit/keys/shared", None);
    assert_eq!(
        key["data"]["latest_version"].as_u64(),
        Some(1 + ciphertexts.len() as u64),
        "{key}"
    );
    for ciphertext in &ciphertexts {
        for node in &nodes {
            let dec = ok(
                &node.url,
                &root,
                "POST",
                "transit/decrypt/shared",
                Some(json!({ "ciphertext": ciphertext })),
            );
            assert_eq!(dec["data"]["plaintext"], "aGk=");
        }
    }
}

#[test]
fn audit_devices_are_shared_and_each_server_keeps_a_chain_of_its_own() {
    let pg = ward_test_postgres::shared();
    let (nodes, _keys, root) = three_servers(pg);
    let (a, b) = (&nodes[0], &nodes[1]);
    // A relative path: each server writes the file in its own working directory.
    let device = json!({"type": "file", "options": {"file_path": "audit.log"}});
    ok(&a.url, &root, "PUT", "sys/audit/file", Some(device));
    let lines = |node: &Node| {
        std::fs::read_to_string(node.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    // B audits its very next request, and each server keeps writing its own chain.
    for round in 0..5 {
        for node in [a, b] {
            let before = lines(node);
            ok(&node.url, &root, "GET", "sys/mounts", None);
            assert!(
                lines(node) > before,
                "round {round}: {} did not audit",
                node.url
            );
        }
    }
    let listed = ok(&b.url, &root, "GET", "sys/audit", None);
    assert!(listed["data"]["file/"].is_object(), "{listed}");
    for node in [a, b] {
        let verified = Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(["audit", "verify"])
            .arg(node.dir.path().join("audit.log"))
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}: {}",
            node.url,
            String::from_utf8_lossy(&verified.stderr)
        );
    }
    // Disabled on B: A stops writing at once.
    ok(&b.url, &root, "DELETE", "sys/audit/file", None);
    let before = lines(a);
    ok(&a.url, &root, "GET", "sys/mounts", None);
    assert_eq!(lines(a), before);
}

#[test]
fn a_rekey_on_one_server_holds_on_the_others() {
    let pg = ward_test_postgres::shared();
    let (nodes, old_keys, root) = three_servers(pg);
    let (a, b) = (&nodes[0], &nodes[1]);
    let started = ok(
        &a.url,
        "",
        "PUT",
        "sys/rekey/init",
        Some(json!({"secret_shares": 2, "secret_threshold": 2})),
    );
    let nonce = started["nonce"].as_str().unwrap().to_owned();
    let mut done = Value::Null;
    for key in &old_keys[..2] {
        done = ok(
            &a.url,
            "",
            "PUT",
            "sys/rekey/update",
            Some(json!({"key": key, "nonce": nonce})),
        );
    }
    assert_eq!(done["complete"], true, "{done}");
    let new_keys: Vec<String> = serde_json::from_value(done["keys_base64"].clone()).unwrap();
    // B, sealed right after, refuses an old share and opens with the new ones.
    ok(&b.url, &root, "PUT", "sys/seal", None);
    let (status, reply) = call(
        &b.url,
        "",
        "PUT",
        "sys/unseal",
        Some(json!({"key": old_keys[0]})),
    );
    assert_eq!(status, 400, "{reply}");
    unseal(b, &new_keys);
    let (_, sealed) = call(&b.url, "", "GET", "sys/seal-status", None);
    assert_eq!(sealed["sealed"], false);
    assert_eq!(sealed["n"], 2);
}

#[test]
fn the_active_server_losing_its_database_session_hands_over() {
    let pg = ward_test_postgres::shared();
    let (table, nodes, _keys, root) = servers(pg, 2, 1);
    let all: Vec<Option<&Node>> = nodes.iter().map(Some).collect();
    let first = active_among(&all, Duration::from_secs(10));
    // The session holding the active lock of these tables ends (as when the database drops
    // the connection): the lock goes, and within the lock timeout exactly one server is
    // active again, the other one, since the first one waits before it tries again.
    let terminated = pg.psql(
        "postgres",
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' \
             AND granted AND classid = {} AND objid = hashtext('{table}')::oid",
            0x5741_5246_u32
        ),
    );
    assert_eq!(terminated.trim(), "1", "{terminated}");
    let lost_at = Instant::now();
    let deadline = lost_at + Duration::from_secs(10);
    loop {
        let now = active_among(&all, Duration::from_secs(10));
        if now != first {
            break;
        }
        assert!(Instant::now() < deadline, "no other server became active");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lost_at.elapsed() < Duration::from_secs(10));
    ok(&nodes[first].url, &root, "GET", "sys/mounts", None);
}

/// Two servers with one share and KV v2 at `secret/`: the servers, the share and the root
/// token.
fn two_servers_with_kv(pg: &TestPostgres) -> (Vec<Node>, Vec<String>, String) {
    let (_, nodes, keys, root) = servers(pg, 2, 1);
    ok(
        &nodes[0].url,
        &root,
        "POST",
        "sys/mounts/secret",
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    );
    (nodes, keys, root)
}

fn put_secret(url: &str, token: &str, path: &str, value: &str) -> u16 {
    call(
        url,
        token,
        "POST",
        &format!("secret/data/{path}"),
        Some(json!({"data": {"v": value}})),
    )
    .0
}

/// The secret's value, or `None` for a 404; any other answer fails the test.
fn read_secret(url: &str, token: &str, path: &str) -> Option<String> {
    let (status, body) = call(url, token, "GET", &format!("secret/data/{path}"), None);
    match status {
        200 => Some(body["data"]["data"]["v"].as_str().unwrap().to_owned()),
        404 => None,
        other => panic!("reading {path} on {url}: {other} {body}"),
    }
}

fn save_snapshot(url: &str, token: &str) -> Vec<u8> {
    let response = reqwest::blocking::Client::new()
        .get(format!("{url}/v1/sys/storage/snapshot"))
        .header("X-Vault-Token", token)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().unwrap().to_vec()
}

fn restore_snapshot(url: &str, token: &str, snapshot: Vec<u8>, force: bool) {
    let path = if force {
        "sys/storage/snapshot-force"
    } else {
        "sys/storage/snapshot"
    };
    let response = reqwest::blocking::Client::new()
        .post(format!("{url}/v1/{path}"))
        .header("X-Vault-Token", token)
        .body(snapshot)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    assert!(
        (200..300).contains(&status),
        "{status} {}",
        response.text().unwrap()
    );
}

/// A restore through one server is what every server serves at once: their caches drop
/// what the restore replaced, and writes made on another server while it ran, encrypted
/// under a keyring term the restored keyring does not have, are refused rather than landing
/// unreadable in the restored storage.
#[test]
fn a_restore_on_one_server_is_served_by_the_others_at_once() {
    let pg = ward_test_postgres::shared();
    let (nodes, _keys, root) = two_servers_with_kv(pg);
    let (a, b) = (nodes[0].url.clone(), nodes[1].url.clone());
    assert_eq!(put_secret(&a, &root, "kept", "before"), 200);
    assert_eq!(read_secret(&b, &root, "kept").as_deref(), Some("before"));
    let snapshot = save_snapshot(&a, &root);
    // After the snapshot: a new keyring term, used by B's writes from now on.
    ok(&a, &root, "POST", "sys/rotate", None);
    assert_eq!(put_secret(&b, &root, "kept", "after"), 200);
    assert_eq!(put_secret(&b, &root, "gone", "after"), 200);
    assert_eq!(read_secret(&b, &root, "kept").as_deref(), Some("after"));

    // B writes without a pause, four writers at once, while A restores.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|writer| {
            let (b, root, stop) = (b.clone(), root.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let path = format!("load/{writer}-{}", i % 20);
                    statuses.push(put_secret(&b, &root, &path, "x"));
                    i += 1;
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    restore_snapshot(&a, &root, snapshot, false);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for writer in load {
        for status in writer.join().unwrap() {
            *statuses.entry(status).or_default() += 1;
        }
    }
    // Every write either landed or was refused as "try again"; none failed inside.
    assert!(
        statuses.keys().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );

    for url in [&a, &b] {
        assert_eq!(read_secret(url, &root, "kept").as_deref(), Some("before"));
        assert_eq!(read_secret(url, &root, "gone"), None);
        let (_, key_status) = call(url, &root, "GET", "sys/key-status", None);
        assert_eq!(key_status["data"]["term"], 1, "{key_status}");
        // Whatever of the load is there was written for the restored storage: it reads.
        let (status, listed) = call(url, &root, "LIST", "secret/metadata/load", None);
        if status == 200 {
            for name in listed["data"]["keys"].as_array().unwrap() {
                let name = name.as_str().unwrap();
                assert_eq!(
                    read_secret(url, &root, &format!("load/{name}")).as_deref(),
                    Some("x")
                );
            }
        }
    }
    assert_eq!(put_secret(&b, &root, "later", "b"), 200);
    assert_eq!(read_secret(&a, &root, "later").as_deref(), Some("b"));
}

/// A snapshot of another cluster restored (with force) through one server seals every
/// server: none of them can open its keyring, and none may write under its own.
#[test]
fn a_forced_restore_of_another_cluster_seals_every_server() {
    let pg = ward_test_postgres::shared();
    let (other, other_keys, other_root) = two_servers_with_kv(pg);
    assert_eq!(put_secret(&other[0].url, &other_root, "theirs", "t"), 200);
    let snapshot = save_snapshot(&other[0].url, &other_root);
    drop(other);

    let (nodes, _keys, root) = two_servers_with_kv(pg);
    let (a, b) = (nodes[0].url.clone(), nodes[1].url.clone());
    assert_eq!(put_secret(&b, &root, "ours", "o"), 200);
    restore_snapshot(&a, &root, snapshot, true);
    let deadline = Instant::now() + Duration::from_secs(10);
    for url in [&a, &b] {
        loop {
            let (_, status) = call(url, "", "GET", "sys/seal-status", None);
            if status["sealed"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "{url} still unsealed: {status}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // The other cluster's share opens them, and its secrets are there.
    for node in &nodes {
        unseal(node, &other_keys);
    }
    assert_eq!(read_secret(&b, &other_root, "theirs").as_deref(), Some("t"));
    assert_eq!(read_secret(&a, &other_root, "ours"), None);
}
