//! `ward agent` against a real server: AppRole auto-auth and its sink, templates rendered
//! again after a KV write (their command run once per change), exec mode, the API proxy's
//! cache while the server is sealed, and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, drain, free_port, stop, terminate, wait_for_exit, ward_command};
use serde_json::json;

/// The policy the agent's AppRole gets: read the KV secrets, use the transit key.
const APP_POLICY: &str = r#"
path "secret/*" { capabilities = ["read", "list"] }
path "transit/encrypt/app" { capabilities = ["update"] }
path "transit/decrypt/app" { capabilities = ["update"] }
"#;

fn put(server: &Server, path: &str, data: serde_json::Value) {
    let (status, body) = server.call(
        "POST",
        &format!("secret/data/{path}"),
        Some(&json!({ "data": data })),
    );
    assert_eq!(status, 200, "{body}");
}

/// An AppRole `app` with [`APP_POLICY`], its role ID and a secret ID written to files in
/// `dir`: (role ID file, secret ID file).
fn approle(server: &Server, dir: &Path) -> (PathBuf, PathBuf) {
    let calls = [
        ("POST", "sys/auth/approle", json!({"type": "approle"})),
        ("PUT", "sys/policies/acl/app", json!({"policy": APP_POLICY})),
        (
            "POST",
            "auth/approle/role/app",
            json!({"token_policies": "app", "token_ttl": "1h"}),
        ),
    ];
    for (method, path, body) in calls {
        let (status, reply) = server.call(method, path, Some(&body));
        assert!(status == 200 || status == 204, "{path}: {status} {reply}");
    }
    let (_, role) = server.call("GET", "auth/approle/role/app/role-id", None);
    let (_, secret) = server.call("POST", "auth/approle/role/app/secret-id", None);
    let role_id_file = dir.join("role-id");
    let secret_id_file = dir.join("secret-id");
    std::fs::write(&role_id_file, role["data"]["role_id"].as_str().unwrap()).unwrap();
    std::fs::write(
        &secret_id_file,
        secret["data"]["secret_id"].as_str().unwrap(),
    )
    .unwrap();
    (role_id_file, secret_id_file)
}

/// The `[vault]` and `[auto_auth]` blocks for `server` with the AppRole files in `dir` and
/// a sink at `dir/token`.
fn auto_auth(server: &Server, dir: &Path) -> String {
    let (role_id_file, secret_id_file) = approle(server, dir);
    format!(
        r#"
[vault]
address = "{address}"

[auto_auth.method]
type = "approle"
[auto_auth.method.config]
role_id_file_path = "{role}"
secret_id_file_path = "{secret}"
remove_secret_id_file_after_reading = true

[[auto_auth.sink]]
type = "file"
config = {{ path = "{sink}" }}
"#,
        address = server.addr(),
        role = role_id_file.display(),
        secret = secret_id_file.display(),
        sink = dir.join("token").display(),
    )
}

