//! The figures of one run, the targets they are checked against, and how they are printed: a
//! table for people, JSON for machines.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::LoadResult;
use crate::scenario::Scenario;
use crate::targets::TargetKind;

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    /// The machine it ran on.
    pub(crate) machine: Machine,
    /// How hard the load generator drove each server.
    pub(crate) load_config: LoadConfigFigure,
    /// The executables run.
    pub(crate) binaries: Vec<BinaryFigure>,
    /// Time from spawn to the first 200 from the health check.
    pub(crate) startup: Vec<StartupFigure>,
    /// Resident memory after start-up and a short idle.
    pub(crate) idle_rss: Vec<RssFigure>,
    /// One row per scenario and server.
    pub(crate) load: Vec<LoadFigure>,
    /// KV read rate over the trivial handler's rate, per Vault-shaped server.
    pub(crate) kv_read_over_trivial: Vec<RatioFigure>,
    /// Other ratios the issues set targets on (audited over plain KV read, transit encrypt
    /// over trivial), per Vault-shaped server.
    pub(crate) ratios: Vec<NamedRatio>,
    /// Ward's targets from the issue, met or missed.
    pub(crate) goals: Vec<GoalCheck>,
    /// What was skipped and why.
    pub(crate) notes: Vec<String>,
}

/// The machine a run was measured on.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Machine {
    /// The CPU model, from /proc/cpuinfo.
    pub(crate) cpu: String,
    /// Cores available to this process.
    pub(crate) cores: usize,
    /// Memory, from /proc/meminfo.
    pub(crate) memory_gib: f64,
    /// The 1-minute load average when the run started (other work on the machine skews it).
    pub(crate) load_average: f64,
}

impl Machine {
    /// Reads what this machine is.
    pub(crate) fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0.0);
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Self {
            load_average,
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory_gib: memory_kib / (1024.0 * 1024.0),
        }
    }
}

/// The load settings of a run.
#[derive(Debug, Default, Serialize)]
pub(crate) struct LoadConfigFigure {
    /// Requests in flight at once.
    pub(crate) concurrency: usize,
    /// Keep-alive connections.
    pub(crate) connections: usize,
    /// Warm-up per scenario, seconds.
    pub(crate) warmup_s: f64,
    /// Measured time per scenario, seconds.
    pub(crate) duration_s: f64,
    /// Rounds of every load row (each row reports its median round).
    pub(crate) rounds: usize,
}

/// The executable one server ran from.
#[derive(Debug, Serialize)]
pub(crate) struct BinaryFigure {
    /// The server.
    pub(crate) target: TargetKind,
    /// The executable actually running (behind any wrapper script).
    pub(crate) path: String,
}

/// Start-to-ready times of one server.
#[derive(Debug, Serialize)]
pub(crate) struct StartupFigure {
    /// The server.
    pub(crate) target: TargetKind,
    /// The median of the samples, milliseconds.
    pub(crate) median_ms: f64,
    /// Every sample, milliseconds.
    pub(crate) samples_ms: Vec<f64>,
}

/// Idle resident memory of one server.
#[derive(Debug, Serialize)]
pub(crate) struct RssFigure {
    /// The server.
    pub(crate) target: TargetKind,
    /// VmRSS in megabytes (10^6 bytes).
    pub(crate) mb: f64,
}

/// One scenario on one server.
#[derive(Debug, Serialize)]
pub(crate) struct LoadFigure {
    /// The scenario's name.
    pub(crate) scenario: &'static str,
    /// The server.
    pub(crate) target: TargetKind,
    /// Successful requests per second.
    pub(crate) rps: f64,
    /// Median latency of the successful requests, milliseconds.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub(crate) p99_ms: f64,
    /// Successful (2xx) responses.
    pub(crate) ok: u64,
    /// Other responses.
    pub(crate) non_2xx: u64,
    /// Requests with no response.
    pub(crate) failed: u64,
    /// CPU the server used during the window, in percent of one core.
    pub(crate) server_cpu_percent: Option<f64>,
    /// CPU the load generator (this process) used, in percent of one core.
    pub(crate) bench_cpu_percent: Option<f64>,
    /// CPU the database (PostgreSQL's postmaster and backends) used, in percent of one core.
    pub(crate) db_cpu_percent: Option<f64>,
    /// The rate of every round, in the order the rounds ran (the row's other figures are its
    /// median round's).
    pub(crate) rps_rounds: Vec<f64>,
    /// Why the first non-2xx answer was given, if any.
    pub(crate) first_non_2xx: Option<String>,
    /// Why the first failure happened, if any.
    pub(crate) first_failure: Option<String>,
}

