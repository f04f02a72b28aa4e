//! The server's TOML configuration file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ServerError;

/// `ward.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address, e.g. `127.0.0.1:8200`.
    #[serde(default = "default_address")]
    pub address: String,
    /// How long a client may take to send a request's head, and how long a keep-alive
    /// connection may sit idle (Vault duration, default `10s`; `0` for no limit).
    #[serde(default)]
    pub http_read_header_timeout: Option<String>,
    /// How long a client may take to send a request's body once its head has arrived
    /// (Vault's `http_read_timeout`: duration, default `30s`; `0` for no limit).
    #[serde(default)]
    pub http_read_timeout: Option<String>,
    /// Most connections one client address may hold open at once (default 256; `0` for no
    /// limit). More are answered 429 and closed.
    #[serde(default)]
    pub max_connections_per_address: Option<usize>,
    /// TLS on the listener. Without this table the listener speaks plain HTTP.
    #[serde(default)]
    pub listener: Option<ListenerConfig>,
    /// Where secrets are stored.
    pub storage: StorageConfig,
    /// Skip `mlockall` (memory locking), e.g. where RLIMIT_MEMLOCK forbids it.
    #[serde(default)]
    pub disable_mlock: bool,
    /// `text` (default) or `json` log lines.
    #[serde(default)]
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `ward_server=debug` (default `info`).
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// The address clients reach this server at, as `sys/leader` and `sys/ha-status` show
    /// it (default: `http://` or `https://` and the listen address).
    #[serde(default)]
    pub api_addr: Option<String>,
    /// The address other servers reach this server at (default: `api_addr`).
    #[serde(default)]
    pub cluster_addr: Option<String>,
    /// This server's name among the servers of a cluster (default: host name and port).
    #[serde(default)]
    pub node_id: Option<String>,
    /// Name reported by health and seal-status.
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// TTL of tokens created without one (Vault duration, default `768h`).
    #[serde(default)]
    pub default_token_ttl: Option<String>,
    /// Longest TTL a token may have (default `768h`).
    #[serde(default)]
    pub max_token_ttl: Option<String>,
    /// Metrics settings.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Rotation scheduler settings.
    #[serde(default)]
    pub rotation: RotationSettings,
    /// Scheduled snapshots (none without this table).
    #[serde(default)]
    pub snapshot: Option<SnapshotSettings>,
    /// The seal: absent for Shamir (unseal keys held by operators).
    #[serde(default)]
    pub seal: Option<SealConfig>,
}

/// The `[snapshot]` table: scheduled snapshots of the storage, taken by the active server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    /// How often (Vault duration, e.g. `"1h"`); required.
    pub interval: String,
    /// The directory the snapshots are written to; required.
    pub directory: std::path::PathBuf,
    /// Keep the newest this many.
    #[serde(default)]
    pub retain: Option<usize>,
    /// Delete those older than this (Vault duration).
    #[serde(default)]
    pub retain_age: Option<String>,
}

/// The `[seal]` table. `type = "pkcs11"` wraps the root key with an HSM's AES key, so the
/// server unseals itself; `disabled = true` keeps it only to migrate back to Shamir.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealConfig {
    /// `pkcs11`.
    #[serde(rename = "type")]
    pub seal_type: String,
    /// Migrating away from this seal (Vault's `disabled = "true"`).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub disabled: bool,
    /// The PKCS#11 module.
    pub lib: Option<PathBuf>,
    /// The token's label (SoftHSM gives tokens random slot ids: prefer the label).
    #[serde(default)]
    pub token_label: Option<String>,
    /// The token's slot id, when no label is given.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub slot: Option<u64>,
    /// The user PIN; `WARD_HSM_PIN` overrides it. Never logged; Debug redacts it.
    #[serde(default)]
    pub pin: Option<String>,
    /// The label of the AES key that wraps the root key.
    pub key_label: Option<String>,
    /// `aes-gcm` (default when the token has it) or `aes-key-wrap-pad`.
    #[serde(default)]
    pub mechanism: Option<String>,
    /// Create the key (AES-256, sensitive, non-extractable) if the token lacks it.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub generate_key: bool,
}

impl std::fmt::Debug for SealConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealConfig")
            .field("type", &self.seal_type)
            .field("disabled", &self.disabled)
            .field("lib", &self.lib)
            .field("token_label", &self.token_label)
            .field("slot", &self.slot)
            .field("pin", &self.pin.as_ref().map(|_| "<redacted>"))
            .field("key_label", &self.key_label)
            .field("mechanism", &self.mechanism)
            .field("generate_key", &self.generate_key)
            .finish()
    }
}