/// A running `ward agent`, stopped (SIGTERM) when dropped; its stderr kept.
struct Agent {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Agent {
    fn start(dir: &Path, config: &str) -> Self {
        let path = dir.join("agent.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = ward_command()
            .args(["agent", "-config", path.to_str().unwrap()])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().unwrap(), log.clone(), false);
        Self { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `condition` holds, failing with the agent's log after `within`.
    fn wait_for(&mut self, what: &str, within: Duration, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + within;
        while !condition() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the agent exited ({status}) before {what}; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}; agent log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn approle_auto_auth_writes_a_0600_sink_and_removes_the_secret_id_file() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let config = auto_auth(&server, dir.path());
    let sink = dir.path().join("token");
    let mut agent = Agent::start(dir.path(), &config);
    agent.wait_for("sink file", Duration::from_secs(20), || {
        !read(&sink).is_empty()
    });

    assert_eq!(std::fs::metadata(&sink).unwrap().mode() & 0o777, 0o600);
    assert!(
        !dir.path().join("secret-id").exists(),
        "the secret ID file is still there"
    );
    assert!(dir.path().join("role-id").exists());
    // The token is the AppRole's, and works.
    let token = read(&sink);
    let (status, body) = {
        let response = server
            .http_with_token(Some(&token))
            .get(server.url("auth/token/lookup-self"))
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<serde_json::Value>().unwrap(),
        )
    };
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"]["path"]
            .as_str()
            .unwrap()
            .starts_with("auth/approle/login")
    );
    assert!(
        body["data"]["policies"]
            .as_array()
            .unwrap()
            .contains(&json!("app"))
    );
    // No temporary file of the atomic write is left beside the sink.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn a_token_past_its_max_ttl_is_replaced_by_a_new_login_and_the_sink_follows() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let config = auto_auth(&server, dir.path());
    // Renewable for 4 s in all: renewal soon stops extending it, and the agent logs in
    // again with the secret ID it read (its file is gone by then).
    ok(server.call(
        "POST",
        "auth/approle/role/app",
        Some(&json!({"token_policies": "app", "token_ttl": "2s", "token_max_ttl": "4s"})),
    ));
    let sink = dir.path().join("token");
    let mut agent = Agent::start(dir.path(), &config);
    agent.wait_for("sink file", Duration::from_secs(20), || {
        !read(&sink).is_empty()
    });
    let first = read(&sink);
    agent.wait_for("a new token in the sink", Duration::from_secs(15), || {
        let now = read(&sink);
        !now.is_empty() && now != first
    });
    let second = read(&sink);
    let status = server
        .http_with_token(Some(&second))
        .get(server.url("auth/token/lookup-self"))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 200, "{}", agent.log());
    assert!(!dir.path().join("secret-id").exists());
}

#[test]
fn a_template_is_rendered_again_after_a_kv_write_and_its_command_runs_once_per_change() {
    let server = Server::start();
    ok(server.call(
        "POST",
        "sys/mounts/transit",
        Some(&json!({"type": "transit"})),
    ));
    ok(server.call("POST", "transit/keys/app", Some(&json!({}))));
    put(&server, "app", json!({"password": "one"}));
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("app.conf.tmpl");
    std::fs::write(
        &template,
        "{% set app = kv(\"secret/app\") %}password = {{ app.data.password }}\n\
         version = {{ secret(\"secret/data/app\").metadata.version }}\n\
         round-trip = {{ decrypt(\"app\", encrypt(\"app\", \"hello\")) }}\n\
         sealed = {{ encrypt(\"app\", app.data.password)[:9] }}\n",
    )
    .unwrap();
    let destination = dir.path().join("app.conf");
    let runs = dir.path().join("runs");
    let config = format!(
        r#"{auth}
[template_config]
static_secret_render_interval = "200ms"

[[template]]
source = "{template}"
destination = "{destination}"
perms = "0640"
command = "echo run >> {runs}"
"#,
        auth = auto_auth(&server, dir.path()),
        template = template.display(),
        destination = destination.display(),
        runs = runs.display(),
    );
    let mut agent = Agent::start(dir.path(), &config);
    let first = "password = one\nversion = 1\nround-trip = hello\nsealed = vault:v1:\n";
    agent.wait_for("first render", Duration::from_secs(20), || {
        read(&destination) == first && read(&runs) == "run\n"
    });
    assert_eq!(
        std::fs::metadata(&destination).unwrap().mode() & 0o777,
        0o640
    );

    // Several passes with nothing changed: no write, no command (encryption is random,
    // but the file does not change with it).
    let modified = std::fs::metadata(&destination).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(read(&runs), "run\n");
    assert_eq!(
        std::fs::metadata(&destination).unwrap().modified().unwrap(),
        modified
    );

    put(&server, "app", json!({"password": "s3cond-value"}));
    let second = "password = s3cond-value\nversion = 2\nround-trip = hello\nsealed = vault:v1:\n";
    agent.wait_for("second render", Duration::from_secs(5), || {
        read(&destination) == second
    });
    agent.wait_for("second command", Duration::from_secs(5), || {
        read(&runs) == "run\nrun\n"
    });
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        read(&runs),
        "run\nrun\n",
        "the command ran more than once per change"
    );
    // The log names the file, never a secret.
    let log = agent.log();
    assert!(log.contains("app.conf"), "{log}");
    assert!(!log.contains("s3cond-value"), "{log}");
}

