//! TLS trust settings against a real TLS server (`openssl s_server`, which answers any
//! request with an HTML page): a CA bundle makes the handshake succeed, no CA makes it fail,
//! and skipping verification lets it through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ward_client::{Client, ClientError, ClientOptions};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=ward-test-ca",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ],
    );
}

struct TlsServer(Child);

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tls_server(dir: &Path) -> (TlsServer, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "server.pem",
        ])
        .args(["-key", "server.key", "-www", "-quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsServer(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, port)
}

#[tokio::test]
async fn ca_bundle_and_skip_verify_decide_whether_tls_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let (_server, port) = start_tls_server(dir.path());
    let address = format!("https://127.0.0.1:{port}");

    // The system roots do not know the test CA: the handshake fails.
    let untrusted = Client::new(&address, Some("t")).unwrap();
    let error = untrusted.seal_status().await.unwrap_err();
    assert!(matches!(error, ClientError::Transport(_)), "{error:?}");

    // Trusting the CA: the handshake succeeds and the (HTML) reply fails to decode.
    let options = ClientOptions {
        ca_cert_pem: Some(std::fs::read(dir.path().join("ca.pem")).unwrap()),
        ..ClientOptions::default()
    };
    let trusted = Client::with_options(&address, Some("t"), &options).unwrap();
    let error = trusted.seal_status().await.unwrap_err();
    assert!(matches!(error, ClientError::Decode { .. }), "{error:?}");

    // Skipping verification also gets through.
    let options = ClientOptions {
        tls_skip_verify: true,
        ..ClientOptions::default()
    };
    let skipping = Client::with_options(&address, Some("t"), &options).unwrap();
    let error = skipping.seal_status().await.unwrap_err();
    assert!(matches!(error, ClientError::Decode { .. }), "{error:?}");
}

#[test]
fn a_ca_file_without_certificates_is_rejected() {
    let options = ClientOptions {
        ca_cert_pem: Some(b"not a certificate".to_vec()),
        ..ClientOptions::default()
    };
    assert!(Client::with_options("https://127.0.0.1:8200", None, &options).is_err());
}