/// A boolean as TOML's `true` or Vault's string `"true"`.
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let value = toml::Value::deserialize(d)?;
    match &value {
        toml::Value::Boolean(b) => Ok(*b),
        toml::Value::String(s) if s == "true" => Ok(true),
        toml::Value::String(s) if s == "false" => Ok(false),
        _ => Err(serde::de::Error::custom("expected true or false")),
    }
}

/// A number as TOML's integer or a string of digits.
fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = toml::Value::deserialize(d)?;
    match &value {
        toml::Value::Integer(n) => u64::try_from(*n)
            .map(Some)
            .map_err(serde::de::Error::custom),
        toml::Value::String(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("expected a slot number")),
    }
}

impl SealConfig {
    /// Rejects a table that cannot describe a seal.
    fn validate(&self) -> Result<(), ServerError> {
        let missing = |key: &str| {
            ServerError::Config(format!("seal: {key} is required with type = \"pkcs11\""))
        };
        if self.seal_type != "pkcs11" {
            return Err(ServerError::Config(format!(
                "seal: unknown type {:?} (Ward knows \"pkcs11\"; leave [seal] out for shamir)",
                self.seal_type
            )));
        }
        if self.lib.is_none() {
            return Err(missing("lib"));
        }
        if self.key_label.as_deref().is_none_or(str::is_empty) {
            return Err(missing("key_label"));
        }
        if self.token_label.is_none() && self.slot.is_none() {
            return Err(missing("token_label (or slot)"));
        }
        if let Some(name) = &self.mechanism
            && ward_hsm::WrapMechanism::parse(name).is_none()
        {
            return Err(ServerError::Config(format!(
                "seal: unknown mechanism {name:?} (aes-gcm or aes-key-wrap-pad)"
            )));
        }
        Ok(())
    }
}

/// The `[listener]` table: TLS settings of the API listener, as Vault's `listener "tcp"`:
/// TLS is on unless `tls_disable = true`, and then the certificate and key are required.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Serve plain HTTP (the `tls_*` keys are then ignored, as Vault ignores them).
    #[serde(default)]
    pub tls_disable: bool,
    /// PEM certificate chain, the server's certificate first. Reread on SIGHUP.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of that certificate. Reread on SIGHUP.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Oldest TLS version accepted: `tls13` (default) or `tls12`.
    #[serde(default)]
    pub tls_min_version: TlsVersion,
    /// PEM CA bundle that client certificates must chain to. Clients may present one;
    /// with `tls_require_client_cert` they must.
    #[serde(default)]
    pub tls_client_ca_file: Option<PathBuf>,
    /// Refuse clients without a certificate from `tls_client_ca_file` (mutual TLS).
    #[serde(default, alias = "tls_require_and_verify_client_cert")]
    pub tls_require_client_cert: bool,
}

/// A TLS protocol version, as `tls_min_version` names it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsVersion {
    /// TLS 1.2 (and 1.3).
    Tls12,
    /// TLS 1.3 only.
    #[default]
    Tls13,
}

impl ListenerConfig {
    /// Whether the listener serves TLS.
    pub fn tls(&self) -> bool {
        !self.tls_disable
    }

    /// Rejects settings that cannot make a TLS listener.
    fn validate(&self) -> Result<(), ServerError> {
        if !self.tls() {
            return Ok(());
        }
        if self.tls_cert_file.is_none() || self.tls_key_file.is_none() {
            return Err(ServerError::Config(
                "listener: tls_cert_file and tls_key_file are required (or tls_disable = true)"
                    .into(),
            ));
        }
        if self.tls_require_client_cert && self.tls_client_ca_file.is_none() {
            return Err(ServerError::Config(
                "listener.tls_require_client_cert needs listener.tls_client_ca_file".into(),
            ));
        }
        Ok(())
    }
}

/// The `[rotation]` table (durations in Vault's notation, e.g. `"720h"`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationSettings {
    /// How often the scheduler looks for due work (default `1s`).
    #[serde(default)]
    pub check_interval: Option<String>,
    /// Shortest rotation period accepted (default `1h`).
    #[serde(default)]
    pub min_period: Option<String>,
    /// Age at which the keyring gets a new term (default `0`: never).
    #[serde(default)]
    pub keyring_period: Option<String>,
    /// Age at which each mount's key-encryption key rotates and its data keys are
    /// rewrapped (default `0`: never).
    #[serde(default)]
    pub mount_key_period: Option<String>,
    /// Let KV rotation webhooks reach internal addresses (loopback, private, link-local);
    /// default `false`.
    #[serde(default)]
    pub webhook_allow_internal: bool,
}

