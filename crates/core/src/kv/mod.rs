//! The KV version 2 engine, at any mount: `data/`, `metadata/`, `delete/`, `undelete/`,
//! `destroy/`, `config`.
//!
//! Storage below the mount prefix `logical/<uuid>/`: `config`, `meta/<path>` (metadata)
//! and `ver/<sha256(path)>/<n>` (sealed versions). A write commits the metadata (under
//! compare-and-set) and the new version in one transaction, so concurrent writers and
//! `cas` are correct and a crash never leaves a version without its metadata.

mod record;
mod rotation;
mod v1;

pub(crate) use v1::KvV1;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use ward_api::format_duration;
use ward_api::time::now_rfc3339_nanos;
use ward_store::{DecodedMemo, Expect, Op};

use crate::engine::{Args, Call, Engine, Route};
use crate::mounts::MountEntry;
use crate::params::Params;
use crate::{Core, CoreError, CoreResult, Operation, Outcome, Response};
use record::{Metadata, OpenedVersion, SealedVersion, VersionMeta, merge_patch};

/// Versions kept when neither the secret nor the mount says otherwise (Vault's default).
const DEFAULT_MAX_VERSIONS: u64 = 10;
/// Attempts at a write that keeps losing compare-and-set races before giving up.
const WRITE_ATTEMPTS: usize = 32;

/// Hot KV records remembered decoded, by their ciphertext (see [`ward_store::DecodedMemo`]).
/// Cleared on seal.
pub(crate) struct KvMemo {
    meta: Arc<DecodedMemo<Metadata>>,
    versions: Arc<DecodedMemo<OpenedVersion>>,
}

/// Records of each kind remembered, and what they may weigh (8 MiB each; a record over
/// 128 KiB is decoded on every read). Without them a KV read costs twice the instructions
/// (docs-machinery-figures.md).
const KV_MEMO_ENTRIES: usize = 8192;
const KV_MEMO_BYTES: usize = 8 << 20;

impl KvMemo {
    /// An empty memo whose entries `barrier` drops when it deletes their keys (a destroyed
    /// version's unwrapped data key does not outlive its record).
    pub(crate) fn new(barrier: &ward_store::Barrier) -> Self {
        let memo = Self {
            meta: Arc::new(DecodedMemo::new(KV_MEMO_ENTRIES, KV_MEMO_BYTES)),
            versions: Arc::new(DecodedMemo::new(KV_MEMO_ENTRIES, KV_MEMO_BYTES)),
        };
        barrier.forget_deleted_keys_in(memo.meta.clone());
        barrier.forget_deleted_keys_in(memo.versions.clone());
        memo
    }

    /// Forgets every decoded record (and so every unwrapped data key).
    pub(crate) fn clear(&self) {
        self.meta.clear();
        self.versions.clear();
    }
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct MountConfig {
    max_versions: u64,
    cas_required: bool,
    delete_version_after: u64,
    #[serde(default)]
    metadata_cas_required: bool,
}

fn validate_secret_path(path: &str) -> CoreResult<&str> {
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Err(CoreError::bad("missing secret path"));
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(CoreError::bad(
            "invalid secret path: empty, '.' or '..' segment",
        ));
    }
    Ok(path)
}

struct Keys {
    meta: String,
    version_prefix: String,
}

impl Keys {
    /// The storage key of version `v`.
    fn version(&self, v: u64) -> String {
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(v);
        let mut key = String::with_capacity(self.version_prefix.len() + digits.len());
        key.push_str(&self.version_prefix);
        key.push_str(digits);
        key
    }
}

fn keys(mount: &MountEntry, path: &str) -> Keys {
    let base = mount.uuid.len() + 9;
    let mut meta = String::with_capacity(base + 5 + path.len());
    mount.push_storage_prefix(&mut meta);
    meta.push_str("meta/");
    meta.push_str(path);
    let mut version_prefix = String::with_capacity(base + 4 + 64 + 1 + 20);
    mount.push_storage_prefix(&mut version_prefix);
    version_prefix.push_str("ver/");
    version_prefix.push_str(&ward_crypto::sha256_hex(path.as_bytes()));
    version_prefix.push('/');
    Keys {
        meta,
        version_prefix,
    }
}

