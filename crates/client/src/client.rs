//! The HTTP core: addressing, the token header, status handling and JSON decoding.

use std::fmt;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ward_api::{ErrorResponse, ListKeys, Response};

use crate::ClientError;

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

/// A client for one Vault-compatible server. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Base address without a trailing slash, e.g. `http://127.0.0.1:8200`.
    address: String,
    /// The token as a ready header value, marked sensitive so it is never logged.
    token: Option<HeaderValue>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A reply's status and body, before interpretation.
pub(crate) struct RawReply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
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
        let mut client = Self {
            http,
            address: trimmed.to_owned(),
            token: None,
        };
        client.set_token(token)?;
        Ok(client)
    }

    /// The server's base address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Replaces the token (None: send requests without one).
    pub fn set_token(&mut self, token: Option<&str>) -> Result<(), ClientError> {
        self.token = match token {
            Some(token) if !token.is_empty() => {
                let mut value =
                    HeaderValue::from_str(token).map_err(|_| ClientError::InvalidToken)?;
                value.set_sensitive(true);
                Some(value)
            }
            _ => None,
        };
        Ok(())
    }

    /// The full URL of an API path: `<address>/v1/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.address, path.trim_start_matches('/'))
    }

    /// Sends one request. The single choke point for every call (future caching, retries).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<RawReply, ClientError> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = &self.token {
            request = request.header(TOKEN_HEADER, token.clone());
        }
        if let Some((bytes, content_type)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let reply = request.send().await.map_err(ClientError::Transport)?;
        let status = reply.status();
        let body = reply.bytes().await.map_err(ClientError::Transport)?;
        Ok(RawReply {
            status,
            body: body.to_vec(),
        })
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
fn with_query(path: &str, query: &[(String, String)]) -> String {
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
        };
        let decoded: Option<Response> = decode_optional("x", reply).unwrap();
        assert!(decoded.is_none());
    }
}
