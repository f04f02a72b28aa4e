//! The API proxy: a local listener that forwards `/v1/` requests to the server, with the
//! agent's token when a request carries none, and keeps successful reads to answer with
//! while the server is sealed or cannot be reached (Vault Agent's API proxy and cache).
//!
//! Reads go to the server whenever it answers, so a cached read is never staler than the
//! outage it covers. A cached read is served only to the token that made it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ward_client::{Client, Resilience};
use ward_crypto::sha256;

use crate::AgentError;

/// Most reads the cache keeps; the oldest go first.
const CACHE_CAPACITY: usize = 1000;

/// The header Vault reads the token from.
const TOKEN_HEADER: &str = "x-vault-token";

/// The header telling a client its read came from the agent's cache (as Vault Agent's
/// `X-Cache`).
const CACHE_HEADER: &str = "x-cache";

struct Proxy {
    /// The agent's client (its token kept fresh by auto-auth), without retries: the
    /// application's own client decides about retrying.
    client: Client,
    use_auto_auth_token: bool,
    cache: Option<Mutex<HashMap<CacheKey, Cached>>>,
}

/// A read: the SHA-256 of the token it was made with (never the token) and its path.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    token: Option<[u8; 32]>,
    path: String,
}

struct Cached {
    body: Bytes,
    at: Instant,
}

/// Binds the listeners and serves them in background tasks.
pub(crate) async fn start(
    client: &Client,
    addresses: &[SocketAddr],
    use_auto_auth_token: bool,
    caches: bool,
) -> Result<Vec<tokio::task::JoinHandle<()>>, AgentError> {
    let proxy = Arc::new(Proxy {
        client: client.clone().with_resilience(Resilience {
            max_attempts: 1,
            ..Resilience::default()
        }),
        use_auto_auth_token,
        cache: caches.then(Mutex::default),
    });
    let router = Router::new().fallback(forward).with_state(proxy);
    let mut tasks = Vec::new();
    for address in addresses {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(AgentError::io(format!("listening on {address}")))?;
        say!("ward agent: API proxy listening on http://{address}");
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                say!("ward agent: the API proxy stopped: {error}");
            }
        }));
    }
    Ok(tasks)
}

/// Forwards one request.
async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(path) = uri
        .path_and_query()
        .and_then(|p| p.as_str().strip_prefix("/v1/"))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "the API proxy serves /v1/ paths only",
        );
    };
    let own_token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let mut client = proxy.client.clone();
    let token_key = match own_token {
        Some(token) => {
            if client.set_token(Some(token)).is_err() {
                return error(StatusCode::BAD_REQUEST, "invalid token header");
            }
            Some(sha256(token.as_bytes()))
        }
        None if proxy.use_auto_auth_token => client.token().map(|t| sha256(t.as_bytes())),
        None => {
            if client.set_token(None).is_err() {
                return error(StatusCode::BAD_REQUEST, "invalid token header");
            }
            None
        }
    };
    let content_type = match headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes) {
        Some(b"application/merge-patch+json") => "application/merge-patch+json",
        _ => "application/json",
    };
    let body = (!body.is_empty()).then(|| (body.to_vec(), content_type));
    let cacheable = proxy.cache.is_some()
        && method == Method::GET
        && !path.starts_with("sys/")
        && !path.starts_with("auth/");
    let key = CacheKey {
        token: token_key,
        path: path.to_owned(),
    };
    match client.forward(method.as_str(), path, body).await {
        Ok((200, reply)) if cacheable => {
            let reply = Bytes::from(reply);
            proxy.remember(key, reply.clone());
            json(StatusCode::OK, reply)
        }
        Ok((status, reply)) if status < 500 || !cacheable => json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            Bytes::from(reply),
        ),
        Ok((status, reply)) => proxy.recall(&key).unwrap_or_else(|| {
            json(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                Bytes::from(reply),
            )
        }),
        Err(failure) => {
            let cached = if cacheable { proxy.recall(&key) } else { None };
            cached.unwrap_or_else(|| {
                error(
                    StatusCode::BAD_GATEWAY,
                    &format!("ward agent: the server cannot be reached: {failure}"),
                )
            })
        }
    }
}

impl Proxy {
    fn remember(&self, key: CacheKey, body: Bytes) {
        let Some(cache) = &self.cache else { return };
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY && !cache.contains_key(&key) {
            let oldest = cache
                .iter()
                .min_by_key(|(_, cached)| cached.at)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            key,
            Cached {
                body,
                at: Instant::now(),
            },
        );
    }

    /// The cached read, with its age, as Vault Agent answers from its cache.
    fn recall(&self, key: &CacheKey) -> Option<Response> {
        let cache = self
            .cache
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cached = cache.get(key)?;
        let mut response = json(StatusCode::OK, cached.body.clone());
        let headers = response.headers_mut();
        headers.insert(CACHE_HEADER, HeaderValue::from_static("HIT"));
        headers.insert(
            header::AGE,
            HeaderValue::from(cached.at.elapsed().as_secs()),
        );
        Some(response)
    }
}

fn json(status: StatusCode, body: Bytes) -> Response {
    if body.is_empty() {
        return status.into_response();
    }
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Vault's error envelope.
fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [message] }).to_string();
    json(status, Bytes::from(body))
}
