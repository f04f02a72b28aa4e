//! Snapshots of the whole storage (`sys/storage/snapshot`, Vault's
//! `sys/storage/raft/snapshot[-force]`): taken while serving, restored atomically. The file
//! format is `ward-snapshot`'s; this module feeds it the storage's entries as stored (barrier
//! ciphertext) and writes a restored one back.
//!
//! The flow follows Vault's disaster recovery: a snapshot of this cluster (its MAC checks
//! under a key derived from this root key) restores as it is and the server stays unsealed,
//! its caches reloaded; a snapshot from another root key needs `force`, after which the
//! server is sealed and the snapshot's own unseal shares open it.

use std::sync::Arc;

use tokio::sync::mpsc;
use ward_snapshot::{Decoder, Encoder, Header, Item, SnapshotError, SnapshotKey};
use ward_store::{Import, StoreError};

use crate::core::now;
use crate::{Core, CoreError, CoreResult};

/// The format's bound on keys is the storage's.
const _: () = assert!(ward_snapshot::MAX_KEY_LEN == ward_store::MAX_BACKEND_KEY_LEN);

/// Pieces of a snapshot being written: the bytes, in order, or the error that cut it short.
pub struct SnapshotStream {
    /// The snapshot's header.
    pub header: Header,
    /// The snapshot's bytes, a piece at a time; an `Err` means the snapshot is incomplete
    /// (the transport must not let it pass for a whole one).
    pub chunks: mpsc::Receiver<CoreResult<Vec<u8>>>,
}

impl std::fmt::Debug for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStream")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The snapshot's header.
    pub header: Header,
    /// Whether the snapshot came from another root key (restored with force): the server
    /// is now sealed, and the snapshot's unseal shares open it.
    pub sealed: bool,
}

/// Snapshot chunks buffered between the storage export and the client: with the export's own
/// few batches, what a snapshot of any size holds in memory at once.
const CHUNK_QUEUE: usize = 4;

impl Core {
    /// The key snapshots are MACed with: derived from the root key, so unsealed only.
    fn snapshot_key(&self) -> CoreResult<SnapshotKey> {
        let root = self.root_key()?;
        Ok(SnapshotKey::derive(root.expose()))
    }

    /// Starts a snapshot of the storage as one read sees it, while requests go on. With
    /// `vault_container`, the snapshot travels in Vault's gzip'd tar, which `bao operator
    /// raft snapshot save` insists on; Ward's parsers unwrap it by themselves.
    pub async fn snapshot(&self, vault_container: bool) -> CoreResult<SnapshotStream> {
        let key = self.snapshot_key()?;
        let keyring_term = self.barrier.keyring()?.active_term().number();
        let mut export = self.barrier.raw_storage().export().await?;
        let header = Header {
            version: ward_snapshot::FORMAT_VERSION,
            created_unix: now(),
            storage: self.config.storage_type.clone(),
            keyring_term,
            key_id: key.id(),
            records: export.count,
        };
        let (sender, chunks) = mpsc::channel(CHUNK_QUEUE);
        let mut first = Vec::new();
        let mut encoder = Encoder::start(&header, &mut first).map_err(CoreError::Snapshot)?;
        let mut container = vault_container.then(ward_snapshot::ArchiveWriter::new);
        let first = wrap(&mut container, first);
        tokio::spawn(async move {
            if sender.send(Ok(first)).await.is_err() {
                return;
            }
            while let Some(batch) = export.batches.recv().await {
                let chunk = batch.map_err(CoreError::from).and_then(|entries| {
                    let mut out = Vec::with_capacity(
                        entries.iter().map(|(k, v)| k.len() + v.len() + 8).sum(),
                    );
                    for (k, v) in &entries {
                        encoder
                            .record(k, v, &mut out)
                            .map_err(CoreError::Snapshot)?;
                    }
                    Ok(wrap(&mut container, out))
                });
                let failed = chunk.is_err();
                if sender.send(chunk).await.is_err() || failed {
                    return;
                }
            }
            let mut last = Vec::new();
            let end = encoder
                .finish(&key, &mut last)
                .map(|trailer| {
                    let mut out = wrap(&mut container, last);
                    if let Some(archive) = container.take() {
                        out.extend(archive.finish(&trailer.digest));
                    }
                    out
                })
                .map_err(CoreError::Snapshot);
            let _ = sender.send(end).await;
        });
        Ok(SnapshotStream { header, chunks })
    }

