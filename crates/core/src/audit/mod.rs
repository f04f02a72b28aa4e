//! Audit devices: every request and response, written as one hash-chained JSON line to each
//! enabled device before the response leaves, secrets HMAC'd with the device's own key.
//!
//! - The table of devices (`core/audit`) and each device's HMAC key and genesis value
//!   (`core/audit-device/<uuid>`) are stored behind the barrier, so devices come back on
//!   unseal with the same key. Where each chain stands is saved on seal
//!   (`core/audit-head/<uuid>`); a file device also reads it back from its file's last line.
//! - Fail closed, Vault's rule: with devices enabled, an entry that no device wrote fails the
//!   request. One device that writes is enough. A request that changes something has its
//!   request entry written before the operation runs, so a refused one is not carried out. A
//!   read changes nothing, so its request entry (stamped before it runs) goes out with its
//!   response entry in one write; if they cannot be written, the read returns an error and
//!   no data.
//! - Concurrent requests share writes (group commit): files are appended to by the requests
//!   themselves, one leader per batch ([`inline`]); sockets have a writer thread fed through
//!   a bounded queue ([`writer`]).

mod api;
mod entry;
mod flush_behind;
mod hashed;
mod hasher;
mod inline;
mod sink;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ward_api::audit::{ChainHead, Entry};
use ward_store::Barrier;
use zeroize::Zeroizing;

use entry::Hasher;
pub(crate) use entry::RequestFacts;
use sink::{Sink, Target};
use writer::Writer;

use crate::mounts::MountEntry;
use crate::{CoreError, CoreResult, Response};

const TABLE_KEY: &str = "core/audit";
const DEVICE_PREFIX: &str = "core/audit-device/";
const HEAD_PREFIX: &str = "core/audit-head/";

/// One enabled device, as `sys/audit` lists it and as it is stored.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct DeviceConfig {
    /// Always ends in `/`.
    pub(crate) path: String,
    #[serde(rename = "type")]
    pub(crate) device_type: String,
    pub(crate) description: String,
    pub(crate) options: Map<String, Value>,
    pub(crate) local: bool,
    pub(crate) uuid: String,
}

/// A device's secrets: its HMAC key and the genesis value its chain starts from (hex).
/// Wiped on drop.
#[derive(Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
struct DeviceSecrets {
    hmac_key: String,
    genesis: String,
}

/// A running device.
pub(crate) struct Device {
    pub(crate) config: DeviceConfig,
    hasher: Hasher,
    writer: Arc<Writer>,
}

/// The enabled devices (loaded on unseal, dropped on seal).
#[derive(Default)]
pub(crate) struct AuditBroker {
    /// Read on every request: an `ArcSwap` load takes no lock and no shared reference count.
    devices: ArcSwap<Vec<Arc<Device>>>,
    /// Serialises enable, disable, load and shutdown.
    changes: tokio::sync::Mutex<()>,
    /// Writers kept across a seal (by device uuid), without their HMAC keys: a request in
    /// flight when the server seals (`sys/seal` itself) still writes its response entry, so
    /// the chain resumes on unseal from where it really stands, not from the head saved.
    parked: std::sync::Mutex<HashMap<String, Arc<Writer>>>,
}

impl AuditBroker {
    fn snapshot(&self) -> Arc<Vec<Arc<Device>>> {
        self.devices.load_full()
    }

    fn set(&self, devices: Vec<Arc<Device>>) {
        self.devices.store(Arc::new(devices));
    }

    /// Starts every device of the stored table (on unseal). A device whose destination is
    /// unavailable still starts: it fails its writes (and counts as not writing) until the
    /// destination comes back.
    pub(crate) async fn load(&self, barrier: &Barrier) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        let mut parked = std::mem::take(
            &mut *self
                .parked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut devices = Vec::new();
        for config in read_table(barrier).await? {
            let secrets = read_secrets(barrier, &config.uuid).await?;
            let saved = read_head(barrier, &config.uuid).await?;
            // A saved head is good once: after a crash (no seal to save it again) a stale
            // head would re-use sequence numbers already sent. Without one, a socket device
            // starts a new chain from its genesis, which a verifier reports as a restart.
            barrier
                .delete(&format!("{HEAD_PREFIX}{}", config.uuid))
                .await?;
            let device = match parked.remove(&config.uuid) {
                Some(writer) => Device {
                    hasher: hasher(&secrets)?,
                    config,
                    writer,
                },
                None => start(config, secrets, saved, false).await?,
            };
            devices.push(Arc::new(device));
        }
        self.set(devices);
        Ok(())
    }

