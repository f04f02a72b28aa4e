//! The real `ward server` over TLS: TLS 1.3 only unless TLS 1.2 is asked for, plain HTTP on
//! the TLS port answered and closed, deadlines and connection limits, mutual TLS, certificate
//! reload on SIGHUP under an open keep-alive connection, a bad certificate refused at start,
//! `--dev-tls` and the CLI's TLS settings, the `cert` auth method's logins. Every CA and
//! certificate is made here with rcgen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, assert_exit, free_port, ok, stderr};
use rcgen::{CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};

/// A test CA.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate (PEM) and key (PEM) for `names`, for a server or (`client`) a client.
    fn issue(&self, names: &[&str], client: bool) -> (String, String) {
        self.issue_with(names, client, |_| {})
    }

    /// [`Ca::issue`], with `adjust` changing the certificate's parameters before signing.
    fn issue_with(
        &self,
        names: &[&str],
        client: bool,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        adjust(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Files for a TLS server: the CA, a certificate for 127.0.0.1 and its key.
struct Files {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Files {
    fn new() -> Self {
        let files = Self {
            dir: tempfile::tempdir().unwrap(),
            ca: Ca::new("ward test CA"),
        };
        files.write("ca.pem", &files.ca.pem());
        files.new_server_certificate();
        files
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    /// Writes a new server certificate and key over `server.pem` and `server.key`.
    fn new_server_certificate(&self) {
        let (cert, key) = self.ca.issue(&["127.0.0.1", "localhost"], false);
        self.write("server.pem", &cert);
        self.write("server.key", &key);
    }

    /// A production configuration on a free port whose `[listener]` holds `listener` lines
    /// after the certificate and key.
    fn config(&self, listener: &str) -> String {
        self.config_with("", listener)
    }

    /// [`Files::config`] with `top` lines before the tables.
    fn config_with(&self, top: &str, listener: &str) -> String {
        format!(
            "address = \"127.0.0.1:{}\"\ndisable_mlock = true\n{top}\n[listener]\n\
             tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n{listener}\n\n\
             [storage]\nbackend = \"sqlite\"\npath = \"{}\"\n",
            free_port(),
            self.path("server.pem").display(),
            self.path("server.key").display(),
            self.path("ward.db").display(),
        )
    }

    fn start(&self, listener: &str) -> Server {
        let server = Server::start_with_config(&self.config(listener));
        assert!(server.addr().starts_with("https://"), "{}", server.addr());
        server
    }
}

/// How a test client connects.
struct ClientSetup<'a> {
    ca_pem: &'a str,
    versions: &'a [&'static rustls::SupportedProtocolVersion],
    identity: Option<&'a (String, String)>,
}

impl<'a> ClientSetup<'a> {
    fn new(ca_pem: &'a str) -> Self {
        Self {
            ca_pem,
            versions: rustls::ALL_VERSIONS,
            identity: None,
        }
    }

    fn config(&self) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(self.versions)
            .unwrap()
            .with_root_certificates(roots);
        Arc::new(match self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .collect::<Result<_, _>>()
                        .unwrap(),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
        })
    }

    /// A connection to `server` with the handshake done.
    fn connect(&self, server: &Server) -> std::io::Result<Tls> {
        let tcp = TcpStream::connect(socket(server)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let connection = ClientConnection::new(self.config(), name).unwrap();
        let mut stream = StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(stream)
    }

    /// Connects and reads `sys/seal-status`: the status and the response head.
    fn seal_status(&self, server: &Server) -> std::io::Result<(u16, String)> {
        let mut stream = self.connect(server)?;
        get(&mut stream, "sys/seal-status")
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn socket(server: &Server) -> String {
    server.addr().trim_start_matches("https://").to_owned()
}

/// Sends a keep-alive GET for `/v1/<path>` and reads the whole response: its status and head.
fn get(stream: &mut impl ReadWrite, path: &str) -> std::io::Result<(u16, String)> {
    write!(stream, "GET /v1/{path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")?;
    stream.flush()?;
    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        received.push(byte[0]);
    }
    let head = String::from_utf8(received).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    let status = head[9..12].parse().unwrap();
    Ok((status, head))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The certificate the server presented on `stream`.
fn server_certificate(stream: &Tls) -> Vec<u8> {
    stream.conn.peer_certificates().unwrap()[0].to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[test]
fn tls_1_3_by_default_and_tls_1_2_only_when_asked() {
    let files = Files::new();
    let ca = files.ca.pem();
    let tls12_only = ClientSetup {
        versions: &[&rustls::version::TLS12],
        ..ClientSetup::new(&ca)
    };
    let server = files.start("");
    let stream = ClientSetup::new(&ca).connect(&server).unwrap();
    assert_eq!(
        stream.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let (status, head) = ClientSetup::new(&ca).seal_status(&server).unwrap();
    assert_eq!(status, 200, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("cache-control: no-store\r\n"), "{head}");
    assert!(
        head.contains("strict-transport-security: max-age=31536000; includesubdomains\r\n"),
        "{head}"
    );
    let Err(refused) = tls12_only.connect(&server) else {
        panic!("TLS 1.2 accepted")
    };
    assert!(refused.to_string().contains("ProtocolVersion"), "{refused}");
    drop(server);

    let server = files.start("tls_min_version = \"tls12\"");
    let stream = tls12_only.connect(&server).unwrap();
    assert_eq!(
        stream.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(tls12_only.seal_status(&server).unwrap().0, 200);
    // TLS 1.3 is still the first choice.
    let stream = ClientSetup::new(&ca).connect(&server).unwrap();
    assert_eq!(
        stream.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

#[test]
fn plain_http_on_the_tls_port_is_answered_and_closed() {
    let files = Files::new();
    let server = files.start("");
    let started = Instant::now();
    let mut tcp = TcpStream::connect(socket(&server)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("HTTP request to an HTTPS server"),
        "{answer}"
    );
}

#[test]
fn deadlines_and_connection_limits_hold_over_tls() {
    let files = Files::new();
    let ca = files.ca.pem();
    let client = ClientSetup::new(&ca);
    let config = files.config_with(
        "http_read_header_timeout = \"1s\"\nmax_connections_per_address = 2\n",
        "",
    );
    let server = Server::start_with_config(&config);
    let closed_after = |mut stream: Box<dyn ReadWrite>| {
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        (started.elapsed(), rest)
    };
    let within_the_deadline = |waited: Duration| {
        assert!(
            waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    };
    // A client that connects and never starts its handshake is closed when the handshake's
    // time (http_read_header_timeout's) runs out.
    let tcp = TcpStream::connect(socket(&server)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (waited, rest) = closed_after(Box::new(tcp));
    within_the_deadline(waited);
    assert!(rest.is_empty());
    // One that completes the handshake and sends half a head is closed as over plain HTTP.
    let mut stream = client.connect(&server).unwrap();
    stream
        .write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\n")
        .unwrap();
    stream.flush().unwrap();
    let (waited, _) = closed_after(Box::new(stream));
    within_the_deadline(waited);

    // Past max_connections_per_address, a connection gets a 429 over TLS and is closed.
    // (First a moment for the server to give back the places of the connections it closed.)
    std::thread::sleep(Duration::from_millis(200));
    let first = client.connect(&server).unwrap();
    let second = client.connect(&server).unwrap();
    let mut third = client.connect(&server).unwrap();
    let mut answer = String::new();
    let _ = third.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    assert!(
        answer.contains("\r\nstrict-transport-security: max-age=31536000; includeSubDomains\r\n"),
        "{answer}"
    );
    drop((first, second));

    // Hyper's own answers (here 431, too many header fields) carry HSTS and no-store over
    // TLS too. (The server frees the two places once it sees those connections closed.)
    let fields: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = loop {
        let mut stream = client.connect(&server).unwrap();
        // A refused connection may be closed before the request is written.
        let _ = write!(
            stream,
            "GET /v1/sys/seal-status HTTP/1.1\r\nhost: 127.0.0.1\r\n{fields}\r\n"
        )
        .and_then(|()| stream.flush());
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        if !answer.starts_with("HTTP/1.1 429 ") || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert!(
        answer.contains("\r\ncache-control: no-store\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("\r\nstrict-transport-security: max-age=31536000; includeSubDomains\r\n"),
        "{answer}"
    );
}

#[test]
fn mutual_tls_takes_certificates_from_the_client_ca_only() {
    let files = Files::new();
    let ca = files.ca.pem();
    let client_ca = Ca::new("ward test client CA");
    files.write("clients.pem", &client_ca.pem());
    let good = client_ca.issue(&["app"], true);
    let foreign = Ca::new("someone else").issue(&["app"], true);
    let client_ca_line = format!(
        "tls_client_ca_file = \"{}\"",
        files.path("clients.pem").display()
    );
    let server = files.start(&format!("{client_ca_line}\ntls_require_client_cert = true"));
    let with = |identity| ClientSetup {
        identity,
        ..ClientSetup::new(&ca)
    };
    assert_eq!(with(Some(&good)).seal_status(&server).unwrap().0, 200);
    assert!(with(Some(&foreign)).seal_status(&server).is_err());
    assert!(with(None).seal_status(&server).is_err());

    // The CLI, with its flags and with its environment variables.
    files.write("app.pem", &good.0);
    files.write("app.key", &good.1);
    let (ca_file, cert, key) = (
        files.path("ca.pem"),
        files.path("app.pem"),
        files.path("app.key"),
    );
    let ward = |args: &[&str], env: &[(&str, &Path)]| {
        let mut command = Command::new(common::ward_bin());
        command
            .arg("status")
            .args(args)
            .env("WARD_ADDR", server.addr())
            .env_remove("WARD_CACERT")
            .env_remove("WARD_CLIENT_CERT")
            .env_remove("WARD_CLIENT_KEY")
            .stdin(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let flags = [
        "-ca-cert",
        ca_file.to_str().unwrap(),
        "-client-cert",
        cert.to_str().unwrap(),
        "-client-key",
        key.to_str().unwrap(),
    ];
    // Exit code 2: the server answered that it is sealed.
    assert_exit(&ward(&flags, &[]), 2);
    let environment = [
        ("WARD_CACERT", ca_file.as_path()),
        ("VAULT_CLIENT_CERT", cert.as_path()),
        ("WARD_CLIENT_KEY", key.as_path()),
    ];
    assert_exit(&ward(&[], &environment), 2);
    // `status` exits 1 on any error (its 2 means sealed), as `vault status`.
    let without = ward(&flags[..2], &[]);
    assert_exit(&without, 1);
    let half = ward(&flags[..4], &[]);
    assert_exit(&half, 1);
    assert!(stderr(&half).contains("-client-key"), "{}", stderr(&half));
    drop(server);

    // Without tls_require_client_cert a client may come without a certificate, but one it
    // presents must still come from the client CA.
    let server = files.start(&client_ca_line);
    assert_eq!(with(None).seal_status(&server).unwrap().0, 200);
    assert_eq!(with(Some(&good)).seal_status(&server).unwrap().0, 200);
    assert!(with(Some(&foreign)).seal_status(&server).is_err());
}

#[test]
fn sighup_reloads_the_certificate_and_an_open_connection_keeps_working() {
    let files = Files::new();
    let ca = files.ca.pem();
    let client = ClientSetup::new(&ca);
    let server = files.start("");
    let first = der_of(&std::fs::read_to_string(files.path("server.pem")).unwrap());
    let mut open = client.connect(&server).unwrap();
    assert_eq!(get(&mut open, "sys/seal-status").unwrap().0, 200);
    assert_eq!(server_certificate(&open), first);

    files.new_server_certificate();
    let second = der_of(&std::fs::read_to_string(files.path("server.pem")).unwrap());
    hangup(&server);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server_certificate(&client.connect(&server).unwrap()) != second {
        assert!(Instant::now() < deadline, "not reloaded:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The connection opened before the reload still answers, with its old certificate.
    assert_eq!(get(&mut open, "sys/seal-status").unwrap().0, 200);
    assert_eq!(server_certificate(&open), first);

    // A broken key at reload: the certificate in use stays, and the error is logged.
    files.write("server.key", "not a key");
    hangup(&server);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("keeping the TLS certificate in use") {
        assert!(
            Instant::now() < deadline,
            "no error logged:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stream = client.connect(&server).unwrap();
    assert_eq!(server_certificate(&stream), second);
    assert_eq!(get(&mut open, "sys/seal-status").unwrap().0, 200);
}

#[test]
fn sigterm_stops_the_server_although_a_tls_connection_is_open() {
    let files = Files::new();
    let ca = files.ca.pem();
    let mut server = files.start("");
    let mut open = ClientSetup::new(&ca).connect(&server).unwrap();
    assert_eq!(get(&mut open, "sys/seal-status").unwrap().0, 200);
    // And one still in its handshake (it has sent nothing yet).
    let _silent = TcpStream::connect(socket(&server)).unwrap();
    let exit = server
        .terminate_and_wait(Duration::from_secs(5))
        .expect("still running 5 s after SIGTERM");
    assert!(exit.success(), "{exit}");
    let mut rest = Vec::new();
    let _ = open.read_to_end(&mut rest);
}

fn hangup(server: &Server) {
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_bad_certificate_or_key_stops_the_server_from_starting() {
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    for (file, text, expected) in [
        ("server.pem", "garbage", "tls_cert_file"),
        (
            "server.key",
            other_key.as_str(),
            "do not make a usable pair",
        ),
        ("server.key", "garbage", "tls_key_file"),
    ] {
        let files = Files::new();
        files.write(file, text);
        let config = files.path("ward.toml");
        std::fs::write(&config, files.config("")).unwrap();
        let output = Command::new(common::ward_bin())
            .args(["server", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_exit(&output, 1);
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }
}

#[test]
fn dev_tls_prints_its_ca_and_the_cli_trusts_it() {
    let server = Server::start_dev_tls();
    assert!(server.addr().starts_with("https://127.0.0.1:"));
    let ca = server.ca_cert().expect("WARD_CACERT printed").to_owned();
    assert!(
        server
            .log()
            .contains(&format!("$ export WARD_ADDR='{}'", server.addr()))
    );
    // Server::ward sets WARD_CACERT to the printed file.
    ok(server.ward(&["kv", "put", "secret/app", "password=s3cr3t"]));
    let read = ok(server.ward(&["kv", "get", "-field=password", "secret/app"]));
    assert_eq!(read.trim(), "s3cr3t");

    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(common::ward_bin());
        command
            .args(args)
            .env("WARD_ADDR", server.addr())
            .env("WARD_TOKEN", server.root_token())
            .env_remove("WARD_CACERT")
            .env_remove("VAULT_CACERT")
            .env_remove("WARD_SKIP_VERIFY")
            .env_remove("VAULT_SKIP_VERIFY")
            .stdin(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let get = ["kv", "get", "-field=password", "secret/app"];
    let untrusted = run(&get, &[]);
    assert_exit(&untrusted, 2);
    assert!(
        stderr(&untrusted).contains("certificate"),
        "{}",
        stderr(&untrusted)
    );
    let ca = ca.to_str().unwrap();
    assert_eq!(ok(run(&get, &[("VAULT_CACERT", ca)])).trim(), "s3cr3t");
    let mut with_flag = vec!["kv", "get", "-ca-cert", ca];
    with_flag.extend(&get[2..]);
    assert_eq!(ok(run(&with_flag, &[])).trim(), "s3cr3t");
    let mut skipping = vec!["kv", "get", "-tls-skip-verify"];
    skipping.extend(&get[2..]);
    assert_eq!(ok(run(&skipping, &[])).trim(), "s3cr3t");
    assert_eq!(
        ok(run(&get, &[("VAULT_SKIP_VERIFY", "true")])).trim(),
        "s3cr3t"
    );

    // Plain dev mode: no-store on every response, HSTS only over TLS.
    let response = server
        .http()
        .get(server.url("sys/seal-status"))
        .send()
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers().contains_key("strict-transport-security"));
    drop(server);
    let plain = Server::start();
    let response = plain
        .http()
        .get(plain.url("sys/seal-status"))
        .send()
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(!response.headers().contains_key("strict-transport-security"));
}

/// Sends `method` to `/v1/<path>` on `stream` with an optional token and JSON body (closing
/// the connection after): the status and the body as JSON.
fn call_over(
    mut stream: Tls,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let body = body.to_string();
    let token = token.map_or(String::new(), |t| format!("x-vault-token: {t}\r\n"));
    write!(
        stream,
        "{method} /v1/{path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{token}\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    let mut answer = Vec::new();
    // The server closes without close_notify only on error; what came is the answer.
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let json = serde_json::from_str(body).unwrap_or(Value::Null);
    (head[9..12].parse().unwrap(), json)
}

#[test]
fn cert_auth_logs_in_with_a_certificate_from_a_trusted_ca_only() {
    let server = Server::start_dev_tls();
    let server_ca = std::fs::read_to_string(server.ca_cert().unwrap()).unwrap();
    let (trusted, other) = (Ca::new("ward test CA 1"), Ca::new("ward test CA 2"));
    let admin = |method: &str, path: &str, body: Value| {
        let (status, answer) = server.call(method, path, Some(&body));
        assert!(status < 300, "{method} {path}: {status} {answer}");
        answer
    };
    admin("POST", "sys/auth/cert", json!({ "type": "cert" }));
    admin(
        "PUT",
        "sys/policies/acl/app-reader",
        json!({ "policy": "path \"secret/data/app\" { capabilities = [\"read\"] }" }),
    );
    admin(
        "PUT",
        "secret/data/app",
        json!({ "data": { "password": "s3cr3t" } }),
    );
    admin(
        "PUT",
        "auth/cert/certs/web",
        json!({
            "certificate": trusted.pem(),
            "allowed_common_names": ["app*"],
            "token_policies": "app-reader",
            "token_ttl": "1h",
        }),
    );
    let role = admin("GET", "auth/cert/certs/web", json!({}));
    assert_eq!(role["data"]["certificate"], trusted.pem());
    assert_eq!(role["data"]["display_name"], "web");
    assert_eq!(role["data"]["allowed_common_names"], json!(["app*"]));
    assert_eq!(role["data"]["token_policies"], json!(["app-reader"]));
    assert_eq!(role["data"]["token_ttl"], 3600);
    assert_eq!(
        admin("LIST", "auth/cert/certs", json!({}))["data"]["keys"],
        json!(["web"])
    );
    let (status, answer) = server.call("PUT", "auth/cert/certs/bad", Some(&json!({})));
    assert_eq!(
        (status, &answer["errors"][0]),
        (400, &json!("failed to parse certificate"))
    );

    let login = |identity: Option<&(String, String)>, body: Value| {
        let setup = ClientSetup {
            identity,
            ..ClientSetup::new(&server_ca)
        };
        let stream = setup.connect(&server).unwrap();
        assert_eq!(
            stream.conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        call_over(stream, "POST", "auth/cert/login", None, &body)
    };
    let refused = |identity: Option<&(String, String)>, body: Value, error: &str| {
        let (status, answer) = login(identity, body);
        assert_eq!(status, 400, "{answer}");
        let message = answer["errors"][0].as_str().unwrap();
        assert!(message.starts_with(error), "{message}");
    };

    let app = trusted.issue_with(&["app"], true, |params| {
        params.use_authority_key_identifier_extension = true;
    });
    let (status, answer) = login(Some(&app), json!({}));
    assert_eq!(status, 200, "{answer}");
    let auth = &answer["auth"];
    assert_eq!(auth["policies"], json!(["app-reader", "default"]));
    assert_eq!(auth["lease_duration"], 3600);
    let meta = &auth["metadata"];
    assert_eq!(
        (&meta["cert_name"], &meta["common_name"]),
        (&json!("web"), &json!("app"))
    );
    let serial = meta["serial_number"].as_str().unwrap();
    assert!(
        !serial.is_empty() && serial.bytes().all(|b| b.is_ascii_digit()),
        "{serial}"
    );
    let key_id = meta["authority_key_id"].as_str().unwrap();
    assert!(
        key_id.len() > 20 && key_id.split(':').all(|b| b.len() == 2),
        "{meta}"
    );
    let token = auth["client_token"].as_str().unwrap();
    let as_app = server.http_with_token(Some(token));
    let read = as_app.get(server.url("secret/data/app")).send().unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().unwrap();
    assert_eq!(read["data"]["data"]["password"], "s3cr3t");
    let other_path = as_app.get(server.url("secret/data/db")).send().unwrap();
    assert_eq!(other_path.status(), 403);
    let me: Value = as_app
        .get(server.url("auth/token/lookup-self"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["data"]["display_name"], "cert-web");
    // The role by name: found, or not.
    assert_eq!(login(Some(&app), json!({ "name": "web" })).0, 200);
    let not_trusted = "invalid certificate or no client certificate supplied";
    refused(Some(&app), json!({ "name": "nope" }), not_trusted);

    refused(Some(&other.issue(&["app"], true)), json!({}), not_trusted);
    refused(
        Some(&trusted.issue(&["db"], true)),
        json!({}),
        "no chain matching all constraints could be found for this login certificate",
    );
    refused(None, json!({}), "no client certificate found");
    let expired = trusted.issue_with(&["app"], true, |params| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 2, 1);
    });
    let failed = "failed to verify client's certificate: certificate has expired";
    refused(Some(&expired), json!({}), failed);
    // A certificate for servers only is no client's.
    let server_only = trusted.issue(&["app"], false);
    refused(
        Some(&server_only),
        json!({}),
        "failed to verify client's certificate: certificate specifies an incompatible key usage",
    );

    // A role may pin one (non-CA) certificate instead of trusting a CA.
    admin("DELETE", "auth/cert/certs/web", json!({}));
    admin(
        "PUT",
        "auth/cert/certs/pinned",
        json!({ "certificate": app.0, "policies": ["app-reader"] }),
    );
    let (status, answer) = login(Some(&app), json!({}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["auth"]["metadata"]["cert_name"], "pinned");
    refused(Some(&trusted.issue(&["app"], true)), json!({}), not_trusted);

    // `ward login -method=cert` presents -client-cert and -client-key, as `vault login` does.
    let files = tempfile::tempdir().unwrap();
    let cli_login = |identity: &(String, String)| {
        let (cert, key) = (files.path().join("c.pem"), files.path().join("k.pem"));
        std::fs::write(&cert, &identity.0).unwrap();
        std::fs::write(&key, &identity.1).unwrap();
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let args = [
            "login",
            "-method=cert",
            "-token-only",
            "-client-cert",
            &cert,
            "-client-key",
            &key,
        ];
        server.ward_full(None, &args, None)
    };
    let token = ok(cli_login(&app));
    let stored = std::fs::read_to_string(server.home().join(".ward-token")).unwrap();
    assert_eq!(token.trim(), stored);
    let out = cli_login(&other.issue(&["app"], true));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains(not_trusted), "{}", stderr(&out));
}
