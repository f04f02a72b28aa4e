//! Ward's HTTP server: configuration, process hardening, storage set-up, and Vault's API
//! over axum. [`serve`] is what `ward server` runs.

mod cluster;
mod config;
mod conn;
mod hardening;
pub mod http;
mod listen;
#[cfg(feature = "otel")]
mod otel;
mod request_log;
mod seal;
mod telemetry;
mod tls;
mod webhook;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use ward_core::{Core, CoreConfig};
use ward_store::{CacheLimits, CachedStorage, SqliteStorage, Storage};

pub use config::{
    Config, ListenerConfig, LogFormat, RotationSettings, SealConfig, StorageConfig,
    TelemetryConfig, TlsVersion,
};
pub use tls::PeerCertificates;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is missing, unreadable or invalid.
    #[error("configuration error: {0}")]
    Config(String),
    /// Memory locking or core-dump suppression failed.
    #[error("{0}")]
    Hardening(String),
    /// The storage backend could not be opened.
    #[error("storage error: {0}")]
    Storage(#[from] ward_store::StoreError),
    /// Setting up the dev server failed.
    #[error("dev mode setup failed: {0}")]
    Dev(#[from] ward_core::CoreError),
    /// Binding or serving the listener failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The PostgreSQL backend could not start.
    #[error("storage error: {0}")]
    Postgres(#[from] ward_store::PostgresFailure),
    /// Another process serves the same database.
    #[error("{0}")]
    DatabaseInUse(String),
}

/// What `ward server` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Path of the TOML configuration (production mode).
    pub config: Option<PathBuf>,
    /// Development mode: temporary storage, initialised and unsealed.
    pub dev: bool,
    /// Dev mode: use this root token instead of a random one.
    pub dev_root_token_id: Option<String>,
    /// Dev mode: listen here instead of 127.0.0.1:8200.
    pub dev_listen_address: Option<String>,
    /// Dev mode over TLS, with a CA and certificate made at start (implies `dev`).
    pub dev_tls: bool,
    /// `dev_tls`: write the CA, certificate and key here instead of a temporary directory.
    pub dev_tls_cert_dir: Option<PathBuf>,
}

/// Runs the server until SIGINT or SIGTERM.
pub fn serve(opts: ServeOptions) -> Result<(), ServerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(opts))
}

