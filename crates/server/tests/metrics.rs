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

/// Route labels come from Ward's routes, never from what a client puts in a path: a client
/// sending many distinct paths (before any token is checked) must not create new series.
#[tokio::test]
async fn clients_cannot_grow_the_route_label_set() {
    let s = support::dev().await;
    assert_eq!(
        s.call(
            "POST",
            "sys/mounts/transit",
            Some(json!({"type": "transit"}))
        )
        .await
        .0,
        204
    );
    let (before, _) = scrape(&s).await;
    let routes = |scrape: &Scrape| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == "ward_http_requests_total")
            .filter_map(|s| s.labels.get("route").map(str::to_owned))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let paths = |i: usize| {
        [
            format!("sys/zz{i}"),
            format!("sys/zz{i}/deeper"),
            format!("sys/policies/zz{i}/x"),
            format!("sys/internal/zz{i}/x"),
            format!("sys/rotate/zz{i}"),
            format!("auth/zz{i}/login"),
            format!("auth/token/zz{i}"),
            format!("secret/zz{i}/x"),
            format!("secret/zz{i}"),
            format!("transit/zz{i}/key"),
            format!("nomount{i}/x"),
        ]
    };
    for i in 0..2 {
        for path in paths(i) {
            for token in [None, Some(s.root_token.as_str())] {
                let mut req = s.http.get(format!("{}/v1/{path}", s.url));
                if let Some(token) = token {
                    req = req.header("X-Vault-Token", token);
                }
                let status = req.send().await.unwrap().status().as_u16();
                assert!(status < 500, "{path}: {status}");
            }
        }
    }
    for i in 2..50 {
        for path in paths(i) {
            s.http
                .get(format!("{}/v1/{path}", s.url))
                .send()
                .await
                .unwrap();
        }
    }
    let (after, text) = scrape(&s).await;
    assert!(
        !text.contains("zz"),
        "a client's word became a label:\n{text}"
    );
    let new: Vec<_> = routes(&after)
        .difference(&routes(&before))
        .cloned()
        .collect();
    for expected in [
        "sys/:unknown",
        "sys/rotate/:unknown",
        "auth/:unknown",
        "secret/:unknown/:path",
        "secret/:unknown",
        "transit/:unknown/:path",
        "unmatched",
    ] {
        assert!(
            new.iter().any(|r| r == expected),
            "{expected} not in {new:?}"
        );
    }
}
