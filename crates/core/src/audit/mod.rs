//! Audit devices: every request and response, written as one hash-chained JSON line to each
//! enabled device before the response leaves, secrets HMAC'd with the device's own key.
//!
//! - The table of devices (`core/audit`) and each device's HMAC key, checkpoint signing key
//!   and genesis value (`core/audit-device/<uuid>`) are stored behind the barrier, so
//!   devices come back on unseal with the same keys. Where each chain stands is saved on seal
//!   (`core/audit-head/<uuid>`); a file device also reads it back from its file's last line.
//! - Signed checkpoints ([`checkpoint`]): the head after a device's last checkpoint is saved
//!   behind the barrier (`core/audit-checkpoint/<uuid>`, at seal and by a timer); at unseal a
//!   file device's file must still hold it, or the break is logged, recorded in the log as a
//!   signed checkpoint, and shown by `sys/audit`.
//! - Sealing: each device writes a checkpoint and saves its head, then the barrier seals, and
//!   only then are the devices let go: a request that got past the seal check meanwhile is
//!   still audited, and one that gets to the audit after is refused as sealed, never served
//!   unaudited.
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
mod checkpoint;
mod entry;
mod flush_behind;
mod hashed;
mod hasher;
mod inline;
mod sink;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ward_api::audit::{ChainHead, Entry};
use ward_store::Barrier;
use zeroize::Zeroizing;

use checkpoint::{Checkpointer, Forced, Mark, Policy, SharedCheckpointer, Signer, lock};
use entry::Hasher;
pub(crate) use entry::RequestFacts;
use sink::{Sink, Target};
use writer::Writer;

use crate::mounts::MountEntry;
use crate::{CoreError, CoreResult, Response};

pub(crate) const TABLE_KEY: &str = "core/audit";
const DEVICE_PREFIX: &str = "core/audit-device/";
const HEAD_PREFIX: &str = "core/audit-head/";
const CHECKPOINT_PREFIX: &str = "core/audit-checkpoint/";

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

/// A device's secrets: its HMAC key, the genesis value its chain starts from (hex), and its
/// checkpoint signing key (Ed25519, PKCS#8 in hex; devices enabled before checkpoints get
/// one at their next unseal). Wiped on drop.
#[derive(Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
struct DeviceSecrets {
    hmac_key: String,
    genesis: String,
    #[serde(default)]
    signing_key: String,
}

/// What is saved behind the barrier about a device's checkpoints.
#[derive(Serialize, Deserialize, Clone, Default, PartialEq, Eq, Debug)]
struct SavedCheckpoint {
    /// The head after its last checkpoint.
    mark: Option<Mark>,
    /// The last break found in its log.
    #[serde(rename = "break")]
    chain_break: Option<BreakRecord>,
}

/// A break found in a device's log at unseal.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
struct BreakRecord {
    time: String,
    reason: String,
}

/// A running device.
pub(crate) struct Device {
    pub(crate) config: DeviceConfig,
    hasher: Hasher,
    writer: Arc<Writer>,
    /// Its checkpoints (shared with its sink).
    checkpoints: SharedCheckpointer,
    /// `ed25519:<hex>` of its checkpoint key.
    public_key: String,
    /// What was last saved of its checkpoints.
    saved: std::sync::Mutex<SavedCheckpoint>,
    /// The name its chain head and checkpoint are saved under: its uuid, and in a cluster
    /// this server's node id too (each server writes a chain of its own).
    records: String,
}