#[test]
fn a_template_error_names_the_template_and_line_and_a_refusal_exits_2() {
    let server = Server::start();
    put(&server, "app", json!({"password": "hunter2-value"}));
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("out");
    let config = format!(
        r#"{auth}
[template_config]
static_secret_render_interval = "200ms"

[[template]]
contents = "first line\n{{{{ kv('secret/app').data.password | int }}}}\n"
destination = "{destination}"
"#,
        auth = auto_auth(&server, dir.path()),
        destination = destination.display(),
    );
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, &config).unwrap();
    // The first pass must succeed: the agent exits 1 with the template and the line.
    let output = ward_command()
        .args(["agent", "-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("template 1, line 2"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!destination.exists());

    // What the server refuses the agent's token is the server's refusal: exit 2.
    let (_, secret) = server.call("POST", "auth/approle/role/app/secret-id", None);
    std::fs::write(
        dir.path().join("secret-id"),
        secret["data"]["secret_id"].as_str().unwrap(),
    )
    .unwrap();
    let config = config.replace(
        "{{ kv('secret/app').data.password | int }}",
        "{{ secret('sys/mounts') }}",
    );
    std::fs::write(&path, &config).unwrap();
    let output = ward_command()
        .args(["agent", "-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("template 1, line 2") && stderr.contains("reading sys/mounts"),
        "{stderr}"
    );
}

#[test]
fn exec_mode_restarts_the_child_when_a_secret_changes() {
    let server = Server::start();
    put(&server, "w", json!({"v": "one"}));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = format!(
        r#"{auth}
[template_config]
static_secret_render_interval = "200ms"

[exec]
command = ["sh", "-c", "echo \"start $V ${{WARD_TOKEN:-no-token}}\" >> {out}; while true; do sleep 0.1; done"]
restart_on_secret_changes = "always"
env = {{ V = "secret/w#v" }}
"#,
        auth = auto_auth(&server, dir.path()),
        out = out.display(),
    );
    let mut agent = Agent::start(dir.path(), &config);
    agent.wait_for("the child", Duration::from_secs(20), || {
        read(&out) == "start one no-token\n"
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        read(&out),
        "start one no-token\n",
        "restarted with nothing changed"
    );
    put(&server, "w", json!({"v": "two"}));
    agent.wait_for("the restart", Duration::from_secs(5), || {
        read(&out) == "start one no-token\nstart two no-token\n"
    });
    // The agent stops with its child.
    assert!(terminate(&agent.child));
    let status = wait_for_exit(&mut agent.child, Duration::from_secs(15)).expect("agent exited");
    assert_eq!(status.code(), Some(128 + 15), "{}", agent.log());
}

#[test]
fn the_proxy_serves_a_cached_read_while_the_server_is_sealed() {
    let server = Server::start();
    put(&server, "app", json!({"password": "cached-one"}));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        r#"{auth}
[api_proxy]
use_auto_auth_token = true

[[listener]]
type = "tcp"
address = "127.0.0.1:{port}"
tls_disable = true

[cache]
cache_static_secrets = true
"#,
        auth = auto_auth(&server, dir.path()),
    );
    let sink = dir.path().join("token");
    let mut agent = Agent::start(dir.path(), &config);
    agent.wait_for("the sink", Duration::from_secs(20), || {
        !read(&sink).is_empty()
    });
    let proxy = format!("http://127.0.0.1:{port}/v1/");
    let http = reqwest::blocking::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut request = http.get(format!("{proxy}{path}"));
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let cache = response
            .headers()
            .get("x-cache")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: serde_json::Value = response.json().unwrap_or_default();
        (status, cache, body)
    };
    agent.wait_for("the proxy", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    // No token of its own: the agent's is used.
    let (status, cache, body) = get("secret/data/app", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache, None);
    assert_eq!(body["data"]["data"]["password"], "cached-one");

    ok(server.call("PUT", "sys/seal", None));
    let (status, cache, body) = get("secret/data/app", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache.as_deref(), Some("HIT"));
    assert_eq!(body["data"]["data"]["password"], "cached-one");
    // What was never read, and another token's reads, are not served from the cache.
    let (status, _, _) = get("secret/data/other", None);
    assert_eq!(status, 503);
    let (status, _, _) = get("secret/data/app", Some("not-the-agents-token"));
    assert_eq!(status, 503);
}

#[test]
fn bad_configurations_exit_1_and_a_refused_login_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &str| {
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, config).unwrap();
        let output = ward_command()
            .args(["agent", "-config", path.to_str().unwrap()])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run("[auto_auth.method]\ntype = \"kerberos\"\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("agent.toml") && stderr.contains("unsupported type \"kerberos\""),
        "{stderr}"
    );
    let (code, stderr) = run("[vault]\naddres = \"http://127.0.0.1:1\"\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("unknown field `addres`"), "{stderr}");
    let (code, stderr) = run(
        "[auto_auth.method]\ntype = \"approle\"\n[auto_auth.method.config]\nrole_id_file_path = \"/nonexistent/role-id\"\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/role-id"), "{stderr}");
    let output = ward_command()
        .args(["agent", "-config", "/nonexistent/agent.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));

    // The server refuses a wrong secret ID: exit 2.
    let server = Server::start();
    let config = auto_auth(&server, dir.path());
    std::fs::write(dir.path().join("secret-id"), "wrong-secret-id").unwrap();
    let (code, stderr) = run(&config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("logging in"), "{stderr}");
    assert!(!stderr.contains("wrong-secret-id"), "{stderr}");
}

/// Re-render latency: the time from a KV write to the new file, with the poll interval at
/// 100 ms (BENCHMARKS.md).
#[test]
fn re_render_latency_after_a_kv_write() {
    let server = Server::start();
    put(&server, "lat", json!({"v": 0}));
    let dir = tempfile::tempdir().unwrap();
    let destination = dir.path().join("out");
    let config = format!(
        r#"{auth}
[template_config]
static_secret_render_interval = "100ms"

[[template]]
contents = "{{{{ kv('secret/lat').data.v }}}}"
destination = "{destination}"
"#,
        auth = auto_auth(&server, dir.path()),
        destination = destination.display(),
    );
    let mut agent = Agent::start(dir.path(), &config);
    agent.wait_for("first render", Duration::from_secs(20), || {
        read(&destination) == "0"
    });
    let mut latencies = Vec::new();
    for round in 1..=20 {
        put(&server, "lat", json!({ "v": round }));
        let written = Instant::now();
        let wanted = round.to_string();
        agent.wait_for("a re-render", Duration::from_secs(5), || {
            read(&destination) == wanted
        });
        latencies.push(written.elapsed());
        // Writes land at different points of the poll cycle.
        std::thread::sleep(Duration::from_millis(37 * (round % 3)));
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = latencies[latencies.len() - 1];
    println!(
        "re-render after a KV write (interval 100 ms, 20 writes): min {:?}, median {median:?}, max {worst:?}",
        latencies[0]
    );
    assert!(worst < Duration::from_millis(1500), "{latencies:?}");
}

/// Asserts a 2xx answer.
fn ok((status, body): (u16, serde_json::Value)) {
    assert!((200..300).contains(&status), "{status} {body}");
}
