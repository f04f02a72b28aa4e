//! TLS trust settings against a real TLS server (rustls, answering any request with an HTML
//! page; the certificates are made here with rcgen): a CA bundle makes the handshake succeed,
//! no CA makes it fail, and skipping verification lets it through; a server that requires a
//! client certificate takes the one configured and refuses a client without.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use rcgen::{CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ward_client::{Client, ClientError, ClientOptions};

/// A CA, and a certificate for `names` signed by it, as PEM (certificate, key).
fn ca_and_certificate(names: &[&str]) -> (CertifiedIssuer<'static, KeyPair>, (String, String)) {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca, (cert.pem(), key.serialize_pem()))
}

/// A CA and a server certificate for 127.0.0.1 signed by it, written as ca.pem, server.pem
/// and server.key.
fn make_certificates(dir: &Path) {
    let (ca, (cert, key)) = ca_and_certificate(&["127.0.0.1"]);
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert).unwrap();
    std::fs::write(dir.join("server.key"), key).unwrap();
}

/// A TLS server on 127.0.0.1 with the certificate in `dir` that answers every request with
/// an HTML page (as `openssl s_server -www` does); with `client_ca`, it requires a client
/// certificate from that CA. Stops with the test's runtime.
async fn start_tls_server(dir: &Path, client_ca: Option<&str>) -> u16 {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
                .unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = builder.with_single_cert(chain, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = vec![0u8; 4096];
                let Ok(_) = stream.read(&mut request).await else {
                    return;
                };
                let body = "<html><body>not a Vault server</body></html>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn ca_bundle_and_skip_verify_decide_whether_tls_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let port = start_tls_server(dir.path(), None).await;
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

#[tokio::test]
async fn a_client_certificate_is_presented_to_a_server_that_requires_one() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let (client_ca, identity) = ca_and_certificate(&["app"]);
    let port = start_tls_server(dir.path(), Some(&client_ca.pem())).await;
    let address = format!("https://127.0.0.1:{port}");
    let ca_cert_pem = Some(std::fs::read(dir.path().join("ca.pem")).unwrap());

    let without = ClientOptions {
        ca_cert_pem: ca_cert_pem.clone(),
        ..ClientOptions::default()
    };
    let client = Client::with_options(&address, Some("t"), &without).unwrap();
    let error = client.seal_status().await.unwrap_err();
    assert!(matches!(error, ClientError::Transport(_)), "{error:?}");

    let with = ClientOptions {
        ca_cert_pem,
        client_cert_pem: Some((identity.0.into_bytes(), identity.1.into_bytes())),
        ..ClientOptions::default()
    };
    // The key never shows in Debug.
    assert!(!format!("{with:?}").contains("PRIVATE KEY"));
    let client = Client::with_options(&address, Some("t"), &with).unwrap();
    let error = client.seal_status().await.unwrap_err();
    assert!(matches!(error, ClientError::Decode { .. }), "{error:?}");

    let broken = ClientOptions {
        client_cert_pem: Some((b"no".to_vec(), b"key".to_vec())),
        ..ClientOptions::default()
    };
    assert!(matches!(
        Client::with_options(&address, None, &broken),
        Err(ClientError::InvalidClientCertificate(_))
    ));
}
