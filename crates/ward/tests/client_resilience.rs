//! The client library's resilience against a real `ward server` process: an outage under a
//! client loop (circuit, cache, fallback, recovery), token renewal past several TTLs, and no
//! retry of a 403.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;
use ward_client::{
    CircuitState, Client, ClientError, HealthState, Login, Resilience, SecretRef, SecretSource,
};

/// Set in the copy of this test binary that runs the outage scenario with a fallback
/// variable in its environment (setting variables in a running test process is unsafe).
const SCENARIO: &str = "WARD_TEST_OUTAGE_SCENARIO";

#[test]
fn an_outage_opens_the_circuit_the_cache_and_fallback_serve_and_the_client_recovers() {
    if std::env::var_os(SCENARIO).is_some() {
        return outage_scenario();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_outage_opens_the_circuit_the_cache_and_fallback_serve_and_the_client_recovers",
            "--nocapture",
        ])
        .env(SCENARIO, "1")
        .env("WARD_FALLBACK_API_KEY", "fallback-key")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "scenario failed:\n{text}");
    // The fallback was reported in the log, never silently; its value was not logged.
    assert!(text.contains("degraded"), "no warning logged:\n{text}");
    assert!(text.contains("WARD_FALLBACK_API_KEY"), "{text}");
    assert!(!text.contains("fallback-key"), "{text}");
    assert!(text.contains("circuit opened"), "{text}");
}