/// The `[telemetry]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Also serve Prometheus metrics at `/metrics` on the API listener, without a token.
    #[serde(default)]
    pub prometheus_endpoint: bool,
    /// Answer `/v1/sys/metrics` without a token (Vault's `unauthenticated_metrics_access`).
    #[serde(default)]
    pub unauthenticated_metrics_access: bool,
    /// Export tracing spans over OTLP/HTTP (protobuf) to this collector, e.g.
    /// `http://127.0.0.1:4318` (`/v1/traces` is appended unless present). Needs the `otel`
    /// cargo feature: without it, setting this is a startup error rather than ignored.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans (default `ward`).
    #[serde(default)]
    pub service_name: Option<String>,
}

/// The `[storage]` table: `backend` names the backend, the other keys are its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum StorageConfig {
    /// The embedded SQLite database.
    Sqlite {
        /// Path of the database file.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres(PostgresConfig),
}

/// `[storage] backend = "postgres"`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// libpq-style URL or key=value string; `WARD_PG_URL` when absent.
    #[serde(default)]
    pub connection_url: Option<String>,
    /// Prefix of Ward's tables (default `ward`).
    #[serde(default)]
    pub table: Option<String>,
    /// Connections in the pool (default 16).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// PEM CA bundle: TLS to the database, its certificate and name verified.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Several servers share the database: one active, the others standbys (default false).
    #[serde(default)]
    pub ha_enabled: bool,
    /// How long the active server may go without reaching the database before it steps
    /// down (Vault duration, default `10s`).
    #[serde(default)]
    pub lock_timeout: Option<String>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("PostgresConfig")
            .field("table", &self.table)
            .field("max_connections", &self.max_connections)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("ha_enabled", &self.ha_enabled)
            .field("lock_timeout", &self.lock_timeout)
            .finish_non_exhaustive()
    }
}

impl StorageConfig {
    /// The backend's name, as `sys/seal-status` reports it.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres(_) => "postgresql",
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

fn default_address() -> String {
    "127.0.0.1:8200".into()
}

fn default_log_level() -> String {
    "info".into()
}

fn default_cluster_name() -> String {
    "ward-cluster".into()
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Self, ServerError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ServerError::Config(e.to_string()))?;

        config.telemetry.validate()?;
        if let Some(listener) = &config.listener {
            listener.validate()?;
        }
        if let Some(seal) = &config.seal {
            seal.validate()?;
        }
        Ok(config)
    }
}

