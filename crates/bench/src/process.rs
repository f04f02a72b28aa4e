//! Server processes under test: spawn, wait until they answer their health check (the
//! start-to-unsealed time), read their resident memory, and kill them when dropped, also when
//! the benchmark fails or is interrupted.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::http::{Dial, RequestTemplate, send_once};
use crate::trivial::ADDRESS_PREFIX;

/// How often the health check is polled while a server starts.
const HEALTH_POLL: Duration = Duration::from_millis(2);

/// A server that has not answered its health check by then has failed to start.
const START_TIME_LIMIT: Duration = Duration::from_secs(30);

/// How many times a killed server is polled (every HEALTH_POLL) for its exit before it is
/// left to the init process.
const REAP_POLLS: usize = 500;

/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How many of the last output lines are kept, to show when a server fails.
const KEPT_OUTPUT_LINES: usize = 40;

/// How a server is told where to listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listen {
    /// It is given 127.0.0.1:0 and prints the bound address as `Api Address: http://…`.
    ReportsBoundAddress,
    /// It needs a fixed port (OpenBao prints `:0` when given port 0): the benchmark picks a
    /// free one.
    FixedPort,
}

/// Everything needed to start one server.
pub(crate) struct LaunchSpec {
    /// A short name for messages.
    pub(crate) label: &'static str,
    /// The executable.
    pub(crate) program: PathBuf,
    /// The arguments, given the listen address.
    pub(crate) args: Box<dyn Fn(SocketAddr) -> Vec<String> + Send + Sync>,
    /// How the listen address is chosen.
    pub(crate) listen: Listen,
    /// The path that answers 200 once the server is ready (unsealed, for Vault-shaped servers).
    pub(crate) health_path: &'static str,
    /// The working directory (a scratch directory, so that nothing lands in the repository).
    pub(crate) workdir: PathBuf,
    /// Over TLS: the CA certificate file the server writes at start, to trust.
    pub(crate) ca_file: Option<PathBuf>,
    /// The config file to write before the server starts, once its address is chosen.
    pub(crate) config: Option<ConfigFile>,
}

/// A config file's text, given the server's listen address.
pub(crate) type ConfigText = Box<dyn Fn(SocketAddr) -> anyhow::Result<String> + Send + Sync>;

/// A config file a server is started with.
pub(crate) struct ConfigFile {
    /// Where it is written.
    pub(crate) path: PathBuf,
    /// What it holds.
    pub(crate) text: ConfigText,
}

/// A running server. Dropping it kills the process.
pub(crate) struct ServerProcess {
    child: Child,
    pid: u32,
    dial: Dial,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl ServerProcess {
    /// Starts the server and waits until its health check answers 200; returns it with the
    /// time from spawn to that answer.
    pub(crate) async fn launch(spec: &LaunchSpec) -> anyhow::Result<(Self, Duration)> {
        let listen = match spec.listen {
            Listen::ReportsBoundAddress => SocketAddr::from(([127, 0, 0, 1], 0)),
            Listen::FixedPort => free_loopback_port()?,
        };
        if let Some(config) = &spec.config {
            let text = (config.text)(listen)?;
            std::fs::write(&config.path, text)
                .with_context(|| format!("writing {}", config.path.display()))?;
        }
        let mut command = Command::new(&spec.program);
        command
            .args((spec.args)(listen))
            .current_dir(&spec.workdir)
            // Ward's dev server keeps its database in a temporary directory: inside the
            // benchmark's scratch directory it is removed even when a server is killed.
            .env("TMPDIR", &spec.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} ({})", spec.label, spec.program.display()))?;
        let pid = child
            .id()
            .with_context(|| format!("{} exited at once", spec.label))?;
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let reported = Arc::new(Mutex::new(None));
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(keep_output(
                stdout,
                Arc::clone(&output),
                Arc::clone(&reported),
            ));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(keep_output(
                stderr,
                Arc::clone(&output),
                Arc::clone(&reported),
            ));
        }
        let mut server = Self {
            child,
            pid,
            dial: Dial::plain(listen),
            output,
        };
        let fixed = (spec.listen == Listen::FixedPort).then_some(listen);
        server
            .wait_until_healthy(spec, fixed, &reported, started)
            .await?;
        Ok((server, started.elapsed()))
    }