fn outage_scenario() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = Server::start_dev_on_fixed_port("root-outage");
        let (status, _) = server.call(
            "POST",
            "secret/data/app/db",
            Some(&json!({"data": {"password": "pw-1"}})),
        );
        assert_eq!(status, 200);
        let client = Client::new(server.addr(), Some("root-outage"))
            .unwrap()
            .with_resilience(Resilience {
                breaker_threshold: 3,
                breaker_open_for: Duration::from_secs(1),
                retry_base_delay: Duration::from_millis(20),
                ..Resilience::default()
            });
        let db: SecretRef = "secret/app/db#password".parse().unwrap();
        let api: SecretRef = "secret/app/api#key".parse().unwrap();

        let first = client.read_secret("DB_PASSWORD", &db).await.unwrap();
        assert_eq!(
            (first.value.as_str(), first.source),
            ("pw-1", SecretSource::Server)
        );
        assert_eq!(first.version, Some(1));
        let second = client.read_secret("DB_PASSWORD", &db).await.unwrap();
        assert_eq!(second.source, SecretSource::Cache);

        // The server goes away under the client loop.
        let mut server = server;
        server.terminate_and_wait(Duration::from_secs(10)).unwrap();
        let mut failures = 0;
        while client.circuit_state() != CircuitState::Open {
            let error = client.lookup_self().await.unwrap_err();
            assert!(matches!(error, ClientError::Transport(_)), "{error:?}");
            failures += 1;
            assert!(failures <= 3, "the circuit never opened");
        }
        // An open circuit costs no connection attempt, let alone a timeout.
        let started = Instant::now();
        let error = client.lookup_self().await.unwrap_err();
        assert!(
            matches!(error, ClientError::CircuitOpen { .. }),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(50));

        // The cache serves what it holds; the fallback what it does not, reported.
        let cached = client.read_secret("DB_PASSWORD", &db).await.unwrap();
        assert_eq!(
            (cached.value.as_str(), cached.source),
            ("pw-1", SecretSource::Cache)
        );
        assert_eq!(client.health_state(), HealthState::Healthy);
        let fallback = client.read_secret("API_KEY", &api).await.unwrap();
        assert_eq!(
            (fallback.value.as_str(), fallback.source),
            ("fallback-key", SecretSource::Fallback)
        );
        assert!(client.is_degraded());
        assert_eq!(
            client.health_state(),
            HealthState::Degraded {
                fallbacks: vec!["API_KEY".to_owned()]
            }
        );
        // No fallback variable: the outage is an error, not an empty value.
        let other: SecretRef = "secret/app/other#k".parse().unwrap();
        let error = client.read_secret("OTHER", &other).await.unwrap_err();
        assert!(error.is_outage(), "{error:?}");

        // The server comes back (a dev server comes back empty: the secret is written anew).
        let server = server.restart();
        let (status, _) = server.call(
            "POST",
            "secret/data/app/api",
            Some(&json!({"data": {"key": "server-key"}})),
        );
        assert_eq!(status, 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        let recovered = loop {
            match client.read_secret("API_KEY", &api).await {
                Ok(value) if value.source == SecretSource::Server => break value,
                _ => {
                    assert!(Instant::now() < deadline, "the client never recovered");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        assert_eq!(recovered.value, "server-key");
        assert_eq!(client.circuit_state(), CircuitState::Closed);
        assert_eq!(client.health_state(), HealthState::Healthy);
        drop(server);
    });
}

/// The issue asks for a 10 s TTL kept alive for a minute; the same ratio (six TTLs) at 4 s
/// keeps the test suite quicker: renewal happens at half the TTL whatever it is. (At 2 s the
/// margin, one second, was too thin for a loaded machine.)
#[tokio::test]
async fn renewal_keeps_a_short_ttl_token_alive_past_several_ttls() {
    let server = Server::start();
    let root = server.client();
    let auth = root
        .create_token(
            &serde_json::from_value(json!({"ttl": "4s", "policies": ["default"]})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(auth.lease_duration, 4);
    let client = Client::new(server.addr(), Some(&auth.client_token)).unwrap();
    let renewal = client.start_renewal(None);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(24) {
        let token = client.lookup_self().await.unwrap();
        assert_eq!(token.accessor, auth.accessor);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!renewal.is_finished());

    // Without renewal the same kind of token is gone after its TTL.
    let unrenewed = root
        .create_token(
            &serde_json::from_value(json!({"ttl": "2s", "policies": ["default"]})).unwrap(),
        )
        .await
        .unwrap();
    let lone = Client::new(server.addr(), Some(&unrenewed.client_token)).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lone.lookup_self().await.unwrap_err().status(), Some(403));
}

#[tokio::test]
async fn a_token_past_its_max_ttl_is_replaced_from_the_token_file() {
    let server = Server::start();
    let root = server.client();
    let short = root
        .create_token(
            &serde_json::from_value(
                json!({"ttl": "2s", "explicit_max_ttl": "3s", "policies": ["default"]}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let next = root
        .create_token(
            &serde_json::from_value(json!({"ttl": "1h", "policies": ["default"]})).unwrap(),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{}\n", next.client_token)).unwrap();

    let client = Client::new(server.addr(), Some(&short.client_token)).unwrap();
    let _renewal = client.start_renewal(Some(Login::TokenFile(file)));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let token = client.lookup_self().await.unwrap();
    assert_eq!(token.accessor, next.accessor);
}

#[tokio::test]
async fn a_403_is_not_retried() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let (status, _) = server.call(
        "PUT",
        "sys/audit/file",
        Some(&json!({"type": "file", "options": {"file_path": audit}})),
    );
    assert_eq!(status, 204);
    let root = server.client();
    let auth = root
        .create_token(&serde_json::from_value(json!({"policies": ["default"]})).unwrap())
        .await
        .unwrap();
    let client = Client::new(server.addr(), Some(&auth.client_token)).unwrap();
    let error = client
        .kv2("secret")
        .read("denied-marker", None)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403));

    let log = std::fs::read_to_string(&audit).unwrap();
    let requests = log
        .lines()
        .filter(|line| line.contains("\"type\":\"request\"") && line.contains("denied-marker"))
        .count();
    assert_eq!(requests, 1, "audit log:\n{log}");
    // A 403 is no outage: the circuit stays closed.
    assert_eq!(client.circuit_state(), CircuitState::Closed);
}

/// The figure for the issue: a KV read answered by the client's cache against one answered
/// by the server. Run with `--nocapture` to see it.
#[tokio::test]
async fn cached_reads_cost_microseconds_server_reads_a_round_trip() {
    let server = Server::start();
    let (status, _) = server.call(
        "POST",
        "secret/data/bench",
        Some(&json!({"data": {"password": "p"}})),
    );
    assert_eq!(status, 200);
    let client = server.client();
    let kv = client.kv2("secret");
    const READS: u32 = 500;
    // Warm the connection and the cache.
    kv.read("bench", None).await.unwrap().unwrap();
    let started = Instant::now();
    for _ in 0..READS {
        kv.read_fresh("bench", None).await.unwrap().unwrap();
    }
    let uncached = started.elapsed() / READS;
    let started = Instant::now();
    for _ in 0..READS {
        kv.read("bench", None).await.unwrap().unwrap();
    }
    let cached = started.elapsed() / READS;
    println!(
        "KV v2 read through ward-client, mean of {READS}: uncached {:.1} µs, cached {:.1} µs",
        uncached.as_secs_f64() * 1e6,
        cached.as_secs_f64() * 1e6
    );
    assert!(
        cached * 5 < uncached,
        "cached {cached:?}, uncached {uncached:?}"
    );
}