/// The enabled devices (loaded on unseal, dropped on seal).
#[derive(Default)]
pub(crate) struct AuditBroker {
    /// Read on every request: an `ArcSwap` load takes no lock and no shared reference count.
    devices: ArcSwap<Vec<Arc<Device>>>,
    /// Serialises enable, disable, load and shutdown.
    changes: tokio::sync::Mutex<()>,
    /// Writers kept across a seal (by device uuid), without their HMAC and signing keys: a
    /// request in flight when the server seals (`sys/seal` itself) still writes its response
    /// entry, so the chain resumes on unseal from where it really stands, not from the head
    /// saved. With their checkpoint slots, which the next unseal fills again.
    parked: std::sync::Mutex<HashMap<String, (Arc<Writer>, SharedCheckpointer)>>,
    /// Set once the devices are loaded (unseal), cleared when they are let go (seal): a
    /// request that finds no device while it is clear is refused, not served unaudited.
    open: AtomicBool,
    /// The timer that checkpoints quiet devices and saves their heads.
    ticker: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// This server's node id, when it shares the storage with others.
    node: std::sync::OnceLock<String>,
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
    /// destination comes back. A file device's file is compared with the head saved after
    /// its last checkpoint; a break is logged and recorded.
    pub(crate) async fn load(&self, barrier: &Barrier) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        let mut parked = std::mem::take(&mut *lock(&self.parked));
        let mut devices = Vec::new();
        for config in read_table(barrier).await? {
            devices.push(self.open_stored(barrier, config, &mut parked).await?);
        }
        self.set(devices);
        self.open.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Makes the running devices those of the stored table (another server enabled or
    /// disabled one).
    pub(crate) async fn sync(&self, barrier: &Barrier) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        if !self.open.load(Ordering::SeqCst) {
            return Ok(());
        }
        let current = self.snapshot();
        let mut next = Vec::new();
        for config in read_table(barrier).await? {
            match current.iter().find(|d| d.config.uuid == config.uuid) {
                Some(running) => next.push(Arc::clone(running)),
                None => next.push(
                    self.open_stored(barrier, config, &mut HashMap::new())
                        .await?,
                ),
            }
        }
        self.set(next);
        Ok(())
    }

    /// Makes this server's chain records of device `uuid` its own (see [`Device::records`]).
    pub(crate) fn set_node(&self, node_id: &str) {
        let _ = self.node.set(node_id.to_owned());
    }

    fn records_of(&self, uuid: &str) -> String {
        match self.node.get() {
            Some(node) => format!("{uuid}/{node}"),
            None => uuid.to_owned(),
        }
    }

    /// Starts the stored device `config` (its writer parked at the last seal, if any), and
    /// checks its file against the head saved after its last checkpoint.
    async fn open_stored(
        &self,
        barrier: &Barrier,
        config: DeviceConfig,
        parked: &mut HashMap<String, (Arc<Writer>, SharedCheckpointer)>,
    ) -> CoreResult<Arc<Device>> {
        let mut secrets = read_secrets(barrier, &config.uuid).await?;
        let signer = match secrets.signing_key.as_str() {
            "" => {
                let (signer, stored) = Signer::generate()?;
                secrets.signing_key = stored.to_string();
                write_secrets(barrier, &config.uuid, &secrets).await?;
                signer
            }
            stored => Signer::from_hex(stored)?,
        };
        let records = self.records_of(&config.uuid);
        let saved = read_head(barrier, &records).await?;
        // A saved head is good once: after a crash (no seal to save it again) a stale
        // head would re-use sequence numbers already sent. Without one, a socket device
        // starts a new chain from its genesis, which a verifier reports as a restart.
        barrier.delete(&format!("{HEAD_PREFIX}{records}")).await?;
        let record = read_checkpoint(barrier, &records).await?;
        let policy = policy(&config)?;
        let public_key = signer.public_key_text();
        let device = match parked.remove(&config.uuid) {
            Some((writer, checkpoints)) => Device {
                hasher: hasher(&secrets)?,
                config,
                writer,
                checkpoints,
                public_key,
                saved: std::sync::Mutex::new(record.clone()),
                records,
            },
            None => {
                let fresh = Fresh {
                    saved,
                    new: false,
                    public_key,
                    record: record.clone(),
                    records,
                };
                start(config, secrets, fresh).await?
            }
        };
        // The lines after the last checkpoint are signed by the next one.
        let lines_since = match &record.mark {
            Some(mark) => device.head().seq.saturating_sub(mark.seq),
            None => device.head().seq,
        };
        *lock(&device.checkpoints) = Some(Checkpointer::new(
            signer,
            policy,
            record.mark.clone(),
            lines_since,
        ));
        if let Some(reason) = find_break(&device.config, record.mark.as_ref()).await {
            tracing::error!(device = %device.config.path, %reason, "audit log break: the file no longer holds the head saved after its last checkpoint");
            let written = device
                .writer
                .checkpoint(Forced {
                    reason: "break",
                    chain_break: Some(reason.clone()),
                    only_if_due: false,
                })
                .await;
            if !written {
                tracing::error!(device = %device.config.path, "the audit log break could not be recorded in the log");
            }
            lock(&device.saved).chain_break = Some(BreakRecord {
                time: ward_api::time::now_rfc3339_nanos(),
                reason,
            });
            device.save(barrier, true).await;
        }
        Ok(Arc::new(device))
    }