/// Vault's existence check for a write at `path` (the mount itself exists): whether the
/// secret has metadata, read or not.
async fn secret_exists(core: &Core, mount: &MountEntry, path: &str) -> CoreResult<bool> {
    match path.trim_matches('/') {
        "" => Ok(true),
        path => Ok(core.barrier.get(&keys(mount, path).meta).await?.is_some()),
    }
}

fn parse_meta(bytes: &[u8]) -> CoreResult<Metadata> {
    serde_json::from_slice(bytes).map_err(CoreError::corrupt_json("kv metadata"))
}

fn encode<T: Serialize>(v: &T) -> CoreResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(CoreError::Encode)
}

fn versions_param(p: &Params<'_>) -> CoreResult<Vec<u64>> {
    let list = match p.0.get("versions") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .collect::<Option<Vec<u64>>>(),
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().parse().ok()).collect(),
        Some(Value::Number(n)) => n.as_u64().map(|v| vec![v]),
        _ => None,
    };
    match list {
        Some(l) if !l.is_empty() => Ok(l),
        _ => Err(CoreError::bad(
            "no versions provided: 'versions' must be a non-empty list of version numbers",
        )),
    }
}

/// The KV v2 engine.
pub(crate) struct Kv;

/// The routes of the KV v2 engine.
#[derive(Clone, Copy)]
pub(crate) enum KvRoute {
    Config,
    Data,
    Metadata,
    /// `delete/`, `undelete/` and `destroy/`: a change to the listed versions.
    Versions(VersionChange),
    Rotate,
}

impl Engine for Kv {
    type Route = KvRoute;

    const ROUTES: &'static [Route<KvRoute>] = {
        use Operation::{Delete, List, Patch, Read, Write};
        use VersionChange as Change;
        &[
            Route::new("config", &[Read, Write], KvRoute::Config),
            Route::new("data/*path", &[Read, Write, Patch, Delete], KvRoute::Data)
                .checks_existence(),
            Route::new(
                "metadata/*path",
                &[Read, List, Write, Patch, Delete],
                KvRoute::Metadata,
            )
            .checks_existence(),
            Route::new("delete/*path", &[Write], KvRoute::Versions(Change::Delete)),
            Route::new(
                "undelete/*path",
                &[Write],
                KvRoute::Versions(Change::Undelete),
            ),
            Route::new(
                "destroy/*path",
                &[Write],
                KvRoute::Versions(Change::Destroy),
            ),
            Route::new("rotate/*path", &[Write], KvRoute::Rotate),
        ]
    };

    async fn exists(
        core: &Core,
        mount: &MountEntry,
        _route: KvRoute,
        args: Args<'_>,
    ) -> CoreResult<bool> {
        secret_exists(core, mount, args.get(0)).await
    }

    async fn handle(core: &Core, call: Call<'_, KvRoute>) -> CoreResult<Response> {
        let p = Params(call.data);
        let mount = call.mount;
        let path = call.args.get(0);
        match (call.route, call.operation) {
            (KvRoute::Config, Operation::Read) => {
                let c = core.kv_config(mount).await?;
                Ok(Response::data(json!({
                    "max_versions": c.max_versions,
                    "cas_required": c.cas_required,
                    "delete_version_after": format_duration(c.delete_version_after),
                    "metadata_cas_required": c.metadata_cas_required,
                })))
            }
            (KvRoute::Config, _) => core.kv_write_config(mount, &p).await,
            (KvRoute::Data, Operation::Read) => {
                core.kv_read(mount, validate_secret_path(path)?, &p).await
            }
            (KvRoute::Data, Operation::Write) => {
                let data = match call.data.get("data") {
                    Some(Value::Object(m)) => Value::Object(m.clone()),
                    Some(Value::Null) | None => return Err(CoreError::bad("no data provided")),
                    Some(_) => {
                        return Err(CoreError::bad(
                            "invalid value for 'data': expected a JSON object",
                        ));
                    }
                };
                let cas = cas_option(&p)?;
                core.kv_write(
                    mount,
                    validate_secret_path(path)?,
                    cas,
                    |_| Ok(data.clone()),
                )
                .await
            }
            (KvRoute::Data, Operation::Patch) => {
                let patch = match call.data.get("data") {
                    Some(v @ Value::Object(_)) => v.clone(),
                    _ => return Err(CoreError::bad("no data provided")),
                };
                let cas = cas_option(&p)?;
                core.kv_write(
                    mount,
                    validate_secret_path(path)?,
                    cas,
                    |current| match current {
                        Some(mut doc) => {
                            merge_patch(&mut doc, &patch);
                            Ok(doc)
                        }
                        None => Err(CoreError::NotFound(String::new())),
                    },
                )
                .await
            }
            (KvRoute::Data, _) => {
                let path = validate_secret_path(path)?;
                core.kv_update_versions(mount, path, VersionChange::Delete, None)
                    .await
            }
            (KvRoute::Versions(change), _) => {
                let versions = versions_param(&p)?;
                core.kv_update_versions(mount, validate_secret_path(path)?, change, Some(versions))
                    .await
            }
            (KvRoute::Metadata, Operation::List) => core.kv_list(mount, path).await,
            (KvRoute::Metadata, Operation::Read) => {
                let path = validate_secret_path(path)?;
                let meta = core.barrier.get(&keys(mount, path).meta).await?;
                let meta = meta.ok_or_else(|| CoreError::NotFound(String::new()))?;
                Ok(Response::data(parse_meta(meta.expose())?.to_json()))
            }
            (KvRoute::Metadata, Operation::Write | Operation::Patch) => {
                let patch = call.operation == Operation::Patch;
                core.kv_write_metadata(mount, validate_secret_path(path)?, &p, patch)
                    .await
            }
            (KvRoute::Metadata, _) => core.kv_delete_all(mount, validate_secret_path(path)?).await,
            (KvRoute::Rotate, _) => core.kv_rotate_now(mount, validate_secret_path(path)?).await,
        }
    }

    fn unmatched(mount: &MountEntry, rest: &str, operation: Operation) -> CoreError {
        let section = rest.split('/').next().unwrap_or("");
        if Self::ROUTES
            .iter()
            .any(|r| r.pattern.split('/').next() == Some(section))
        {
            // `config/anything`: a section of the engine, not this way.
            return CoreError::UnsupportedOperation;
        }
        // OpenBao's answer for a path outside the engine's sections, the mount's own path
        // among them.
        CoreError::NotFound(format!(
            "Invalid path for a versioned K/V secrets engine: \"{}{}\". See the API docs \
             for the appropriate API endpoints to use. If using the Ward CLI, use 'ward kv \
             {}' for this operation.",
            mount.path,
            rest,
            match operation {
                Operation::List => "list",
                Operation::Read => "get",
                Operation::Delete => "delete",
                Operation::Patch => "patch",
                Operation::Write => "put",
            }
        ))
    }

    async fn rewrap_data_keys(
        core: &Core,
        mount: &MountEntry,
        keys: &crate::mounts::MountKeySet,
    ) -> CoreResult<u64> {
        core.kv_rewrap(mount, keys).await
    }
}