async fn run(opts: ServeOptions) -> Result<(), ServerError> {
    hardening::disable_core_dumps()?;
    if opts.dev || opts.dev_tls {
        return run_dev(opts).await;
    }
    let path = opts
        .config
        .as_deref()
        .ok_or_else(|| ServerError::Config("either --config FILE or --dev is required".into()))?;
    let config = Config::load(path)?;
    let traces = init_logging(config.log_format, &config.log_level, &config.telemetry)?;
    if !config.disable_mlock {
        hardening::lock_memory()?;
    }
    let tls = match config.listener.clone().filter(ListenerConfig::tls) {
        Some(settings) => Some(Arc::new(tls::TlsListener::new(settings)?)),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&config.address).await?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let api_addr = config
        .api_addr
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let member = ward_store::ClusterOptions {
        node_id: config
            .node_id
            .clone()
            .unwrap_or_else(|| cluster::default_node_id(addr)),
        cluster_addr: config
            .cluster_addr
            .clone()
            .unwrap_or_else(|| api_addr.clone()),
        api_addr,
        version: ward_core::VERSION.into(),
        lock_timeout: std::time::Duration::from_secs(10),
    };
    let this_node = member.clone();
    let opened = open_storage(&config.storage, member).await?;
    let (storage, storage_banner) = (opened.storage.clone(), opened.banner.clone());
    let core_config = CoreConfig {
        storage_type: config.storage.backend_name().to_owned(),
        cluster_name: config.cluster_name.clone(),
        default_token_ttl: duration(config.default_token_ttl.as_deref(), 768 * 3600)?,
        max_token_ttl: duration(config.max_token_ttl.as_deref(), 768 * 3600)?,
        rotation: rotation_config(&config.rotation)?,
        this_node: ward_core::ThisNode {
            node_id: this_node.node_id,
            api_addr: this_node.api_addr,
            cluster_addr: this_node.cluster_addr,
        },
    };
    let core = Arc::new(Core::new(storage, core_config));
    if let Some(settings) = &config.snapshot {
        core.spawn_snapshot_schedule(snapshot_schedule(settings)?);
    }
    if let StorageHold::Cluster { cluster, sink } = &opened.hold {
        let _ = sink.core.set(Arc::downgrade(&core));
        core.join_cluster(cluster.clone());
    }
    if let Some(settings) = &config.seal {
        core.set_seal(seal::build(settings)?);
        tokio::spawn(seal::unseal_when_reachable(core.clone()));
    }
    print_stdout(&format!(
        "==> Ward server started! Log data will stream in below:\n\n             Api Address: {scheme}://{addr}\n                 Storage: {storage_banner}\n                 Version: Ward v{}\n",
        ward_core::VERSION
    ));
    tracing::info!(%addr, tls = tls.is_some(), "listening");
    let state = http::AppState {
        header_read_timeout: header_read_timeout(config.http_read_header_timeout.as_deref())?,
        body_read_timeout: optional_timeout(
            config.http_read_timeout.as_deref(),
            http::DEFAULT_BODY_READ_TIMEOUT,
        )?,
        max_connections_per_address: config
            .max_connections_per_address
            .unwrap_or(http::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
        prometheus_endpoint: config.telemetry.prometheus_endpoint,
        unauthenticated_metrics: config.telemetry.unauthenticated_metrics_access,
        ..http::AppState::new(core)
    };
    let result = serve_with(listener, state, tls).await;
    traces.shutdown();
    result
}

async fn run_dev(opts: ServeOptions) -> Result<(), ServerError> {
    init_logging(LogFormat::Text, "info", &TelemetryConfig::default())?;
    let dir = tempfile::Builder::new().prefix("ward-dev-").tempdir()?;
    let (storage, _db_lock) = open_sqlite(&dir.path().join("ward.db"))?;
    // Dev mode runs on one machine for trying things out: a webhook receiver there is on
    // loopback, so internal webhook destinations are allowed.
    let mut config = CoreConfig::default();
    config.rotation.webhook_allow_internal = true;
    let address = opts
        .dev_listen_address
        .as_deref()
        .unwrap_or("127.0.0.1:8200");
    let listener = tokio::net::TcpListener::bind(address).await?;
    let addr = listener.local_addr()?;
    let (tls, ca_line) = if opts.dev_tls {
        let cert_dir = opts
            .dev_tls_cert_dir
            .clone()
            .unwrap_or_else(|| dir.path().to_owned());
        let settings = write_dev_certificates(&cert_dir)?;
        let ca = cert_dir.join("ward-ca.pem");
        let line = format!("    $ export WARD_CACERT='{}'\n", ca.display());
        (Some(Arc::new(tls::TlsListener::new(settings)?)), line)
    } else {
        (None, String::new())
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let api_addr = format!("{scheme}://{addr}");
    config.this_node = ward_core::ThisNode {
        node_id: cluster::default_node_id(addr),
        cluster_addr: api_addr.clone(),
        api_addr,
    };
    let core = Arc::new(Core::new(storage, config));
    let out = core.dev_init(opts.dev_root_token_id.as_deref()).await?;
    let unseal_key = out
        .keys
        .first()
        .map(|k| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, k.expose()))
        .unwrap_or_default();
    print_stdout(&format!(
        "==> Ward server configuration:\n\n             Api Address: {scheme}://{addr}\n                 Storage: sqlite (temporary: {})\n                 Version: Ward v{}\n\n\
WARNING! dev mode is enabled! In this mode, Ward runs on a temporary database that is\n\
deleted on exit, starts initialised and unsealed, and prints its unseal key and root token.\n\n\
You may need to set the following environment variables:\n\n    $ export WARD_ADDR='{scheme}://{addr}'\n{ca_line}\n\
The unseal key and root token are displayed below in case you want to\nseal/unseal Ward or re-authenticate.\n\n\
Unseal Key: {unseal_key}\nRoot Token: {}\n\n\
Development mode should NOT be used in production installations!\n",
        dir.path().display(),
        ward_core::VERSION,
        out.root_token.expose(),
    ));
    drop(out);
    let result = serve_with(listener, http::AppState::new(core), tls).await;
    drop(dir);
    result
}

/// Writes `--dev-tls`'s new CA (`ward-ca.pem`), certificate (`ward-cert.pem`) and key
/// (`ward-key.pem`, mode 0600) into `dir`, and returns the listener settings that use them.
fn write_dev_certificates(dir: &std::path::Path) -> Result<ListenerConfig, ServerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let certificates = tls::DevCertificates::generate()
        .map_err(|e| ServerError::Config(format!("generating the dev TLS certificates: {e}")))?;
    std::fs::create_dir_all(dir)?;
    let (ca, cert, key) = (
        dir.join("ward-ca.pem"),
        dir.join("ward-cert.pem"),
        dir.join("ward-key.pem"),
    );
    std::fs::write(&ca, &certificates.ca_pem)?;
    std::fs::write(&cert, &certificates.cert_pem)?;
    let mut key_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&key)?;
    key_file.write_all(certificates.key_pem.as_bytes())?;
    Ok(ListenerConfig {
        tls_cert_file: Some(cert),
        tls_key_file: Some(key),
        ..ListenerConfig::default()
    })
}