    /// Has every device write a checkpoint and saves where each stands (before a seal: the
    /// barrier is still open, and the devices go on writing).
    pub(crate) async fn checkpoint_all(&self, barrier: &Barrier, reason: &'static str) {
        let _guard = self.changes.lock().await;
        for device in self.snapshot().iter() {
            device
                .writer
                .checkpoint(Forced {
                    reason,
                    chain_break: None,
                    only_if_due: false,
                })
                .await;
            device.save(barrier, false).await;
            let head = device.head();
            if let Ok(bytes) = serde_json::to_vec(&head) {
                let key = format!("{HEAD_PREFIX}{}", device.records);
                if let Err(e) = barrier.put(&key, &bytes).await {
                    tracing::warn!(device = %device.config.path, error = %crate::Report(&e), "could not save the audit chain head");
                }
            }
        }
    }

    /// Lets every device go (on seal, once the barrier is sealed). Their writers are parked,
    /// without their keys, for the requests still in flight.
    pub(crate) async fn shutdown(&self) {
        let _guard = self.changes.lock().await;
        self.open.store(false, Ordering::SeqCst);
        if let Some(ticker) = lock(&self.ticker).take() {
            ticker.abort();
        }
        let devices = self.snapshot();
        self.set(Vec::new());
        let mut parked = lock(&self.parked);
        for device in devices.iter() {
            // The signing key stays behind the barrier.
            *lock(&device.checkpoints) = None;
            parked.insert(
                device.config.uuid.clone(),
                (device.writer.clone(), device.checkpoints.clone()),
            );
        }
    }

    /// Starts the timer that checkpoints devices gone quiet and saves their heads; it ends
    /// at seal, or when the core is dropped.
    fn start_ticker(&self, core: Weak<crate::Core>) {
        let task = tokio::spawn(async move {
            loop {
                let tick = match core.upgrade() {
                    Some(core) => core.audit.tick(),
                    None => return,
                };
                tokio::time::sleep(tick).await;
                let Some(core) = core.upgrade() else { return };
                if core.is_sealed() {
                    return;
                }
                core.audit.checkpoint_tick(&core.barrier).await;
            }
        });
        if let Some(old) = lock(&self.ticker).replace(task) {
            old.abort();
        }
    }

    /// How often the timer looks: the shortest checkpoint interval of the devices, within
    /// [0.5 s, 5 s].
    fn tick(&self) -> Duration {
        self.snapshot()
            .iter()
            .filter_map(|d| policy(&d.config).ok())
            .map(|p| p.interval)
            .min()
            .unwrap_or(checkpoint::DEFAULT_INTERVAL)
            .clamp(Duration::from_millis(500), Duration::from_secs(5))
    }