impl LoadFigure {
    /// The row for `result`.
    pub(crate) fn new(scenario: Scenario, target: TargetKind, result: LoadResult) -> Self {
        Self {
            scenario: scenario.name(),
            target,
            rps: result.rps(),
            p50_ms: result.latency_ms(0.50),
            p99_ms: result.latency_ms(0.99),
            ok: result.ok,
            non_2xx: result.non_2xx,
            failed: result.failed,
            server_cpu_percent: percent_of_window(&result, 0),
            bench_cpu_percent: percent_of_window(&result, 1),
            db_cpu_percent: percent_of_window(&result, 2),
            rps_rounds: Vec::new(),
            first_non_2xx: result.first_non_2xx,
            first_failure: result.first_failure,
        }
    }
}

/// The CPU time of the `index`th watched process over the window, in percent of one core.
fn percent_of_window(result: &LoadResult, index: usize) -> Option<f64> {
    let cpu = (*result.cpu_in_window.get(index)?)?;
    let window = result.window.as_secs_f64();
    (window > 0.0).then(|| cpu.as_secs_f64() / window * 100.0)
}

/// KV read over trivial for one server.
#[derive(Debug, Serialize)]
pub(crate) struct RatioFigure {
    /// The server.
    pub(crate) target: TargetKind,
    /// Its KV read rate over the trivial handler's rate (see [`paired_ratio`]).
    pub(crate) ratio: f64,
    /// The ratio in each round, in the order the rounds ran.
    pub(crate) rounds: Vec<f64>,
}

/// One scenario's rate over another's, for one server.
#[derive(Debug, Serialize)]
pub(crate) struct NamedRatio {
    /// What over what ("kv-read-audited / kv-read").
    pub(crate) what: String,
    /// The server.
    pub(crate) target: TargetKind,
    /// The ratio of the rates (see [`paired_ratio`]).
    pub(crate) ratio: f64,
    /// The ratio in each round, in the order the rounds ran.
    pub(crate) rounds: Vec<f64>,
}

/// `top`'s rate over `bottom`'s, and the ratio of each round. When both rows ran the same
/// rounds, the ratio is the median of the rounds' ratios: the two rows of a round ran close
/// together, so a spell in which the host gives the machine less CPU, which moves whole rounds
/// (these are shared virtual machines), cancels out of it. Otherwise it is the ratio of the
/// median rates.
fn paired_ratio(top: &LoadFigure, bottom: &LoadFigure) -> Option<(f64, Vec<f64>)> {
    let paired = !top.rps_rounds.is_empty()
        && top.rps_rounds.len() == bottom.rps_rounds.len()
        && bottom.rps_rounds.iter().all(|rps| *rps > 0.0);
    if paired {
        let rounds: Vec<f64> = top
            .rps_rounds
            .iter()
            .zip(&bottom.rps_rounds)
            .map(|(top, bottom)| top / bottom)
            .collect();
        Some((median(&rounds), rounds))
    } else {
        (bottom.rps > 0.0).then(|| (top.rps / bottom.rps, Vec::new()))
    }
}

/// One of the targets for Ward.
#[derive(Debug, Serialize)]
pub(crate) struct GoalCheck {
    /// What the target is.
    pub(crate) goal: &'static str,
    /// What was measured, with its unit.
    pub(crate) measured: String,
    /// Whether the target is met.
    pub(crate) met: bool,
}

impl Report {
    fn row(&self, scenario: Scenario, target: TargetKind) -> Option<&LoadFigure> {
        self.load
            .iter()
            .find(|row| row.scenario == scenario.name() && row.target == target)
    }

    fn rps(&self, scenario: Scenario, target: TargetKind) -> Option<f64> {
        self.row(scenario, target).map(|row| row.rps)
    }