/// What keeps a database for this server (or, in a cluster, for this server among others),
/// held as long as its storage.
enum StorageHold {
    File {
        _lock: std::fs::File,
    },
    Postgres {
        _lock: ward_store::PostgresLock,
    },
    Cluster {
        cluster: Arc<ward_store::PostgresCluster>,
        sink: Arc<cluster::ClusterSink>,
    },
}

/// The configured backend with the read cache over it, what holds it, and what it is (for
/// the start banner).
struct OpenedStorage {
    storage: Arc<dyn Storage>,
    hold: StorageHold,
    banner: String,
}

/// Opens the configured backend, for this process alone or, with `ha_enabled`, as `member`
/// of the servers sharing it.
async fn open_storage(
    config: &StorageConfig,
    member: ward_store::ClusterOptions,
) -> Result<OpenedStorage, ServerError> {
    match config {
        StorageConfig::Sqlite { path } => {
            let (storage, lock) = open_sqlite(path)?;
            Ok(OpenedStorage {
                storage,
                hold: StorageHold::File { _lock: lock },
                banner: format!("sqlite ({})", path.display()),
            })
        }
        StorageConfig::Postgres(pg) => {
            let url = pg
                .connection_url
                .clone()
                .or_else(|| std::env::var("WARD_PG_URL").ok().filter(|u| !u.is_empty()))
                .ok_or_else(|| {
                    ServerError::Config(
                        "[storage] backend \"postgres\" needs connection_url (or WARD_PG_URL)"
                            .into(),
                    )
                })?;
            let options = ward_store::PostgresOptions {
                connection_url: url,
                table: pg.table.clone().unwrap_or_else(|| "ward".into()),
                max_connections: pg.max_connections.unwrap_or(16),
                tls_ca_file: pg.tls_ca_file.clone(),
            };
            let postgres = ward_store::PostgresStorage::connect(&options).await?;
            let mut banner = format!("postgresql (tables {}_*)", options.table);
            let hold = if pg.ha_enabled {
                let member = ward_store::ClusterOptions {
                    lock_timeout: std::time::Duration::from_secs(duration(
                        pg.lock_timeout.as_deref(),
                        10,
                    )?)
                    .max(std::time::Duration::from_secs(1)),
                    ..member
                };
                banner.push_str(&format!(", high availability as {}", member.node_id));
                let sink = Arc::new(cluster::ClusterSink::default());
                let cluster =
                    postgres
                        .join_cluster(member, sink.clone())
                        .await
                        .map_err(|e| match e {
                            e @ ward_store::PostgresFailure::InUse(_) => {
                                ServerError::DatabaseInUse(e.to_string())
                            }
                            e => e.into(),
                        })?;
                StorageHold::Cluster {
                    cluster: Arc::new(cluster),
                    sink,
                }
            } else {
                let lock = postgres
                    .hold_exclusive()
                    .await
                    .map_err(|e| ServerError::DatabaseInUse(e.to_string()))?;
                StorageHold::Postgres { _lock: lock }
            };
            let metered = telemetry::MeteredStorage::new(postgres);
            let cache = Arc::new(CachedStorage::new(metered, CacheLimits::default()));
            if let StorageHold::Cluster { sink, .. } = &hold {
                let _ = sink.cache.set(cache.clone());
            }
            Ok(OpenedStorage {
                storage: cache,
                hold,
                banner,
            })
        }
    }
}