    /// Saves where each chain stands and stops every device (on seal).
    pub(crate) async fn shutdown(&self, barrier: &Barrier) {
        let _guard = self.changes.lock().await;
        let devices = self.snapshot();
        self.set(Vec::new());
        {
            let mut parked = self
                .parked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for device in devices.iter() {
                parked.insert(device.config.uuid.clone(), device.writer.clone());
            }
        }
        for device in devices.iter() {
            let head = device.head();
            if let Ok(bytes) = serde_json::to_vec(&head) {
                let key = format!("{HEAD_PREFIX}{}", device.config.uuid);
                if let Err(e) = barrier.put(&key, &bytes).await {
                    tracing::warn!(device = %device.config.path, error = %e, "could not save the audit chain head");
                }
            }
        }
    }

    /// Enables a device at `path`: checks its destination opens, then stores it.
    async fn enable(&self, barrier: &Barrier, mut config: DeviceConfig) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        config.path = normalise_path(&config.path)?;
        let current = self.snapshot();
        if current.iter().any(|d| d.config.path == config.path) {
            return Err(CoreError::bad("path already in use"));
        }
        target(&config)?;
        let secrets = DeviceSecrets {
            hmac_key: hex::encode(ward_crypto::random_bytes(32)?),
            genesis: hex::encode(ward_crypto::random_bytes(16)?),
        };
        let secrets_bytes = Zeroizing::new(
            serde_json::to_vec(&secrets).map_err(|e| CoreError::Internal(e.to_string()))?,
        );
        let device = start(config, secrets, None, true).await?;
        barrier
            .put(
                &format!("{DEVICE_PREFIX}{}", device.config.uuid),
                &secrets_bytes,
            )
            .await?;
        let mut table: Vec<DeviceConfig> = current.iter().map(|d| d.config.clone()).collect();
        table.push(device.config.clone());
        write_table(barrier, &table).await?;
        let mut next: Vec<Arc<Device>> = current.as_ref().clone();
        next.push(Arc::new(device));
        self.set(next);
        Ok(())
    }

    /// Disables the device at `path` (absent devices are fine, as in Vault).
    async fn disable(&self, barrier: &Barrier, path: &str) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        let path = normalise_path(path)?;
        let current = self.snapshot();
        let Some(gone) = current.iter().find(|d| d.config.path == path).cloned() else {
            return Ok(());
        };
        let next: Vec<Arc<Device>> = current
            .iter()
            .filter(|d| d.config.path != path)
            .cloned()
            .collect();
        let table: Vec<DeviceConfig> = next.iter().map(|d| d.config.clone()).collect();
        write_table(barrier, &table).await?;
        self.set(next);
        barrier
            .delete(&format!("{DEVICE_PREFIX}{}", gone.config.uuid))
            .await?;
        barrier
            .delete(&format!("{HEAD_PREFIX}{}", gone.config.uuid))
            .await?;
        Ok(())
    }

    /// Asks every device to reopen its destination (after log rotation).
    pub(crate) fn reopen(&self) {
        for device in self.snapshot().iter() {
            device.writer.reopen();
        }
    }

    /// Prepares the entries of one request; `None` when no device is enabled.
    pub(crate) fn begin(&self, facts: &RequestFacts<'_>) -> Option<Pending> {
        if self.devices.load().is_empty() {
            return None;
        }
        let devices = self.snapshot();
        let parts = devices
            .iter()
            .map(|d| entry::request_parts(&d.hasher, facts))
            .collect();
        Some(Pending {
            devices,
            parts,
            mount: facts.mount.cloned(),
        })
    }
}

/// The audit side of one request in flight.
pub(crate) struct Pending {
    devices: Arc<Vec<Arc<Device>>>,
    /// Per device: the HMAC'd `auth` and `request` objects.
    parts: Vec<entry::Parts>,
    mount: Option<Arc<MountEntry>>,
}