    /// Computes the ratios and checks Ward's targets from the figures gathered.
    pub(crate) fn conclude(&mut self) {
        // (numerator, denominator, the denominator's server when it is not the numerator's)
        let trivial = Some(TargetKind::Trivial);
        let pairs = [
            (Scenario::KvRead, Scenario::TrivialGet, trivial),
            (Scenario::KvReadAudited, Scenario::KvRead, None),
            (Scenario::TransitEncrypt, Scenario::TrivialGet, trivial),
            (Scenario::TransitDecrypt, Scenario::TrivialGet, trivial),
        ];
        let mut kv_read_over_trivial = Vec::new();
        let mut ratios = Vec::new();
        for (top, bottom, bottom_target) in pairs {
            for target in TargetKind::ALL.into_iter().filter(|k| k.is_vault_shaped()) {
                let bottom_row = self.row(bottom, bottom_target.unwrap_or(target));
                let Some((ratio, rounds)) = self
                    .row(top, target)
                    .zip(bottom_row)
                    .and_then(|(top, bottom)| paired_ratio(top, bottom))
                else {
                    continue;
                };
                if top == Scenario::KvRead {
                    kv_read_over_trivial.push(RatioFigure {
                        target,
                        ratio,
                        rounds,
                    });
                } else {
                    ratios.push(NamedRatio {
                        what: format!("{} / {}", top.name(), bottom.name()),
                        target,
                        ratio,
                        rounds,
                    });
                }
            }
        }
        self.kv_read_over_trivial = kv_read_over_trivial;
        self.ratios = ratios;
        let ward = TargetKind::Ward;
        if let Some(ratio) = self.kv_read_over_trivial.iter().find(|r| r.target == ward) {
            self.goals.push(GoalCheck {
                goal: "KV read >= 60% of the trivial handler's rate",
                measured: format!("{:.0}%", ratio.ratio * 100.0),
                met: ratio.ratio >= 0.60,
            });
        }
        if let Some(rps) = self.rps(Scenario::KvWrite, ward) {
            self.goals.push(GoalCheck {
                goal: "durable KV write >= 2,000/s",
                measured: format!("{rps:.0}/s"),
                met: rps >= 2000.0,
            });
        }
        let named = |what: &str| {
            self.ratios
                .iter()
                .find(|r| r.target == ward && r.what == what)
                .map(|r| r.ratio)
        };
        if let Some(ratio) = named("kv-read-audited / kv-read") {
            self.goals.push(GoalCheck {
                goal: "KV read, file audit on >= 70% of audit off",
                measured: format!("{:.0}%", ratio * 100.0),
                met: ratio >= 0.70,
            });
        }
        if let Some(ratio) = named("transit-encrypt / trivial") {
            self.goals.push(GoalCheck {
                goal: "transit encrypt 1 KiB >= 50% of trivial",
                measured: format!("{:.0}%", ratio * 100.0),
                met: ratio >= 0.50,
            });
        }
        if let Some(rss) = self.idle_rss.iter().find(|r| r.target == ward) {
            self.goals.push(GoalCheck {
                goal: "idle RSS <= 25 MB",
                measured: format!("{:.1} MB", rss.mb),
                met: rss.mb <= 25.0,
            });
        }
        if let Some(start) = self.startup.iter().find(|s| s.target == ward) {
            self.goals.push(GoalCheck {
                goal: "start-to-unsealed < 200 ms",
                measured: format!("{:.1} ms", start.median_ms),
                met: start.median_ms < 200.0,
            });
        }
        // Issue 26's targets for Ward over PostgreSQL, one server and two sharing the load.
        for (target, read_goal, write_goal) in [
            (
                TargetKind::WardPg,
                "ward-pg: KV read >= 40% of trivial",
                "ward-pg: durable KV write >= 2,000/s",
            ),
            (
                TargetKind::WardPgHa2,
                "ward-pg-ha2: KV read >= 40% of trivial",
                "ward-pg-ha2: durable KV write >= 2,000/s",
            ),
        ] {
            if let Some(ratio) = self
                .kv_read_over_trivial
                .iter()
                .find(|r| r.target == target)
            {
                self.goals.push(GoalCheck {
                    goal: read_goal,
                    measured: format!("{:.0}%", ratio.ratio * 100.0),
                    met: ratio.ratio >= 0.40,
                });
            }
            if let Some(rps) = self.rps(Scenario::KvWrite, target) {
                self.goals.push(GoalCheck {
                    goal: write_goal,
                    measured: format!("{rps:.0}/s"),
                    met: rps >= 2000.0,
                });
            }
        }
    }

