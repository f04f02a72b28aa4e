//! The load generator: a fixed number of workers, each looping request → response over a
//! persistent keep-alive connection for a fixed time, latencies in an HDR histogram.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

use crate::http::{Connection, Dial, RequestFactory};
use crate::process::{cpu_time, cpu_time_with_children};

/// Latencies are recorded in microseconds, from 1 µs to a minute, to 3 significant digits.
const HIGHEST_LATENCY_US: u64 = 60_000_000;

/// A request that takes longer than this counts as failed and its connection is dropped, so
/// that a hung server cannot keep the benchmark running past its duration.
const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(10);

/// After a failed connect, a worker waits this long before trying again (no busy loop).
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// A process whose CPU time a load run measures.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Watched {
    /// The process alone.
    Process(u32),
    /// The process and its children (PostgreSQL's postmaster and its backends).
    WithChildren(u32),
}

impl Watched {
    /// The CPU time used so far, by process id (None: it could not be read).
    fn cpu_times(&self) -> Option<HashMap<u32, Duration>> {
        match *self {
            Self::Process(pid) => Some(HashMap::from([(pid, cpu_time(pid)?)])),
            Self::WithChildren(pid) => Some(cpu_time_with_children(pid)),
        }
    }
}

/// The CPU time used between two readings, a process that appeared between them counted from
/// its start.
fn cpu_used(
    before: &Option<HashMap<u32, Duration>>,
    after: &Option<HashMap<u32, Duration>>,
) -> Option<Duration> {
    let (before, after) = (before.as_ref()?, after.as_ref()?);
    Some(
        after
            .iter()
            .map(|(pid, cpu)| cpu.saturating_sub(before.get(pid).copied().unwrap_or_default()))
            .sum(),
    )
}

/// How hard and how long to drive one server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadConfig {
    /// Requests in flight at once (one per worker).
    pub(crate) concurrency: usize,
    /// Keep-alive connections shared by the workers (at most `concurrency`).
    pub(crate) connections: usize,
    /// Time driven before measuring starts (connections opened, caches warm).
    pub(crate) warmup: Duration,
    /// Time measured.
    pub(crate) duration: Duration,
    /// Open a new connection for every request and close it after the response (the
    /// connection's set-up, TLS handshake included, is then part of each latency).
    pub(crate) new_connection_per_request: bool,
}

/// What one load run measured.
pub(crate) struct LoadResult {
    /// Successful (2xx) responses within the measured window.
    pub(crate) ok: u64,
    /// Responses with any other status within the window.
    pub(crate) non_2xx: u64,
    /// Requests that got no response (connection or protocol errors, time-outs).
    pub(crate) failed: u64,
    /// The measured window.
    pub(crate) window: Duration,
    /// Latencies of the successful requests, in microseconds.
    pub(crate) latency_us: Histogram<u64>,
    /// The first non-2xx status and the start of its body, to tell why.
    pub(crate) first_non_2xx: Option<String>,
    /// The first failure, to tell why.
    pub(crate) first_failure: Option<String>,
    /// CPU time each watched process used during the measured window (None when it could not
    /// be read), in the order the processes were given.
    pub(crate) cpu_in_window: Vec<Option<Duration>>,
}

impl LoadResult {
    /// Successful requests per second.
    pub(crate) fn rps(&self) -> f64 {
        let seconds = self.window.as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }

    /// The latency at `quantile` (0..=1) of the successful requests, in milliseconds.
    pub(crate) fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, HIGHEST_LATENCY_US, 3).context("creating a latency histogram")
}