impl Pending {
    /// Each device's request entry, stamped now.
    pub(crate) fn request_entries(&self, error: Option<&CoreError>) -> Vec<Entry> {
        let time = entry::now_rfc3339();
        self.parts
            .iter()
            .map(|parts| entry::request_entry(&time, parts, error))
            .collect()
    }

    /// Each device's response entry, stamped now.
    fn response_entries(&self, result: &CoreResult<Response>) -> Vec<Entry> {
        let time = entry::now_rfc3339();
        self.devices
            .iter()
            .zip(&self.parts)
            .map(|(d, parts)| {
                entry::response_entry(&d.hasher, &time, parts, self.mount.as_deref(), result)
            })
            .collect()
    }

    /// Writes the request entry; fails when no device wrote it.
    pub(crate) async fn log_request(&self, error: Option<&CoreError>) -> CoreResult<()> {
        let entries = self.request_entries(error);
        self.write(entries.into_iter().map(|e| vec![e]).collect(), "request")
            .await
    }

    /// Writes the response entry; fails when no device wrote it.
    pub(crate) async fn log_response(&self, result: &CoreResult<Response>) -> CoreResult<()> {
        let entries = self.response_entries(result);
        self.write(entries.into_iter().map(|e| vec![e]).collect(), "response")
            .await
    }

    /// Writes a read's request entries (made by [`Self::request_entries`] before it ran)
    /// and its response entries, each device's two lines together; fails when no device
    /// wrote them.
    pub(crate) async fn log_read(
        &self,
        requests: Vec<Entry>,
        result: &CoreResult<Response>,
    ) -> CoreResult<()> {
        let entries = requests
            .into_iter()
            .zip(self.response_entries(result))
            .map(|(request, response)| vec![request, response])
            .collect();
        self.write(entries, "request").await
    }

    /// Writes each device's entries (in the order of `self.devices`).
    async fn write(&self, entries: Vec<Vec<Entry>>, what: &str) -> CoreResult<()> {
        let mut written = 0usize;
        for (device, entries) in self.devices.iter().zip(entries) {
            if device.writer.write(entries).await {
                written += 1;
            }
        }
        if written == 0 {
            return Err(CoreError::AuditFailed(format!(
                "no audit device could record the {what}: the request was refused (see the server log)"
            )));
        }
        Ok(())
    }
}

impl Device {
    fn head(&self) -> ChainHead {
        self.writer.head()
    }
}

/// Builds the device's sink, finds where its chain stands, and starts its writer.
/// With `check`, the destination must open now (enable's test, as Vault's test message).
async fn start(
    config: DeviceConfig,
    secrets: DeviceSecrets,
    saved: Option<ChainHead>,
    check: bool,
) -> CoreResult<Device> {
    let target = target(&config)?;
    let inline = target.is_inline();
    let path = config.path.clone();
    let genesis = secrets.genesis.clone();
    let (sink, head) = tokio::task::spawn_blocking(move || {
        let mut sink = Sink::new(target);
        if check {
            sink.open()
                .map_err(|e| CoreError::bad(format!("audit device failed its test: {e}")))?;
        }
        let head = sink
            .last_line()
            .and_then(|l| ChainHead::after(&l))
            .or(saved)
            .unwrap_or_else(|| ChainHead::genesis(&genesis));
        Ok::<_, CoreError>((sink, head))
    })
    .await
    .map_err(|e| CoreError::Internal(format!("audit device start: {e}")))??;
    let writer = Writer::start(&path, sink, head, inline)
        .map_err(|e| CoreError::Internal(format!("audit writer thread: {e}")))?;
    Ok(Device {
        hasher: hasher(&secrets)?,
        config,
        writer: Arc::new(writer),
    })
}

fn hasher(secrets: &DeviceSecrets) -> CoreResult<Hasher> {
    let key = hex::decode(&secrets.hmac_key)
        .map_err(|_| CoreError::Internal("audit device key is corrupt".into()))?;
    Ok(Hasher::new(Zeroizing::new(key)))
}

