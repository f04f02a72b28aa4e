//! hvac 2.4, the Python client most applications use, unchanged against a real Ward over TLS:
//! KV v2, transit (RSA-OAEP included), mounts, policies, tokens, auth methods, userpass,
//! AppRole and a login with a client certificate (`clients/hvac_calls.py`). The same script
//! passes against `bao server -dev-tls` (OpenBao 2.7.2). `scripts/test`
//! installs hvac beside `bao` and names its Python in `WARD_TEST_PYTHON`; without it this
//! test fails, it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::Server;

#[test]
fn hvac_daily_calls_work_unchanged() {
    let python = std::env::var("WARD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/hvac_calls.py");
    let server = Server::start_dev_tls();
    let files = tempfile::tempdir().unwrap();
    let (ca, cert, key) = client_certificate();
    let file = |name: &str, text: String| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let out = Command::new(&python)
        .arg(script)
        .env("VAULT_ADDR", server.addr())
        .env("VAULT_TOKEN", server.root_token())
        .env("VAULT_CACERT", server.ca_cert().unwrap())
        .env("HVAC_CERT_CA", file("ca.pem", ca))
        .env("HVAC_CLIENT_CERT", file("client.pem", cert))
        .env("HVAC_CLIENT_KEY", file("client.key", key))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} ({e}); scripts/test installs hvac"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "hvac calls failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("hvac: all calls passed"), "{stdout}");
}

/// A CA, and a client certificate and key it issued, each as PEM.
fn client_certificate() -> (String, String, String) {
    use rcgen::{CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "hvac test CA");
    ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut client = CertificateParams::new(vec!["hvac-app".to_owned()]).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "hvac-app");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = client.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}
