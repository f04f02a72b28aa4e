//! A throwaway PostgreSQL cluster for tests: made with `initdb` in a temporary directory,
//! listening on 127.0.0.1 on a free port, gone when the test process ends.
//!
//! The server is started under a small shell that waits on a pipe from this process and
//! stops PostgreSQL when the pipe closes, so the cluster goes away even when the test
//! process is killed or the cluster lives in a `static`. The binaries are found through
//! `WARD_TEST_PG_BIN` (set by `scripts/test`, which installs PostgreSQL when missing), else
//! in Debian's `/usr/lib/postgresql/<version>/bin`. Without them the test fails: it never
//! skips.

#![forbid(unsafe_code)]
// A test fixture: failing loudly, with what went wrong, is its whole error handling.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running cluster; stopped when dropped.
pub struct TestPostgres {
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Whether PostgreSQL syncs its writes to disk (off for tests, on for benchmarks).
    fsync: bool,
    /// The shell holding PostgreSQL; closing its stdin stops the server.
    keeper: Mutex<Option<(Child, ChildStdin)>>,
}

/// The cluster the tests of one process share (each test takes its own table prefix or
/// database from it).
pub fn shared() -> &'static TestPostgres {
    static SHARED: OnceLock<TestPostgres> = OnceLock::new();
    SHARED.get_or_init(TestPostgres::start)
}

/// A table prefix no other caller in this process gets.
pub fn unique_table() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestPostgres {
    /// Makes and starts a new cluster (about a second and a half), with fsync off: the
    /// tests check Ward's logic, not the disk, and nothing here outlives them.
    pub fn start() -> Self {
        Self::start_with_fsync(false)
    }

    /// Makes and starts a new cluster that syncs every commit to disk, as a production
    /// server does (`fsync=on`, the default `synchronous_commit=on`): for benchmarks of
    /// durable writes.
    pub fn start_durable() -> Self {
        Self::start_with_fsync(true)
    }

    fn start_with_fsync(fsync: bool) -> Self {
        let bin = binaries();
        let dir = tempfile::tempdir().expect("temporary directory");
        let as_root = is_root();
        if as_root {
            // PostgreSQL refuses to run as root: its files belong to `postgres`.
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        let mut initdb = pg_command(as_root, &bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        run(&mut initdb);
        let cluster = Self {
            port: free_port(),
            bin,
            dir,
            fsync,
            keeper: Mutex::new(None),
        };
        cluster.serve();
        cluster
    }

    /// Starts the server on the cluster's data and port, and waits until it accepts
    /// connections.
    fn serve(&self) {
        let as_root = is_root();
        let script = r#"
            "$1" -D "$2" -p "$3" -k "$4" -c listen_addresses=127.0.0.1 -c fsync="$5" \
                -c max_connections=200 >>"$4/log" 2>&1 &
            pid=$!
            read -r _
            kill -INT "$pid"
            wait "$pid"
        "#;
        let mut keeper = pg_command(as_root, Path::new("sh"));
        keeper
            .args(["-c", script, "sh"])
            .arg(self.bin.join("postgres"))
            .arg(self.dir.path().join("data"))
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .arg(if self.fsync { "on" } else { "off" })
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = keeper.spawn().expect("start PostgreSQL");
        let stdin = child.stdin.take().expect("keeper stdin");
        *self.keeper.lock().unwrap() = Some((child, stdin));
        self.wait_until_ready();
    }

    /// Stops the server (fast shutdown: open connections are closed) and starts it again
    /// on the same data and port.
    pub fn restart(&self) {
        self.stop();
        self.serve();
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the superuser `postgres` (no password: trust).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` with psql on `database`; its output (unaligned, tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .arg(self.url(database))
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything in `database` as `pg_dump` writes it (schema and data, plain SQL).
    pub fn dump(&self, database: &str) -> Vec<u8> {
        let out = Command::new(self.bin.join("pg_dump"))
            .args(["--no-owner", "--data-only", "--inserts"])
            .arg(self.url(database))
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The process id of the postmaster (PostgreSQL's backends are its children), from its
    /// `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let file = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).ok()?;
        file.lines().next()?.trim().parse().ok()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&self) {
        let keeper = self.keeper.lock().map(|mut k| k.take()).ok().flatten();
        if let Some((mut child, mut stdin)) = keeper {
            let _ = stdin.write_all(b"stop\n");
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory holding `initdb`, `postgres`, `psql`, `pg_dump` and `pg_isready`.
fn binaries() -> PathBuf {
    find_binaries().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server binaries were not found (set WARD_TEST_PG_BIN, or install \
             Debian's postgresql package: scripts/test does)"
        )
    })
}

/// Where PostgreSQL's server binaries are (`WARD_TEST_PG_BIN`, else the newest Debian
/// `/usr/lib/postgresql/<version>/bin`), if anywhere: for callers that skip or explain
/// rather than panic.
pub fn find_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WARD_TEST_PG_BIN").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|bin| {
        let version = bin.parent().and_then(Path::file_name);
        version.and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// `program`, run as the `postgres` user when this process is root.
fn pg_command(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
