//! `ward audit enable|list|disable|verify` against a real server, tampering detected with the
//! right line; and the production server: JSON logs with request ids, the audit chain across
//! a restart, `/metrics`, and no secret in any output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{DevServer, assert_exit, ok, stderr, stdout};
use serde_json::{Value, json};

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn verify(server: &DevServer, files: &[&Path]) -> std::process::Output {
    let mut args = vec!["audit".to_owned(), "verify".to_owned()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server.ward_full(None, &args, None)
}

#[track_caller]
fn assert_broken_at(output: &std::process::Output, file: &Path, line: usize) {
    assert_exit(output, 1);
    let err = stderr(output);
    let expected = format!("{} line {line}:", file.display());
    assert!(err.contains(&expected), "expected {expected:?} in: {err}");
}

#[test]
fn audit_cli_enables_lists_verifies_and_detects_tampering() {
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let out = ok(server.ward(&[
        "audit",
        "enable",
        "-description=main log",
        "file",
        &format!("file_path={}", log.display()),
    ]));
    assert!(
        out.contains("Success! Enabled the file audit device at: file/"),
        "{out}"
    );
    let list = ok(server.ward(&["audit", "list", "-detailed"]));
    assert!(
        list.contains("file/") && list.contains("main log"),
        "{list}"
    );
    assert!(
        list.contains(&format!("file_path:{}", log.display())),
        "{list}"
    );

    let marker = "cli-marker-8ffQ2b";
    ok(server.ward(&["kv", "put", "secret/app", &format!("password={marker}")]));
    for _ in 0..3 {
        ok(server.ward(&["kv", "get", "secret/app"]));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(marker));
    assert!(!text.contains(server.root_token()));

    let good = ok(verify(&server, &[&log]));
    assert!(good.contains("is intact"), "{good}");
    let lines = read_lines(&log);
    assert!(lines.len() >= 8, "{} lines", lines.len());

    // One byte edited in line 4 (a character of its timestamp): line 4 is named.
    let edited = dir.path().join("edited.log");
    let mut changed = lines.clone();
    let pos = changed[3].find("\"time\":\"").unwrap() + 9;
    let mut bytes = changed[3].clone().into_bytes();
    bytes[pos] = if bytes[pos] == b'1' { b'2' } else { b'1' };
    changed[3] = String::from_utf8(bytes).unwrap();
    write_lines(&edited, &changed);
    assert_broken_at(&verify(&server, &[&edited]), &edited, 4);

    // Line 5 deleted: the line now at 5 follows a gap.
    let deleted = dir.path().join("deleted.log");
    let mut removed = lines.clone();
    removed.remove(4);
    write_lines(&deleted, &removed);
    assert_broken_at(&verify(&server, &[&deleted]), &deleted, 5);

    // Lines 3 and 4 swapped: line 3 is out of order.
    let swapped = dir.path().join("swapped.log");
    let mut reordered = lines.clone();
    reordered.swap(2, 3);
    write_lines(&swapped, &reordered);
    assert_broken_at(&verify(&server, &[&swapped]), &swapped, 3);

    // A rotated series verifies in order, and fails out of order.
    let first = dir.path().join("audit.log.1");
    let second = dir.path().join("audit.log.2");
    let half = lines.len() / 2;
    write_lines(&first, &lines[..half]);
    write_lines(&second, &lines[half..]);
    ok(verify(&server, &[&first, &second]));
    let out = verify(&server, &[&second, &first]);
    assert_exit(&out, 1);
    let alone = ok(verify(&server, &[&second]));
    assert!(
        alone.contains(&format!("starts at sequence {half}")),
        "{alone}"
    );
    // A line removed at the boundary between files is caught too.
    write_lines(&second, &lines[half + 1..]);
    assert_broken_at(&verify(&server, &[&first, &second]), &second, 1);

    // A missing file is an error, not a pass.
    assert_exit(&verify(&server, &[&dir.path().join("nope.log")]), 1);

    let out = ok(server.ward(&["audit", "disable", "file"]));
    assert!(out.contains("Disabled audit device"), "{out}");
    let out = server.ward(&["audit", "list"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("No audit devices are enabled."));
    let out = server.ward(&["audit", "enable", "file", "file_path"]);
    assert_exit(&out, 1);
    let out = server.ward(&["audit", "enable", "bogus"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("Code: 400"), "{}", stderr(&out));
}

/// A production `ward server` whose stdout and stderr are kept.
struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path, output: Arc<Mutex<String>>) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["server", "--config"])
        .arg(config)
        // As verbose as it gets: every line is searched for secrets.
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        assert!(Instant::now() < deadline, "no banner");
        let line = lines.next().expect("server exited").unwrap();
        output.lock().unwrap().push_str(&line);
        output.lock().unwrap().push('\n');
        if let Some(addr) = line.trim().strip_prefix("Api Address: ") {
            break addr.to_owned();
        }
    };
    let sink = output.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    Proc { child, url }
}