impl TelemetryConfig {
    /// Rejects trace-export settings this build cannot honour or that cannot work.
    fn validate(&self) -> Result<(), ServerError> {
        let Some(endpoint) = self.otlp_endpoint.as_deref() else {
            if self.service_name.is_some() {
                return Err(ServerError::Config(
                    "telemetry.service_name needs telemetry.otlp_endpoint".into(),
                ));
            }
            return Ok(());
        };
        if !cfg!(feature = "otel") {
            // An operator who asked for traces must not silently get none.
            return Err(ServerError::Config(
                "telemetry.otlp_endpoint is set, but this ward was built without the otel feature \
                 (rebuild with `--features otel`, or remove the key)"
                    .into(),
            ));
        }
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ServerError::Config(format!(
                "telemetry.otlp_endpoint {endpoint:?} must be an http:// or https:// URL"
            )));
        }
        if self.service_name.as_deref().is_some_and(str::is_empty) {
            return Err(ServerError::Config(
                "telemetry.service_name must not be empty".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let c = Config::parse(
            "address = \"127.0.0.1:8200\"\n[storage]\nbackend = \"sqlite\"\npath = \"/var/lib/ward/ward.db\"\n",
        )
        .unwrap();
        assert_eq!(c.address, "127.0.0.1:8200");
        assert!(
            matches!(&c.storage, StorageConfig::Sqlite { path } if path == Path::new("/var/lib/ward/ward.db"))
        );
        assert!(!c.disable_mlock);
        assert!(c.rotation.keyring_period.is_none());
        assert!(!c.rotation.webhook_allow_internal);
        assert_eq!(c.log_format, LogFormat::Text);
        let allowed = Config::parse(
            "[storage]\nbackend = \"sqlite\"\npath = \"a\"\n[rotation]\nwebhook_allow_internal = true\n",
        )
        .unwrap();
        assert!(allowed.rotation.webhook_allow_internal);
    }

    #[test]
    fn rejects_unknown_keys_and_backends() {
        assert!(
            Config::parse("adress = \"x\"\n[storage]\nbackend=\"sqlite\"\npath=\"a\"").is_err()
        );
        assert!(Config::parse("[storage]\nbackend=\"consul\"\npath=\"a\"").is_err());
        // Each backend takes its own keys only.
        assert!(Config::parse("[storage]\nbackend=\"sqlite\"\ntable=\"a\"").is_err());
        assert!(Config::parse("[storage]\nbackend=\"postgres\"\npath=\"a\"").is_err());
        let pg = Config::parse(
            "[storage]\nbackend=\"postgres\"\nconnection_url=\"postgres://u:secret@db/w\"\n\
             table=\"w1\"\nmax_connections=4\n",
        )
        .unwrap();
        let StorageConfig::Postgres(pg) = pg.storage else {
            panic!("not postgres")
        };
        assert_eq!(
            (pg.table.as_deref(), pg.max_connections),
            (Some("w1"), Some(4))
        );
        assert!(!format!("{pg:?}").contains("secret"));
        assert!(Config::parse("address = \"x\"").is_err());
        assert!(
            Config::parse("[storage]\nbackend=\"sqlite\"\npath=\"a\"\n[rotation]\nperiod=\"1h\"")
                .is_err()
        );
    }

    const STORAGE: &str = "[storage]\nbackend = \"sqlite\"\npath = \"a\"\n";

    #[cfg(not(feature = "otel"))]
    #[test]
    fn otlp_endpoint_without_the_feature_is_an_error() {
        let err = Config::parse(&format!(
            "{STORAGE}[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("built without the otel feature"), "{err}");
    }

    #[cfg(feature = "otel")]
    #[test]
    fn otlp_endpoint_with_the_feature() {
        let c = Config::parse(&format!(
            "{STORAGE}[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nservice_name = \"w\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.telemetry.otlp_endpoint.as_deref(),
            Some("http://127.0.0.1:4318")
        );
        let err = Config::parse(&format!(
            "{STORAGE}[telemetry]\notlp_endpoint = \"127.0.0.1:4318\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("http://"), "{err}");
    }

    #[test]
    fn listener_tls_settings() {
        let c = Config::parse(&format!(
            "[listener]\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n{STORAGE}"
        ))
        .unwrap();
        let listener = c.listener.unwrap();
        assert!(listener.tls());
        assert_eq!(listener.tls_min_version, TlsVersion::Tls13);
        assert!(!listener.tls_require_client_cert);
        let c = Config::parse(&format!(
            "[listener]\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n\
             tls_min_version = \"tls12\"\ntls_client_ca_file = \"ca.pem\"\n\
             tls_require_and_verify_client_cert = true\n{STORAGE}"
        ))
        .unwrap();
        let listener = c.listener.unwrap();
        assert_eq!(listener.tls_min_version, TlsVersion::Tls12);
        assert!(listener.tls_require_client_cert);
        let plain = Config::parse(&format!("[listener]\ntls_disable = true\n{STORAGE}")).unwrap();
        assert!(!plain.listener.unwrap().tls());
        assert!(Config::parse(STORAGE).unwrap().listener.is_none());
    }

    #[test]
    fn listener_settings_that_cannot_work_are_errors() {
        for (listener, expected) in [
            ("", "tls_cert_file and tls_key_file are required"),
            (
                "tls_cert_file = \"c.pem\"",
                "tls_cert_file and tls_key_file are required",
            ),
            (
                "tls_cert_file = \"c\"\ntls_key_file = \"k\"\ntls_require_client_cert = true",
                "needs listener.tls_client_ca_file",
            ),
            (
                "tls_cert_file = \"c\"\ntls_key_file = \"k\"\ntls_min_version = \"tls11\"",
                "unknown variant",
            ),
            ("tls_cert = \"c\"", "unknown field"),
        ] {
            let err = Config::parse(&format!("[listener]\n{listener}\n{STORAGE}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{listener}: {err}");
        }
    }

    #[test]
    fn service_name_alone_is_an_error() {
        let err = Config::parse(&format!("{STORAGE}[telemetry]\nservice_name = \"w\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs telemetry.otlp_endpoint"), "{err}");
    }
}