    /// Restores a snapshot streamed in `body`: every stored entry is replaced by the
    /// snapshot's, in one transaction that commits only once the whole snapshot has been read
    /// and its checksum (and, for this cluster's, its MAC) holds. A bad snapshot leaves the
    /// storage as it was. `force` accepts a snapshot from another root key.
    pub async fn restore_snapshot(
        &self,
        body: mpsc::Receiver<std::io::Result<Vec<u8>>>,
        force: bool,
    ) -> CoreResult<Restored> {
        let key = self.snapshot_key()?;
        // One restore at a time, and none beside an unseal, a seal or a keyring rotation.
        let _guard = self.progress.lock().await;
        // No write may land after the restore that was encrypted for the storage before it:
        // the storage holds its writers back during the import anyway; these wait above it
        // until the restored keyring is installed.
        let paused = self.barrier.pause_writes().await;
        let (steps, imported) = mpsc::channel(CHUNK_QUEUE);
        let storage = Arc::clone(self.barrier.raw_storage());
        let import = tokio::spawn(async move { storage.replace_all(imported).await });
        let read = read_snapshot(body, &key, force, steps).await;
        let written = import.await.map_err(|e| CoreError::Task {
            what: "snapshot import",
            source: Some(Box::new(e)),
        })?;
        let header = match (read, written) {
            (Ok(header), Ok(_)) => header,
            // The storage failed on its own: its error says why.
            (_, Err(e)) if !matches!(e, StoreError::ImportAborted) => return Err(e.into()),
            // The snapshot was bad: the import was abandoned, the storage is untouched.
            (Err(e), _) => return Err(e),
            (Ok(_), Err(e)) => return Err(e.into()),
        };
        let foreign = header.key_id != key.id();
        tracing::info!(
            records = header.records,
            created = header.created_unix,
            foreign,
            "snapshot restored"
        );
        let sealed = self.adopt_restored_storage(paused, foreign).await;
        Ok(Restored { header, sealed })
    }

    /// Another server of the cluster restored a snapshot into the shared storage: this one
    /// reloads everything as the restored storage has it, or seals if its root key does not
    /// open the restored keyring (a snapshot of another cluster).
    pub async fn storage_restored(&self) {
        let _guard = self.progress.lock().await;
        if self.is_sealed() {
            self.clear_caches();
            return;
        }
        let paused = self.barrier.pause_writes().await;
        self.adopt_restored_storage(paused, false).await;
    }

    /// Serves the storage as a restore left it: with writes paused, the caches are dropped
    /// and the restored keyring and mount table installed; then writes go on and the rest
    /// (policies, audit devices) is loaded as at unseal. Seals instead when the snapshot came
    /// from another root key (`foreign`), when this root key does not open the restored
    /// keyring, or when reloading fails: whatever the restored state is, this server cannot
    /// serve it as it is, and unsealing loads it afresh. Whether it sealed.
    async fn adopt_restored_storage(
        &self,
        paused: ward_store::WritesPaused<'_>,
        foreign: bool,
    ) -> bool {
        self.clear_caches();
        let installed = if foreign {
            Err(CoreError::bad("the snapshot came from another root key"))
        } else {
            self.install_restored_keyring().await
        };
        if let Err(e) = installed {
            self.seal_after_restore(paused, &e).await;
            return true;
        }
        drop(paused);
        if let Err(e) = self.post_unseal().await {
            let paused = self.barrier.pause_writes().await;
            self.seal_after_restore(paused, &e).await;
            return true;
        }
        false
    }

