//! The HTTP core: addressing, the token header, status handling and JSON decoding.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ward_api::{ErrorResponse, ListKeys, Response};
use zeroize::Zeroizing;

use crate::ClientError;
use crate::resilience::{Breaker, CircuitState, Degraded, HealthState, ReadCache, Resilience};

/// The address used when none is configured, as for Vault.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:8200";

/// The header Vault reads the token from.
const TOKEN_HEADER: &str = "X-Vault-Token";

/// Longest server error text (when the body is not JSON) carried into an error.
const MAX_RAW_ERROR_LEN: usize = 512;

/// How long a request may take before it fails, as Vault's client default (60 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Connection settings beyond the address and token.
#[derive(Clone)]
pub struct ClientOptions {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// PEM certificates (a CA bundle) to trust instead of the system's roots, as Vault's
    /// `VAULT_CACERT` does.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Accept any server certificate. For tests against self-signed servers only: it
    /// removes the protection TLS gives the token and the secrets.
    pub tls_skip_verify: bool,
    /// A PEM client certificate (chain) and its PEM private key, presented to servers that
    /// ask for one (mutual TLS), as Vault's `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY`.
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            ca_cert_pem: None,
            tls_skip_verify: false,
            client_cert_pem: None,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("timeout", &self.timeout)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|_| "<set>"))
            .field("tls_skip_verify", &self.tls_skip_verify)
            // The key is a secret; whether one is set is all Debug says.
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A client for one Vault-compatible server. Cheap to clone: clones share the connection
/// pool, the token (kept fresh by [`Client::start_renewal`]), the read cache and the
/// degraded state until [`Client::set_token`] gives one a token of its own.
///
/// Resilience ([`Resilience`]) is on by default: KV reads are cached, idempotent calls are
/// retried with backoff, a circuit breaker per server address stops calls to a server that
/// keeps failing, and [`Client::read_secret`] falls back to `WARD_FALLBACK_<NAME>`.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Base address without a trailing slash, e.g. `http://127.0.0.1:8200`.
    address: String,
    /// What belongs to one identity: its token, its cached reads, its fallbacks.
    pub(crate) session: Arc<Session>,
    pub(crate) resilience: Arc<Resilience>,
    breaker: Arc<Breaker>,
}

/// The state clones share until one changes its token.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The token as a ready header value, marked sensitive so it is never logged. Renewal
    /// and re-login replace it in place.
    token: RwLock<Option<HeaderValue>>,
    /// KV reads made with this token (a cache per token: another token may not see them).
    pub(crate) cache: ReadCache,
    pub(crate) degraded: Degraded,
    /// The mounts of the secrets [`Client::read_secret`] has read.
    pub(crate) kv_mounts: std::sync::Mutex<std::collections::HashMap<String, crate::KvMountInfo>>,
    /// Bumped each time renewal or a login replaces the token, so that a holder of the
    /// token (an agent's sink file) learns of a new one without comparing secrets.
    generation: std::sync::atomic::AtomicU64,
}

impl Session {
    fn token(&self) -> Option<HeaderValue> {
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the token in place, for every clone sharing this session.
    pub(crate) fn replace_token(&self, token: &str) -> Result<(), ClientError> {
        let value = token_header(Some(token))?;
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = value;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }
}

/// The header value of a token (`None` for none or empty), marked sensitive.
fn token_header(token: Option<&str>) -> Result<Option<HeaderValue>, ClientError> {
    match token {
        Some(token) if !token.is_empty() => {
            let mut value = HeaderValue::from_str(token).map_err(|_| ClientError::InvalidToken)?;
            value.set_sensitive(true);
            Ok(Some(value))
        }
        _ => Ok(None),
    }
}

/// Whether a call may be repeated without changing its effect: reads. Writes are retried
/// only when the connection was never made.
fn is_idempotent(method: &Method) -> bool {
    matches!(method.as_str(), "GET" | "HEAD" | "LIST" | "OPTIONS")
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .field("token", &self.session.token().map(|_| "<redacted>"))
            .field("resilience", &self.resilience)
            .finish_non_exhaustive()
    }
}