impl Core {
    async fn kv_config(&self, mount: &MountEntry) -> CoreResult<MountConfig> {
        match self
            .barrier
            .get(&format!("{}config", mount.storage_prefix()))
            .await?
        {
            Some(b) => {
                serde_json::from_slice(b.expose()).map_err(CoreError::corrupt_json("kv config"))
            }
            None => Ok(MountConfig::default()),
        }
    }

    async fn kv_write_config(&self, mount: &MountEntry, p: &Params<'_>) -> CoreResult<Response> {
        let mut c = self.kv_config(mount).await?;
        if let Some(v) = p.u64("max_versions")? {
            c.max_versions = v;
        }
        if let Some(v) = p.bool("cas_required")? {
            c.cas_required = v;
        }
        if let Some(v) = p.duration("delete_version_after")? {
            c.delete_version_after = v;
        }
        if let Some(v) = p.bool("metadata_cas_required")? {
            c.metadata_cas_required = v;
        }
        self.barrier
            .put(&format!("{}config", mount.storage_prefix()), &encode(&c)?)
            .await?;
        Ok(Response::empty())
    }

    async fn kv_read(
        &self,
        mount: &MountEntry,
        path: &str,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let version = p.u64("version")?;
        Ok(match self.kv_open(mount, path, version).await? {
            Opened::Live(meta, version, opened) => {
                let data = opened.read_response(meta.version_view(version))?;
                Response::data_json(data)
            }
            Opened::Gone(meta, version) => {
                // Vault answers 404 but still shows the version's metadata.
                Response {
                    outcome: Outcome::Gone,
                    ..Response::data(
                        json!({ "data": null, "metadata": meta.version_json(version) }),
                    )
                }
            }
        })
    }