/// Drives the servers `dials` reach with requests from `factory` as `config` says, and measures
/// the CPU time the processes `watched` use during the measured window. The connections are
/// spread round-robin over the servers (several servers of one cluster share the load), each
/// connection staying with its server.
pub(crate) async fn run(
    dials: &[Dial],
    factory: RequestFactory,
    config: LoadConfig,
    watched: &[Watched],
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(config.concurrency >= 1, "concurrency must be at least 1");
    anyhow::ensure!(
        (1..=config.concurrency).contains(&config.connections),
        "connections must be between 1 and the concurrency ({})",
        config.concurrency
    );
    anyhow::ensure!(!dials.is_empty(), "no server to drive");
    // Connections are opened before the clock starts, so that the warm-up is spent on requests.
    let mut slots = Vec::with_capacity(config.connections);
    for index in 0..config.connections {
        let dial = &dials[index % dials.len()];
        let connection = Connection::open(dial).await?;
        slots.push((dial, Arc::new(Mutex::new(Some(connection)))));
    }
    let measure_from = Instant::now() + config.warmup;
    let window = Window {
        measure_from,
        deadline: measure_from + config.duration,
    };
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..config.concurrency {
        let (dial, slot) = &slots[worker % slots.len()];
        let slot = Arc::clone(slot);
        let factory = Arc::clone(&factory);
        let fresh = config.new_connection_per_request;
        workers.spawn(drive((*dial).clone(), fresh, worker, slot, factory, window));
    }
    tokio::time::sleep_until(window.measure_from.into()).await;
    let cpu_before: Vec<_> = watched.iter().map(Watched::cpu_times).collect();
    tokio::time::sleep_until(window.deadline.into()).await;
    let cpu_in_window = watched
        .iter()
        .zip(cpu_before)
        .map(|(watched, before)| cpu_used(&before, &watched.cpu_times()))
        .collect();
    let mut total = WorkerTally::new()?;
    while let Some(joined) = workers.join_next().await {
        total.merge(joined.context("a load worker panicked")??)?;
    }
    Ok(LoadResult {
        ok: total.ok,
        non_2xx: total.non_2xx,
        failed: total.failed,
        window: config.duration,
        latency_us: total.latency_us,
        first_non_2xx: total.first_non_2xx,
        first_failure: total.first_failure,
        cpu_in_window,
    })
}

#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    deadline: Instant,
}

impl Window {
    /// Only requests that start and end inside the window count.
    fn contains(&self, started: Instant, ended: Instant) -> bool {
        started >= self.measure_from && ended <= self.deadline
    }
}

struct WorkerTally {
    ok: u64,
    non_2xx: u64,
    failed: u64,
    latency_us: Histogram<u64>,
    first_non_2xx: Option<String>,
    first_failure: Option<String>,
}

impl WorkerTally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            ok: 0,
            non_2xx: 0,
            failed: 0,
            latency_us: new_histogram()?,
            first_non_2xx: None,
            first_failure: None,
        })
    }

    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.first_failure.get_or_insert(why);
    }

    fn merge(&mut self, other: Self) -> anyhow::Result<()> {
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.failed += other.failed;
        self.latency_us
            .add(&other.latency_us)
            .context("merging latency histograms")?;
        if self.first_non_2xx.is_none() {
            self.first_non_2xx = other.first_non_2xx;
        }
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
        Ok(())
    }
}