/// A reply's status and body, before interpretation.
pub(crate) struct RawReply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    /// The `Retry-After` header in seconds (the HTTP-date form is not used by Vault).
    pub(crate) retry_after: Option<Duration>,
}

impl Client {
    /// A client for the server at `address` (`http(s)://host:port`), authenticating with
    /// `token` when given.
    pub fn new(address: &str, token: Option<&str>) -> Result<Self, ClientError> {
        Self::with_options(address, token, &ClientOptions::default())
    }

    /// Like [`Client::new`], with a timeout and TLS trust settings.
    pub fn with_options(
        address: &str,
        token: Option<&str>,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("ward-client/", env!("CARGO_PKG_VERSION")))
            .timeout(options.timeout)
            .tls_danger_accept_invalid_certs(options.tls_skip_verify);
        if let Some(pem) = &options.ca_cert_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(ClientError::InvalidCaCertificate)?;
            if certs.is_empty() {
                return Err(ClientError::InvalidRequest(
                    "the CA certificate file holds no PEM certificate".into(),
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some((cert, key)) = &options.client_cert_pem {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity =
                reqwest::Identity::from_pem(&pem).map_err(ClientError::InvalidClientCertificate)?;
            builder = builder.identity(identity);
        }
        let http = builder.build().map_err(ClientError::Transport)?;
        Self::with_http_client(http, address, token)
    }

    /// Like [`Client::new`], with a caller-configured reqwest client (TLS roots, timeouts).
    pub fn with_http_client(
        http: reqwest::Client,
        address: &str,
        token: Option<&str>,
    ) -> Result<Self, ClientError> {
        let trimmed = address.trim().trim_end_matches('/');
        let valid = reqwest::Url::parse(trimmed)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
        if valid.is_none() {
            return Err(ClientError::InvalidAddress(address.to_owned()));
        }
        let session = Session {
            token: RwLock::new(token_header(token)?),
            ..Session::default()
        };
        Ok(Self {
            http,
            address: trimmed.to_owned(),
            session: Arc::new(session),
            resilience: Arc::new(Resilience::default()),
            breaker: Breaker::for_address(trimmed),
        })
    }

    /// The same client with other resilience settings (see [`Resilience`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ward_client::{Client, Resilience};
    ///
    /// let client = Client::new("http://127.0.0.1:8200", Some("token"))?
    ///     .with_resilience(Resilience {
    ///         cache_ttl: Duration::from_secs(30),
    ///         max_attempts: 5,
    ///         ..Resilience::default()
    ///     });
    /// # Ok::<(), ward_client::ClientError>(())
    /// ```
    pub fn with_resilience(mut self, resilience: Resilience) -> Self {
        self.resilience = Arc::new(resilience);
        self
    }

    /// The resilience settings in force.
    pub fn resilience(&self) -> &Resilience {
        &self.resilience
    }

    /// The state of this server's circuit breaker.
    pub fn circuit_state(&self) -> CircuitState {
        self.breaker.state(&self.resilience)
    }

    /// [`HealthState::Degraded`] while secrets are being served from fallback variables.
    pub fn health_state(&self) -> HealthState {
        self.session.degraded.state()
    }

    /// True while at least one secret is served from a fallback variable.
    pub fn is_degraded(&self) -> bool {
        self.health_state() != HealthState::Healthy
    }

    /// Drops the cached reads whose API path starts with `prefix` (`secret/data/app`);
    /// `""` empties the cache. A write through this client drops the cached reads under its
    /// first path segment (`secret/`) on its own.
    pub fn invalidate_cache(&self, prefix: &str) {
        self.session.cache.invalidate(prefix);
    }

    /// The server's base address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.session.token().is_some()
    }

    /// The token in use, for a process that hands it on (`ward agent`'s sink file). Wiped
    /// when dropped.
    pub fn token(&self) -> Option<Zeroizing<String>> {
        let value = self.session.token()?;
        value
            .to_str()
            .ok()
            .map(|token| Zeroizing::new(token.to_owned()))
    }

    /// A number that changes each time [`Client::login`] or renewal's re-login replaces the
    /// token: a holder of [`Client::token`] compares it to know when to take the new one.
    pub fn token_generation(&self) -> u64 {
        self.session
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Sends a request as it came (`ward agent`'s API proxy): `method` on `/v1/<path>` (the
    /// query string included) with an optional body of `content_type`, through the
    /// breaker and retries like every call. Returns the status and the body unread.
    pub async fn forward(
        &self,
        method: &str,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ClientError::InvalidRequest(format!("invalid method {method:?}")))?;
        let reply = self.send(method, path, body).await?;
        Ok((reply.status.as_u16(), reply.body))
    }

    /// Replaces the token (None: send requests without one). This client then has a
    /// session of its own: an empty cache, no renewal, clones made before unaffected.
    pub fn set_token(&mut self, token: Option<&str>) -> Result<(), ClientError> {
        self.session = Arc::new(Session {
            token: RwLock::new(token_header(token)?),
            ..Session::default()
        });
        Ok(())
    }

    /// The full URL of an API path: `<address>/v1/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.address, path.trim_start_matches('/'))
    }

    /// Sends one call: the single choke point for every request. Asks the circuit breaker,
    /// retries reads (and any call whose connection was never made), records the outcome,
    /// and drops the cached reads a write may change.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<RawReply, ClientError> {
        let idempotent = is_idempotent(&method);
        self.send_with(method, path, body, idempotent).await
    }