    /// Writes the checkpoints that are due and saves the heads that moved.
    async fn checkpoint_tick(&self, barrier: &Barrier) {
        let _guard = self.changes.lock().await;
        for device in self.snapshot().iter() {
            device
                .writer
                .checkpoint(Forced {
                    reason: "interval",
                    chain_break: None,
                    only_if_due: true,
                })
                .await;
            device.save(barrier, false).await;
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
        let policy = policy(&config)?;
        let (signer, signing_key) = Signer::generate()?;
        let secrets = DeviceSecrets {
            hmac_key: hex::encode(ward_crypto::random_bytes(32)?),
            genesis: hex::encode(ward_crypto::random_bytes(16)?),
            signing_key: signing_key.to_string(),
        };
        let secrets_bytes =
            Zeroizing::new(serde_json::to_vec(&secrets).map_err(CoreError::Encode)?);
        let public_key = signer.public_key_text();
        let fresh = Fresh {
            saved: None,
            new: true,
            public_key,
            record: SavedCheckpoint::default(),
            records: self.records_of(&config.uuid),
        };
        let device = start(config, secrets, fresh).await?;
        let lines_since = device.head().seq;
        *lock(&device.checkpoints) = Some(Checkpointer::new(signer, policy, None, lines_since));
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
    pub(crate) async fn disable(&self, barrier: &Barrier, path: &str) -> CoreResult<()> {
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
            .delete(&format!("{HEAD_PREFIX}{}", gone.records))
            .await?;
        barrier
            .delete(&format!("{CHECKPOINT_PREFIX}{}", gone.records))
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
            // Sealing (or not yet unsealed): the devices are gone, not disabled. The request
            // is refused before it runs, as after the seal.
            if !self.open.load(Ordering::SeqCst) {
                return Some(Pending {
                    devices: Arc::default(),
                    parts: Vec::new(),
                    mount: None,
                    sealed: true,
                });
            }
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
            sealed: false,
        })
    }
}

impl AuditBroker {
    /// Records work the server did by itself (a scheduled snapshot) as a request and
    /// response pair without a caller or a client address, so the log shows it among the
    /// requests. Nothing waits on it: a device that cannot write it says so in the server
    /// log.
    pub(crate) async fn log_internal(
        &self,
        request: &crate::Request,
        result: &CoreResult<Response>,
    ) {
        let id = uuid::Uuid::new_v4().to_string();
        let facts = RequestFacts {
            id: &id,
            request,
            caller: None,
            mount: None,
        };
        let Some(pending) = self.begin(&facts) else {
            return;
        };
        if pending.sealed {
            return;
        }
        let requests = pending.request_entries(None);
        if let Err(e) = pending.log_read(requests, result).await {
            tracing::error!(path = %request.path, error = %e.report(), "could not audit the server's own work");
        }
    }
}

/// The audit side of one request in flight.
pub(crate) struct Pending {
    devices: Arc<Vec<Arc<Device>>>,
    /// Per device: the HMAC'd `auth` and `request` objects.
    parts: Vec<entry::Parts>,
    mount: Option<Arc<MountEntry>>,
    /// Begun while the devices were let go for a seal: every write refuses the request.
    sealed: bool,
}

impl Pending {
    /// Each device's request entry, stamped now.
    pub(crate) fn request_entries(&self, error: Option<&CoreError>) -> Vec<Entry> {
        let time = ward_api::time::now_rfc3339_nanos();
        self.parts
            .iter()
            .map(|parts| entry::request_entry(&time, parts, error))
            .collect()
    }

