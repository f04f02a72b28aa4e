//! The trivial handler: the ceiling any HTTP server on this machine can reach, served by axum
//! in a process of its own (the benchmark starts itself with the `trivial` subcommand), so that
//! it runs exactly as Ward and OpenBao do: its own process, its own multi-threaded runtime.

use std::io::Write as _;
use std::net::SocketAddr;

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

/// Serves the trivial handler on `listen` until killed, after printing its bound address.
pub(crate) async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        listen.ip().is_loopback(),
        "the trivial server listens on loopback only, not {listen}"
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ADDRESS_PREFIX} http://{bound}")?;
    stdout.flush()?;
    drop(stdout);
    axum::serve(listener, router()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{RequestTemplate, send_once};
    use std::time::Duration;

    #[tokio::test]
    async fn trivial_handler_answers_json_over_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router()).await });
        let request = RequestTemplate::new(addr, None).unwrap().get("/").unwrap();
        let (status, body) = send_once(addr, request, Duration::from_secs(5))
            .await
            .unwrap();
        server.abort();
        assert_eq!(status, 200);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], "ok");
    }

    #[tokio::test]
    async fn refuses_a_non_loopback_address() {
        let error = serve("0.0.0.0:0".parse().unwrap()).await.unwrap_err();
        assert!(error.to_string().contains("loopback"));
    }
}