    async fn wait_until_healthy(
        &mut self,
        spec: &LaunchSpec,
        fixed: Option<SocketAddr>,
        reported: &Mutex<Option<SocketAddr>>,
        started: Instant,
    ) -> anyhow::Result<()> {
        let mut addr = fixed;
        let mut last_status = None;
        loop {
            if let Some(status) = self.child.try_wait()? {
                // Let the output readers catch the last lines, which usually tell why.
                tokio::time::sleep(Duration::from_millis(100)).await;
                bail!(
                    "{} exited ({status}) before it was ready; its last output:\n{}",
                    spec.label,
                    self.output_tail()
                );
            }
            if started.elapsed() > START_TIME_LIMIT {
                bail!(
                    "{} was not ready within {START_TIME_LIMIT:?} (address {addr:?}, last health \
                     status {last_status:?}); its last output:\n{}",
                    spec.label,
                    self.output_tail()
                );
            }
            if addr.is_none() {
                addr = *lock(reported);
            }
            if let Some(addr) = addr {
                self.dial = match &spec.ca_file {
                    None => Dial::plain(addr),
                    // The server writes its CA before it listens; until then (or while the
                    // file is half written, or left from an earlier start), keep polling.
                    Some(ca) => match Dial::tls(addr, ca) {
                        Ok(dial) => dial,
                        Err(_) => {
                            tokio::time::sleep(HEALTH_POLL).await;
                            continue;
                        }
                    },
                };
                let probe = RequestTemplate::new(addr, None)?.get(spec.health_path)?;
                let answer = send_once(&self.dial, probe, Duration::from_secs(1)).await;
                if let Ok((status, _)) = answer {
                    if status.is_success() {
                        return Ok(());
                    }
                    last_status = Some(status);
                }
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// How to reach the server.
    pub(crate) fn dial(&self) -> &Dial {
        &self.dial
    }

    /// The executable actually running, which differs from the one started when that was a
    /// wrapper that exec'd the real binary (a pyenv shim, pip's `bao` script).
    pub(crate) fn executable(&self) -> anyhow::Result<PathBuf> {
        std::fs::read_link(format!("/proc/{}/exe", self.pid))
            .with_context(|| format!("reading /proc/{}/exe", self.pid))
    }

    /// The resident set size now, in bytes.
    pub(crate) fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("reading /proc/{}/status", self.pid))?;
        parse_vm_rss(&status).context("no VmRSS line in /proc/PID/status")
    }

    /// The last lines the server printed.
    pub(crate) fn output_tail(&self) -> String {
        lock(&self.output)
            .iter()
            .map(|line| format!("  | {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Asks the server to stop (SIGTERM, so that it cleans up as on a normal shutdown), kills
    /// it if it has not exited within STOP_GRACE, and waits for it.
    pub(crate) async fn stop(mut self) {
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid
            && rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
            && tokio::time::timeout(STOP_GRACE, self.child.wait())
                .await
                .is_ok()
        {
            return;
        }
        // It may have exited already; either way it is gone afterwards.
        let _killed = self.child.kill().await;
    }
}

impl Drop for ServerProcess {
    /// Kills the server and reaps it, also when the benchmark fails or is interrupted, so that
    /// neither a running server nor a zombie outlives the benchmark.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _signalled = self.child.start_kill();
        for _ in 0..REAP_POLLS {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(HEALTH_POLL);
        }
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked (lines, an address).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads a server's output to the end (a full pipe would stall it), keeping the last lines
/// and noting the address it reports.
async fn keep_output(
    stream: impl AsyncRead + Unpin,
    output: Arc<Mutex<VecDeque<String>>>,
    reported: Arc<Mutex<Option<SocketAddr>>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(addr) = parse_api_address(&line) {
            *lock(&reported) = Some(addr);
        }
        let mut kept = lock(&output);
        if kept.len() == KEPT_OUTPUT_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}

/// Reads `Api Address: http://127.0.0.1:PORT` or `https://…` (leading spaces allowed); port 0 means the
/// server did not say which port it got.
fn parse_api_address(line: &str) -> Option<SocketAddr> {
    let rest = line.trim_start().strip_prefix(ADDRESS_PREFIX)?.trim();
    let authority = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))?
        .trim_end_matches('/');
    let addr: SocketAddr = authority.parse().ok()?;
    (addr.port() != 0).then_some(addr)
}

/// The CPU time (user + system, all threads) process `pid` has used so far.
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_cpu_ticks(&stat)?;
    let per_second = rustix::param::clock_ticks_per_second();
    (per_second > 0).then(|| Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// The CPU time used so far by process `pid` and by each of its children (PostgreSQL's
/// postmaster and its backends), by process id.
pub(crate) fn cpu_time_with_children(pid: u32) -> HashMap<u32, Duration> {
    let mut times = HashMap::new();
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    for entry in entries {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if (child == pid || parse_parent(&stat) == Some(pid))
            && let Some(cpu) = cpu_time(child)
        {
            times.insert(child, cpu);
        }
    }
    times
}

/// Reads the parent's process id (field 4) from /proc/PID/stat.
fn parse_parent(stat: &str) -> Option<u32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// Reads utime + stime (fields 14 and 15, in clock ticks) from /proc/PID/stat. The command
/// name (field 2) is in parentheses and may hold spaces, so fields are counted after its `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Reads the VmRSS line of /proc/PID/status (in kB) as bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// A loopback port that was free a moment ago (bound, then released).
pub(crate) fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Finds `name` on PATH, as a shell would.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is an executable file.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_api_address_lines() {
        assert_eq!(
            parse_api_address("             Api Address: http://127.0.0.1:8200"),
            Some("127.0.0.1:8200".parse().unwrap())
        );
        assert_eq!(
            parse_api_address("Api Address: http://127.0.0.1:41000/"),
            Some("127.0.0.1:41000".parse().unwrap())
        );
        assert_eq!(parse_api_address("Api Address: http://127.0.0.1:0"), None);
        assert_eq!(
            parse_api_address("Cluster Address: https://127.0.0.1:1"),
            None
        );
        assert_eq!(parse_api_address("Root Token: x"), None);
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tward\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "4242 (my server) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert_eq!(parse_parent(stat), Some(1));
        let own = std::process::id();
        assert!(cpu_time_with_children(own).contains_key(&own));
        let own = cpu_time(std::process::id()).unwrap();
        let busy_until = std::time::Instant::now() + Duration::from_millis(60);
        while std::time::Instant::now() < busy_until {}
        assert!(cpu_time(std::process::id()).unwrap() > own);
    }

    #[test]
    fn finds_programs_on_path() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("surely-no-such-program-here").is_none());
    }

    #[tokio::test]
    async fn launch_reports_a_server_that_exits_early_with_its_output() {
        let workdir = tempfile::tempdir().unwrap();
        let spec = LaunchSpec {
            label: "sh",
            program: PathBuf::from("sh"),
            args: Box::new(|_| vec!["-c".into(), "echo broken config; exit 3".into()]),
            listen: Listen::ReportsBoundAddress,
            health_path: "/",
            workdir: workdir.path().to_path_buf(),
            ca_file: None,
            config: None,
        };
        let error = ServerProcess::launch(&spec).await.err().unwrap();
        let message = format!("{error:#}");
        assert!(message.contains("exited"), "{message}");
        assert!(message.contains("broken config"), "{message}");
    }
}