/// Opens the database at `path` for this process alone: the returned lock must live as long
/// as the storage. Two servers on one file would each trust their own read cache (a token
/// revoked through one would stay valid in the other), so the second one refuses to start.
fn open_sqlite(path: &std::path::Path) -> Result<(Arc<dyn Storage>, std::fs::File), ServerError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let lock = lock_database(path)?;
    let sqlite = telemetry::MeteredStorage::new(SqliteStorage::open(path)?);
    Ok((
        Arc::new(CachedStorage::new(sqlite, CacheLimits::default())),
        lock,
    ))
}

/// Takes an exclusive advisory lock on `<path>.lock`, released when the file is closed
/// (also when the process dies, however it dies).
fn lock_database(path: &std::path::Path) -> Result<std::fs::File, ServerError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServerError::DatabaseInUse(format!(
            "the database {} is in use by another Ward server (it holds {})",
            path.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// The `[snapshot]` table as the core takes it.
fn snapshot_schedule(
    settings: &config::SnapshotSettings,
) -> Result<ward_core::SnapshotSchedule, ServerError> {
    let interval = duration(Some(&settings.interval), 0)?;
    if interval == 0 {
        return Err(ServerError::Config(
            "[snapshot] interval must be more than 0".into(),
        ));
    }
    Ok(ward_core::SnapshotSchedule {
        interval: std::time::Duration::from_secs(interval),
        directory: settings.directory.clone(),
        retain: settings.retain,
        retain_age: settings
            .retain_age
            .as_deref()
            .map(|age| duration(Some(age), 0).map(std::time::Duration::from_secs))
            .transpose()?,
    })
}

fn duration(text: Option<&str>, default: u64) -> Result<u64, ServerError> {
    match text {
        None => Ok(default),
        Some(t) => ward_api::parse_duration_seconds(t)
            .map_err(|e| ServerError::Config(format!("invalid duration {t:?}: {e}"))),
    }
}

/// `http_read_header_timeout`: Vault's default when unset, no limit when zero.
fn header_read_timeout(text: Option<&str>) -> Result<Option<std::time::Duration>, ServerError> {
    optional_timeout(text, http::DEFAULT_HEADER_READ_TIMEOUT)
}

/// A timeout setting: `default` when unset, no limit when zero.
fn optional_timeout(
    text: Option<&str>,
    default: std::time::Duration,
) -> Result<Option<std::time::Duration>, ServerError> {
    let seconds = duration(text, default.as_secs())?;
    Ok((seconds > 0).then(|| std::time::Duration::from_secs(seconds)))
}

fn rotation_config(r: &RotationSettings) -> Result<ward_core::RotationConfig, ServerError> {
    let defaults = ward_core::RotationConfig::default();
    let config = ward_core::RotationConfig {
        check_interval: std::time::Duration::from_secs(
            duration(
                r.check_interval.as_deref(),
                defaults.check_interval.as_secs(),
            )?
            .max(1),
        ),
        min_period: duration(r.min_period.as_deref(), defaults.min_period)?.max(1),
        keyring_period: duration(r.keyring_period.as_deref(), defaults.keyring_period)?,
        mount_key_period: duration(r.mount_key_period.as_deref(), defaults.mount_key_period)?,
        webhook_allow_internal: r.webhook_allow_internal,
        aead_usage_limit: defaults.aead_usage_limit,
    };
    for (name, period) in [
        ("keyring_period", config.keyring_period),
        ("mount_key_period", config.mount_key_period),
    ] {
        if period != 0 && period < config.min_period {
            return Err(ServerError::Config(format!(
                "rotation.{name} is shorter than rotation.min_period ({}s)",
                config.min_period
            )));
        }
    }
    Ok(config)
}

/// Serves Ward's API for `core` on `listener` until SIGINT or SIGTERM, then seals.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    core: Arc<Core>,
) -> Result<(), ServerError> {
    serve_state(listener, http::AppState::new(core)).await
}

/// Serves Ward's API with `state` on `listener` until SIGINT or SIGTERM, then seals.
/// The core's rotation scheduler runs alongside.
/// SIGHUP reopens the audit devices' files (after log rotation).
pub async fn serve_state(
    listener: tokio::net::TcpListener,
    state: http::AppState,
) -> Result<(), ServerError> {
    serve_with(listener, state, None).await
}

/// [`serve_state`], over TLS when `tls` is given; SIGHUP then also reloads its certificate.
async fn serve_with(
    listener: tokio::net::TcpListener,
    state: http::AppState,
    tls: Option<Arc<tls::TlsListener>>,
) -> Result<(), ServerError> {
    // Install the metrics recorder before the first request is counted.
    telemetry::handle();
    let core = state.core.clone();
    let reopen = tokio::spawn(reload_on_sighup(core.clone(), tls.clone()));
    let scheduler = core.spawn_scheduler();
    listen::serve(listener, Arc::new(state), tls, shutdown_signal()).await;
    reopen.abort();
    scheduler.abort();
    core.seal().await;
    Ok(())
}

async fn reload_on_sighup(core: Arc<Core>, tls: Option<Arc<tls::TlsListener>>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reopening audit devices");
        core.reopen_audit_devices();
        if let Some(tls) = &tls {
            tls.reload();
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: the accept loop may serve a connection before it polls the
/// future, and a signal arriving then would otherwise kill the process without a graceful
/// shutdown.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt()).ok();
    let terminate = signal(SignalKind::terminate()).ok();
    async move {
        let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
            match stream {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {},
            () = wait(terminate) => {},
        }
        tracing::info!("shutting down");
    }
}

fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The span exporter, if one runs (only with the `otel` feature): flushed at shutdown.
struct TraceExport {
    #[cfg(feature = "otel")]
    otel: Option<otel::Otel>,
}

impl TraceExport {
    /// Sends the spans still queued (no-op without an exporter).
    fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(otel) = self.otel {
            // The batch exporter blocks on its HTTP client: keep that off the async workers.
            let _ = std::thread::spawn(move || otel.shutdown()).join();
        }
    }
}

/// Installs the process's `tracing` subscriber: log lines on stderr, filtered by `level`,
/// and with the `otel` feature, span export when `telemetry.otlp_endpoint` is set.
fn init_logging(
    format: LogFormat,
    level: &str,
    telemetry: &TelemetryConfig,
) -> Result<TraceExport, ServerError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, Registry};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colour only for a terminal: escape codes in a log file or a collector are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // The log filter applies to the log lines only, so that `log_level = "warn"` does not
    // also switch off the exported request spans.
    #[allow(unused_mut)]
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![match format {
        LogFormat::Json => fmt
            .json()
            .map_event_format(|inner| request_log::JsonLines { inner })
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => fmt
            .event_format(request_log::TextLines { ansi })
            .with_filter(filter)
            .boxed(),
    }];
    #[cfg(feature = "otel")]
    let export = TraceExport {
        otel: match telemetry.otlp_endpoint.as_deref() {
            Some(endpoint) => {
                let service = telemetry.service_name.as_deref().unwrap_or("ward");
                let (layer, otel) = otel::layer(endpoint, service)?;
                layers.push(layer.boxed());
                Some(otel)
            }
            None => None,
        },
    };
    #[cfg(not(feature = "otel"))]
    let export = {
        // Config::parse has already refused otlp_endpoint in a build without the feature.
        let _ = telemetry;
        TraceExport {}
    };
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(export)
}
