//! The HTTP/1.1 client pieces shared by the load generator and the setup calls: one keep-alive
//! hyper connection per caller, no pool, so that the benchmark controls exactly how many
//! connections exist.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request as the benchmark sends it: the whole body in memory.
pub(crate) type BenchRequest = Request<Full<Bytes>>;

/// Builds the request a worker sends next, from the worker's index and its request sequence
/// number (so that write scenarios can spread their keys).
pub(crate) type RequestFactory =
    Arc<dyn Fn(usize, u64) -> Result<BenchRequest, hyper::http::Error> + Send + Sync>;

/// The header that carries a Vault (and Ward, and OpenBao) token.
const VAULT_TOKEN: HeaderName = HeaderName::from_static("x-vault-token");

/// Where connections go: a server's address, over TLS when it has a connector.
#[derive(Clone)]
pub(crate) struct Dial {
    /// The server's address.
    pub(crate) addr: SocketAddr,
    /// TLS settings trusting the server's CA (`None`: plain HTTP).
    pub(crate) tls: Option<tokio_rustls::TlsConnector>,
}

impl Dial {
    /// Plain HTTP to `addr`.
    pub(crate) fn plain(addr: SocketAddr) -> Self {
        Self { addr, tls: None }
    }

    /// TLS to `addr`, trusting the PEM CA certificates in `ca_file` (TLS 1.3 and 1.2, with
    /// rustls's defaults over aws-lc-rs, as Ward's own client).
    pub(crate) fn tls(addr: SocketAddr, ca_file: &std::path::Path) -> anyhow::Result<Self> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file)
            .with_context(|| format!("reading {}", ca_file.display()))?
        {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            addr,
            tls: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
        })
    }
}

/// One open HTTP/1.1 keep-alive connection.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Opens a TCP connection (Nagle off, as every HTTP client does), the TLS handshake when
    /// `dial` says so, and the HTTP/1 handshake.
    pub(crate) async fn open(dial: &Dial) -> anyhow::Result<Self> {
        let addr = dial.addr;
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let Some(tls) = &dial.tls else {
            return Self::over(stream).await;
        };
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let stream = tls
            .connect(name, stream)
            .await
            .with_context(|| format!("TLS handshake with {addr}"))?;
        Self::over(stream).await
    }

    async fn over<S>(stream: S) -> anyhow::Result<Self>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // The connection task ends by itself when the sender is dropped or the peer closes.
        tokio::spawn(async move {
            let _ended = connection.await;
        });
        Ok(Self { sender })
    }

    /// Sends one request and reads the whole response body (the connection can only be reused
    /// once the body has been read).
    pub(crate) async fn send(
        &mut self,
        request: BenchRequest,
    ) -> Result<(StatusCode, Bytes), hyper::Error> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Sends one request over a fresh connection, with a time limit, for setup calls and probes.
pub(crate) async fn send_once(
    dial: &Dial,
    request: BenchRequest,
    limit: Duration,
) -> anyhow::Result<(StatusCode, Bytes)> {
    tokio::time::timeout(limit, async {
        let mut connection = Connection::open(dial).await?;
        Ok(connection.send(request).await?)
    })
    .await
    .with_context(|| format!("no answer from {} within {limit:?}", dial.addr))?
}

/// What every request to one server carries: its Host header and, for Vault-shaped servers,
/// the token.
#[derive(Clone)]
pub(crate) struct RequestTemplate {
    host: HeaderValue,
    token: Option<HeaderValue>,
}

impl RequestTemplate {
    /// A template for the server at `addr`, sending `token` (if any) as X-Vault-Token.
    pub(crate) fn new(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Self> {
        let host = HeaderValue::from_str(&addr.to_string())?;
        let token = token
            .map(HeaderValue::from_str)
            .transpose()
            .context("the token is not a valid header value")?
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        Ok(Self { host, token })
    }

    /// A GET of `path`.
    pub(crate) fn get(&self, path: &str) -> Result<BenchRequest, hyper::http::Error> {
        self.build(Method::GET, path, None)
    }

    /// A POST of the JSON document `body` to `path`.
    pub(crate) fn post_json(
        &self,
        path: &str,
        body: Bytes,
    ) -> Result<BenchRequest, hyper::http::Error> {
        self.build(Method::POST, path, Some(body))
    }

    /// A DELETE of `path`.
    pub(crate) fn delete(&self, path: &str) -> Result<BenchRequest, hyper::http::Error> {
        self.build(Method::DELETE, path, None)
    }

    /// A PUT of the JSON document `body` to `path`.
    pub(crate) fn put_json(
        &self,
        path: &str,
        body: Bytes,
    ) -> Result<BenchRequest, hyper::http::Error> {
        self.build(Method::PUT, path, Some(body))
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<BenchRequest, hyper::http::Error> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(token) = &self.token {
            builder = builder.header(VAULT_TOKEN, token.clone());
        }
        match body {
            Some(body) => builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(Full::new(body)),
            None => builder.body(Full::new(Bytes::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_sets_host_token_and_content_type() {
        let addr: SocketAddr = "127.0.0.1:8200".parse().unwrap();
        let template = RequestTemplate::new(addr, Some("s.token")).unwrap();
        let request = template
            .post_json("/v1/secret/data/x", Bytes::from_static(b"{}"))
            .unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().path(), "/v1/secret/data/x");
        assert_eq!(request.headers()[HOST], "127.0.0.1:8200");
        assert_eq!(request.headers()[VAULT_TOKEN], "s.token");
        assert!(request.headers()[VAULT_TOKEN].is_sensitive());
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");

        let anonymous = RequestTemplate::new(addr, None).unwrap();
        let request = anonymous.get("/").unwrap();
        assert!(!request.headers().contains_key(VAULT_TOKEN));
        assert!(!request.headers().contains_key(CONTENT_TYPE));
    }
}
