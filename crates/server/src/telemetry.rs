//! Prometheus metrics: one process-wide recorder (the `metrics` facade, rendered by
//! metrics-exporter-prometheus) and the gauges read at scrape time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use async_trait::async_trait;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ward_core::Core;
use ward_store::{Op, Storage, StoreError};

/// Latency buckets in seconds: from 100 µs (a cached read) to 10 s.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use. `None` if another recorder was installed
/// first (metrics then go there, and Ward's endpoint has nothing to show).
pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric, with the scrape-time gauges refreshed.
pub(crate) async fn render(core: &Core) -> String {
    let Some(handle) = handle() else {
        return String::new();
    };
    let sealed = core.is_sealed();
    metrics::gauge!("ward_sealed").set(if sealed { 1.0 } else { 0.0 });
    if let Ok(count) = core.token_count().await {
        metrics::gauge!("ward_tokens").set(count as f64);
    }
    handle.run_upkeep();
    handle.render()
}

/// The request counter and latency histogram of one route, method and status.
struct RequestHandles {
    total: metrics::Counter,
    duration: metrics::Histogram,
}

/// Handles already registered, by route template, then method and status. Registering a
/// labelled metric builds and hashes its key on every call; a route's handles are looked up
/// here instead. Each worker thread keeps its own map (no lock, no reference counting on
/// the hot path); the label set is bounded, so is each map.
/// The maps hash with foldhash: they are looked up on every request, and their keys are
/// route templates and statuses, a bounded set no client chooses.
type HandleCache = HashMap<String, FastMap<(&'static str, u16), RequestHandles>, Fast>;
type Fast = foldhash::fast::RandomState;
type FastMap<K, V> = HashMap<K, V, Fast>;

thread_local! {
    static REQUEST_HANDLES: RefCell<HandleCache> = RefCell::new(HashMap::default());
}

fn register(route: &str, method: &'static str, status: u16) -> RequestHandles {
    RequestHandles {
        total: metrics::counter!(
            "ward_http_requests_total",
            "route" => route.to_owned(),
            "method" => method,
            "status" => status.to_string()
        ),
        duration: metrics::histogram!(
            "ward_http_request_duration_seconds",
            "route" => route.to_owned(),
            "method" => method
        ),
    }
}

/// Records one HTTP request.
pub(crate) fn record_request(route: &str, method: &'static str, status: u16, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    REQUEST_HANDLES.with_borrow_mut(|cache| {
        let by_status = match cache.get_mut(route) {
            Some(found) => found,
            None => cache.entry(route.to_owned()).or_default(),
        };
        let handles = by_status
            .entry((method, status))
            .or_insert_with(|| register(route, method, status));
        handles.total.increment(1);
        handles.duration.record(seconds);
    });
}

/// A [`Storage`] that times every operation of the backend it wraps.
pub(crate) struct MeteredStorage<S> {
    inner: S,
}

impl<S> MeteredStorage<S> {
    pub(crate) fn new(inner: S) -> Self {
        handle();
        Self { inner }
    }
}

fn observe<T>(op: &'static str, started: Instant, result: &Result<T, StoreError>) {
    metrics::histogram!("ward_storage_operation_duration_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!("ward_storage_errors_total", "op" => op).increment(1);
    }
}

#[async_trait]
impl<S: Storage> Storage for MeteredStorage<S> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let started = Instant::now();
        let r = self.inner.get(key).await;
        observe("get", started, &r);
        r
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let started = Instant::now();
        let r = self.inner.put(key, value).await;
        observe("put", started, &r);
        r
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let started = Instant::now();
        let r = self.inner.delete(key).await;
        observe("delete", started, &r);
        r
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let started = Instant::now();
        let r = self.inner.list(prefix).await;
        observe("list", started, &r);
        r
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let started = Instant::now();
        let r = self.inner.commit(ops).await;
        observe("commit", started, &r);
        r
    }

    async fn erase_deleted(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let r = self.inner.erase_deleted().await;
        observe("erase_deleted", started, &r);
        r
    }

    async fn export(&self) -> Result<ward_store::Export, StoreError> {
        let started = Instant::now();
        let r = self.inner.export().await;
        observe("export", started, &r);
        r
    }

    async fn replace_all(
        &self,
        steps: tokio::sync::mpsc::Receiver<ward_store::Import>,
    ) -> Result<u64, StoreError> {
        let started = Instant::now();
        let r = self.inner.replace_all(steps).await;
        observe("replace_all", started, &r);
        r
    }
}
