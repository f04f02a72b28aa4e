//! Logging in (userpass, AppRole, a token file) and keeping the token alive: renewal in the
//! background at half its TTL, and a new login when renewal is no longer possible.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use ward_api::Auth;

use crate::client::decode_optional;
use crate::token::missing;
use crate::{Client, ClientError};

/// How a client (re)obtains a token.
#[derive(Clone)]
pub enum Login {
    /// `POST auth/<mount>/login` with a role ID and secret ID (the `approle` mount unless
    /// configured otherwise).
    AppRole {
        /// The AppRole mount path (`approle`).
        mount: String,
        /// The role's ID.
        role_id: String,
        /// The secret ID, if the role requires one.
        secret_id: Option<String>,
    },
    /// `POST auth/<mount>/login/<username>` with a password.
    Userpass {
        /// The userpass mount path (`userpass`).
        mount: String,
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// A file holding a token, read again at every login (kept fresh by something else:
    /// an agent, an orchestrator).
    TokenFile(PathBuf),
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The role ID is an identifier; the secret ID and password are secrets.
        match self {
            Self::AppRole { mount, role_id, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .finish_non_exhaustive(),
            Self::Userpass {
                mount, username, ..
            } => f
                .debug_struct("Userpass")
                .field("mount", mount)
                .field("username", username)
                .finish_non_exhaustive(),
            Self::TokenFile(path) => f.debug_tuple("TokenFile").field(path).finish(),
        }
    }
}

impl Client {
    /// `POST auth/<mount>/login`: an AppRole login. Returns the `auth` block; the client's
    /// token is unchanged (see [`Client::login`]).
    pub async fn login_approle(
        &self,
        mount: &str,
        role_id: &str,
        secret_id: Option<&str>,
    ) -> Result<Auth, ClientError> {
        let mut body = json!({ "role_id": role_id });
        if let Some(secret_id) = secret_id {
            body["secret_id"] = json!(secret_id);
        }
        self.login_call(&format!("auth/{}/login", mount.trim_matches('/')), &body)
            .await
    }

    /// `POST auth/<mount>/login/<username>`: a userpass login. Returns the `auth` block;
    /// the client's token is unchanged (see [`Client::login`]).
    pub async fn login_userpass(
        &self,
        mount: &str,
        username: &str,
        password: &str,
    ) -> Result<Auth, ClientError> {
        let path = format!("auth/{}/login/{username}", mount.trim_matches('/'));
        self.login_call(&path, &json!({ "password": password }))
            .await
    }

    /// Logs in with `login` and makes the token this client's (and its clones'). Returns
    /// the token's TTL (zero: it never expires).
    pub async fn login(&self, login: &Login) -> Result<Duration, ClientError> {
        let auth = match login {
            Login::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                self.login_approle(mount, role_id, secret_id.as_deref())
                    .await?
            }
            Login::Userpass {
                mount,
                username,
                password,
            } => self.login_userpass(mount, username, password).await?,
            Login::TokenFile(path) => {
                let token = std::fs::read_to_string(path).map_err(|e| {
                    ClientError::InvalidRequest(format!(
                        "cannot read the token file {}: {e}",
                        path.display()
                    ))
                })?;
                self.session.replace_token(token.trim())?;
                return Ok(Duration::from_secs(self.lookup_self().await?.ttl));
            }
        };
        self.session.replace_token(&auth.client_token)?;
        Ok(Duration::from_secs(auth.lease_duration))
    }