/// The destination a device's type and options name.
fn target(config: &DeviceConfig) -> CoreResult<Target> {
    let opt = |name: &str| -> Option<String> {
        config.options.get(name).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let flag = |name: &str| opt(name).is_some_and(|v| v == "true" || v == "1");
    if flag("log_raw") {
        return Err(CoreError::bad(
            "log_raw is not supported: Ward never writes secrets to an audit device in clear",
        ));
    }
    if opt("format").is_some_and(|f| f != "json") {
        return Err(CoreError::bad(
            "unsupported format: only \"json\" is supported",
        ));
    }
    match config.device_type.as_str() {
        "file" => {
            let path = opt("file_path")
                .or_else(|| opt("path"))
                .filter(|p| !p.is_empty())
                .ok_or_else(|| CoreError::bad("file_path is required"))?;
            if path == "stdout" {
                return Ok(Target::Stdout);
            }
            if path == "discard" {
                return Err(CoreError::bad("file_path \"discard\" is not supported"));
            }
            Ok(Target::File {
                path: PathBuf::from(path),
                fsync: flag("fsync"),
            })
        }
        "socket" => {
            let address = opt("address")
                .filter(|a| !a.is_empty())
                .ok_or_else(|| CoreError::bad("address is required"))?;
            match opt("socket_type").as_deref().unwrap_or("tcp") {
                "tcp" => Ok(Target::Tcp(address)),
                "udp" => Ok(Target::Udp(address)),
                other => Err(CoreError::bad(format!(
                    "unsupported socket_type {other:?}: \"tcp\" or \"udp\""
                ))),
            }
        }
        "syslog" => {
            let facility = opt("facility").unwrap_or_else(|| "AUTH".into());
            let code = facility_code(&facility)
                .ok_or_else(|| CoreError::bad(format!("unknown syslog facility {facility:?}")))?;
            Ok(Target::Syslog {
                socket: PathBuf::from(opt("socket_path").unwrap_or_else(|| "/dev/log".into())),
                priority: code * 8 + 6,
                tag: opt("tag").unwrap_or_else(|| "ward".into()),
            })
        }
        other => Err(CoreError::bad(format!(
            "unknown audit device type {other:?}: \"file\", \"socket\" or \"syslog\""
        ))),
    }
}

fn facility_code(name: &str) -> Option<u8> {
    const NAMES: [&str; 24] = [
        "KERN", "USER", "MAIL", "DAEMON", "AUTH", "SYSLOG", "LPR", "NEWS", "UUCP", "CRON",
        "AUTHPRIV", "FTP", "", "", "", "", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4",
        "LOCAL5", "LOCAL6", "LOCAL7",
    ];
    let upper = name.to_ascii_uppercase();
    NAMES
        .iter()
        .position(|n| !n.is_empty() && *n == upper)
        .and_then(|p| u8::try_from(p).ok())
}

fn normalise_path(path: &str) -> CoreResult<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Err(CoreError::bad("missing audit device path"));
    }
    if trimmed.contains("//") || trimmed.chars().any(|c| c.is_control()) {
        return Err(CoreError::bad("invalid audit device path"));
    }
    Ok(format!("{trimmed}/"))
}

async fn read_table(barrier: &Barrier) -> CoreResult<Vec<DeviceConfig>> {
    match barrier.get(TABLE_KEY).await? {
        Some(bytes) => serde_json::from_slice(bytes.expose())
            .map_err(|_| CoreError::Internal("audit table is corrupt".into())),
        None => Ok(Vec::new()),
    }
}

async fn write_table(barrier: &Barrier, table: &[DeviceConfig]) -> CoreResult<()> {
    let bytes = serde_json::to_vec(table).map_err(|e| CoreError::Internal(e.to_string()))?;
    barrier.put(TABLE_KEY, &bytes).await?;
    Ok(())
}

async fn read_secrets(barrier: &Barrier, uuid: &str) -> CoreResult<DeviceSecrets> {
    let bytes = barrier
        .get(&format!("{DEVICE_PREFIX}{uuid}"))
        .await?
        .ok_or_else(|| CoreError::Internal("audit device key is missing".into()))?;
    serde_json::from_slice(bytes.expose())
        .map_err(|_| CoreError::Internal("audit device key is corrupt".into()))
}

async fn read_head(barrier: &Barrier, uuid: &str) -> CoreResult<Option<ChainHead>> {
    Ok(barrier
        .get(&format!("{HEAD_PREFIX}{uuid}"))
        .await?
        .and_then(|bytes| serde_json::from_slice(bytes.expose()).ok()))
}