    /// Loads the restored keyring with this server's root key and the mount table under it.
    async fn install_restored_keyring(&self) -> CoreResult<()> {
        let root_key = self.root_key()?;
        let keyring =
            crate::seal::load_keyring(self.barrier.raw_storage().as_ref(), &root_key).await?;
        self.barrier.unseal(Arc::new(keyring));
        self.mounts.load(&self.barrier).await
    }

    /// Seals without writing anything: the storage may now belong to another root key, so
    /// the audit checkpoints `seal` saves could be written under a keyring it no longer has.
    async fn seal_after_restore(&self, paused: ward_store::WritesPaused<'_>, why: &CoreError) {
        if let Some(cluster) = self.cluster.get() {
            cluster.set_serving(false);
        }
        self.barrier.seal();
        if let Ok(mut slot) = self.root_key.write() {
            *slot = None;
        }
        self.clear_caches();
        // Writes waiting now find the barrier sealed; the audit devices' last writes too.
        drop(paused);
        self.audit.shutdown().await;
        tracing::warn!(
            reason = %why.report(),
            "sealed after a snapshot restore: unseal with the keys of the cluster the snapshot \
             came from"
        );
    }
}

/// A piece of the snapshot as it is sent: as it is, or as the next entry of Vault's container.
fn wrap(container: &mut Option<ward_snapshot::ArchiveWriter>, piece: Vec<u8>) -> Vec<u8> {
    match container {
        Some(archive) => archive.piece(&piece),
        None => piece,
    }
}

/// Entries sent to the import at a time.
const IMPORT_BATCH: usize = 256;

/// Parses `body` into import steps, sending [`Import::Commit`] only if the whole snapshot is
/// sound; on any error it returns without it (dropping `steps` abandons the import).
async fn read_snapshot(
    mut body: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    key: &SnapshotKey,
    force: bool,
    steps: mpsc::Sender<Import>,
) -> CoreResult<Header> {
    let bad = |e: SnapshotError| CoreError::Snapshot(e);
    // The import stopped (a storage failure): its own error says why.
    let import_gone = || CoreError::Storage(StoreError::ImportAborted);
    let mut decoder = Decoder::new();
    let mut header: Option<Header> = None;
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut sound = false;
    while let Some(chunk) = body.recv().await {
        let chunk = chunk
            .map_err(|_| CoreError::bad("failed to read the snapshot from the request body"))?;
        decoder.push(&chunk);
        while let Some(item) = decoder.next_item().map_err(bad)? {
            match item {
                Item::Header(h) => {
                    if h.key_id != key.id() && !force {
                        return Err(CoreError::bad(
                            "the snapshot was taken under a different root key (another \
                             cluster, or before a re-initialisation); restore it with force \
                             (snapshot-force), after which the server is sealed and the \
                             snapshot's unseal keys open it",
                        ));
                    }
                    header = Some(h);
                }
                Item::Record { key, value } => {
                    batch.push((key, value));
                    if batch.len() == IMPORT_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH));
                        steps
                            .send(Import::Entries(full))
                            .await
                            .map_err(|_| import_gone())?;
                    }
                }
                Item::End(trailer) => {
                    let ours = header.as_ref().is_some_and(|h| h.key_id == key.id());
                    // A snapshot of this cluster must carry this cluster's MAC, force or not:
                    // if it does not, someone changed it and fixed up the checksum.
                    if ours && !trailer.mac_is_valid(key) {
                        return Err(CoreError::bad(
                            "the snapshot's MAC does not verify: it was altered after it was taken",
                        ));
                    }
                    sound = true;
                }
            }
        }
    }
    decoder.finish().map_err(bad)?;
    let header = match header {
        Some(h) if sound => h,
        _ => return Err(bad(SnapshotError::Truncated)),
    };
    if !batch.is_empty() {
        steps
            .send(Import::Entries(batch))
            .await
            .map_err(|_| import_gone())?;
    }
    steps
        .send(Import::Commit)
        .await
        .map_err(|_| import_gone())?;
    Ok(header)
}