    /// Keeps this client's token alive in the background (a tokio task): renewed at half
    /// its remaining TTL; when renewal fails with a 4xx, or the server no longer extends it
    /// to half its initial TTL (its max TTL is near), it logs in again with `login` (when
    /// given). Network trouble is retried at half the remaining time. Every clone sharing
    /// the token sees the new one. Dropping the handle stops the task.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), ward_client::ClientError> {
    /// use ward_client::{Client, Login};
    ///
    /// let client = Client::new("http://127.0.0.1:8200", None)?;
    /// let login = Login::AppRole {
    ///     mount: "approle".into(),
    ///     role_id: std::env::var("ROLE_ID").unwrap_or_default(),
    ///     secret_id: std::env::var("SECRET_ID").ok(),
    /// };
    /// client.login(&login).await?;
    /// let _renewal = client.start_renewal(Some(login));
    /// // ... use the client for as long as the application runs ...
    /// # Ok(()) }
    /// ```
    pub fn start_renewal(&self, login: Option<Login>) -> RenewalHandle {
        let client = self.clone();
        RenewalHandle {
            task: tokio::spawn(async move { client.renew_forever(login).await }),
        }
    }

    async fn renew_forever(&self, login: Option<Login>) {
        let (mut expires_at, mut initial) = match self.lookup_self().await {
            Ok(token) => (
                Instant::now() + Duration::from_secs(token.ttl),
                Duration::from_secs(token.creation_ttl.max(token.ttl)),
            ),
            // Unknown: try again soon.
            Err(_) => (Instant::now() + Duration::from_secs(2), Duration::ZERO),
        };
        loop {
            if initial.is_zero() && expires_at <= Instant::now() + Duration::from_secs(1) {
                // Nothing known yet: learn the TTL first.
                tokio::time::sleep(Duration::from_secs(1)).await;
            } else {
                let remaining = expires_at.saturating_duration_since(Instant::now());
                tokio::time::sleep((remaining / 2).max(Duration::from_millis(200))).await;
            }
            if initial.is_zero() {
                match self.lookup_self().await {
                    Ok(token) if token.ttl == 0 => return, // never expires: nothing to do
                    Ok(token) => {
                        expires_at = Instant::now() + Duration::from_secs(token.ttl);
                        initial = Duration::from_secs(token.creation_ttl.max(token.ttl));
                    }
                    Err(_) => {}
                }
                continue;
            }
            let relogin = match self.renew_self(None).await {
                Ok(auth) => {
                    let ttl = Duration::from_secs(auth.lease_duration);
                    expires_at = Instant::now() + ttl;
                    tracing::debug!(ttl_seconds = auth.lease_duration, "token renewed");
                    ttl < initial / 2
                }
                Err(error) if error.is_outage() => {
                    tracing::warn!(%error, "token renewal failed; trying again");
                    false
                }
                Err(error) => {
                    tracing::warn!(%error, "the token can no longer be renewed");
                    true
                }
            };
            if !relogin {
                continue;
            }
            let Some(login) = &login else {
                tracing::warn!("no login configured: the token will expire");
                if expires_at <= Instant::now() {
                    return;
                }
                continue;
            };
            match self.login(login).await {
                Ok(ttl) => {
                    tracing::info!(ttl_seconds = ttl.as_secs(), "logged in again");
                    expires_at = Instant::now() + ttl;
                    initial = ttl;
                    if ttl.is_zero() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "login failed; trying again");
                    expires_at = Instant::now() + Duration::from_secs(2);
                }
            }
        }
    }

    /// POSTs a login body to `path` and returns the `auth` block. Not retried on answers:
    /// a login may consume a use of a secret ID.
    async fn login_call(&self, path: &str, body: &serde_json::Value) -> Result<Auth, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|source| ClientError::Decode {
            path: path.to_owned(),
            source,
        })?;
        let reply = self
            .send_with(Method::POST, path, Some((bytes, "application/json")), false)
            .await?;
        let response: Option<ward_api::Response> = decode_optional(path, reply)?;
        response
            .and_then(|r| r.auth)
            .ok_or_else(|| missing(path, "auth"))
    }
}

/// The background renewal task of [`Client::start_renewal`]; dropping it stops the task.
#[derive(Debug)]
pub struct RenewalHandle {
    task: tokio::task::JoinHandle<()>,
}

impl RenewalHandle {
    /// Whether the task has stopped (a token that never expires, or one that expired with no
    /// login to replace it).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for RenewalHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