async fn drive(
    dial: Dial,
    new_connection_per_request: bool,
    worker: usize,
    slot: Arc<Mutex<Option<Connection>>>,
    factory: RequestFactory,
    window: Window,
) -> anyhow::Result<WorkerTally> {
    let mut tally = WorkerTally::new()?;
    let mut sequence = 0_u64;
    while Instant::now() < window.deadline {
        let request = factory(worker, sequence).context("building a request")?;
        sequence += 1;
        let mut connection = slot.lock().await;
        let opening = Instant::now();
        if connection.is_none() {
            match Connection::open(&dial).await {
                Ok(opened) => *connection = Some(opened),
                Err(error) => {
                    drop(connection);
                    if Instant::now() >= window.measure_from {
                        tally.fail(format!("{error:#}"));
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        let started = if new_connection_per_request {
            opening
        } else {
            Instant::now()
        };
        let outcome = tokio::time::timeout(REQUEST_TIME_LIMIT, open.send(request)).await;
        let ended = Instant::now();
        if new_connection_per_request {
            *connection = None;
        }
        let counted = window.contains(started, ended);
        match outcome {
            Ok(Ok((status, _body))) if status.is_success() => {
                if counted {
                    tally.ok += 1;
                    let micros = u64::try_from(ended.duration_since(started).as_micros())
                        .unwrap_or(u64::MAX);
                    tally.latency_us.saturating_record(micros.max(1));
                }
            }
            Ok(Ok((status, body))) => {
                if counted {
                    tally.non_2xx += 1;
                    tally.first_non_2xx.get_or_insert_with(|| {
                        let text = String::from_utf8_lossy(&body);
                        format!("{status}: {}", text.chars().take(200).collect::<String>())
                    });
                }
            }
            Ok(Err(error)) => {
                *connection = None;
                if counted {
                    tally.fail(error.to_string());
                }
            }
            Err(_elapsed) => {
                *connection = None;
                if counted {
                    tally.fail(format!("no response within {REQUEST_TIME_LIMIT:?}"));
                }
            }
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestTemplate;
    use std::net::SocketAddr;

    async fn trivial_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, crate::trivial::router()).await });
        addr
    }

    fn config(concurrency: usize, connections: usize) -> LoadConfig {
        LoadConfig {
            concurrency,
            connections,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(300),
            new_connection_per_request: false,
        }
    }

    #[tokio::test]
    async fn counts_successes_with_latencies_over_shared_connections() {
        let addr = trivial_server().await;
        let template = RequestTemplate::new(addr, None).unwrap();
        let factory: RequestFactory = Arc::new(move |_, _| template.get("/"));
        let result = run(
            &[Dial::plain(addr)],
            factory,
            config(4, 2),
            &[Watched::Process(std::process::id())],
        )
        .await
        .unwrap();
        assert!(result.cpu_in_window[0].unwrap() > Duration::ZERO);
        assert!(result.ok > 10, "only {} successes", result.ok);
        assert_eq!((result.non_2xx, result.failed), (0, 0));
        assert_eq!(result.latency_us.len(), result.ok);
        assert!(result.latency_ms(0.5) > 0.0);
        assert!(result.latency_ms(0.99) >= result.latency_ms(0.5));
        assert!((result.rps() - result.ok as f64 / 0.3).abs() < 1e-6);
    }

    #[tokio::test]
    async fn counts_non_2xx_apart_and_says_why() {
        let addr = trivial_server().await;
        let template = RequestTemplate::new(addr, None).unwrap();
        let factory: RequestFactory = Arc::new(move |_, _| template.get("/missing"));
        let result = run(&[Dial::plain(addr)], factory, config(2, 2), &[])
            .await
            .unwrap();
        assert_eq!(result.ok, 0);
        assert!(result.non_2xx > 0);
        assert!(result.first_non_2xx.unwrap().starts_with("404"));
    }

    /// A server answering GET / and counting the requests it answered.
    async fn counting_server() -> (SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
        use std::sync::atomic::{AtomicU64, Ordering};
        let count = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&count);
        let router = axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                async { "ok" }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (addr, count)
    }

    #[tokio::test]
    async fn spreads_the_connections_over_several_servers() {
        use std::sync::atomic::Ordering;
        let (first, first_count) = counting_server().await;
        let (second, second_count) = counting_server().await;
        let template = RequestTemplate::new(first, None).unwrap();
        let factory: RequestFactory = Arc::new(move |_, _| template.get("/"));
        let dials = [Dial::plain(first), Dial::plain(second)];
        let result = run(&dials, factory, config(4, 4), &[]).await.unwrap();
        assert_eq!((result.non_2xx, result.failed), (0, 0));
        let (first, second) = (
            first_count.load(Ordering::Relaxed),
            second_count.load(Ordering::Relaxed),
        );
        // Two connections each, driven alike: neither server gets much more than the other.
        assert!(first > 10 && second > 10, "{first} and {second}");
        assert!(
            first < 3 * second && second < 3 * first,
            "{first} and {second}"
        );
    }

    #[tokio::test]
    async fn refuses_more_connections_than_requests_in_flight() {
        let addr = trivial_server().await;
        let template = RequestTemplate::new(addr, None).unwrap();
        let factory: RequestFactory = Arc::new(move |_, _| template.get("/"));
        assert!(
            run(&[Dial::plain(addr)], factory, config(2, 3), &[])
                .await
                .is_err()
        );
    }
}