    /// [`Client::send`], saying whether the call is idempotent (safe to repeat).
    pub(crate) async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
        idempotent: bool,
    ) -> Result<RawReply, ClientError> {
        if !is_idempotent(&method) {
            // A write may change any cached read of its mount: drop those under the same
            // first path segment (a superset of the mount's), so a renewal or a login
            // (`auth/...`) keeps the cached secrets.
            let top = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            self.session.cache.invalidate(&format!("{top}/"));
        }
        let settings = &*self.resilience;
        // The breaker counts calls, not attempts: a call's retries are part of it (and a
        // half-open probe keeps its retries).
        if let Some(last_error) = self.breaker.refuse(settings) {
            return Err(ClientError::CircuitOpen {
                address: self.address.clone(),
                last_error,
            });
        }
        let mut attempt = 1;
        loop {
            let result = self.send_once(method.clone(), path, body.clone()).await;
            let (failure, retryable, retry_after) = match &result {
                Ok(reply) => {
                    let status = reply.status;
                    let server_trouble =
                        status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED;
                    let retryable = server_trouble || status == StatusCode::TOO_MANY_REQUESTS;
                    let failure = server_trouble.then(|| format!("HTTP {}", status.as_u16()));
                    (failure, idempotent && retryable, reply.retry_after)
                }
                Err(error @ ClientError::Transport(transport)) => (
                    Some(error.to_string()),
                    idempotent || transport.is_connect(),
                    None,
                ),
                Err(_) => (None, false, None),
            };
            if !retryable || attempt >= settings.max_attempts {
                self.breaker.record(settings, &self.address, failure);
                return result;
            }
            tokio::time::sleep(settings.backoff(attempt, retry_after)).await;
            attempt += 1;
        }
    }

    /// Sends one request with a streamed body (a snapshot), once: never retried (a stream
    /// cannot be sent twice) and never cached; the reply is returned unread, to be streamed.
    pub(crate) async fn send_streamed(
        &self,
        method: Method,
        path: &str,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = self.session.token() {
            request = request.header(TOKEN_HEADER, token);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(body);
        }
        request.send().await.map_err(ClientError::Transport)
    }

    /// Sends one request, once.
    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<RawReply, ClientError> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = self.session.token() {
            request = request.header(TOKEN_HEADER, token);
        }
        if let Some((bytes, content_type)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let reply = request.send().await.map_err(ClientError::Transport)?;
        let status = reply.status();
        let retry_after = reply
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = reply.bytes().await.map_err(ClientError::Transport)?;
        Ok(RawReply {
            status,
            body: body.to_vec(),
            retry_after,
        })
    }

    /// Reads `path` through the read cache: a fresh cached 200 answers without a request;
    /// a 200 from the server is stored. The second value says whether the cache answered.
    pub(crate) async fn read_cached_as<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(Option<Response<T>>, bool), ClientError> {
        if let Some(body) = self.session.cache.get(&self.resilience, path) {
            let reply = RawReply {
                status: StatusCode::OK,
                body: body.to_vec(),
                retry_after: None,
            };
            return Ok((decode_optional(path, reply)?, true));
        }
        let reply = self.send(Method::GET, path, None).await?;
        if reply.status == StatusCode::OK {
            self.session.cache.put(&self.resilience, path, &reply.body);
        }
        Ok((self.interpret_read(path, reply)?, false))
    }

    /// Sends a request with an optional JSON body.
    pub(crate) async fn send_json<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<RawReply, ClientError> {
        let body = match body {
            Some(body) => Some((encode(path, body)?, "application/json")),
            None => None,
        };
        self.send(method, path, body).await
    }

    /// Reads `path` (GET). `Ok(None)` when it does not exist (404 with no data).
    pub async fn read(&self, path: &str) -> Result<Option<Response>, ClientError> {
        self.read_as(path).await
    }

    /// Reads `path` (GET) with `query` as URL parameters, as Vault's `ReadWithData` does.
    /// `Ok(None)` when it does not exist.
    pub async fn read_with_query(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Option<Response>, ClientError> {
        self.read_as(&with_query(path, query)).await
    }

    /// Reads `path` (GET) and decodes its `data` as `T`.
    ///
    /// As Vault's own client does, a 404 that still carries data or warnings (a KV v2 read
    /// of a deleted version) is returned rather than treated as absent.
    pub async fn read_as<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<Response<T>>, ClientError> {
        let reply = self.send(Method::GET, path, None).await?;
        self.interpret_read(path, reply)
    }

    /// A read's reply as [`Client::read_as`] describes it.
    fn interpret_read<T: DeserializeOwned>(
        &self,
        path: &str,
        reply: RawReply,
    ) -> Result<Option<Response<T>>, ClientError> {
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(serde_json::from_slice::<Response<T>>(&reply.body)
                .ok()
                .filter(|r| {
                    r.data.is_some() || r.warnings.as_ref().is_some_and(|w| !w.is_empty())
                }));
        }
        decode_optional(path, reply)
    }

    /// Writes `body` to `path` (POST). `Ok(None)` when the server answers 204.
    pub async fn write<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Option<Response>, ClientError> {
        self.write_as(path, body).await
    }

    /// Writes `body` to `path` (POST) and decodes the reply's `data` as `T`.
    pub async fn write_as<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Option<Response<T>>, ClientError> {
        let reply = self.send_json(Method::POST, path, Some(body)).await?;
        decode_optional(path, reply)
    }

    /// Lists the keys under `path` (the `LIST` method). `Ok(None)` when there are none.
    pub async fn list(&self, path: &str) -> Result<Option<Vec<String>>, ClientError> {
        let method = Method::from_bytes(b"LIST")
            .map_err(|_| ClientError::InvalidRequest("LIST method".into()))?;
        let reply = self.send(method, path, None).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response: Option<Response<ListKeys>> = decode_optional(path, reply)?;
        Ok(response.and_then(|r| r.data).map(|d| d.keys))
    }

    /// Deletes `path`. `Ok(None)` when the server answers 204.
    pub async fn delete(&self, path: &str) -> Result<Option<Response>, ClientError> {
        let reply = self.send(Method::DELETE, path, None).await?;
        decode_optional(path, reply)
    }

    /// Deletes `path` with `query` as URL parameters, as Vault's `DeleteWithData` does.
    pub async fn delete_with_query(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Option<Response>, ClientError> {
        self.delete(&with_query(path, query)).await
    }

    /// Patches `path` with a JSON merge patch (`application/merge-patch+json`, as KV v2
    /// requires).
    pub async fn patch<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Option<Response>, ClientError> {
        let bytes = encode(path, body)?;
        let reply = self
            .send(
                Method::PATCH,
                path,
                Some((bytes, "application/merge-patch+json")),
            )
            .await?;
        decode_optional(path, reply)
    }
}

