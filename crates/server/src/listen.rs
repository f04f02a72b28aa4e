//! The accept loop: HTTP/1.1 connections served by hyper straight into the API handler.
//!
//! Why not `axum::serve`: it cannot be configured. Ward needs a deadline on reading a
//! request's head (a client that opens connections and sends headers a byte at a time would
//! otherwise hold them open for ever), and the API has one handler, so axum's router adds
//! work to every request and decides nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::http::{self, AppState};

/// After `accept` fails for want of a resource (file descriptors, say), wait this long before
/// the next attempt, so that the loop does not spin while none is freed.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `state` on `listener` until `shutdown` completes, then waits for the requests in
/// flight to finish (idle keep-alive connections are closed at once).
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
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
    let counts = crate::conn::ConnectionCounts::new(state.max_connections_per_address);
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
        let Some(slot) = counts.admit(peer.ip()) else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let state = Arc::clone(&state);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let state = Arc::clone(&state);
            async move {
                Ok::<_, std::convert::Infallible>(
                    http::handle(state, peer, request.map(Body::new)).await,
                )
            }
        });
        let io = TokioIo::new(crate::conn::JsonErrorBodies::new(stream));
        let connection = connections.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// Answers a connection over its address's limit with a 429 and closes it, without reading
/// what it sends.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let answer = crate::conn::too_many_connections();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&answer)).await;
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