    /// The report as a table for people.
    pub(crate) fn to_table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let c = &self.load_config;
        let _ = writeln!(
            out,
            "Machine: {}, {} cores, {:.1} GiB, load average {:.2} at the start.\nLoad: {} in \
             flight over {} keep-alive connections, {:.1} s warm-up + {:.1} s measured per \
             row, median of {} round(s).",
            m.cpu,
            m.cores,
            m.memory_gib,
            m.load_average,
            c.concurrency,
            c.connections,
            c.warmup_s,
            c.duration_s,
            c.rounds
        );
        for binary in &self.binaries {
            let _ = writeln!(out, "  {:<12} {}", binary.target.name(), binary.path);
        }
        if !self.load.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<21} {:<12} {:>10} {:>8} {:>8} {:>9} {:>8} {:>7} {:>8} {:>8} {:>7}  {}",
                "scenario",
                "server",
                "req/s",
                "p50 ms",
                "p99 ms",
                "ok",
                "non-2xx",
                "failed",
                "srv CPU",
                "gen CPU",
                "db CPU",
                if c.rounds > 1 {
                    "req/s of each round"
                } else {
                    ""
                }
            );
            for row in &self.load {
                let _ = writeln!(
                    out,
                    "{:<21} {:<12} {:>10.0} {:>8.3} {:>8.3} {:>9} {:>8} {:>7} {:>8} {:>8} {:>7}  {}",
                    row.scenario,
                    row.target.name(),
                    row.rps,
                    row.p50_ms,
                    row.p99_ms,
                    row.ok,
                    row.non_2xx,
                    row.failed,
                    cpu_cell(row.server_cpu_percent),
                    cpu_cell(row.bench_cpu_percent),
                    cpu_cell(row.db_cpu_percent),
                    if row.rps_rounds.len() > 1 {
                        let rates: Vec<_> = row
                            .rps_rounds
                            .iter()
                            .map(|rps| format!("{rps:.0}"))
                            .collect();
                        rates.join(" ")
                    } else {
                        String::new()
                    }
                );
            }
            let _ = writeln!(
                out,
                "(srv CPU, gen CPU, db CPU: CPU time the server(s), this load generator and \
                 PostgreSQL used during the measured window, in % of one core)"
            );
            for row in &self.load {
                if let Some(why) = &row.first_non_2xx {
                    let _ = writeln!(
                        out,
                        "  {} {}: first non-2xx: {why}",
                        row.scenario,
                        row.target.name()
                    );
                }
                if let Some(why) = &row.first_failure {
                    let _ = writeln!(
                        out,
                        "  {} {}: first failure: {why}",
                        row.scenario,
                        row.target.name()
                    );
                }
            }
        }
        if !self.kv_read_over_trivial.is_empty() {
            let _ = write!(out, "\nKV read / trivial:");
            for ratio in &self.kv_read_over_trivial {
                let _ = write!(
                    out,
                    "  {} {:.3}{}",
                    ratio.target.name(),
                    ratio.ratio,
                    rounds_cell(&ratio.rounds)
                );
            }
            let _ = writeln!(out);
        }
        for ratio in &self.ratios {
            let _ = writeln!(
                out,
                "{}: {} {:.3}{}",
                ratio.what,
                ratio.target.name(),
                ratio.ratio,
                rounds_cell(&ratio.rounds)
            );
        }
        if self.kv_read_over_trivial.iter().any(|r| r.rounds.len() > 1) {
            let _ = writeln!(
                out,
                "(a ratio is the median of its rounds' ratios; the rows of a round ran close \
                 together)"
            );
        }
        if !self.startup.is_empty() {
            let samples = self.startup.first().map_or(0, |s| s.samples_ms.len());
            let _ = write!(out, "Start-to-ready, median of {samples}:");
            for start in &self.startup {
                let _ = write!(out, "  {} {:.1} ms", start.target.name(), start.median_ms);
            }
            let _ = writeln!(out);
        }
        if !self.idle_rss.is_empty() {
            let _ = write!(out, "Idle RSS:");
            for rss in &self.idle_rss {
                let _ = write!(out, "  {} {:.1} MB", rss.target.name(), rss.mb);
            }
            let _ = writeln!(out);
        }
        if !self.goals.is_empty() {
            let _ = writeln!(out, "\nWard's targets:");
            for goal in &self.goals {
                let verdict = if goal.met { "met" } else { "MISSED" };
                let _ = writeln!(out, "  {:<46} {:>10}  {verdict}", goal.goal, goal.measured);
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "Note: {note}");
        }
        // Columns left empty leave trailing blanks.
        out.lines()
            .map(|line| line.trim_end().to_owned() + "\n")
            .collect()
    }
}

/// Each round's ratio, in brackets after the ratio ("" for a single round).
fn rounds_cell(rounds: &[f64]) -> String {
    if rounds.len() < 2 {
        return String::new();
    }
    let each: Vec<_> = rounds.iter().map(|r| format!("{r:.3}")).collect();
    format!(" (rounds: {})", each.join(" "))
}

/// A CPU percentage for the table ("-" when unknown).
fn cpu_cell(percent: Option<f64>) -> String {
    percent.map_or_else(|| "-".to_owned(), |p| format!("{p:.0}%"))
}

