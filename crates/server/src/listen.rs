//! The accept loop: HTTP/1.1 connections served by hyper straight into the API handler.
//!
//! Why not `axum::serve`: it cannot be configured. Ward needs a deadline on reading a
//! request's head (a client that opens connections and sends headers a byte at a time would
//! otherwise hold them open for ever), and the API has one handler, so axum's router adds
//! work to every request and decides nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::conn::{HSTS, HSTS_LINE};
use crate::http::{self, AppState};
use crate::tls::{PeerCertificates, TlsListener};

/// After `accept` fails for want of a resource (file descriptors, say), wait this long before
/// the next attempt, so that the loop does not spin while none is freed.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The time a connection over its address's limit is given to take its 429.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Serves `state` on `listener` (over TLS when `tls` is given) until `shutdown` completes,
/// then waits for the requests in flight to finish (idle keep-alive connections are closed at
/// once).
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<TlsListener>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let connections = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // A client that sends its headers a byte at a time would otherwise hold its
        // connection, and what it has sent, for ever (Vault sets Go's `ReadHeaderTimeout`).
        .header_read_timeout(state.header_read_timeout)
        // Ward's responses are small: one copy into the head's buffer is cheaper than a
        // second element in every `writev`.
        .writev(false);
    let builder = Arc::new(builder);
    // As Go's server: the handshake has the time a request's head has, and always some.
    let handshake_timeout = state
        .header_read_timeout
        .unwrap_or(http::DEFAULT_HEADER_READ_TIMEOUT);
    let counts = crate::conn::ConnectionCounts::new(state.max_connections_per_address);
    // Dropped at shutdown: a handshake still under way is then abandoned, so that shutdown
    // does not wait for slow clients' handshakes.
    let (running, stopped) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // The client gave up before it was accepted: nothing is wrong here.
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses go out whole in one write: Nagle's delay would only hold them back.
        let _ = stream.set_nodelay(true);
        let slot = counts.admit(peer.ip());
        let Some(tls) = &tls else {
            match slot {
                Some(slot) => {
                    let connection = Connection {
                        state: Arc::clone(&state),
                        peer,
                        tls: false,
                        certificates: None,
                    };
                    let watched = connections.watch(connection.serve(&builder, stream));
                    tokio::spawn(async move {
                        if let Err(error) = watched.await {
                            tracing::trace!(%error, "connection ended with an error");
                        }
                        drop(slot);
                    });
                }
                None => {
                    tokio::spawn(refuse(stream, ""));
                }
            }
            continue;
        };
        // The handshake runs in the connection's own task, so that a slow client holds up
        // no other; shutdown waits for it through the watcher.
        let acceptor = tls.acceptor();
        let watcher = connections.watcher();
        let state = Arc::clone(&state);
        let builder = Arc::clone(&builder);
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let Some(slot) = slot else {
                // The 429 goes out over TLS too, within one second for handshake and all.
                let refusal = async {
                    if let Some(stream) = accept_tls(acceptor, stream).await {
                        refuse(stream, HSTS_LINE).await;
                    }
                };
                let _ = tokio::time::timeout(REFUSAL_TIME, refusal).await;
                return;
            };
            let handshake = tokio::time::timeout(handshake_timeout, accept_tls(acceptor, stream));
            let stream = tokio::select! {
                handshake = handshake => match handshake {
                    Ok(Some(stream)) => stream,
                    _ => return,
                },
                _ = stopped.changed() => return,
            };
            let certificates = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| PeerCertificates(chain.iter().map(|c| c.to_vec()).collect()));
            let connection = Connection {
                state,
                peer,
                tls: true,
                certificates,
            };
            if let Err(error) = watcher.watch(connection.serve(&builder, stream)).await {
                tracing::trace!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    drop(running);
    connections.shutdown().await;
}

/// What every request of one connection shares.
struct Connection {
    state: Arc<AppState>,
    peer: SocketAddr,
    /// Whether it is over TLS (its responses then carry HSTS).
    tls: bool,
    /// Over TLS, the client's verified certificates, if it presented any.
    certificates: Option<PeerCertificates>,
}

impl Connection {
    /// Serves HTTP/1.1 requests on `stream` until either side closes it.
    fn serve<S>(
        self,
        builder: &hyper::server::conn::http1::Builder,
        stream: S,
    ) -> impl GracefulConnection<Error = hyper::Error> + Send + use<S>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let extra_headers = if self.tls { HSTS_LINE } else { "" };
        // The fields are captured one by one: a plain connection's request then costs one
        // reference count, as before TLS.
        let Self {
            state,
            peer,
            tls,
            certificates,
        } = self;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let state = Arc::clone(&state);
            let certificates = certificates.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    answer(state, peer, tls, certificates, request).await,
                )
            }
        });
        let io = TokioIo::new(crate::conn::JsonErrorBodies::new(stream, extra_headers));
        builder.serve_connection(io, service)
    }
}

/// Answers one request, with what its connection knows added to it and to its response.
async fn answer(
    state: Arc<AppState>,
    peer: SocketAddr,
    tls: bool,
    certificates: Option<PeerCertificates>,
    mut request: hyper::Request<Incoming>,
) -> Response {
    if let Some(certificates) = certificates {
        request.extensions_mut().insert(certificates);
    }
    let mut response = http::handle(state, peer, request.map(Body::new)).await;
    if tls {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}

/// The TLS handshake on `stream`, or `None` when it fails. A client that speaks plain HTTP
/// to the TLS port gets a 400 saying so (as Go's server answers) instead of TLS alert bytes.
async fn accept_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    mut stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    // 22 is the content type of a TLS handshake record: every TLS client starts with one.
    if stream.peek(&mut first).await.ok()? == 1 && first[0] != 22 {
        use tokio::io::AsyncWriteExt;
        let _ = stream.write_all(&crate::conn::http_on_tls_port()).await;
        let _ = stream.shutdown().await;
        return None;
    }
    match acceptor.accept(stream).await {
        Ok(stream) => Some(stream),
        Err(error) => {
            tracing::debug!(%error, "TLS handshake failed");
            None
        }
    }
}

/// Answers a connection over its address's limit with a 429 (with `extra_headers`) and
/// closes it, without reading what it sends.
async fn refuse<S: AsyncWrite + Unpin>(mut stream: S, extra_headers: &str) {
    use tokio::io::AsyncWriteExt;
    let answer = crate::conn::too_many_connections(extra_headers);
    let _ = tokio::time::timeout(REFUSAL_TIME, stream.write_all(&answer)).await;
    let _ = stream.shutdown().await;
}

/// Errors `accept` returns for one connection that failed, not for the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