    /// Each device's response entry, stamped now.
    fn response_entries(&self, result: &CoreResult<Response>) -> Vec<Entry> {
        let time = ward_api::time::now_rfc3339_nanos();
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
        if self.sealed {
            return Err(CoreError::Sealed);
        }
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

/// What the compliance report reads of one device.
pub(crate) struct DeviceFacts {
    pub(crate) path: String,
    pub(crate) device_type: String,
    /// The file a `file` device writes to (not `stdout`).
    pub(crate) file: Option<PathBuf>,
    /// `ed25519:<hex>` of its checkpoint key.
    pub(crate) public_key: String,
    /// The last break the server found in its log: time and reason.
    pub(crate) chain_break: Option<(String, String)>,
}

impl AuditBroker {
    /// The enabled devices, for the compliance report.
    pub(crate) fn report_facts(&self) -> Vec<DeviceFacts> {
        self.snapshot()
            .iter()
            .map(|d| {
                let c = &d.config;
                let file = (c.device_type == "file")
                    .then(|| {
                        ["file_path", "path"]
                            .iter()
                            .find_map(|k| c.options.get(*k).and_then(Value::as_str))
                    })
                    .flatten()
                    .filter(|p| !p.is_empty() && *p != "stdout")
                    .map(PathBuf::from);
                DeviceFacts {
                    path: c.path.clone(),
                    device_type: c.device_type.clone(),
                    file,
                    public_key: d.public_key.clone(),
                    chain_break: d.saved_record().chain_break.map(|b| (b.time, b.reason)),
                }
            })
            .collect()
    }
}

impl Device {
    fn head(&self) -> ChainHead {
        self.writer.head()
    }

    /// What was last saved of its checkpoints (and its last break).
    fn saved_record(&self) -> SavedCheckpoint {
        lock(&self.saved).clone()
    }

    /// The head after its last checkpoint, while unsealed.
    fn last_checkpoint(&self) -> Option<Mark> {
        lock(&self.checkpoints)
            .as_ref()
            .and_then(|c| c.last().cloned())
    }

    /// Saves the head after its last checkpoint (and its last break) behind the barrier, if
    /// it moved since it was last saved (or `always`).
    async fn save(&self, barrier: &Barrier, always: bool) {
        let mut record = lock(&self.saved).clone();
        let mark = self.last_checkpoint();
        if !always && (mark.is_none() || record.mark == mark) {
            return;
        }
        if mark.is_some() {
            record.mark = mark;
        }
        let Ok(bytes) = serde_json::to_vec(&record) else {
            return;
        };
        let key = format!("{CHECKPOINT_PREFIX}{}", self.records);
        match barrier.put(&key, &bytes).await {
            Ok(()) => *lock(&self.saved) = record,
            Err(e) => {
                tracing::warn!(device = %self.config.path, error = %crate::Report(&e), "could not save the audit checkpoint head");
            }
        }
    }
}

impl crate::Core {
    /// Starts the audit devices (on unseal), and their checkpoint timer when the core runs
    /// its background tasks.
    pub(crate) async fn load_audit(&self) -> CoreResult<()> {
        self.audit.load(&self.barrier).await?;
        if let Some(core) = self.shared() {
            core.start_audit_ticker();
        }
        Ok(())
    }

    /// Starts the audit checkpoint timer, if the devices are loaded (it stops at seal; the
    /// next unseal starts it again). Called by [`Self::spawn_scheduler`] too, for a core
    /// unsealed before its background tasks started (dev mode).
    pub(crate) fn start_audit_ticker(self: &Arc<Self>) {
        if self.audit.open.load(Ordering::SeqCst) {
            self.audit.start_ticker(Arc::downgrade(self));
        }
    }
}

/// What is wrong with a file device's file, compared with the head saved after its last
/// checkpoint (`None`: nothing found, or not a file device).
async fn find_break(config: &DeviceConfig, mark: Option<&Mark>) -> Option<String> {
    let (Ok(Target::File { path, .. }), Some(mark)) = (target(config), mark) else {
        return None;
    };
    let mark = mark.clone();
    tokio::task::spawn_blocking(move || checkpoint::check_file(&path, &mark))
        .await
        .unwrap_or_else(|e| Some(format!("the audit file could not be checked: {e}")))
}

/// When the device writes checkpoints: its options `checkpoint_lines` (a count) and
/// `checkpoint_interval` (a duration: `10s`, `1m`, or seconds).
fn policy(config: &DeviceConfig) -> CoreResult<Policy> {
    let text = |name: &str| -> Option<String> {
        config.options.get(name).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let lines = match text("checkpoint_lines") {
        None => checkpoint::DEFAULT_LINES,
        Some(t) => t
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| CoreError::bad("checkpoint_lines must be a positive whole number"))?,
    };
    let interval = match text("checkpoint_interval") {
        None => checkpoint::DEFAULT_INTERVAL,
        Some(t) => ward_api::parse_duration_seconds(&t)
            .ok()
            .filter(|n| *n > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                CoreError::bad("checkpoint_interval must be a positive duration (\"10s\", \"1m\")")
            })?,
    };
    Ok(Policy { lines, interval })
}

/// Builds the device's sink, finds where its chain stands, and starts its writer.
/// With `check`, the destination must open now (enable's test, as Vault's test message).
/// What a device starts from besides its configuration and keys.
struct Fresh {
    /// The chain head saved at the last seal, if any.
    saved: Option<ChainHead>,
    /// A device being enabled: its destination must open now.
    new: bool,
    public_key: String,
    /// What was saved of its checkpoints.
    record: SavedCheckpoint,
    /// See [`Device::records`].
    records: String,
}

async fn start(config: DeviceConfig, secrets: DeviceSecrets, fresh: Fresh) -> CoreResult<Device> {
    let Fresh {
        saved,
        new: check,
        public_key,
        record,
        records,
    } = fresh;
    let target = target(&config)?;
    let inline = target.is_inline();
    let path = config.path.clone();
    let genesis = secrets.genesis.clone();
    let checkpoints = SharedCheckpointer::default();
    let shared = checkpoints.clone();
    let (sink, head) = tokio::task::spawn_blocking(move || {
        let mut sink = Sink::new(target, shared);
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
    .map_err(|e| CoreError::task("audit device start", e))??;
    let writer = Writer::start(&path, sink, head, inline)
        .map_err(|e| CoreError::task("audit writer thread start", e))?;
    Ok(Device {
        hasher: hasher(&secrets)?,
        config,
        writer: Arc::new(writer),
        checkpoints,
        public_key,
        saved: std::sync::Mutex::new(record),
        records,
    })
}

fn hasher(secrets: &DeviceSecrets) -> CoreResult<Hasher> {
    let key = hex::decode(&secrets.hmac_key).map_err(|_| CoreError::corrupt("audit device key"))?;
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
        Some(bytes) => {
            serde_json::from_slice(bytes.expose()).map_err(CoreError::corrupt_json("audit table"))
        }
        None => Ok(Vec::new()),
    }
}

async fn write_table(barrier: &Barrier, table: &[DeviceConfig]) -> CoreResult<()> {
    let bytes = serde_json::to_vec(table).map_err(CoreError::Encode)?;
    barrier.put(TABLE_KEY, &bytes).await?;
    Ok(())
}

async fn read_secrets(barrier: &Barrier, uuid: &str) -> CoreResult<DeviceSecrets> {
    let bytes = barrier
        .get(&format!("{DEVICE_PREFIX}{uuid}"))
        .await?
        .ok_or_else(|| CoreError::corrupt("audit device key (missing)"))?;
    serde_json::from_slice(bytes.expose()).map_err(|_| CoreError::corrupt("audit device key"))
}

async fn write_secrets(barrier: &Barrier, uuid: &str, secrets: &DeviceSecrets) -> CoreResult<()> {
    let bytes = Zeroizing::new(serde_json::to_vec(secrets).map_err(CoreError::Encode)?);
    barrier
        .put(&format!("{DEVICE_PREFIX}{uuid}"), &bytes)
        .await?;
    Ok(())
}

async fn read_checkpoint(barrier: &Barrier, records: &str) -> CoreResult<SavedCheckpoint> {
    Ok(barrier
        .get(&format!("{CHECKPOINT_PREFIX}{records}"))
        .await?
        .and_then(|bytes| serde_json::from_slice(bytes.expose()).ok())
        .unwrap_or_default())
}

async fn read_head(barrier: &Barrier, records: &str) -> CoreResult<Option<ChainHead>> {
    Ok(barrier
        .get(&format!("{HEAD_PREFIX}{records}"))
        .await?
        .and_then(|bytes| serde_json::from_slice(bytes.expose()).ok()))
}