/// The median of `samples` (the mean of the middle two for an even count).
pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: Scenario, target: TargetKind, rps: f64) -> LoadFigure {
        LoadFigure {
            scenario: scenario.name(),
            target,
            rps,
            p50_ms: 0.5,
            p99_ms: 2.0,
            ok: 100,
            non_2xx: 0,
            failed: 0,
            server_cpu_percent: Some(150.0),
            bench_cpu_percent: Some(40.0),
            db_cpu_percent: None,
            rps_rounds: vec![rps],
            first_non_2xx: None,
            first_failure: None,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn conclude_computes_ratios_and_checks_wards_goals() {
        let mut report = Report {
            load: vec![
                row(Scenario::TrivialGet, TargetKind::Trivial, 10_000.0),
                row(Scenario::KvRead, TargetKind::Ward, 7_000.0),
                row(Scenario::KvRead, TargetKind::OpenBao, 1_000.0),
                row(Scenario::KvWrite, TargetKind::Ward, 1_500.0),
                row(Scenario::KvReadAudited, TargetKind::Ward, 6_300.0),
                row(Scenario::TransitEncrypt, TargetKind::Ward, 4_000.0),
            ],
            idle_rss: vec![RssFigure {
                target: TargetKind::Ward,
                mb: 20.0,
            }],
            startup: vec![StartupFigure {
                target: TargetKind::Ward,
                median_ms: 250.0,
                samples_ms: vec![250.0],
            }],
            ..Report::default()
        };
        report.conclude();
        let ratios: Vec<_> = report
            .kv_read_over_trivial
            .iter()
            .map(|r| (r.target, r.ratio))
            .collect();
        assert_eq!(
            ratios,
            [(TargetKind::Ward, 0.7), (TargetKind::OpenBao, 0.1)]
        );
        let named: Vec<_> = report
            .ratios
            .iter()
            .map(|r| (r.what.as_str(), r.target, r.ratio))
            .collect();
        assert_eq!(
            named,
            [
                ("kv-read-audited / kv-read", TargetKind::Ward, 0.9),
                ("transit-encrypt / trivial", TargetKind::Ward, 0.4),
            ]
        );
        let verdicts: Vec<_> = report.goals.iter().map(|g| (g.goal, g.met)).collect();
        assert_eq!(
            verdicts,
            [
                ("KV read >= 60% of the trivial handler's rate", true),
                ("durable KV write >= 2,000/s", false),
                ("KV read, file audit on >= 70% of audit off", true),
                ("transit encrypt 1 KiB >= 50% of trivial", false),
                ("idle RSS <= 25 MB", true),
                ("start-to-unsealed < 200 ms", false),
            ]
        );
        let table = report.to_table();
        assert!(table.contains("MISSED"), "{table}");
        assert!(table.contains("kv-write"), "{table}");
    }

    #[test]
    fn ratios_are_taken_round_by_round() {
        let rounds = |scenario, target, rates: &[f64]| LoadFigure {
            rps_rounds: rates.to_vec(),
            ..row(scenario, target, median(rates))
        };
        // The host slowed down in round 2 and again for the KV read of round 3. Round by round
        // the ratio is 0.5, 0.5 and 0.25; the ratio of the medians would be 1,000 / 4,000.
        let mut report = Report {
            load: vec![
                rounds(
                    Scenario::TrivialGet,
                    TargetKind::Trivial,
                    &[4_000.0, 2_000.0, 4_000.0],
                ),
                rounds(
                    Scenario::KvRead,
                    TargetKind::Ward,
                    &[2_000.0, 1_000.0, 1_000.0],
                ),
                rounds(
                    Scenario::TransitEncrypt,
                    TargetKind::Ward,
                    &[2_000.0, 1_000.0, 2_000.0],
                ),
            ],
            ..Report::default()
        };
        report.conclude();
        let read = &report.kv_read_over_trivial[0];
        assert_eq!(read.rounds, [0.5, 0.5, 0.25]);
        assert_eq!(read.ratio, 0.5);
        let transit = &report.ratios[0];
        assert_eq!(transit.what, "transit-encrypt / trivial");
        assert_eq!((transit.ratio, transit.rounds.len()), (0.5, 3));
        let table = report.to_table();
        assert!(
            table.contains("ward 0.500 (rounds: 0.500 0.500 0.250)"),
            "{table}"
        );

        // Rows with different rounds fall back to the ratio of the medians.
        report.load[1].rps_rounds = vec![1_000.0];
        report.conclude();
        assert_eq!(report.kv_read_over_trivial[0].ratio, 0.25);
        assert!(report.kv_read_over_trivial[0].rounds.is_empty());
    }
}
