//! The trivial handler: the ceiling any HTTP server on this machine can reach, served by axum
//! in a process of its own (the benchmark starts itself with the `trivial` subcommand), so that
//! it runs exactly as Ward and OpenBao do: its own process, its own multi-threaded runtime.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The line prefix the trivial server prints its address with, the same words as Ward's and
/// OpenBao's dev servers, so that one parser reads all three.
pub(crate) const ADDRESS_PREFIX: &str = "Api Address:";

/// The router: GET / answers a small JSON body.
pub(crate) fn router() -> Router {
    Router::new().route("/", get(status))
}

async fn status() -> Json<Value> {
    Json(json!({ "status": "ok", "server": "trivial" }))
}

/// The file `--tls-dir` gets the trivial server's CA in.
pub(crate) const TRIVIAL_CA_FILE: &str = "trivial-ca.pem";

/// Serves the trivial handler on `listen` until killed, after printing its bound address;
/// over TLS when `tls_dir` is given.
pub(crate) async fn serve(listen: SocketAddr, tls_dir: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!(
        listen.ip().is_loopback(),
        "the trivial server listens on loopback only, not {listen}"
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr()?;
    let Some(tls_dir) = tls_dir else {
        print_address(&format!("http://{bound}"))?;
        axum::serve(listener, router()).await?;
        return Ok(());
    };
    let acceptor = tls_acceptor(&tls_dir)?;
    print_address(&format!("https://{bound}"))?;
    // As Ward serves TLS: hyper's HTTP/1.1 over tokio-rustls, one task per connection.
    let service = hyper_util::service::TowerToHyperService::new(router());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ended = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn print_address(url: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ADDRESS_PREFIX} {url}")?;
    stdout.flush()?;
    Ok(())
}

/// A TLS 1.3 acceptor with a new CA's certificate for 127.0.0.1, ECDSA P-256 as Ward's and
/// OpenBao's dev certificates; the CA goes to `dir`/[`TRIVIAL_CA_FILE`].
fn tls_acceptor(dir: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &ca)?;
    std::fs::write(dir.join(TRIVIAL_CA_FILE), ca.pem())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow::anyhow!("the generated key: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Dial, RequestTemplate, send_once};
    use std::time::Duration;

    #[tokio::test]
    async fn trivial_handler_answers_json_over_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router()).await });
        let request = RequestTemplate::new(addr, None).unwrap().get("/").unwrap();
        let (status, body) = send_once(&Dial::plain(addr), request, Duration::from_secs(5))
            .await
            .unwrap();
        server.abort();
        assert_eq!(status, 200);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], "ok");
    }

    #[tokio::test]
    async fn refuses_a_non_loopback_address() {
        let error = serve("0.0.0.0:0".parse().unwrap(), None).await.unwrap_err();
        assert!(error.to_string().contains("loopback"));
    }
}
