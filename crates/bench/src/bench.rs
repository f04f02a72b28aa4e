//! One benchmark run: start-up times, idle memory, then every selected scenario on every server
//! it applies to, all in the same run so that the figures can be compared.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::load::{self, LoadConfig, LoadResult, Watched};
use crate::process::ServerProcess;
use crate::report::{
    BinaryFigure, LoadConfigFigure, LoadFigure, Machine, Report, RssFigure, StartupFigure, median,
};
use crate::scenario::{Endpoint, Scenario};
use crate::targets::{TargetKind, initialise};

/// A pause between load runs, so that one run's tail does not land in the next.
const SETTLE: Duration = Duration::from_millis(300);

/// What to measure, decided from the command line.
pub(crate) struct Plan {
    /// The servers to start, each with its executable.
    pub(crate) targets: Vec<(TargetKind, PathBuf)>,
    /// Measure start-to-ready times.
    pub(crate) startup: bool,
    /// How many timed starts per server (after one untimed warm-up start).
    pub(crate) starts: usize,
    /// Measure idle resident memory.
    pub(crate) idle_rss: bool,
    /// How long a server idles before its memory is read.
    pub(crate) idle: Duration,
    /// The load scenarios, in order.
    pub(crate) scenarios: Vec<Scenario>,
    /// How hard to drive each server.
    pub(crate) load: LoadConfig,
    /// How many times every load row runs (each row reports its median round).
    pub(crate) rounds: usize,
    /// Notes for the report (servers skipped and why).
    pub(crate) notes: Vec<String>,
    /// Serve every server over TLS (each with a CA and certificate it makes at start).
    pub(crate) tls: bool,
}

/// One target's running servers (two for `ward-pg-ha2`), with the token the benchmark uses.
struct Running {
    kind: TargetKind,
    processes: Vec<ServerProcess>,
    token: String,
}

impl Running {
    /// The server setup calls go to (the first).
    fn first(&self) -> &ServerProcess {
        &self.processes[0]
    }
}

/// Runs the plan and returns its figures.
pub(crate) async fn run(plan: Plan) -> anyhow::Result<Report> {
    let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let workdir = tempfile::Builder::new()
        .prefix("ward-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    let mut report = Report {
        machine: Machine::detect(),
        load_config: LoadConfigFigure {
            concurrency: plan.load.concurrency,
            connections: plan.load.connections,
            warmup_s: plan.load.warmup.as_secs_f64(),
            duration_s: plan.load.duration.as_secs_f64(),
            rounds: plan.rounds,
        },
        notes: plan.notes.clone(),
        ..Report::default()
    };

    let scratch = workdir.path();
    let mut programs = plan.targets.clone();
    if plan.startup {
        report.startup =
            measure_startup(&mut programs, plan.starts, &token, scratch, plan.tls).await?;
    }
    // Kept until the servers on it have stopped (dropping it stops the cluster).
    let postgres = start_postgres(&programs).await?;
    let postgres_url = postgres.as_ref().map(|pg| pg.url("postgres"));
    let running = start_servers(&programs, &plan, &token, scratch, postgres_url.as_deref()).await?;
    for server in &running {
        report.binaries.push(BinaryFigure {
            target: server.kind,
            path: server.first().executable()?.display().to_string(),
        });
    }
    if plan.idle_rss {
        report.idle_rss = measure_idle_rss(&running, plan.idle, scratch).await?;
    }
    let database = postgres.as_ref().and_then(|pg| pg.postmaster_pid());
    report.load = run_load_rows(&running, &plan, scratch, database).await?;
    for server in running {
        for process in server.processes {
            process.stop().await;
        }
    }
    drop(postgres);
    report.conclude();
    Ok(report)
}