/// `path?k=v&...` with the pairs form-encoded; `path` unchanged when there are none.
pub(crate) fn with_query(path: &str, query: &[(String, String)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let encoded: String = reqwest::Url::parse("http://query.invalid/")
        .map(|mut url| {
            url.query_pairs_mut().extend_pairs(query);
            url.query().unwrap_or_default().to_owned()
        })
        .unwrap_or_default();
    format!("{path}?{encoded}")
}

/// Serialises a request body.
fn encode<B: Serialize + ?Sized>(path: &str, body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(|source| ClientError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// Decodes a 2xx reply (`None` for an empty body) or turns an error status into
/// [`ClientError::Api`].
pub(crate) fn decode_optional<T: DeserializeOwned>(
    path: &str,
    reply: RawReply,
) -> Result<Option<T>, ClientError> {
    if !reply.status.is_success() {
        return Err(api_error(&reply));
    }
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&reply.body)
        .map(Some)
        .map_err(|source| ClientError::Decode {
            path: path.to_owned(),
            source,
        })
}

/// Decodes a 2xx reply that must have a body.
pub(crate) fn decode_required<T: DeserializeOwned>(
    path: &str,
    reply: RawReply,
) -> Result<T, ClientError> {
    if !reply.status.is_success() {
        return Err(api_error(&reply));
    }
    serde_json::from_slice(&reply.body).map_err(|source| ClientError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// The [`ClientError::Api`] for an error reply: the `errors` list, or the raw text (cut
/// short) when the body is not Vault's error shape.
pub(crate) fn api_error(reply: &RawReply) -> ClientError {
    let errors = match serde_json::from_slice::<ErrorResponse>(&reply.body) {
        Ok(body) => body.errors,
        Err(_) => {
            let text = String::from_utf8_lossy(&reply.body);
            let text = text.trim();
            if text.is_empty() {
                Vec::new()
            } else {
                vec![text.chars().take(MAX_RAW_ERROR_LEN).collect()]
            }
        }
    };
    ClientError::Api {
        status: reply.status.as_u16(),
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_joins_address_and_path() {
        let client = Client::new("http://127.0.0.1:8200/", None).unwrap();
        assert_eq!(
            client.url("sys/health"),
            "http://127.0.0.1:8200/v1/sys/health"
        );
        assert_eq!(
            client.url("/secret/data/a"),
            "http://127.0.0.1:8200/v1/secret/data/a"
        );
    }

    #[test]
    fn query_pairs_are_form_encoded() {
        assert_eq!(with_query("a/b", &[]), "a/b");
        let pairs = [
            ("version".to_owned(), "2".to_owned()),
            ("k".to_owned(), "a b&c=d".to_owned()),
        ];
        assert_eq!(with_query("a/b", &pairs), "a/b?version=2&k=a+b%26c%3Dd");
    }

    #[test]
    fn rejects_addresses_that_are_not_http_urls() {
        for bad in ["127.0.0.1:8200", "ftp://host", "", "http://"] {
            assert!(
                matches!(Client::new(bad, None), Err(ClientError::InvalidAddress(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn token_never_shows_in_debug_or_errors() {
        let client = Client::new("http://127.0.0.1:8200", Some("s.supersecret")).unwrap();
        assert!(client.has_token());
        assert!(!format!("{client:?}").contains("supersecret"));
        let error = Client::new("http://127.0.0.1:8200", Some("bad\ntoken-secret")).unwrap_err();
        assert!(matches!(error, ClientError::InvalidToken));
        assert!(!error.to_string().contains("token-secret"));
    }

    #[test]
    fn api_error_uses_the_errors_list_or_the_raw_text() {
        let reply = RawReply {
            status: StatusCode::FORBIDDEN,
            body: br#"{"errors":["permission denied"]}"#.to_vec(),
            retry_after: None,
        };
        let error = api_error(&reply);
        assert_eq!(error.status(), Some(403));
        assert_eq!(
            error.to_string(),
            "server returned HTTP 403: permission denied"
        );
        let reply = RawReply {
            status: StatusCode::BAD_GATEWAY,
            body: b"upstream down".to_vec(),
            retry_after: None,
        };
        assert_eq!(
            api_error(&reply).to_string(),
            "server returned HTTP 502: upstream down"
        );
    }

    #[test]
    fn empty_success_decodes_as_none() {
        let reply = RawReply {
            status: StatusCode::NO_CONTENT,
            body: Vec::new(),
            retry_after: None,
        };
        let decoded: Option<Response> = decode_optional("x", reply).unwrap();
        assert!(decoded.is_none());
    }
}