fn call(url: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut req = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{url}/v1/{path}"),
    );
    if !token.is_empty() {
        req = req.header("X-Vault-Token", token);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn unseal(url: &str, key: &str) {
    let (status, body) = call(url, "", "PUT", "sys/unseal", Some(json!({"key": key})));
    assert_eq!(status, 200);
    assert_eq!(body["sealed"], false, "{body}");
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("ward.toml");
    std::fs::write(
        &path,
        format!(
            "address = \"127.0.0.1:{}\"\ndisable_mlock = true\nlog_format = \"json\"\nlog_level = \"trace\"\n\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n\n[telemetry]\nprometheus_endpoint = true\n",
            common::free_port(),
            dir.join("ward.db").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn production_logs_are_json_with_request_ids_and_no_secret_reaches_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let output = Arc::new(Mutex::new(String::new()));
    let server = start(&config, output.clone());
    let url = server.url.clone();
    let (status, init) = call(
        &url,
        "",
        "PUT",
        "sys/init",
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    );
    assert_eq!(status, 200);
    let key = init["keys_base64"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    unseal(&url, &key);
    let audit = dir.path().join("audit.log");
    let (status, _) = call(
        &url,
        &root,
        "PUT",
        "sys/audit/file",
        Some(json!({"type": "file", "options": {"file_path": audit}})),
    );
    assert_eq!(status, 204);
    let (status, _) = call(
        &url,
        &root,
        "PUT",
        "sys/mounts/secret",
        Some(json!({"type": "kv-v2"})),
    );
    assert_eq!(status, 204);
    let marker = "prod-marker-Jt6YqN0p";
    let (status, _) = call(
        &url,
        &root,
        "PUT",
        "secret/data/db",
        Some(json!({"data": {"password": marker}})),
    );
    assert_eq!(status, 200);
    let (status, read) = call(&url, &root, "GET", "secret/data/db", None);
    assert_eq!(status, 200);
    assert_eq!(read["data"]["data"]["password"], marker);
    let (_, created) = call(
        &url,
        &root,
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["default"]})),
    );
    let child_token = created["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        call(&url, &child_token, "GET", "secret/data/db", None).0,
        403
    );

    // /metrics (enabled in the configuration) needs no token and shows storage latency.
    let text = reqwest::blocking::get(format!("{url}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert!(
        scrape.samples.iter().any(|s| s
            .metric
            .starts_with("ward_storage_operation_duration_seconds")),
        "{text}"
    );

    // Restart (SIGKILL): the file device comes back on unseal and continues its chain.
    let lines_before = read_lines(&audit).len();
    drop(server);
    let server = start(&config, output.clone());
    unseal(&server.url, &key);
    assert_eq!(
        call(&server.url, &root, "GET", "secret/data/db", None).0,
        200
    );
    let lines = read_lines(&audit);
    assert!(lines.len() > lines_before);
    let resumed: Value = serde_json::from_str(&lines[lines_before]).unwrap();
    assert_eq!(resumed["seq"], json!(lines_before));
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("is intact"));
    drop(server);

    let everything = output.lock().unwrap().clone();
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    for (what, secret) in [
        ("the secret value", marker),
        ("the root token", root.as_str()),
        ("a child token", child_token.as_str()),
        ("the unseal key", key.as_str()),
    ] {
        assert!(
            !everything.contains(secret),
            "{what} appears in the server's output"
        );
        assert!(
            !audit_text.contains(secret),
            "{what} appears in the audit log"
        );
    }
    // The logs are JSON, and a request's lines carry its id (the envelope's request_id).
    let json_lines: Vec<Value> = everything
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!json_lines.is_empty(), "{everything}");
    let id = read["request_id"].as_str().unwrap();
    assert!(
        json_lines
            .iter()
            .any(|l| l["request_id"] == json!(id) && l["fields"]["message"] == "request"),
        "no log line with request id {id}"
    );
}

