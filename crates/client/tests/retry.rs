//! Retries as seen by a server: how many requests each answer causes. Ward cannot be made to
//! answer 429 or send `Retry-After` on demand, so a minimal HTTP/1.1 server that counts
//! requests stands in for it here (the outage and 403 cases run against a real Ward in
//! `crates/ward/tests/client_resilience.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ward_client::{Client, Resilience};

/// Serves every request with `status` and `headers`; returns its address and the count.
fn counting_server(status: &'static str, headers: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            counter.fetch_add(1, Ordering::SeqCst);
            let reply = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\n\
                 Content-Length: 14\r\nConnection: close\r\n\r\n{{\"errors\":[]}}\n"
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (address, count)
}

fn client(address: &str) -> Client {
    Client::new(address, Some("t"))
        .unwrap()
        .with_resilience(Resilience {
            retry_base_delay: Duration::from_millis(10),
            ..Resilience::default()
        })
}

#[tokio::test]
async fn reads_are_retried_on_503_honouring_retry_after_and_writes_are_not() {
    let (address, count) = counting_server("503 Service Unavailable", "Retry-After: 1\r\n");
    let client = client(&address);
    let started = Instant::now();
    let error = client.read("secret/data/a").await.unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(count.load(Ordering::SeqCst), 3, "three attempts");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 twice"
    );

    count.store(0, Ordering::SeqCst);
    let error = client
        .write("secret/data/a", &serde_json::json!({"data": {}}))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "a write the server saw is not repeated"
    );
}

#[tokio::test]
async fn reads_are_retried_on_429_and_never_on_4xx() {
    let (address, count) = counting_server("429 Too Many Requests", "");
    let error = client(&address).read("secret/data/a").await.unwrap_err();
    assert_eq!(error.status(), Some(429));
    assert_eq!(count.load(Ordering::SeqCst), 3);

    for status in ["400 Bad Request", "403 Forbidden", "404 Not Found"] {
        let (address, count) = counting_server(status, "");
        let _ = client(&address).read("secret/data/a").await;
        assert_eq!(count.load(Ordering::SeqCst), 1, "{status}");
    }
}
