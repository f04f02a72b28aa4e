//! Audit devices against a real server: what a line holds, the hash chain, fail-closed,
//! socket devices over TCP, persistence across seal/unseal, rotation, and the API's shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod transit_common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use ward_api::audit::{ChainBreak, ChainVerifier};

fn lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn verify(files: &[&Path]) -> Result<u64, ChainBreak> {
    let mut v = ChainVerifier::new();
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            v.next_file();
        }
        for l in lines(f) {
            v.push(&l)?;
        }
    }
    Ok(v.lines())
}

fn entries(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

async fn enable_file(s: &support::TestServer, name: &str, file: &Path) {
    let (status, body) = s
        .call(
            "PUT",
            &format!("sys/audit/{name}"),
            Some(json!({"type": "file", "options": {"file_path": file}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

/// Enables a TCP socket device at `name` that sends to `collector`.
async fn enable_socket(s: &support::TestServer, name: &str, collector: &Collector) {
    let (status, body) = s
        .call(
            "PUT",
            &format!("sys/audit/{name}"),
            Some(json!({"type": "socket", "options": {"address": collector.addr.to_string()}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

/// A TCP collector on 127.0.0.1 that keeps every line it receives.
struct Collector {
    addr: std::net::SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Collector {
    async fn start(addr: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let conns = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let sink = sink.clone();
                conns.lock().unwrap().push(tokio::spawn(async move {
                    let mut reader = tokio::io::BufReader::new(stream).lines();
                    while let Ok(Some(line)) = reader.next_line().await {
                        sink.lock().unwrap().push(line);
                    }
                }));
            }
        });
        Self {
            addr,
            lines,
            task,
            connections,
        }
    }

    /// Stops accepting and closes every connection.
    async fn stop(self) -> std::net::SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        let conns: Vec<_> = std::mem::take(&mut *self.connections.lock().unwrap());
        for c in conns {
            c.abort();
            let _ = c.await;
        }
        self.addr
    }
}

#[tokio::test]
async fn a_secret_read_is_audited_with_its_value_hmacd_and_the_chain_valid() {
    let s = support::dev().await;
    let file = s.dir.path().join("audit.log");
    enable_file(&s, "file", &file).await;
    let marker = "marker-Zq8vW3-never-in-clear";
    let (status, _) = s
        .call(
            "PUT",
            "secret/data/app/db",
            Some(json!({"data": {"password": marker}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s.call("GET", "secret/data/app/db", None).await;
    assert_eq!(status, 200);
    let request_id = body["request_id"].as_str().unwrap().to_owned();

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(marker),
        "secret value in clear in the audit log"
    );
    assert!(
        !text.contains(&s.root_token),
        "token in clear in the audit log"
    );
    assert!(verify(&[&file]).unwrap() >= 4);

    let all = entries(&file);
    let read: Vec<&Value> = all
        .iter()
        .filter(|e| e["request"]["id"] == json!(request_id))
        .collect();
    assert_eq!(read.len(), 2, "a request and a response entry");
    assert_eq!(read[0]["type"], "request");
    assert_eq!(read[1]["type"], "response");
    let req = &read[0]["request"];
    assert_eq!(req["operation"], "read");
    assert_eq!(req["path"], "secret/data/app/db");
    assert_eq!(req["mount_point"], "secret/");
    assert_eq!(req["remote_address"], "127.0.0.1");
    assert!(
        req["client_token"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(read[0]["auth"]["policies"], json!(["root"]));
    let logged = read[1]["response"]["data"]["data"]["password"]
        .as_str()
        .unwrap();

    // sys/audit-hash gives the same HMAC for the known value: the operator's search key.
    let (status, body) = s
        .call("PUT", "sys/audit-hash/file", Some(json!({"input": marker})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["hash"], json!(logged));
    assert_eq!(body["hash"], json!(logged));
    let (_, token_hash) = s
        .call(
            "PUT",
            "sys/audit-hash/file",
            Some(json!({"input": s.root_token})),
        )
        .await;
    assert_eq!(req["client_token"], token_hash["data"]["hash"]);

    // A denied request is audited too, with its error.
    let (status, _) = s.call_as("not-a-token", "GET", "secret/data/x", None).await;
    assert_eq!(status, 403);
    let last = entries(&file).pop().unwrap();
    assert_eq!(last["error"], "permission denied");
    assert!(!last.to_string().contains("not-a-token"));
}

/// A secret read again is HMAC'd from a copy the device remembers (ward-core's
/// `audit::hasher`); each read must still log what it returned: after a new version, a
/// metadata change and a delete.
#[tokio::test]
async fn repeated_reads_log_what_each_read_returned() {
    let s = support::dev().await;
    let file = s.dir.path().join("audit.log");
    enable_file(&s, "file", &file).await;
    let hash = |input: Value| {
        let s = &s;
        async move {
            let (_, body) = s
                .call("PUT", "sys/audit-hash/file", Some(json!({"input": input})))
                .await;
            body["data"]["hash"].clone()
        }
    };
    let put = |value: &'static str| {
        let s = &s;
        async move {
            let (status, _) = s
                .call(
                    "PUT",
                    "secret/data/hot",
                    Some(json!({"data": {"v": value}})),
                )
                .await;
            assert_eq!(status, 200);
        }
    };
    // Reads `secret/data/hot`: the status, the body, and the `data` its response entry logged.
    let read = || {
        let s = &s;
        let file = &file;
        async move {
            let (status, body) = s.call("GET", "secret/data/hot", None).await;
            let id = body["request_id"].clone();
            let logged = entries(file)
                .into_iter()
                .find(|e| e["type"] == "response" && e["request"]["id"] == id)
                .unwrap();
            (status, body, logged["response"]["data"].clone())
        }
    };

    put("first").await;
    let (_, _, once) = read().await;
    let (_, _, twice) = read().await;
    assert_eq!(once, twice);
    assert_eq!(once["data"]["v"], hash(json!("first")).await);

    put("second").await;
    let (_, body, logged) = read().await;
    assert_eq!(body["data"]["metadata"]["version"], 2);
    assert_eq!(logged["data"]["v"], hash(json!("second")).await);
    assert_eq!(logged["metadata"]["version"], hash(json!("2")).await);

    let (status, _) = s
        .call(
            "POST",
            "secret/metadata/hot",
            Some(json!({"custom_metadata": {"owner": "team-a"}})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, body, logged) = read().await;
    assert_eq!(
        body["data"]["metadata"]["custom_metadata"]["owner"],
        "team-a"
    );
    assert_eq!(
        logged["metadata"]["custom_metadata"]["owner"],
        hash(json!("team-a")).await
    );
    assert_eq!(logged["data"]["v"], hash(json!("second")).await);

    let (status, _) = s.call("DELETE", "secret/data/hot", None).await;
    assert_eq!(status, 204);
    let (status, body, logged) = read().await;
    assert_eq!(status, 404);
    assert_eq!(body["data"]["data"], Value::Null);
    assert_eq!(logged["data"], Value::Null);
    assert!(verify(&[&file]).is_ok());
}

#[tokio::test]
async fn transit_plaintexts_and_ciphertexts_are_hmacd_in_both_entries() {
    let s = transit_common::transit().await;
    let file = s.dir.path().join("audit.log");
    enable_file(&s, "file", &file).await;
    let plaintext = transit_common::b64("marker-transit-Kp2x");
    let enc = transit_common::ok(&s, "encrypt/app", json!({"plaintext": plaintext})).await;
    let ciphertext = enc["ciphertext"].as_str().unwrap().to_owned();
    let dec = transit_common::ok(&s, "decrypt/app", json!({"ciphertext": ciphertext})).await;
    assert_eq!(dec["plaintext"], json!(plaintext));

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&plaintext), "plaintext in clear: {text}");
    let body = ciphertext.strip_prefix("vault:v1:").unwrap();
    assert!(!text.contains(body), "ciphertext in clear: {text}");
    let (_, hashed) = s
        .call(
            "PUT",
            "sys/audit-hash/file",
            Some(json!({"input": plaintext})),
        )
        .await;
    let hashed_plaintext = &hashed["data"]["hash"];
    let all = entries(&file);
    let entry = |op: &str, kind: &str| {
        all.iter()
            .find(|e| e["type"] == kind && e["request"]["path"] == format!("transit/{op}/app"))
            .unwrap()
    };
    let request = &entry("encrypt", "request")["request"]["data"];
    assert_eq!(&request["plaintext"], hashed_plaintext);
    let encrypted = &entry("encrypt", "response")["response"]["data"];
    let logged = encrypted["ciphertext"].as_str().unwrap();
    assert!(logged.starts_with("hmac-sha256:"), "{logged}");
    let (_, one) = s
        .call("PUT", "sys/audit-hash/file", Some(json!({"input": "1"})))
        .await;
    assert_eq!(
        encrypted["key_version"], one["data"]["hash"],
        "numbers are HMAC'd too"
    );
    let decrypted = &entry("decrypt", "response")["response"]["data"];
    assert_eq!(&decrypted["plaintext"], hashed_plaintext);
    assert!(verify(&[&file]).is_ok());
}

#[tokio::test]
async fn the_audit_api_has_vaults_shapes_and_checks_its_input() {
    let s = support::dev().await;
    let file = s.dir.path().join("a.log");
    let (status, body) = s
        .call(
            "PUT",
            "sys/audit/main",
            Some(json!({"type": "file", "description": "d", "options": {"file_path": file}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = s.call("GET", "sys/audit", None).await;
    assert_eq!(status, 200);
    // Vault's fields, and Ward's checkpoint fields beside them.
    let device = body["main/"].clone();
    let vaults: Value = ["type", "description", "options", "local", "path"]
        .iter()
        .map(|k| (k.to_string(), device[k].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let entry = json!({"type": "file", "description": "d", "options": {"file_path": file}, "local": false, "path": "main/"});
    assert_eq!(vaults, entry);
    assert_eq!(body["data"]["main/"], device);
    assert!(
        device["public_key"]
            .as_str()
            .unwrap()
            .starts_with("ed25519:")
    );
    assert!(device["head"].as_str().unwrap().starts_with("0:genesis:"));
    assert_eq!(device["break"], Value::Null);

    for (body, why) in [
        (
            json!({"type": "file", "options": {"file_path": file}}),
            "path in use",
        ),
        (json!({"type": "nope"}), "unknown type"),
        (json!({"type": "file"}), "missing file_path"),
        (
            json!({"type": "file", "options": {"file_path": "/nonexistent-dir/x/a.log"}}),
            "unopenable file",
        ),
        (
            json!({"type": "file", "options": {"file_path": file, "log_raw": true}}),
            "log_raw",
        ),
        (
            json!({"type": "socket", "options": {"address": "127.0.0.1:1"}}),
            "closed port",
        ),
        (json!({"type": "file", "options": "x"}), "options not a map"),
    ] {
        let path = if why == "path in use" {
            "sys/audit/main"
        } else {
            "sys/audit/other"
        };
        let (status, resp) = s.call("PUT", path, Some(body)).await;
        assert_eq!(status, 400, "{why}: {resp}");
        support::assert_errors(&resp);
    }
    let (status, _) = s
        .call("PUT", "sys/audit-hash/none", Some(json!({"input": "x"})))
        .await;
    assert_eq!(status, 400);
    let (status, _) = s.call("DELETE", "sys/audit/main", None).await;
    assert_eq!(status, 204);
    let (_, body) = s.call("GET", "sys/audit", None).await;
    assert_eq!(body["data"], json!({}));
    // Nothing enabled: requests work and nothing more is written.
    let before = lines(&file).len();
    assert_eq!(s.call("GET", "sys/mounts", None).await.0, 200);
    assert_eq!(lines(&file).len(), before);

    // Audit configuration needs sudo: a plain token cannot see or change it.
    let (_, tok) = s
        .call(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["default"]})),
        )
        .await;
    let token = tok["auth"]["client_token"].as_str().unwrap();
    assert_eq!(s.call_as(token, "GET", "sys/audit", None).await.0, 403);
}

#[tokio::test]
async fn a_socket_device_streams_chained_lines_over_tcp() {
    let s = support::dev().await;
    let collector = Collector::start("127.0.0.1:0").await;
    let (status, body) = s
        .call(
            "PUT",
            "sys/audit/siem",
            Some(json!({"type": "socket", "options": {"address": collector.addr.to_string(), "socket_type": "tcp"}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    for i in 0..5 {
        let (status, _) = s
            .call(
                "PUT",
                &format!("secret/data/k{i}"),
                Some(json!({"data": {"v": "socket-secret"}})),
            )
            .await;
        assert_eq!(status, 200);
    }
    // Lines are written before each response; the collector reads them asynchronously.
    let mut got = Vec::new();
    for _ in 0..100 {
        got = collector.lines.lock().unwrap().clone();
        if got.len() >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(got.len() >= 10, "collector got {} lines", got.len());
    let mut v = ChainVerifier::new();
    for line in &got {
        v.push(line.as_bytes()).unwrap();
        assert!(!line.contains("socket-secret"));
    }
    assert_eq!(
        serde_json::from_str::<Value>(&got[0]).unwrap()["seq"],
        json!(0)
    );
}

#[tokio::test]
async fn with_one_device_failing_the_request_fails_closed_and_is_not_carried_out() {
    let s = support::dev().await;
    let collector = Collector::start("127.0.0.1:0").await;
    enable_socket(&s, "siem", &collector).await;
    assert_eq!(s.call("GET", "sys/audit", None).await.0, 200);
    let addr = collector.stop().await;

    // The collector is gone: the write is refused before it happens.
    let (status, body) = s
        .call(
            "PUT",
            "secret/data/refused",
            Some(json!({"data": {"v": "x"}})),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    support::assert_errors(&body);
    let message = body["errors"][0].as_str().unwrap();
    assert!(message.contains("audit device"), "{message}");
    // A read is refused too, and sends no data.
    let (status, body) = s.call("GET", "sys/mounts", None).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.get("data").is_none(), "{body}");

    // The collector comes back on the same address: the device reconnects, and the
    // refused write is not there.
    let collector = Collector::start(&addr.to_string()).await;
    let (status, body) = s.call("GET", "secret/data/refused", None).await;
    assert_eq!(status, 404, "{body}");
    drop(collector);
}

#[tokio::test]
async fn with_one_of_two_devices_failing_requests_still_pass() {
    let s = support::dev().await;
    let file = s.dir.path().join("ok.log");
    enable_file(&s, "file", &file).await;
    let collector = Collector::start("127.0.0.1:0").await;
    enable_socket(&s, "siem", &collector).await;
    collector.stop().await;
    let (status, body) = s
        .call("PUT", "secret/data/ok", Some(json!({"data": {"v": "x"}})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.call("GET", "secret/data/ok", None).await.0, 200);
    let all = entries(&file);
    assert!(all.iter().any(|e| e["request"]["path"] == "secret/data/ok"));
    verify(&[&file]).unwrap();
}

#[tokio::test]
async fn a_file_device_under_a_removed_directory_fails_closed_after_reopen() {
    let s = support::dev().await;
    let dir = s.dir.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    enable_file(&s, "file", &dir.join("audit.log")).await;
    assert_eq!(s.call("GET", "sys/audit", None).await.0, 200);
    std::fs::remove_dir_all(&dir).unwrap();
    s.core.reopen_audit_devices();
    let (status, _) = s
        .call("PUT", "secret/data/gone", Some(json!({"data": {"v": "x"}})))
        .await;
    assert_eq!(status, 500);
    std::fs::create_dir(&dir).unwrap();
    assert_eq!(s.call("GET", "secret/data/gone", None).await.0, 404);
}

#[tokio::test]
async fn devices_survive_seal_and_unseal_and_rotation_continues_the_chain() {
    let s = support::dev().await;
    let file = s.dir.path().join("audit.log");
    enable_file(&s, "file", &file).await;
    for i in 0..3 {
        s.call(
            "PUT",
            &format!("secret/data/a{i}"),
            Some(json!({"data": {"v": "1"}})),
        )
        .await;
    }
    assert_eq!(s.call("PUT", "sys/seal", None).await.0, 204);
    let (status, _) = s
        .call("PUT", "sys/unseal", Some(json!({"key": s.unseal_key})))
        .await;
    assert_eq!(status, 200);
    let (_, body) = s.call("GET", "sys/audit", None).await;
    assert_eq!(body["data"]["file/"]["type"], "file");
    let (status, _) = s.call("GET", "secret/data/a1", None).await;
    assert_eq!(status, 200);

    // Rotation: the file moves away, the device reopens, the new file continues the chain.
    let rotated = s.dir.path().join("audit.log.1");
    std::fs::rename(&file, &rotated).unwrap();
    s.core.reopen_audit_devices();
    for _ in 0..2 {
        assert_eq!(s.call("GET", "secret/data/a2", None).await.0, 200);
    }
    let n = verify(&[&rotated, &file]).unwrap();
    assert_eq!(n as usize, lines(&rotated).len() + lines(&file).len());
    let first = &entries(&file)[0];
    assert!(first["prev_hash"].as_str().unwrap().starts_with("sha256:"));
    assert!(first["seq"].as_u64().unwrap() > 0);
    // Out of order, the series does not verify.
    assert!(verify(&[&file, &rotated]).is_err());
}

#[tokio::test]
async fn concurrent_requests_share_flushes_and_every_line_is_chained() {
    let s = Arc::new(support::dev().await);
    let file = s.dir.path().join("audit.log");
    enable_file(&s, "file", &file).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let (status, _) = s
                .call(
                    "PUT",
                    &format!("secret/data/c{i}"),
                    Some(json!({"data": {"v": "concurrent"}})),
                )
                .await;
            assert_eq!(status, 200);
            let (status, body) = s.call("GET", &format!("secret/data/c{i}"), None).await;
            assert_eq!(status, 200);
            body["request_id"].as_str().unwrap().to_owned()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    // Every request's two entries are in the file when its response arrives. A read's
    // two go out together: its response entry is the line right after its request entry.
    let all = entries(&file);
    for id in &ids {
        let mine: Vec<&Value> = all
            .iter()
            .filter(|e| e["request"]["id"] == json!(id))
            .collect();
        assert_eq!(mine.len(), 2, "request {id}");
        assert_eq!(mine[0]["type"], "request");
        assert_eq!(mine[1]["type"], "response");
        let seq = |e: &Value| e["seq"].as_u64().unwrap();
        assert_eq!(seq(mine[1]), seq(mine[0]) + 1, "read {id}");
    }
    assert_eq!(verify(&[&file]).unwrap() as usize, all.len());
}

#[tokio::test]
async fn udp_and_syslog_devices_send_one_datagram_per_entry() {
    let s = support::dev().await;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let (status, body) = s
        .call(
            "PUT",
            "sys/audit/udp",
            Some(json!({"type": "socket", "options": {"address": udp.local_addr().unwrap().to_string(), "socket_type": "udp"}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let syslog_path = s.dir.path().join("syslog.sock");
    let syslog = std::os::unix::net::UnixDatagram::bind(&syslog_path).unwrap();
    syslog
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let (status, body) = s
        .call(
            "PUT",
            "sys/audit/syslog",
            Some(json!({"type": "syslog", "options": {"socket_path": syslog_path, "facility": "LOCAL0", "tag": "ward-test"}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(s.call("GET", "secret/data/none", None).await.0, 404);

    let mut buf = vec![0u8; 65536];
    let mut v = ChainVerifier::new();
    for _ in 0..2 {
        let n = udp.recv(&mut buf).unwrap();
        let line = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
        v.push(line).unwrap();
    }
    // <PRI> = LOCAL0 (16) * 8 + info (6) = 134.
    let n = syslog.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    let entry = msg.strip_prefix("<134>ward-test: ").expect(&msg);
    let entry: Value = serde_json::from_str(entry).unwrap();
    assert_eq!(entry["seq"], json!(0));
    assert_eq!(entry["type"], "request");
    // No syslog daemon at the default socket here or a bad facility: refused at enable.
    let (status, _) = s
        .call(
            "PUT",
            "sys/audit/bad",
            Some(json!({"type": "syslog", "options": {"facility": "NOPE"}})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_socket_device_continues_its_chain_across_seal_and_unseal() {
    let s = support::dev().await;
    let collector = Collector::start("127.0.0.1:0").await;
    enable_socket(&s, "siem", &collector).await;
    assert_eq!(s.call("GET", "sys/mounts", None).await.0, 200);
    assert_eq!(s.call("PUT", "sys/seal", None).await.0, 204);
    let (status, _) = s
        .call("PUT", "sys/unseal", Some(json!({"key": s.unseal_key})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.call("GET", "sys/mounts", None).await.0, 200);
    let mut got = Vec::new();
    for _ in 0..100 {
        got = collector.lines.lock().unwrap().clone();
        if got.len() >= 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // mounts, seal, mounts: a request and a response entry each (enabling is not audited
    // by the device it enables), and the seal's checkpoint.
    assert_eq!(got.len(), 7, "{got:?}");
    assert!(got[3].contains("\"type\":\"checkpoint\""), "{}", got[3]);
    let mut v = ChainVerifier::new();
    for line in &got {
        v.push(line.as_bytes()).unwrap();
    }
}

/// Issue 22 item 14: numbers and booleans are values too. `{"pin": 1234}` must not put the
/// number in the log, in the request entry nor in the response entry; the logged value is
/// the HMAC of the value's JSON text, which `sys/audit-hash` gives for the operator's search.
#[tokio::test]
async fn numbers_and_booleans_are_hmacd_in_request_and_response_data() {
    let s = support::dev().await;
    let file = s.dir.path().join("audit.log");
    enable_file(&s, "file", &file).await;
    let pin = 987_654_321_987_u64;
    let (status, body) = s
        .call(
            "PUT",
            "secret/data/pins",
            Some(json!({"data": {"pin": pin, "enabled": true, "ratio": 2.5, "nothing": null}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.call("GET", "secret/data/pins", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["pin"], json!(pin));

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&pin.to_string()), "number in clear: {text}");
    assert!(
        !text.contains("\"enabled\":true"),
        "boolean in clear: {text}"
    );
    assert!(!text.contains("2.5"), "float in clear: {text}");
    let hash_of = |input: &str| {
        let input = input.to_owned();
        let s = &s;
        async move {
            let (_, body) = s
                .call("PUT", "sys/audit-hash/file", Some(json!({"input": input})))
                .await;
            body["data"]["hash"].clone()
        }
    };
    let all = entries(&file);
    let write = all
        .iter()
        .find(|e| e["type"] == "request" && e["request"]["operation"] == "update")
        .unwrap();
    let data = &write["request"]["data"]["data"];
    assert_eq!(data["pin"], hash_of(&pin.to_string()).await);
    assert_eq!(data["enabled"], hash_of("true").await);
    assert_eq!(data["ratio"], hash_of("2.5").await);
    assert_eq!(data["nothing"], Value::Null, "null holds nothing");
    let read = all
        .iter()
        .rev()
        .find(|e| e["type"] == "response" && e["request"]["operation"] == "read")
        .unwrap();
    let data = &read["response"]["data"];
    assert_eq!(data["data"]["pin"], hash_of(&pin.to_string()).await);
    assert_eq!(data["metadata"]["destroyed"], hash_of("false").await);
    assert_eq!(data["metadata"]["version"], hash_of("1").await);
    // The structural fields Vault leaves clear stay clear.
    assert_eq!(read["request"]["path"], "secret/data/pins");
    assert_eq!(read["request"]["operation"], "read");
    assert_eq!(read["request"]["mount_type"], "kv");
    assert_eq!(read["auth"]["policies"], json!(["root"]));
    assert!(verify(&[&file]).is_ok());
}

/// Issue 22 item 15: a request served while the server seals is audited (or refused). Writers
/// run while `sys/seal` runs; every write that succeeded has its request and response entry.
#[tokio::test]
async fn requests_racing_a_seal_are_never_served_unaudited() {
    for round in 0..5 {
        let s = Arc::new(support::dev().await);
        let file = s.dir.path().join("audit.log");
        enable_file(&s, "file", &file).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..8 {
            let s = s.clone();
            let stop = stop.clone();
            writers.push(tokio::spawn(async move {
                let mut served = Vec::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let (status, body) = s
                        .call(
                            "PUT",
                            &format!("secret/data/r{w}-{i}"),
                            Some(json!({"data": {"v": "x"}})),
                        )
                        .await;
                    if status == 200 {
                        served.push(body["request_id"].as_str().unwrap().to_owned());
                    }
                    if status == 503 {
                        break;
                    }
                }
                served
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(s.call("PUT", "sys/seal", None).await.0, 204);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut served = Vec::new();
        for w in writers {
            served.extend(w.await.unwrap());
        }
        let all = entries(&file);
        for id in &served {
            let logged: Vec<&Value> = all
                .iter()
                .filter(|e| e["request"]["id"] == json!(id))
                .collect();
            assert_eq!(
                logged.len(),
                2,
                "round {round}: request {id} was served with {} audit entries",
                logged.len()
            );
        }
    }
}

/// The device's entry in `sys/audit`.
async fn device_info(s: &support::TestServer, name: &str) -> Value {
    let (status, body) = s.call("GET", "sys/audit", None).await;
    assert_eq!(status, 200, "{body}");
    body["data"][format!("{name}/")].clone()
}

/// A second server over the same database (a restart), unsealed.
async fn restart(s: &support::TestServer) -> support::TestServer {
    let core = Arc::new(ward_core::Core::new(
        support::storage(s.dir.path()).await,
        ward_core::CoreConfig::default(),
    ));
    core.unseal(&s.unseal_key).await.unwrap();
    support::start(
        core,
        tempfile::tempdir().unwrap(),
        s.root_token.clone(),
        s.unseal_key.clone(),
    )
    .await
}

/// Issue 22 item 12: lines cut from the end of the log while the server is down (the seal's
/// checkpoint among them) are found at the next start: logged, recorded in the log as a
/// signed checkpoint, and shown by `sys/audit`. An untouched log restarts clean.
#[tokio::test]
async fn a_log_cut_at_its_end_is_found_at_restart_and_recorded() {
    let s = support::dev().await;
    let file = s.dir.path().join("audit.log");
    enable_file(&s, "file", &file).await;
    for i in 0..3 {
        let (status, _) = s
            .call(
                "PUT",
                &format!("secret/data/c{i}"),
                Some(json!({"data": {"v": "1"}})),
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(s.call("PUT", "sys/seal", None).await.0, 204);
    let all = entries(&file);
    assert_eq!(
        all[0]["type"], "checkpoint",
        "a new file opens with a checkpoint"
    );
    assert_eq!(all[0]["checkpoint"]["opens_file"], true);
    assert!(
        all.iter()
            .any(|e| e["type"] == "checkpoint" && e["checkpoint"]["reason"] == "seal")
    );

    // Untouched: the restart finds nothing.
    let clean = restart(&s).await;
    let info = device_info(&clean, "file").await;
    assert_eq!(info["break"], Value::Null, "{info}");
    assert_eq!(clean.call("PUT", "sys/seal", None).await.0, 204);

    // The last lines cut (the seal's checkpoint among them), then a restart.
    let kept = lines(&file);
    let seal_checkpoint = kept
        .iter()
        .rposition(|l| String::from_utf8_lossy(l).contains("\"reason\":\"seal\""))
        .unwrap();
    let cut: Vec<String> = kept[..seal_checkpoint - 1]
        .iter()
        .map(|l| String::from_utf8(l.clone()).unwrap())
        .collect();
    std::fs::write(&file, cut.join("\n") + "\n").unwrap();
    assert!(verify(&[&file]).is_ok(), "the chain alone cannot tell");

    let after = restart(&s).await;
    let info = device_info(&after, "file").await;
    let reason = info["break"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cut from its end"), "{info}");
    // Recorded in the log itself, signed; the verifier reports it.
    let all = entries(&file);
    let recorded = all
        .iter()
        .find(|e| e["type"] == "checkpoint" && e["checkpoint"]["break"].is_string())
        .unwrap();
    assert_eq!(recorded["checkpoint"]["reason"], "break");
    let mut v = ChainVerifier::new();
    for l in lines(&file) {
        v.push(&l).unwrap();
    }
    let found = v.finish().unwrap_err();
    assert!(found.reason.contains("recorded a break"), "{found:?}");
}

/// Issue 22 item 12, after a crash: with no seal to save it, the head is saved by the
/// device's timer after its checkpoint; lines cut from before it are found at restart.
#[tokio::test]
async fn a_log_cut_after_a_crash_is_found_at_restart() {
    let s = support::dev().await;
    let file = s.dir.path().join("audit.log");
    let (status, body) = s
        .call(
            "PUT",
            "sys/audit/file",
            Some(json!({"type": "file", "options": {"file_path": file, "checkpoint_interval": "1s"}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    for i in 0..3 {
        s.call(
            "PUT",
            &format!("secret/data/k{i}"),
            Some(json!({"data": {"v": "1"}})),
        )
        .await;
    }
    // The timer writes an interval checkpoint once the device is quiet, and saves its head.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let all = entries(&file);
        if all
            .last()
            .is_some_and(|e| e["checkpoint"]["reason"] == "interval")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no interval checkpoint"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The crash: no seal. Then the last two lines go.
    let kept = lines(&file);
    let cut: Vec<String> = kept[..kept.len() - 2]
        .iter()
        .map(|l| String::from_utf8(l.clone()).unwrap())
        .collect();
    std::fs::write(&file, cut.join("\n") + "\n").unwrap();
    let after = restart(&s).await;
    let info = device_info(&after, "file").await;
    assert!(
        info["break"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cut from its end")),
        "{info}"
    );
}

/// Mounts a tmpfs of `size` at `dir`; `false` where mounting is not allowed (not root).
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// Unmounts the tmpfs at its drop.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Issue 22 item 13: a disk that fills up mid-write leaves no partial line. The request
/// whose lines could not be written fails (fail closed), what part of them reached the disk
/// is taken back, and once there is room again the log goes on and verifies whole. A real
/// full disk: a small tmpfs (needs root, as CI runs).
#[tokio::test]
async fn a_full_disk_leaves_no_partial_line_and_the_log_verifies_after() {
    let s = support::dev().await;
    let mount = s.dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    if !mount_tmpfs(&mount, "160k") {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let _mounted = Mounted(mount.clone());
    let file = mount.join("audit.log");
    enable_file(&s, "file", &file).await;
    // Room to free later.
    std::fs::write(mount.join("ballast"), vec![0u8; 64 * 1024]).unwrap();
    // Large request entries (every value an HMAC of some 80 bytes): a few pages each.
    let data: serde_json::Map<String, Value> = (0..100)
        .map(|i| (format!("key{i:03}"), json!("v")))
        .collect();
    let mut refused = None;
    for i in 0..200 {
        let (status, body) = s
            .call(
                "PUT",
                &format!("secret/data/f{i}"),
                Some(json!({"data": data})),
            )
            .await;
        if status != 200 {
            refused = Some((i, status, body));
            break;
        }
    }
    let (i, status, body) = refused.expect("the disk never filled");
    assert_eq!(status, 500, "{body}");
    assert!(
        body["errors"][0].as_str().unwrap().contains("audit"),
        "{body}"
    );
    let text = std::fs::read(&file).unwrap();
    assert!(text.ends_with(b"\n"), "a partial line was left");
    assert!(verify(&[&file]).is_ok());
    // Fail closed: a write whose request entry could not be written was not carried out
    // (one whose response entry failed was, as in Vault: its request entry says so).
    let path = format!("secret/data/f{i}");
    let requested = entries(&file)
        .iter()
        .any(|e| e["type"] == "request" && e["request"]["path"] == json!(path));
    std::fs::remove_file(mount.join("ballast")).unwrap();
    let (status, _) = s.call("GET", &path, None).await;
    assert_eq!(status, if requested { 200 } else { 404 });
    for _ in 0..3 {
        assert_eq!(s.call("GET", "secret/data/f0", None).await.0, 200);
    }
    let n = verify(&[&file]).unwrap();
    assert_eq!(n as usize, lines(&file).len());
}

/// Issue 22 item 12: a log edited and re-chained while the server is down (the chain alone
/// verifies) no longer holds the checkpoint the server saved: found at restart.
#[tokio::test]
async fn a_log_rechained_while_down_is_found_at_restart() {
    use ward_api::audit::{ChainHead, Entry};
    let s = support::dev().await;
    let file = s.dir.path().join("audit.log");
    enable_file(&s, "file", &file).await;
    for i in 0..3 {
        s.call(
            "PUT",
            &format!("secret/data/r{i}"),
            Some(json!({"data": {"v": "1"}})),
        )
        .await;
    }
    assert_eq!(s.call("PUT", "sys/seal", None).await.0, 204);
    let all = lines(&file);
    // Line 2 edited, everything after it re-chained.
    let mut head = ChainHead::after(&all[0]).unwrap();
    let mut out = vec![String::from_utf8(all[0].clone()).unwrap()];
    for (i, line) in all[1..].iter().enumerate() {
        let mut object: serde_json::Map<String, Value> = serde_json::from_slice(line).unwrap();
        object.remove("seq");
        object.remove("prev_hash");
        if i == 0 {
            object.insert("time".into(), json!("2000-01-01T00:00:00Z"));
        }
        let mut chained = head.chain(&Entry::from_object(
            Value::Object(object).to_string().as_bytes(),
        ));
        chained.pop();
        out.push(String::from_utf8(chained).unwrap());
    }
    std::fs::write(&file, out.join("\n") + "\n").unwrap();
    assert!(verify(&[&file]).is_ok(), "the chain alone cannot tell");
    let after = restart(&s).await;
    let info = device_info(&after, "file").await;
    assert!(
        info["break"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("edited or re-chained")),
        "{info}"
    );
}