/// Times `starts` starts of every server, after an untimed one. The untimed start warms the
/// page cache and finds the real executable behind a wrapper script (pip's `bao` is Python
/// that execs the Go binary), whose own start-up is not the server's: `programs` is updated.
async fn measure_startup(
    programs: &mut [(TargetKind, PathBuf)],
    starts: usize,
    token: &str,
    scratch: &Path,
    tls: bool,
) -> anyhow::Result<Vec<StartupFigure>> {
    let mut figures = Vec::new();
    // A configured server is ready for the API before it is initialised and unsealed: its
    // start-up is not the figure measured here.
    for (kind, program) in programs
        .iter_mut()
        .filter(|(kind, _)| !kind.is_configured())
    {
        progress(&format!("start-up of {} ({starts} starts)", kind.name()));
        let spec = kind.launch_spec(program.clone(), token, scratch.to_path_buf(), tls, None);
        let (warm, _) = ServerProcess::launch(&spec).await?;
        *program = warm.executable()?;
        warm.stop().await;
        let spec = kind.launch_spec(program.clone(), token, scratch.to_path_buf(), tls, None);
        let mut samples_ms = Vec::with_capacity(starts);
        for _ in 0..starts {
            let (server, took) = ServerProcess::launch(&spec).await?;
            server.stop().await;
            samples_ms.push(took.as_secs_f64() * 1000.0);
        }
        figures.push(StartupFigure {
            target: *kind,
            median_ms: median(&samples_ms),
            samples_ms,
        });
    }
    Ok(figures)
}

/// Starts a PostgreSQL cluster with fsync on when a target needs one.
async fn start_postgres(
    programs: &[(TargetKind, PathBuf)],
) -> anyhow::Result<Option<ward_test_postgres::TestPostgres>> {
    if !programs.iter().any(|(kind, _)| kind.needs_postgres()) {
        return Ok(None);
    }
    progress("starting PostgreSQL (fsync on)");
    // It panics, with PostgreSQL's own words, when the cluster cannot be made or started.
    let cluster = tokio::task::spawn_blocking(ward_test_postgres::TestPostgres::start_durable)
        .await
        .context("PostgreSQL did not start (see above)")?;
    Ok(Some(cluster))
}

/// Starts every server the plan needs, initialising the configured ones, and keeps them
/// running for the rest of the run.
async fn start_servers(
    programs: &[(TargetKind, PathBuf)],
    plan: &Plan,
    token: &str,
    scratch: &Path,
    postgres_url: Option<&str>,
) -> anyhow::Result<Vec<Running>> {
    let mut running = Vec::new();
    for (kind, program) in programs {
        let needed = plan.idle_rss || plan.scenarios.iter().any(|s| s.runs_on(*kind));
        if !needed {
            continue;
        }
        let spec = kind.launch_spec(
            program.clone(),
            token,
            scratch.to_path_buf(),
            plan.tls,
            postgres_url,
        );
        let mut processes = Vec::new();
        for _ in 0..kind.servers() {
            processes.push(ServerProcess::launch(&spec).await?.0);
        }
        let token = if kind.is_configured() {
            let dials: Vec<_> = processes.iter().map(|p| p.dial().clone()).collect();
            initialise(&dials, kind.is_ward()).await.with_context(|| {
                format!(
                    "initialising {}; its last output:\n{}",
                    kind.name(),
                    processes[0].output_tail()
                )
            })?
        } else {
            token.to_owned()
        };
        running.push(Running {
            kind: *kind,
            processes,
            token,
        });
    }
    Ok(running)
}

/// Reads every server's resident memory after it has served a little (the KV read secret
/// written and read back) and idled for `idle`.
async fn measure_idle_rss(
    running: &[Running],
    idle: Duration,
    scratch: &Path,
) -> anyhow::Result<Vec<RssFigure>> {
    for server in running {
        if Scenario::KvRead.runs_on(server.kind) {
            Scenario::KvRead
                .prepare(&endpoint(server, scratch))
                .await
                .with_context(|| format!("preparing {} for the idle RSS", server.kind.name()))?;
        }
    }
    progress(&format!("idling {idle:?} before reading RSS"));
    tokio::time::sleep(idle).await;
    running
        .iter()
        .map(|server| {
            // Several servers of one target: all of them together.
            let mut bytes = 0;
            for process in &server.processes {
                bytes += process.rss_bytes()?;
            }
            Ok(RssFigure {
                target: server.kind,
                mb: bytes as f64 / 1e6,
            })
        })
        .collect()
}