/// `audit verify` with the device's public key and head.
fn verify_with(
    server: &DevServer,
    key: Option<&str>,
    head: Option<&str>,
    files: &[&Path],
) -> std::process::Output {
    let mut args = vec!["audit".to_owned(), "verify".to_owned()];
    if let Some(key) = key {
        args.push(format!("--public-key={key}"));
    }
    if let Some(head) = head {
        args.push(format!("--head={head}"));
    }
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server.ward_full(None, &args, None)
}

/// Re-chains `lines` from index `from` on, as an attacker who can write the file can (the
/// chain has no key): every line from there gets the `seq` and `prev_hash` that follow the
/// line before it. Checkpoint lines keep their signatures.
fn rechain(lines: &[String], from: usize) -> Vec<String> {
    use ward_api::audit::{ChainHead, Entry};
    let mut out: Vec<String> = lines[..from].to_vec();
    let mut head = match out.last() {
        Some(last) => ChainHead::after(last.as_bytes()).unwrap(),
        None => ChainHead::genesis("0badc0de"),
    };
    for line in &lines[from..] {
        let mut object: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        object.remove("seq");
        object.remove("prev_hash");
        let entry = Entry::from_object(Value::Object(object).to_string().as_bytes());
        let mut chained = head.chain(&entry);
        chained.pop();
        out.push(String::from_utf8(chained).unwrap());
    }
    out
}

