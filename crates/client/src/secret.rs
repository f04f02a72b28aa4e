//! Named secrets for applications: one field of a KV secret (`secret/myapp/db#password`),
//! read through the cache, with a fallback variable when the server is out of reach.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::{Client, ClientError, KvMountInfo};

/// One field of a KV secret, written `mount/path#field` (`secret/myapp/db#password`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    /// The secret's full path, mount first, without surrounding slashes (`secret/myapp/db`).
    pub path: String,
    /// The key inside the secret (`password`).
    pub field: String,
}

impl FromStr for SecretRef {
    type Err = ClientError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            ClientError::InvalidRequest(format!(
                "invalid secret reference {text:?}: expected mount/path#field"
            ))
        };
        let (path, field) = text.rsplit_once('#').ok_or_else(invalid)?;
        let path = path.trim().trim_matches('/');
        let field = field.trim();
        if !path.contains('/') || field.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            path: path.to_owned(),
            field: field.to_owned(),
        })
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.path, self.field)
    }
}

/// Where a secret's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// The server answered.
    Server,
    /// The read cache answered (the entry was younger than the cache TTL).
    Cache,
    /// The server was unreachable and nothing was cached: the value is the fallback
    /// variable's, and the client reports itself degraded.
    Fallback,
}

/// A secret's value and where it came from. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue {
    /// The field's value: a string as stored, any other JSON value in its JSON form.
    pub value: String,
    /// The KV v2 version read (`None` for KV v1 and fallbacks).
    pub version: Option<u64>,
    /// Where it came from.
    pub source: SecretSource,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &"<redacted>")
            .field("version", &self.version)
            .field("source", &self.source)
            .finish()
    }
}

impl Client {
    /// Reads the secret `secret`, known to the application as `name` (`DB_PASSWORD`).
    ///
    /// Served from the read cache while fresh, else by the server. When the server cannot
    /// serve it (unreachable, circuit open, 5xx) and nothing is cached, the value of the
    /// variable `WARD_FALLBACK_<name>` is returned instead, if set: the client then reports
    /// itself degraded ([`Client::health_state`]) and logs a warning, until the server
    /// serves this secret again. A 4xx (denied, missing) is an error, never a fallback.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), ward_client::ClientError> {
    /// use ward_client::{Client, SecretRef};
    ///
    /// let client = Client::new("http://127.0.0.1:8200", Some("token"))?;
    /// let password = client
    ///     .read_secret("DB_PASSWORD", &"secret/myapp/db#password".parse::<SecretRef>()?)
    ///     .await?;
    /// if client.is_degraded() {
    ///     eprintln!("running on fallback secrets: {:?}", client.health_state());
    /// }
    /// # let _ = password;
    /// # Ok(()) }
    /// ```
    pub async fn read_secret(
        &self,
        name: &str,
        secret: &SecretRef,
    ) -> Result<SecretValue, ClientError> {
        self.read_secret_with(name, secret, false).await
    }

    /// Like [`Client::read_secret`], asking the server even when the cache holds the
    /// secret (the answer refreshes the cache). What a watcher of versions calls.
    pub async fn read_secret_fresh(
        &self,
        name: &str,
        secret: &SecretRef,
    ) -> Result<SecretValue, ClientError> {
        self.read_secret_with(name, secret, true).await
    }

    async fn read_secret_with(
        &self,
        name: &str,
        secret: &SecretRef,
        fresh: bool,
    ) -> Result<SecretValue, ClientError> {
        let error = match self.read_field(secret, fresh).await {
            Ok(value) => {
                if value.source == SecretSource::Server {
                    self.session.degraded.clear(name);
                }
                return Ok(value);
            }
            Err(error) if error.is_outage() => error,
            Err(error) => return Err(error),
        };
        let Some(prefix) = &self.resilience.fallback_env_prefix else {
            return Err(error);
        };
        let variable = format!("{prefix}{name}");
        let Some(value) = std::env::var(&variable).ok() else {
            return Err(error);
        };
        self.session.degraded.mark(name);
        tracing::warn!(
            secret = name,
            variable = %variable,
            %error,
            "degraded: the ward server cannot be reached and nothing is cached; \
             using the fallback variable"
        );
        Ok(SecretValue {
            value,
            version: None,
            source: SecretSource::Fallback,
        })
    }

    /// The field from the cache or the server.
    async fn read_field(
        &self,
        secret: &SecretRef,
        fresh: bool,
    ) -> Result<SecretValue, ClientError> {
        let mount = self.kv_mount_cached(&secret.path).await;
        let relative = mount.relative(&secret.path);
        let api_path = if mount.version == 2 {
            format!("{}/data/{relative}", mount.mount)
        } else {
            secret.path.clone()
        };
        if fresh {
            self.invalidate_cache(&api_path);
        }
        let (response, cached) = self.read_cached_as::<Value>(&api_path).await?;
        let data = response.and_then(|r| r.data);
        let (fields, version) = match (&data, mount.version) {
            (Some(data), 2) => (
                data.get("data"),
                data.pointer("/metadata/version").and_then(Value::as_u64),
            ),
            (Some(data), _) => (Some(data), None),
            (None, _) => (None, None),
        };
        let Some(fields) = fields.filter(|f| !f.is_null()) else {
            return Err(ClientError::InvalidRequest(format!(
                "no secret at {}",
                secret.path
            )));
        };
        self.session
            .kv_mounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(secret.path.clone(), mount);
        let value = match fields.get(&secret.field) {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => {
                return Err(ClientError::InvalidRequest(format!(
                    "the secret {} has no field {:?}",
                    secret.path, secret.field
                )));
            }
        };
        Ok(SecretValue {
            value,
            version,
            source: if cached {
                SecretSource::Cache
            } else {
                SecretSource::Server
            },
        })
    }

    /// The mount of `path`, remembered once a read through it succeeded (so that an outage
    /// costs no mount look-ups).
    async fn kv_mount_cached(&self, path: &str) -> KvMountInfo {
        let known = self
            .session
            .kv_mounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(path)
            .cloned();
        if let Some(mount) = known {
            return mount;
        }
        match self.kv_mount_for(path).await {
            Ok(mount) => mount,
            // Only an empty path fails, and SecretRef rules that out; KV v2 is the default.
            Err(_) => KvMountInfo {
                mount: path.split('/').next().unwrap_or_default().to_owned(),
                version: 2,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print() {
        let secret: SecretRef = "secret/myapp/db#password".parse().unwrap();
        assert_eq!(secret.path, "secret/myapp/db");
        assert_eq!(secret.field, "password");
        assert_eq!(secret.to_string(), "secret/myapp/db#password");
        for bad in ["secret/myapp/db", "secret#password", "secret/a#", "#x"] {
            assert!(bad.parse::<SecretRef>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn values_never_show_in_debug() {
        let value = SecretValue {
            value: "hunter2".into(),
            version: Some(1),
            source: SecretSource::Server,
        };
        assert!(!format!("{value:?}").contains("hunter2"));
    }
}
