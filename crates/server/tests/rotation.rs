//! The rotation scheduler over HTTP: transit keys' auto_rotate_period, KV rotation policies
//! with signed webhooks, `rotate/` now, persistence across a restart, mount key (KEK)
//! rotation with the background rewrap, and scheduled keyring rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ward_core::{CoreConfig, RotationConfig};

/// Short periods allowed, ticking every 200 ms.
fn fast(keyring: u64, mount_key: u64) -> CoreConfig {
    CoreConfig {
        rotation: RotationConfig {
            check_interval: Duration::from_millis(200),
            min_period: 1,
            keyring_period: keyring,
            mount_key_period: mount_key,
            // The tests' webhook receivers listen on loopback.
            webhook_allow_internal: true,
            ..RotationConfig::default()
        },
        ..CoreConfig::default()
    }
}

/// Polls `check` until it answers Some, or fails after `secs`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ok(s: &TestServer, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, reply) = s.call(method, path, body).await;
    assert!(status < 300, "{method} {path}: {status} {reply}");
    reply
}

/// A POST that must succeed.
async fn post(s: &TestServer, path: &str, body: Value) -> Value {
    ok(s, "POST", path, Some(body)).await
}

#[tokio::test]
async fn transit_key_rotates_on_its_auto_rotate_period() {
    let s = support::dev_with(fast(0, 0)).await;
    post(&s, "sys/mounts/transit", json!({"type": "transit"})).await;
    post(&s, "transit/keys/k", json!({"auto_rotate_period": "2s"})).await;
    let v1 = post(&s, "transit/encrypt/k", json!({"plaintext": "aGk="})).await;
    let v1 = v1["data"]["ciphertext"].as_str().unwrap().to_owned();
    assert!(v1.starts_with("vault:v1:"));
    let started = Instant::now();
    eventually(10, "a scheduled transit rotation", || async {
        let (_, k) = s.call("GET", "transit/keys/k", None).await;
        (k["data"]["latest_version"].as_u64() >= Some(2)).then_some(())
    })
    .await;
    // Version times are whole seconds: a 2 s period may end 1 s and a bit after creation.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "rotated before the period"
    );
    let enc = post(&s, "transit/encrypt/k", json!({"plaintext": "aGk="})).await;
    assert!(
        enc["data"]["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v")
    );
    assert!(
        !enc["data"]["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    let dec = post(&s, "transit/decrypt/k", json!({"ciphertext": v1})).await;
    assert_eq!(dec["data"]["plaintext"], "aGk=");

    // Turning the period off removes the job: no more rotations.
    post(
        &s,
        "transit/keys/k/config",
        json!({"auto_rotate_period": 0}),
    )
    .await;
    let (_, k) = s.call("GET", "transit/keys/k", None).await;
    let latest = k["data"]["latest_version"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, k) = s.call("GET", "transit/keys/k", None).await;
    assert_eq!(k["data"]["latest_version"].as_u64().unwrap(), latest);
    let status = ok(&s, "GET", "sys/rotation/status", None).await;
    assert_eq!(status["data"]["jobs"], json!([]), "{status}");
}

#[tokio::test]
async fn short_periods_need_the_min_period_setting() {
    let s = support::dev().await;
    post(&s, "sys/mounts/transit", json!({"type": "transit"})).await;
    let (status, body) = s
        .call(
            "POST",
            "transit/keys/k",
            Some(json!({"auto_rotate_period": "2s"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = s
        .call(
            "POST",
            "secret/metadata/a",
            Some(json!({"rotation_period": "10m"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("at least an hour"), "{body}");
    post(&s, "secret/metadata/a", json!({"rotation_period": "720h"})).await;
}

/// A one-request HTTP receiver: answers 200 and hands over the headers and body.
async fn webhook_receiver() -> (String, tokio::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = conn.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed early");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < end + 4 + len {
                            let n = conn.read(&mut chunk).await.unwrap();
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break (head, buf[end + 4..end + 4 + len].to_vec());
                    }
                };
                conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
                .unwrap();
                let _ = tx.send((head, body)).await;
            });
        }
    });
    (url, rx)
}

const HOOK_SECRET: &str = "a webhook secret of some length";

#[tokio::test]
async fn kv_secret_rotates_on_schedule_and_signs_its_webhook() {
    let s = support::dev_with(fast(0, 0)).await;
    let (url, mut hooks) = webhook_receiver().await;
    post(
        &s,
        "secret/data/app/db",
        json!({"data": {"user": "app", "password": "old"}}),
    )
    .await;
    post(
        &s,
        "secret/metadata/app/db",
        json!({
            "rotation_period": "2s",
            "rotation_generator": {"type": "hex", "length": 16, "field": "password"},
            "webhook_url": url,
            "webhook_secret": HOOK_SECRET,
        }),
    )
    .await;
    let meta = ok(&s, "GET", "secret/metadata/app/db", None).await;
    assert_eq!(meta["data"]["rotation_period"], "2s");
    assert_eq!(meta["data"]["rotation_generator"]["type"], "hex");
    assert_eq!(meta["data"]["webhook_secret_set"], true);
    assert!(
        !meta.to_string().contains(HOOK_SECRET),
        "secret shown: {meta}"
    );

    let (head, body) = tokio::time::timeout(Duration::from_secs(15), hooks.recv())
        .await
        .expect("no webhook")
        .unwrap();
    assert!(head.starts_with("post /hook "), "{head}");
    let signature = head
        .lines()
        .find_map(|l| l.strip_prefix("x-ward-signature:"))
        .expect("no signature header")
        .trim()
        .to_owned();
    let expected = format!(
        "sha256={}",
        hex::encode(ward_crypto::hmac_sha256(HOOK_SECRET.as_bytes(), &body))
    );
    assert_eq!(signature, expected);
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "kv.rotated");
    assert_eq!(event["mount"], "secret/");
    assert_eq!(event["path"], "app/db");
    assert!(event["version"].as_u64().unwrap() >= 2);
    assert!(event["time"].as_str().unwrap().ends_with('Z'));

    let v2 = ok(&s, "GET", "secret/data/app/db?version=2", None).await;
    let password = v2["data"]["data"]["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(v2["data"]["data"]["user"], "app", "other fields are kept");
    assert!(
        !String::from_utf8_lossy(&body).contains(&password),
        "value in the webhook"
    );
    // The old version stays for rollback.
    let v1 = ok(&s, "GET", "secret/data/app/db?version=1", None).await;
    assert_eq!(v1["data"]["data"]["password"], "old");

    // Removing the policy stops the rotations.
    post(
        &s,
        "secret/metadata/app/db",
        json!({"rotation_period": "0"}),
    )
    .await;
    let before =
        ok(&s, "GET", "secret/metadata/app/db", None).await["data"]["current_version"].clone();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = ok(&s, "GET", "secret/metadata/app/db", None).await;
    assert_eq!(after["data"]["current_version"], before);
    assert!(after["data"].get("rotation_period").is_none());
}

#[tokio::test]
async fn rotate_now_writes_a_new_version() {
    let s = support::dev().await;
    let (status, _) = s.call("POST", "secret/rotate/none", None).await;
    assert_eq!(status, 404);
    post(&s, "secret/data/plain", json!({"data": {"a": "b"}})).await;
    let (status, body) = s.call("POST", "secret/rotate/plain", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("no rotation policy"), "{body}");

    post(
        &s,
        "secret/data/svc",
        json!({"data": {"user": "u", "value": "x"}}),
    )
    .await;
    post(&s, "secret/metadata/svc", json!({"rotation_period": "720h", "rotation_generator": "{\"type\": \"password\", \"length\": 40}"})).await;
    let r = ok(&s, "POST", "secret/rotate/svc", None).await;
    assert_eq!(r["data"]["version"], 2);
    let read = ok(&s, "GET", "secret/data/svc", None).await;
    let value = read["data"]["data"]["value"].as_str().unwrap();
    assert_eq!(value.chars().count(), 40);
    assert_ne!(value, "x");
    assert_eq!(read["data"]["data"]["user"], "u");
    let meta = ok(&s, "GET", "secret/metadata/svc", None).await;
    let next =
        chrono::DateTime::parse_from_rfc3339(meta["data"]["next_rotation"].as_str().unwrap())
            .unwrap();
    let in_hours = (next.timestamp() - chrono::Utc::now().timestamp()) / 3600;
    assert!(
        (719..=720).contains(&in_hours),
        "next rotation in {in_hours}h"
    );

    for bad in [
        json!({"rotation_period": "720h", "rotation_generator": {"type": "uuid"}}),
        json!({"rotation_period": "720h", "rotation_generator": {"length": 0}}),
        json!({"rotation_period": "720h", "webhook_url": "ftp://x/"}),
        json!({"rotation_period": "720h", "webhook_url": "http://127.0.0.1:1/", "webhook_secret": "short"}),
        json!({"webhook_url": "http://127.0.0.1:1/"}),
    ] {
        let (status, body) = s
            .call("POST", "secret/metadata/other", Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad} -> {body}");
    }
    // A policyless secret's rotate path needs update permission like any write.
    let (status, _) = s.call("GET", "secret/rotate/svc", None).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn next_due_survives_a_restart() {
    let s = support::dev_with(fast(0, 0)).await;
    post(&s, "secret/data/r", json!({"data": {"value": "one"}})).await;
    post(&s, "secret/metadata/r", json!({"rotation_period": "4s"})).await;
    let status = ok(&s, "GET", "sys/rotation/status", None).await;
    let jobs = status["data"]["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 1, "{status}");
    assert_eq!(jobs[0]["kind"], "kv");
    assert_eq!(jobs[0]["target"], "r");

    // Stop: seal and drop the server; start a new core on the same database.
    let s = support::restart(s, fast(0, 0)).await;
    let status = ok(&s, "GET", "sys/rotation/status", None).await;
    assert_eq!(
        status["data"]["jobs"].as_array().unwrap(),
        &jobs,
        "job lost in the restart"
    );
    eventually(15, "the rotation after the restart", || async {
        let (_, m) = s.call("GET", "secret/metadata/r", None).await;
        (m["data"]["current_version"].as_u64() >= Some(2)).then_some(())
    })
    .await;
    let v2 = ok(&s, "GET", "secret/data/r?version=2", None).await;
    assert_ne!(v2["data"]["data"]["value"], "one");
}

/// Writes `n` KV secrets and a transit key, and returns the transit ciphertext.
async fn fill(s: &TestServer, n: usize) -> String {
    post(s, "sys/mounts/transit", json!({"type": "transit"})).await;
    post(s, "transit/keys/t", json!({})).await;
    for i in 0..n {
        post(s, &format!("secret/data/d/{i}"), json!({"data": {"v": i}})).await;
        post(
            s,
            &format!("secret/data/d/{i}"),
            json!({"data": {"v": i + 1000}}),
        )
        .await;
    }
    let enc = post(s, "transit/encrypt/t", json!({"plaintext": "aGk="})).await;
    enc["data"]["ciphertext"].as_str().unwrap().to_owned()
}

async fn check_readable(s: &TestServer, n: usize, ciphertext: &str) {
    for i in 0..n {
        let v1 = ok(s, "GET", &format!("secret/data/d/{i}?version=1"), None).await;
        assert_eq!(v1["data"]["data"]["v"], i);
        let v2 = ok(s, "GET", &format!("secret/data/d/{i}"), None).await;
        assert_eq!(v2["data"]["data"]["v"], i + 1000);
    }
    let dec = post(s, "transit/decrypt/t", json!({"ciphertext": ciphertext})).await;
    assert_eq!(dec["data"]["plaintext"], "aGk=");
}

async fn key_versions(s: &TestServer, mount: &str) -> Value {
    let status = ok(s, "GET", "sys/rotation/status", None).await;
    status["data"]["mounts"][mount].clone()
}

#[tokio::test]
async fn mount_key_rotation_rewraps_in_the_background_and_drops_the_old_key() {
    let s = support::dev().await;
    let n = 40;
    let ciphertext = fill(&s, n).await;
    assert_eq!(
        key_versions(&s, "secret/").await["key_versions"],
        json!([1])
    );

    let r = ok(&s, "POST", "sys/rotate/mount/secret", None).await;
    assert_eq!(r["data"]["key_version"], 2);
    ok(&s, "POST", "sys/rotate/mount/transit", None).await;
    // Reads and writes go on while the rewrap runs.
    for i in 0..n {
        post(
            &s,
            &format!("secret/data/new/{i}"),
            json!({"data": {"n": i}}),
        )
        .await;
    }
    check_readable(&s, n, &ciphertext).await;
    for mount in ["secret/", "transit/"] {
        eventually(20, "the rewrap to finish", || async {
            let st = key_versions(&s, mount).await;
            (st["key_versions"] == json!([2]) && st["rewrapping"] == false).then_some(())
        })
        .await;
    }
    check_readable(&s, n, &ciphertext).await;
    for i in 0..n {
        let r = ok(&s, "GET", &format!("secret/data/new/{i}"), None).await;
        assert_eq!(r["data"]["data"]["n"], i);
    }
    // After a seal and unseal (no cache), everything still opens with KEK v2 alone.
    s.core.seal().await;
    post(&s, "sys/unseal", json!({"key": s.unseal_key})).await;
    check_readable(&s, n, &ciphertext).await;
    assert_eq!(
        key_versions(&s, "secret/").await["key_versions"],
        json!([2])
    );

    let (status, _) = s.call("POST", "sys/rotate/mount/nothing", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn mount_keys_and_keyring_rotate_on_their_periods() {
    let s = support::dev_with(fast(2, 2)).await;
    let ciphertext = fill(&s, 5).await;
    let term = ok(&s, "GET", "sys/key-status", None).await["data"]["term"]
        .as_u64()
        .unwrap();
    eventually(20, "scheduled KEK rotations and rewraps", || async {
        let st = key_versions(&s, "secret/").await;
        let latest = st["latest_version"].as_u64().unwrap();
        (latest >= 2 && st["key_versions"] == json!([latest])).then_some(())
    })
    .await;
    eventually(20, "a scheduled keyring rotation", || async {
        let (_, k) = s.call("GET", "sys/key-status", None).await;
        (k["data"]["term"].as_u64().unwrap() > term).then_some(())
    })
    .await;
    check_readable(&s, 5, &ciphertext).await;
    let status = ok(&s, "GET", "sys/rotation/status", None).await;
    assert_eq!(status["data"]["mount_key_period"], 2);
    assert!(status["data"]["keyring"]["next_rotation"].is_string());
}

/// Anyone who may write a secret's metadata can name a webhook URL, and Ward sends it a
/// request from inside the network: by default an internal destination (loopback, the cloud
/// metadata address, private ranges) is refused when the URL is set, with a clear error.
#[tokio::test]
async fn webhooks_to_internal_addresses_are_refused_by_default() {
    let s = support::dev().await;
    let set_hook = |url: &str| {
        let body = json!({
            "rotation_period": "720h",
            "webhook_url": url,
            "webhook_secret": HOOK_SECRET,
        });
        s.call("POST", "secret/metadata/hooked", Some(body))
    };
    // A name is resolved when the URL is set, as delivery resolves it: this host's own
    // name (which /etc/hosts or DNS points at a loopback or private address) is refused.
    let host = hostname();
    let resolved: Vec<std::net::IpAddr> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default();
    let internal = |ip: &std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    if !host.is_empty() && host != "localhost" && resolved.iter().any(internal) {
        let url = format!("http://{host}:8200/v1/sys/seal");
        let (status, body) = set_hook(&url).await;
        assert_eq!(status, 400, "{url} ({resolved:?}) -> {body}");
        let error = body["errors"][0].as_str().unwrap();
        assert!(error.contains("internal address"), "{url} -> {error}");
    }
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8200/v1/sys/seal",
        "http://[::ffff:10.0.0.1]/",
        "http://192.168.1.10/",
        "http://localhost:8200/",
        "http://127.1/",
        // IPv4-compatible, NAT64 (well-known and local-use), 6to4 and Teredo addresses
        // reach an IPv4 address through a translator; Azure's platform endpoint.
        "http://[::a9fe:a9fe]/latest/meta-data/",
        "http://[::7f00:1]:8200/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[64:ff9b::101:101]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[2001:0:4136:e378::1]/",
        "http://168.63.129.16/metadata/instance",
    ] {
        let (status, body) = set_hook(url).await;
        assert_eq!(status, 400, "{url} -> {body}");
        let error = body["errors"][0].as_str().unwrap();
        assert!(error.contains("internal address"), "{url} -> {error}");
        assert!(error.contains("webhook_allow_internal"), "{url} -> {error}");
    }
    // Nothing was stored by the refused writes.
    assert_eq!(s.call("GET", "secret/metadata/hooked", None).await.0, 404);
    // A public destination is accepted (it is resolved, and checked again, when it is used).
    let (status, body) = set_hook("https://hooks.example.com/ward").await;
    assert!(status == 200 || status == 204, "{body}");
}

/// This machine's host name (empty when unknown).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// `fast(0, 0)` with an AES-GCM usage limit of `limit` encryptions per key.
fn usage_limited(limit: u64) -> CoreConfig {
    let mut config = fast(0, 0);
    config.rotation.aead_usage_limit = limit;
    config
}

/// No key may seal more than the AES-GCM usage limit allows, whatever the rotation periods
/// (none here): the keyring gets a new term and the mount a new KEK version once their
/// counts reach it, and the mount's data keys are rewrapped under the new version.
#[tokio::test]
async fn keys_are_rotated_when_they_reach_the_aes_gcm_usage_limit() {
    let s = support::dev_with(usage_limited(64)).await;
    let term = ok(&s, "GET", "sys/key-status", None).await["data"]["term"]
        .as_u64()
        .unwrap();
    assert_eq!(key_versions(&s, "secret/").await["latest_version"], 1);
    for i in 0..80 {
        post(&s, &format!("secret/data/u{i}"), json!({"data": {"i": i}})).await;
    }
    eventually(15, "a usage-driven rotation of keyring and KEK", || async {
        let now = ok(&s, "GET", "sys/key-status", None).await["data"]["term"]
            .as_u64()
            .unwrap();
        let st = key_versions(&s, "secret/").await;
        (now > term && st["latest_version"].as_u64() >= Some(2) && st["rewrapping"] == false)
            .then_some(())
    })
    .await;
    for i in [0, 41, 79] {
        let r = ok(&s, "GET", &format!("secret/data/u{i}"), None).await;
        assert_eq!(r["data"]["data"]["i"], i);
    }
}

/// The counts survive a restart: what an earlier process reserved counts as spent, so a
/// key cannot start from zero again after every restart (or crash).
#[tokio::test]
async fn usage_counts_survive_a_restart() {
    let limit = 200;
    let s = support::dev_with(usage_limited(limit)).await;
    for i in 0..120 {
        post(&s, &format!("secret/data/a{i}"), json!({"data": {"i": i}})).await;
    }
    // A tick records the reservation.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        key_versions(&s, "secret/").await["latest_version"],
        1,
        "120 wraps are below the limit"
    );
    let s = support::restart(s, usage_limited(limit)).await;
    for i in 0..90 {
        post(&s, &format!("secret/data/b{i}"), json!({"data": {"i": i}})).await;
    }
    eventually(
        15,
        "the KEK rotation after 210 wraps over two runs",
        || async {
            (key_versions(&s, "secret/").await["latest_version"].as_u64() >= Some(2)).then_some(())
        },
    )
    .await;
}
