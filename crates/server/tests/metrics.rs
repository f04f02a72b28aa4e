//! `GET /v1/sys/metrics?format=prometheus`: Prometheus text that a real parser accepts, with
//! requests by route template and status, latency histograms, seal state, token counts and
//! audit writes and failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use prometheus_parse::{Sample, Scrape, Value as Metric};
use serde_json::json;

async fn scrape(s: &support::TestServer) -> (Scrape, String) {
    let resp = s
        .http
        .get(format!("{}/v1/sys/metrics?format=prometheus", s.url))
        .header("X-Vault-Token", &s.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = resp.text().await.unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (parsed, text)
}

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .collect()
}

fn value(sample: &Sample) -> f64 {
    match &sample.value {
        Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
        other => panic!("not a scalar: {other:?}"),
    }
}

#[tokio::test]
async fn prometheus_metrics_parse_and_count_what_happened() {
    let s = support::dev().await;
    let file = s.dir.path().join("audit.log");
    let (status, _) = s
        .call(
            "PUT",
            "sys/audit/metrics-file",
            Some(json!({"type": "file", "options": {"file_path": file}})),
        )
        .await;
    assert_eq!(status, 204);
    for i in 0..3 {
        let (status, _) = s
            .call(
                "PUT",
                &format!("secret/data/m/{i}"),
                Some(json!({"data": {"v": "1"}})),
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(s.call("GET", "secret/data/m/missing", None).await.0, 404);

    let (scrape, text) = scrape(&s).await;
    let ok_writes = find(
        &scrape,
        "ward_http_requests_total",
        &[
            ("route", "secret/data/:path"),
            ("method", "PUT"),
            ("status", "200"),
        ],
    );
    assert!(
        ok_writes.iter().map(|s| value(s)).sum::<f64>() >= 3.0,
        "{text}"
    );
    assert!(
        !find(
            &scrape,
            "ward_http_requests_total",
            &[("route", "secret/data/:path"), ("status", "404")]
        )
        .is_empty()
    );
    // Client-chosen names never become labels.
    assert!(!text.contains("secret/data/m/"), "raw paths in labels");

    let histogram = find(
        &scrape,
        "ward_http_request_duration_seconds",
        &[("route", "secret/data/:path"), ("method", "PUT")],
    );
    assert!(
        histogram
            .iter()
            .any(|s| matches!(&s.value, Metric::Histogram(b) if b.len() > 5)),
        "{text}"
    );
    let sealed = find(&scrape, "ward_sealed", &[]);
    assert_eq!(value(sealed[0]), 0.0);
    assert!(value(find(&scrape, "ward_tokens", &[])[0]) >= 1.0);
    let audit_writes = find(
        &scrape,
        "ward_audit_writes_total",
        &[("device", "metrics-file/")],
    );
    assert!(value(audit_writes[0]) >= 8.0, "{text}");
}

#[tokio::test]
async fn audit_failures_are_counted_and_metrics_need_a_token() {
    let s = support::dev().await;
    let dir = s.dir.path().join("gone");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("audit.log");
    let ok_file = s.dir.path().join("ok.log");
    for (name, path) in [("failing", &file), ("healthy", &ok_file)] {
        let (status, _) = s
            .call(
                "PUT",
                &format!("sys/audit/{name}"),
                Some(json!({"type": "file", "options": {"file_path": path}})),
            )
            .await;
        assert_eq!(status, 204);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    s.core.reopen_audit_devices();
    assert_eq!(s.call("GET", "sys/mounts", None).await.0, 200);
    let (scrape, text) = scrape(&s).await;
    let failures = find(
        &scrape,
        "ward_audit_failures_total",
        &[("device", "failing/")],
    );
    assert!(value(failures[0]) >= 1.0, "{text}");

    let anonymous = s
        .http
        .get(format!("{}/v1/sys/metrics?format=prometheus", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 403);
    let (status, body) = s.call("GET", "sys/metrics?format=json", None).await;
    assert_eq!(status, 400, "{body}");
    // /metrics is off unless the configuration enables it.
    let plain = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 404);
}