/// Issue 22 item 12: with the device's public key, `verify` finds a log re-chained from any
/// line before a checkpoint, one re-chained from scratch (checkpoints dropped), and one whose
/// first lines were cut; with the head the server reports, one cut after its last
/// checkpoint. Without the key, all of these pass the chain check: that is the attack.
#[test]
fn verify_with_the_public_key_finds_rechained_and_cut_logs() {
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    ok(server.ward(&[
        "audit",
        "enable",
        "file",
        &format!("file_path={}", log.display()),
        "checkpoint_lines=6",
    ]));
    for i in 0..6 {
        ok(server.ward(&["kv", "put", &format!("secret/app{i}"), "password=x"]));
    }
    let devices: Value =
        serde_json::from_str(&ok(server.ward(&["audit", "list", "-format=json"]))).unwrap();
    let key = devices["file/"]["public_key"].as_str().unwrap().to_owned();
    let head = devices["file/"]["head"].as_str().unwrap().to_owned();
    let lines = read_lines(&log);
    let checkpoints: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"type\":\"checkpoint\""))
        .map(|(i, _)| i)
        .collect();
    assert!(checkpoints.len() >= 3, "{checkpoints:?}");
    assert_eq!(checkpoints[0], 0, "the file opens with a checkpoint");

    // The log as written: intact with the key, and reaching the head (the `audit list`
    // call itself wrote lines after it, which is fine).
    let good = ok(verify_with(&server, Some(&key), Some(&head), &[&log]));
    assert!(good.contains("signature(s) verified"), "{good}");
    let out = ok(verify(&server, &[&log]));
    assert!(out.contains("not checked"), "{out}");

    let write = |name: &str, lines: &[String]| {
        let path = dir.path().join(name);
        write_lines(&path, lines);
        path
    };

    // One line edited and the rest re-chained: the chain passes, the next checkpoint's
    // signature does not.
    let mut edited = lines.clone();
    edited[2] = edited[2].replacen("\"time\":\"2", "\"time\":\"1", 1);
    assert_ne!(edited[2], lines[2]);
    let rechained = write("rechained.log", &rechain(&edited, 2));
    ok(verify(&server, &[&rechained]));
    let out = verify_with(&server, Some(&key), None, &[&rechained]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("signature does not verify"),
        "{}",
        stderr(&out)
    );

    // A line removed and the rest re-chained.
    let mut removed = lines.clone();
    removed.remove(3);
    let removed = write("removed.log", &rechain(&removed, 3));
    ok(verify(&server, &[&removed]));
    assert_exit(&verify_with(&server, Some(&key), None, &[&removed]), 1);

    // Re-chained from scratch with the checkpoints dropped.
    let bare: Vec<String> = lines
        .iter()
        .filter(|l| !l.contains("\"type\":\"checkpoint\""))
        .cloned()
        .collect();
    let scratch = write("scratch.log", &rechain(&bare, 0));
    ok(verify(&server, &[&scratch]));
    let out = verify_with(&server, Some(&key), None, &[&scratch]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("no checkpoint"), "{}", stderr(&out));

    // The first lines cut (the file now starts mid-chain): the chain alone takes it for a
    // rotated file; with the key it is a cut.
    let headless = write("headless.log", &lines[2..]);
    ok(verify(&server, &[&headless]));
    let out = verify_with(&server, Some(&key), None, &[&headless]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("first lines were removed"),
        "{}",
        stderr(&out)
    );

    // Cut right after the last checkpoint but one: the key cannot tell (every checkpoint
    // left verifies), the head can.
    let tail_cut = write(
        "tail-cut.log",
        &lines[..=checkpoints[checkpoints.len() - 2]],
    );
    ok(verify_with(&server, Some(&key), None, &[&tail_cut]));
    let out = verify_with(&server, Some(&key), Some(&head), &[&tail_cut]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("cut from its end"),
        "{}",
        stderr(&out)
    );
    // One line cut, the line the head records: only the head finds it. (The file starts
    // at sequence 0, so a line's index is its sequence.)
    let head_seq: usize = head.split_once(':').unwrap().0.parse().unwrap();
    let short = write("short.log", &lines[..head_seq - 1]);
    ok(verify_with(&server, Some(&key), None, &[&short]));
    assert_exit(&verify_with(&server, Some(&key), Some(&head), &[&short]), 1);

    // Another device's key is refused.
    let other = format!("ed25519:{}", "11".repeat(32));
    assert_exit(&verify_with(&server, Some(&other), None, &[&log]), 1);
    // A bad key or head is a usage error (a local error: 1, with its own message).
    let bad_key = verify_with(&server, Some("ed25519:zz"), None, &[&log]);
    assert_exit(&bad_key, 1);
    assert!(
        stderr(&bad_key).contains("invalid --public-key"),
        "{}",
        stderr(&bad_key)
    );
    assert_exit(&verify_with(&server, None, Some("nonsense"), &[&log]), 1);
}

/// A log written before checkpoints (none in it) still verifies as before, and says that no
/// checkpoint covers it; with a key, it cannot pass.
#[test]
fn a_log_without_checkpoints_verifies_and_says_so() {
    let server = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.log");
    let lines: Vec<String> = (0..4)
        .map(|i| format!("{{\"type\":\"request\",\"i\":{i}}}"))
        .collect();
    write_lines(&old, &rechain(&lines, 0));
    let out = ok(verify(&server, &[&old]));
    assert!(out.contains("no checkpoint covers"), "{out}");
    let key = format!("ed25519:{}", "11".repeat(32));
    assert_exit(&verify_with(&server, Some(&key), None, &[&old]), 1);
}