    /// The value of the current version, if it is there to read (for patches and
    /// rotations, which start from it).
    async fn kv_current_value(&self, mount: &MountEntry, path: &str) -> CoreResult<Option<Value>> {
        match self.kv_open(mount, path, None).await {
            Ok(Opened::Live(_, _, opened)) => Ok(Some(opened.open()?)),
            Ok(Opened::Gone(..)) | Err(CoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Finds `version` (the current one for `None` or 0) of the secret at `path`, its data
    /// key unwrapped. `NotFound` when the secret or the version does not exist.
    async fn kv_open(
        &self,
        mount: &MountEntry,
        path: &str,
        version: Option<u64>,
    ) -> CoreResult<Opened> {
        let k = keys(mount, path);
        let meta = self
            .barrier
            .get_decoded(&k.meta, &self.kv_memo.meta, parse_meta)
            .await?
            .ok_or_else(|| CoreError::NotFound(String::new()))?;
        let version = match version {
            Some(0) | None => meta.current_version,
            Some(v) => v,
        };
        let Some(vmeta) = meta.versions.get(&version) else {
            return Err(CoreError::NotFound(String::new()));
        };
        if vmeta.destroyed || meta.is_deleted(vmeta, &chrono::Utc::now()) {
            return Ok(Opened::Gone(meta, version));
        }
        let mount_keys = self.mount_keys.get(&self.barrier, &mount.uuid).await?;
        let opened = self
            .barrier
            .get_decoded(&k.version(version), &self.kv_memo.versions, |bytes| {
                OpenedVersion::decode(bytes, &mount_keys, &mount.uuid, path, version)
            })
            .await?
            .ok_or_else(|| CoreError::corrupt("kv version record (missing)"))?;
        Ok(Opened::Live(meta, version, opened))
    }

    /// Writes a new version computed by `make` from the current value (None when there is
    /// none or it is deleted). Retries on concurrent updates; `cas` is checked each time.
    async fn kv_write<F>(
        &self,
        mount: &MountEntry,
        path: &str,
        cas: Option<u64>,
        make: F,
    ) -> CoreResult<Response>
    where
        F: Fn(Option<Value>) -> CoreResult<Value>,
    {
        let config = self.kv_config(mount).await?;
        let k = keys(mount, path);
        let mount_keys = self.mount_keys.get(&self.barrier, &mount.uuid).await?;
        for _ in 0..WRITE_ATTEMPTS {
            let entry = self.barrier.get_entry(&k.meta).await?;
            let (mut meta, expect) = match &entry {
                Some(e) => (parse_meta(e.value.expose())?, Expect::Value(e.stamp())),
                None => (Metadata::default(), Expect::Absent),
            };
            if (meta.cas_required || config.cas_required) && cas.is_none() {
                return Err(CoreError::bad(
                    "check-and-set parameter required for this call",
                ));
            }
            if let Some(cas) = cas
                && cas != meta.current_version
            {
                return Err(CoreError::bad(
                    "check-and-set parameter did not match the current version",
                ));
            }
            let current = self.kv_current_value(mount, path).await?;
            let value = make(current)?;
            let now = now_rfc3339_nanos();
            if meta.created_time.is_empty() {
                meta.created_time = now.clone();
            }
            meta.updated_time = now.clone();
            // A version 1 mount keeps each secret as its version 1, replaced by every write,
            // so that upgrading the mount shows each as Vault's upgrade does.
            let kv_v1 = !mount.is_kv_v2();
            let version = if kv_v1 { 1 } else { meta.current_version + 1 };
            if kv_v1 {
                meta.oldest_version = 1;
            }
            meta.current_version = version;
            meta.versions.insert(
                version,
                VersionMeta {
                    created_time: now,
                    ..VersionMeta::default()
                },
            );
            if meta.delete_version_after == 0 && config.delete_version_after > 0 {
                meta.delete_version_after = config.delete_version_after;
            }
            let sealed = SealedVersion::seal(&mount_keys, &mount.uuid, path, version, &value)?;
            let mut ops = vec![Op::put(k.version(version), Expect::Any, encode(&sealed)?)];
            let max = match (meta.max_versions, config.max_versions) {
                (0, 0) => DEFAULT_MAX_VERSIONS,
                (0, m) => m,
                (m, _) => m,
            };
            while meta.versions.len() as u64 > max {
                let Some((&oldest, _)) = meta.versions.iter().next() else {
                    break;
                };
                meta.versions.remove(&oldest);
                ops.push(Op::delete(k.version(oldest), Expect::Any));
                // OpenBao's field stays 0 until a version is trimmed.
                meta.oldest_version = meta.versions.keys().next().copied().unwrap_or(0);
            }
            ops.push(Op::put(k.meta.clone(), expect, encode(&meta)?));
            if self.barrier.try_commit(ops).await? {
                return Ok(Response::data(meta.version_json(version)));
            }
        }
        Err(too_many_writers())
    }

    async fn kv_update_versions(
        &self,
        mount: &MountEntry,
        path: &str,
        change: VersionChange,
        versions: Option<Vec<u64>>,
    ) -> CoreResult<Response> {
        let k = keys(mount, path);
        for _ in 0..WRITE_ATTEMPTS {
            let Some(entry) = self.barrier.get_entry(&k.meta).await? else {
                // Vault answers 204 for deleting what is not there.
                return Ok(Response::empty());
            };
            let mut meta = parse_meta(entry.value.expose())?;
            let now = now_rfc3339_nanos();
            let mut ops = Vec::new();
            let latest = [meta.current_version];
            for &version in versions.as_deref().unwrap_or(&latest) {
                let Some(v) = meta.versions.get_mut(&version) else {
                    continue;
                };
                match change {
                    VersionChange::Delete => {
                        if v.deletion_time.is_empty() && !v.destroyed {
                            v.deletion_time = now.clone();
                        }
                    }
                    VersionChange::Undelete => {
                        if !v.destroyed {
                            v.deletion_time.clear();
                        }
                    }
                    VersionChange::Destroy => {
                        v.destroyed = true;
                        ops.push(Op::delete(k.version(version), Expect::Any));
                    }
                }
            }
            meta.updated_time = now;
            ops.push(Op::put(
                k.meta.clone(),
                Expect::Value(entry.stamp()),
                encode(&meta)?,
            ));
            if self.barrier.try_commit(ops).await? {
                if matches!(change, VersionChange::Destroy) {
                    // A destroyed version must not stay readable in free pages or a log.
                    self.barrier.erase_deleted().await?;
                }
                return Ok(Response::empty());
            }
        }
        Err(too_many_writers())
    }

    async fn kv_write_metadata(
        &self,
        mount: &MountEntry,
        path: &str,
        p: &Params<'_>,
        patch: bool,
    ) -> CoreResult<Response> {
        let k = keys(mount, path);
        let max_versions = p.u64("max_versions")?;
        let cas_required = p.bool("cas_required")?;
        let dva = p.duration("delete_version_after")?;
        let custom = custom_metadata_param(p, patch)?;
        let metadata_cas_required = p.bool("metadata_cas_required")?;
        let metadata_cas = p.u64("metadata_cas")?;
        let config = self.kv_config(mount).await?;
        rotation::check_webhook_name(self, p).await?;
        for _ in 0..WRITE_ATTEMPTS {
            let entry = self.barrier.get_entry(&k.meta).await?;
            let (mut meta, expect) = match &entry {
                Some(e) => (parse_meta(e.value.expose())?, Expect::Value(e.stamp())),
                // A patch changes what is there (404 as OpenBao when nothing is).
                None if patch => return Err(CoreError::NotFound(String::new())),
                None => {
                    let now = now_rfc3339_nanos();
                    (
                        Metadata {
                            created_time: now.clone(),
                            updated_time: now,
                            ..Metadata::default()
                        },
                        Expect::Absent,
                    )
                }
            };
            // OpenBao's metadata check-and-set, against the rule in force before this write.
            if (meta.metadata_cas_required || config.metadata_cas_required)
                && metadata_cas.is_none()
            {
                return Err(CoreError::bad(
                    "metadata check-and-set parameter required for this call",
                ));
            }
            if metadata_cas.is_some_and(|cas| cas != meta.metadata_version) {
                return Err(CoreError::bad(
                    "metadata check-and-set parameter does not match the current version",
                ));
            }
            meta.metadata_version += 1;
            if let Some(v) = metadata_cas_required {
                meta.metadata_cas_required = v;
            }
            if let Some(v) = max_versions {
                meta.max_versions = v;
            }
            if let Some(v) = cas_required {
                meta.cas_required = v;
            }
            if let Some(v) = dva {
                meta.delete_version_after = v;
            }
            match &custom {
                // JSON merge patch inside the object, as OpenBao: `null` removes a key.
                Some(c) if patch => {
                    for (key, value) in c {
                        match value {
                            Value::Null => meta.custom_metadata.remove(key),
                            v => meta.custom_metadata.insert(key.clone(), v.clone()),
                        };
                    }
                }
                Some(c) => meta.custom_metadata = c.clone(),
                None => {}
            }
            check_custom_metadata(&meta.custom_metadata)?;
            let rotation_changed = match rotation::policy_update(self, p, meta.rotation.as_ref())? {
                Some(policy) => {
                    meta.rotation = policy;
                    true
                }
                None => false,
            };
            meta.updated_time = now_rfc3339_nanos();
            let op = Op::put(k.meta.clone(), expect, encode(&meta)?);
            if self.barrier.try_commit(vec![op]).await? {
                if rotation_changed {
                    self.kv_schedule(mount, path, Some(&meta)).await?;
                }
                return Ok(Response::empty());
            }
        }
        Err(too_many_writers())
    }

    async fn kv_delete_all(&self, mount: &MountEntry, path: &str) -> CoreResult<Response> {
        let k = keys(mount, path);
        let Some(entry) = self.barrier.get(&k.meta).await? else {
            return Ok(Response::empty());
        };
        let meta = parse_meta(entry.expose())?;
        let mut ops: Vec<Op> = meta
            .versions
            .keys()
            .map(|v| Op::delete(k.version(*v), Expect::Any))
            .collect();
        ops.push(Op::delete(k.meta, Expect::Any));
        self.barrier.commit(ops).await?;
        self.barrier.erase_deleted().await?;
        if meta.rotation.is_some() {
            self.kv_schedule(mount, path, None).await?;
        }
        Ok(Response::empty())
    }

    async fn kv_list(&self, mount: &MountEntry, prefix: &str) -> CoreResult<Response> {
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..") {
            return Err(CoreError::bad("invalid path: '.' or '..' segment"));
        }
        let folder = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let keys = self
            .barrier
            .list(&format!("{}meta/{folder}", mount.storage_prefix()))
            .await?;
        if keys.is_empty() {
            return Err(CoreError::NotFound(String::new()));
        }
        Ok(Response::data(json!({ "keys": keys })))
    }
}

/// A version found by `kv_open`.
enum Opened {
    /// Readable: its metadata, number and unwrapped data key.
    Live(Arc<Metadata>, u64, Arc<OpenedVersion>),
    /// Deleted or destroyed: its metadata and number.
    Gone(Arc<Metadata>, u64),
}

/// What `delete/`, `undelete/` and `destroy/` (and a `DELETE` of `data/`, on the latest
/// version) do to versions.
#[derive(Clone, Copy)]
pub(crate) enum VersionChange {
    Delete,
    Undelete,
    Destroy,
}

fn cas_option(p: &Params<'_>) -> CoreResult<Option<u64>> {
    match p.0.get("options") {
        Some(Value::Object(o)) => Params(o).u64("cas"),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(CoreError::bad(
            "invalid value for 'options': expected a JSON object",
        )),
    }
}

/// A write that lost every compare-and-set race to other writers of the same secret.
fn too_many_writers() -> CoreError {
    CoreError::bad("too many concurrent writes to this secret; try again")
}

/// `custom_metadata`: a map of strings, where a patch may also give `null` (remove the key).
fn custom_metadata_param(p: &Params<'_>, patch: bool) -> CoreResult<Option<Map<String, Value>>> {
    match p.0.get("custom_metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) if m.values().all(|v| v.is_string() || (patch && v.is_null())) => {
            Ok(Some(m.clone()))
        }
        Some(_) if patch => Err(CoreError::bad(
            "invalid value for 'custom_metadata': expected a map of strings (null removes a key)",
        )),
        Some(_) => Err(CoreError::bad(
            "invalid value for 'custom_metadata': expected a map of strings",
        )),
    }
}

/// Vault's limits on `custom_metadata`.
fn check_custom_metadata(custom: &Map<String, Value>) -> CoreResult<()> {
    let too_long =
        |(k, v): (&String, &Value)| k.len() > 128 || v.as_str().map_or(0, str::len) > 512;
    if custom.len() > 64 || custom.iter().any(too_long) {
        return Err(CoreError::bad(
            "custom_metadata: at most 64 keys, keys up to 128 bytes, values up to 512 bytes",
        ));
    }
    Ok(())
}