/// Runs every scenario on every server it applies to, `plan.rounds` times in turn, so that a
/// burst of other work on the machine spreads over all rows instead of skewing one; each row
/// reports its median round. Within a round the trivial handler goes first and Ward's rows
/// follow it, so that the rows of each ratio run close together (ratios are taken round by
/// round, see `Report::conclude`).
async fn run_load_rows(
    running: &[Running],
    plan: &Plan,
    scratch: &Path,
    database: Option<u32>,
) -> anyhow::Result<Vec<LoadFigure>> {
    let mut rows: Vec<(Scenario, TargetKind, Vec<LoadResult>)> = Vec::new();
    for round in 1..=plan.rounds {
        for server in running {
            for scenario in plan.scenarios.iter().filter(|s| s.runs_on(server.kind)) {
                progress(&format!(
                    "{} on {} (round {round} of {})",
                    scenario.name(),
                    server.kind.name(),
                    plan.rounds
                ));
                let result = drive(*scenario, server, scratch, plan.load, database).await?;
                match rows
                    .iter_mut()
                    .find(|(s, kind, _)| s == scenario && *kind == server.kind)
                {
                    Some((_, _, results)) => results.push(result),
                    None => rows.push((*scenario, server.kind, vec![result])),
                }
                tokio::time::sleep(SETTLE).await;
            }
        }
    }
    // Report in the scenarios' order, each scenario's servers together.
    rows.sort_by_key(|(scenario, kind, _)| {
        let position = Scenario::ALL.iter().position(|s| s == scenario);
        (position, *kind)
    });
    let mut figures = Vec::new();
    for (scenario, kind, mut results) in rows {
        let rps_rounds = results.iter().map(LoadResult::rps).collect();
        results.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
        let middle = results.swap_remove(results.len() / 2);
        let mut figure = LoadFigure::new(scenario, kind, middle);
        figure.rps_rounds = rps_rounds;
        figures.push(figure);
    }
    Ok(figures)
}

/// Prepares `scenario` on `server` and drives it once.
async fn drive(
    scenario: Scenario,
    server: &Running,
    scratch: &Path,
    load: LoadConfig,
    database: Option<u32>,
) -> anyhow::Result<LoadResult> {
    let what = || format!("{} on {}", scenario.name(), server.kind.name());
    let endpoint = endpoint(server, scratch);
    let factory = scenario.prepare(&endpoint).await.with_context(|| {
        format!(
            "preparing {}; the server's last output:\n{}",
            what(),
            server.first().output_tail()
        )
    })?;
    let mut watched: Vec<Watched> = server
        .processes
        .iter()
        .map(|p| Watched::Process(p.pid()))
        .collect();
    watched.push(Watched::Process(std::process::id()));
    let database = database.filter(|_| server.kind.needs_postgres());
    watched.extend(database.map(Watched::WithChildren));
    let load = LoadConfig {
        new_connection_per_request: scenario.new_connection_per_request(),
        ..load
    };
    let dials: Vec<_> = server.processes.iter().map(|p| p.dial().clone()).collect();
    let mut result = load::run(&dials, factory, load, &watched)
        .await
        .with_context(what)?;
    // The servers' CPU together, the load generator's, then the database's (as the report
    // reads them).
    let database = database.and_then(|_| result.cpu_in_window.pop().flatten());
    let generator = result.cpu_in_window.pop().flatten();
    let servers = result
        .cpu_in_window
        .iter()
        .copied()
        .sum::<Option<Duration>>();
    result.cpu_in_window = vec![servers, generator, database];
    scenario
        .finish(&endpoint)
        .await
        .with_context(|| format!("finishing {}", what()))?;
    Ok(result)
}

fn endpoint<'a>(server: &'a Running, scratch: &'a Path) -> Endpoint<'a> {
    Endpoint {
        kind: server.kind,
        dial: server.first().dial().clone(),
        token: &server.token,
        scratch,
    }
}

/// Progress goes to stderr, so that `--json` output on stdout stays clean.
fn progress(what: &str) {
    eprintln!("ward-bench: {what}");
}
