//! What the accept loop wraps around each connection: a count of connections per client
//! address, and JSON bodies for the answers hyper writes on its own.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Open connections by client address, so that one address cannot hold them all (each one
/// costs memory for what it has sent, and a file descriptor).
pub(crate) struct ConnectionCounts {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection: gives its place back when dropped.
pub(crate) struct ConnectionSlot {
    counts: Arc<ConnectionCounts>,
    addr: IpAddr,
}

impl ConnectionCounts {
    /// Counts with at most `limit` connections per address (0: no limit).
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection from `addr`, or `None` when it has its limit.
    pub(crate) fn admit(self: &Arc<Self>, addr: IpAddr) -> Option<ConnectionSlot> {
        if self.limit == 0 {
            return Some(ConnectionSlot {
                counts: Arc::clone(self),
                addr,
            });
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(addr).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            counts: Arc::clone(self),
            addr,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if self.counts.limit == 0 {
            return;
        }
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.addr) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.addr);
            }
        }
    }
}

macro_rules! hsts {
    () => {
        "max-age=31536000; includeSubDomains"
    };
}

/// The `Strict-Transport-Security` value of every answer over TLS (OpenBao's).
pub(crate) const HSTS: &str = hsts!();

/// The same as a header line, for the answers written here.
pub(crate) const HSTS_LINE: &str = concat!("strict-transport-security: ", hsts!(), "\r\n");

/// The whole answer to a connection over its address's limit (written, then closed), with
/// `extra_headers` (whole lines).
pub(crate) fn too_many_connections(extra_headers: &str) -> Vec<u8> {
    closing_answer(
        "429 Too Many Requests",
        &format!("retry-after: 1\r\n{extra_headers}"),
        "too many open connections from this address",
    )
}

/// The whole answer to a client that sent plain HTTP to the TLS port (written, then closed).
pub(crate) fn http_on_tls_port() -> Vec<u8> {
    closing_answer(
        "400 Bad Request",
        "",
        "client sent an HTTP request to an HTTPS server",
    )
}

/// An answer in Vault's error shape that closes the connection; `headers` are whole lines.
fn closing_answer(status: &str, headers: &str, message: &str) -> Vec<u8> {
    let body = format!("{{\"errors\":[\"{message}\"]}}\n");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
         {headers}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A connection whose writes pass through unchanged, except the answers hyper writes by
/// itself when it cannot parse a request's head (400, 414 URI too long, 431 header fields
/// too large): those come with an empty body, and Vault's clients expect
/// `{"errors": [...]}`. Ward's own handler never answers a 4xx with an empty body, so such
/// a head can only be hyper's; hyper closes the connection after it.
pub(crate) struct JsonErrorBodies<S> {
    inner: S,
    /// Header lines the replacements carry (HSTS over TLS).
    extra_headers: &'static str,
    /// A replacement answer still being written, and how much of it has gone.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonErrorBodies<S> {
    pub(crate) fn new(inner: S, extra_headers: &'static str) -> Self {
        Self {
            inner,
            extra_headers,
            pending: None,
        }
    }
}

/// Vault's error answer for one of hyper's bodiless heads in `buf`, if `buf` is one, with
/// `extra_headers` (whole lines).
fn replacement(buf: &[u8], extra_headers: &str) -> Option<Vec<u8>> {
    let head = buf.strip_suffix(b"\r\n\r\n")?;
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let code = status_line.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let message = match code {
        "400" => "malformed request",
        "414" => "request URI too long",
        "431" => "request header fields too large",
        _ => return None,
    };
    let mut empty = false;
    let mut date = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" if value.trim() == "0" => empty = true,
            "date" => date = Some(value.trim()),
            _ => {}
        }
    }
    if !empty {
        return None;
    }
    let body = format!("{{\"errors\":[\"{message}\"]}}\n");
    let mut out = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
         {extra_headers}connection: close\r\n\
         content-length: {}\r\n",
        body.len()
    );
    if let Some(date) = date {
        out.push_str("date: ");
        out.push_str(date);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<S: AsyncWrite + Unpin> JsonErrorBodies<S> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, sent)) = &mut self.pending {
            if *sent == bytes.len() {
                self.pending = None;
                break;
            }
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrorBodies<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrorBodies<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_pending(cx))?;
        // Hyper's own answers are short heads written in one piece.
        if buf.len() < 512
            && buf.starts_with(b"HTTP/1.1 4")
            && let Some(answer) = replacement(buf, self.extra_headers)
        {
            // Taken whole now (hyper must not offer it again); what the socket does not
            // take at once goes out in the next write or flush.
            self.pending = Some((answer, 0));
            if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bodiless_error_heads_get_json() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
date: Sun, 06 Dec 2026 08:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(head, "").unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["errors"][0], "request header fields too large");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(out.contains("date: Sun, 06 Dec 2026 08:00:00 GMT\r\n"));
    }

    #[test]
    fn other_answers_pass_unchanged() {
        // A head with a body to follow (Ward's own 400), a success, and a partial head.
        for head in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 30\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n",
        ] {
            assert!(replacement(head, "").is_none());
        }
    }

    #[test]
    fn connections_are_counted_per_address() {
        let counts = ConnectionCounts::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = counts.admit(a).unwrap();
        let _second = counts.admit(a).unwrap();
        assert!(counts.admit(a).is_none());
        assert!(counts.admit(b).is_some());
        drop(first);
        assert!(counts.admit(a).is_some());
    }
}