/// Scheduled snapshots (`[snapshot]` in the server's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSchedule {
    /// How often to take one.
    pub interval: std::time::Duration,
    /// Where to write them (`ward-<UTC time>.snap`).
    pub directory: std::path::PathBuf,
    /// Keep at most this many (the newest).
    pub retain: Option<usize>,
    /// Delete those older than this.
    pub retain_age: Option<std::time::Duration>,
}

/// The last scheduled snapshot's outcome, as `sys/storage/snapshot-auto/status` shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct AutoStatus {
    /// When the last attempt ended (RFC 3339), if there was one.
    last_time: Option<String>,
    /// The file it wrote.
    last_file: Option<String>,
    /// Its size in bytes.
    last_size: Option<u64>,
    /// Why it failed, if it did.
    last_error: Option<String>,
    /// Snapshots written and attempts failed since the server started.
    successes: u64,
    failures: u64,
    /// The schedule.
    interval_seconds: u64,
    directory: String,
}

/// The scheduled snapshots' state.
#[derive(Default)]
pub(crate) struct AutoSnapshots {
    status: std::sync::Mutex<Option<AutoStatus>>,
}

impl Core {
    /// Starts taking a snapshot every `schedule.interval` on the active server (none while
    /// sealed or standby), written atomically into `schedule.directory` and pruned by its
    /// retention. A failure is logged and recorded in the status, and retried at the next
    /// interval; requests never wait for it.
    pub fn spawn_snapshot_schedule(
        self: &Arc<Self>,
        schedule: SnapshotSchedule,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        if let Ok(mut slot) = self.auto_snapshots.status.lock() {
            *slot = Some(AutoStatus {
                interval_seconds: schedule.interval.as_secs(),
                directory: schedule.directory.display().to_string(),
                ..AutoStatus::default()
            });
        }
        tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval(schedule.interval.max(std::time::Duration::from_secs(1)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: skip it, the first snapshot comes one interval in.
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(core) = weak.upgrade() else { return };
                if core.is_sealed() || !core.is_active() {
                    continue;
                }
                let started = std::time::Instant::now();
                let outcome = core.scheduled_snapshot(&schedule).await;
                // Audited before the status shows it: a snapshot the status names is in
                // the audit log.
                core.report_auto(&outcome, started.elapsed()).await;
                core.record_auto(outcome);
            }
        })
    }

    /// Each scheduled snapshot's metrics and audit entry: a request and response pair at
    /// `sys/storage/snapshot-auto` without a caller, its response naming the file and size or
    /// its error saying that it failed.
    async fn report_auto(
        &self,
        outcome: &Result<(std::path::PathBuf, u64), String>,
        took: std::time::Duration,
    ) {
        let result_label = if outcome.is_ok() {
            "success"
        } else {
            "failure"
        };
        metrics::counter!("ward_snapshot_scheduled_total", "result" => result_label).increment(1);
        metrics::histogram!("ward_snapshot_scheduled_duration_seconds").record(took.as_secs_f64());
        let result = match outcome {
            Ok((file, size)) => {
                metrics::gauge!("ward_snapshot_scheduled_last_success_timestamp_seconds")
                    .set(now() as f64);
                metrics::gauge!("ward_snapshot_scheduled_last_size_bytes").set(*size as f64);
                Ok(crate::Response::data(serde_json::json!({
                    "file": file.display().to_string(),
                    "size": size,
                })))
            }
            Err(e) => Err(CoreError::Task {
                what: "scheduled snapshot",
                source: Some(e.clone().into()),
            }),
        };
        let request = crate::Request {
            operation: crate::Operation::Write,
            path: "sys/storage/snapshot-auto".into(),
            data: serde_json::Map::new(),
            token: None,
            remote_addr: None,
            mfa: None,
            client_certificates: None,
            body: None,
        };
        self.audit.log_internal(&request, &result).await;
    }

    fn record_auto(&self, outcome: Result<(std::path::PathBuf, u64), String>) {
        let time = ward_api::time::rfc3339_seconds(now());
        let Ok(mut slot) = self.auto_snapshots.status.lock() else {
            return;
        };
        let status = slot.get_or_insert_with(AutoStatus::default);
        status.last_time = time;
        match outcome {
            Ok((file, size)) => {
                tracing::info!(file = %file.display(), size, "scheduled snapshot written");
                status.last_file = Some(file.display().to_string());
                status.last_size = Some(size);
                status.last_error = None;
                status.successes += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduled snapshot failed; retrying at the next interval");
                status.last_error = Some(e);
                status.failures += 1;
            }
        }
    }

    /// `GET sys/storage/snapshot-auto/status`.
    pub(crate) fn auto_snapshot_status(&self) -> CoreResult<crate::Response> {
        let status = self
            .auto_snapshots
            .status
            .lock()
            .map_err(|_| CoreError::Invariant("snapshot status lock poisoned"))?
            .clone();
        match status {
            Some(status) => Ok(crate::Response::data(
                serde_json::to_value(status).map_err(CoreError::Encode)?,
            )),
            None => Err(CoreError::NotFound(
                "no scheduled snapshots: set [snapshot] in the configuration".into(),
            )),
        }
    }

    /// Takes one snapshot into a temporary file in the directory, syncs it, renames it to
    /// its final name and syncs the directory, then prunes.
    async fn scheduled_snapshot(
        &self,
        schedule: &SnapshotSchedule,
    ) -> Result<(std::path::PathBuf, u64), String> {
        use tokio::io::AsyncWriteExt;
        let mut stream = self
            .snapshot(false)
            .await
            .map_err(|e| e.report().to_string())?;
        let stamp = chrono::DateTime::from_timestamp(stream.header.created_unix, 0)
            .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default();
        let dir = &schedule.directory;
        let name = format!("ward-{stamp}.snap");
        let final_path = dir.join(&name);
        let temp_path = dir.join(format!(".{name}.tmp"));
        let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", dir.display());
        let result = async {
            let mut file = tokio::fs::File::create(&temp_path)
                .await
                .map_err(|e| io("cannot create a file in", e))?;
            let mut size = 0u64;
            while let Some(chunk) = stream.chunks.recv().await {
                let chunk = chunk.map_err(|e| e.report().to_string())?;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| io("cannot write in", e))?;
                size += chunk.len() as u64;
            }
            file.sync_all()
                .await
                .map_err(|e| io("cannot sync a file in", e))?;
            drop(file);
            tokio::fs::rename(&temp_path, &final_path)
                .await
                .map_err(|e| io("cannot rename a file in", e))?;
            let dir_handle = tokio::fs::File::open(dir)
                .await
                .map_err(|e| io("cannot open", e))?;
            dir_handle
                .sync_all()
                .await
                .map_err(|e| io("cannot sync", e))?;
            Ok::<u64, String>(size)
        }
        .await;
        let size = match result {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp_path).await;
                return Err(e);
            }
        };
        if let Err(e) = prune(schedule).await {
            tracing::warn!(error = %e, "pruning old snapshots failed");
        }
        Ok((final_path, size))
    }
}

/// Deletes the scheduled snapshots beyond `retain` (oldest first) and older than
/// `retain_age`. Only `ward-*.snap` files are touched; their names sort by time.
async fn prune(schedule: &SnapshotSchedule) -> std::io::Result<()> {
    let mut names = Vec::new();
    let mut entries = tokio::fs::read_dir(&schedule.directory).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("ward-") && name.ends_with(".snap") {
            names.push(name);
        }
    }
    names.sort();
    let mut doomed = Vec::new();
    if let Some(retain) = schedule.retain
        && names.len() > retain
    {
        doomed.extend(names.drain(..names.len() - retain));
    }
    if let Some(age) = schedule.retain_age {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(age)
            .unwrap_or(std::time::UNIX_EPOCH);
        for name in names {
            let modified = tokio::fs::metadata(schedule.directory.join(&name))
                .await?
                .modified()?;
            if modified < cutoff {
                doomed.push(name);
            }
        }
    }
    for name in doomed {
        tokio::fs::remove_file(schedule.directory.join(&name)).await?;
    }
    Ok(())
}
