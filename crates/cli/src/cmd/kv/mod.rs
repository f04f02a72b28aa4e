//! `ward kv ...`: KV secrets, version 2 (and the basic operations on version 1 mounts).
//!
//! As Vault's CLI does, `secret/app` is rewritten to the engine's API paths
//! (`secret/data/app`, `secret/metadata/app`, ...) after finding which mount serves it.

mod show;

use clap::{ArgAction, Args, Subcommand};
use serde_json::{Map, Value};
use ward_api::{DurationInput, KvMetadataWriteRequest, KvWriteOptions, KvWriteRequest, Response};
use ward_client::KvMountInfo;

use crate::cmd::{Outcome, data, parse_pairs};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, columns, json};

/// `ward kv ...`
#[derive(Debug, Subcommand)]
pub(crate) enum KvCommand {
    /// Write a new version of a secret (replacing all of its keys).
    Put(WriteArgs),
    /// Change some keys of a secret, keeping the others.
    Patch(PatchArgs),
    /// Read a secret (the latest version, or -version).
    Get(GetArgs),
    /// List the secrets under a path.
    List(Target),
    /// Soft-delete the latest version, or the -versions given.
    Delete(VersionsArgs),
    /// Restore soft-deleted versions.
    Undelete(VersionsArgs),
    /// Permanently destroy the data of some versions.
    Destroy(VersionsArgs),
    /// Write an old version's data as the newest version.
    Rollback(RollbackArgs),
    /// Read and change a secret's metadata.
    #[command(subcommand)]
    Metadata(MetadataCommand),
    /// Rotate a secret now by its rotation policy (a Ward addition): write a new version
    /// with a freshly generated value and notify the policy's webhook.
    Rotate(Target),
}

/// `ward kv metadata ...`
#[derive(Debug, Subcommand)]
pub(crate) enum MetadataCommand {
    /// Show the metadata and version history.
    Get(Target),
    /// Change settings: -max-versions, -cas-required, -delete-version-after, -custom-metadata.
    Put(MetadataPutArgs),
    /// Delete the secret entirely: every version and its metadata.
    Delete(Target),
}

/// The secret a command acts on.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The mount, when PATH is relative to it (`-mount=secret app`).
    #[arg(long)]
    mount: Option<String>,
    /// The secret's path (`secret/app`, or `app` with -mount).
    path: String,
}

/// `kv put`
#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// Check-and-set: write only if the current version is this one (0: only if absent).
    #[arg(long)]
    cas: Option<u64>,
    #[command(flatten)]
    target: Target,
    /// `key=value`, `key=@file`, `key=-`, or one `-` / `@file.json` holding a JSON object.
    #[arg(allow_hyphen_values = true)]
    data: Vec<String>,
}

/// `kv patch`
#[derive(Debug, Args)]
pub(crate) struct PatchArgs {
    /// How to patch: `patch` (HTTP PATCH) or `rw` (read, merge, write with check-and-set).
    #[arg(long, default_value = "patch", value_parser = ["patch", "rw"])]
    method: String,
    #[command(flatten)]
    write: WriteArgs,
}

/// `kv get`
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The version to read (default: latest).
    #[arg(long)]
    version: Option<u64>,
    /// Print only this key's value.
    #[arg(long)]
    field: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// `kv delete|undelete|destroy`
#[derive(Debug, Args)]
pub(crate) struct VersionsArgs {
    /// Versions to act on (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    versions: Vec<u64>,
    #[command(flatten)]
    target: Target,
}

/// `kv rollback`
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The version whose data becomes the newest version.
    #[arg(long)]
    version: Option<u64>,
    #[command(flatten)]
    target: Target,
}

/// `kv metadata put`
#[derive(Debug, Args)]
pub(crate) struct MetadataPutArgs {
    /// How many versions to keep.
    #[arg(long)]
    max_versions: Option<u32>,
    /// Require check-and-set on every write (`-cas-required=false` to lift).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    cas_required: Option<bool>,
    /// Soft-delete versions this long after they are written (`0s`: never).
    #[arg(long)]
    delete_version_after: Option<String>,
    /// Custom metadata `key=value` (repeatable; replaces the existing map).
    #[arg(long = "custom-metadata")]
    custom_metadata: Vec<String>,
    #[command(flatten)]
    target: Target,
}

/// A target resolved to its mount.
struct Resolved {
    info: KvMountInfo,
    /// The path below the mount.
    relative: String,
}

impl Resolved {
    /// `<mount>/<section>/<relative>` for v2, `<mount>/<relative>` for v1.
    fn api_path(&self, section: &str) -> String {
        if self.info.version == 2 {
            format!("{}/{section}/{}", self.info.mount, self.relative)
        } else {
            format!("{}/{}", self.info.mount, self.relative)
        }
    }

    fn require_v2(&self, command: &str) -> Result<(), CliError> {
        if self.info.version == 2 {
            Ok(())
        } else {
            Err(CliError::Failed(format!(
                "Error: kv {command} is only supported on KV version 2 mounts ({} is version 1)",
                self.info.mount
            )))
        }
    }
}

/// Runs a kv command.
pub(crate) async fn run(context: &Context, command: KvCommand) -> Result<Outcome, CliError> {
    match command {
        KvCommand::Put(args) => put(context, args).await,
        KvCommand::Patch(args) => patch(context, args).await,
        KvCommand::Get(args) => get(context, args).await,
        KvCommand::List(target) => list(context, target).await,
        KvCommand::Delete(args) => delete(context, args).await,
        KvCommand::Undelete(args) => versions_action(context, args, "undelete").await,
        KvCommand::Destroy(args) => versions_action(context, args, "destroy").await,
        KvCommand::Rollback(args) => rollback(context, args).await,
        KvCommand::Rotate(target) => rotate(context, target).await,
        KvCommand::Metadata(MetadataCommand::Get(target)) => metadata_get(context, target).await,
        KvCommand::Metadata(MetadataCommand::Put(args)) => metadata_put(context, args).await,
        KvCommand::Metadata(MetadataCommand::Delete(target)) => {
            let resolved = resolve(context, &target).await?;
            resolved.require_v2("metadata delete")?;
            let path = resolved.api_path("metadata");
            context
                .client
                .delete(&path)
                .await
                .map_err(CliError::api(format!("deleting {path}")))?;
            Ok(Outcome::line(format!(
                "Success! Data deleted (if it existed) at: {path}"
            )))
        }
    }
}

/// Finds the mount serving the target (see [`ward_client::Client::kv_mount_for`]).
async fn resolve(context: &Context, target: &Target) -> Result<Resolved, CliError> {
    let path = target.path.trim_matches('/');
    let full = match &target.mount {
        Some(mount) => format!("{}/{path}", mount.trim_matches('/')),
        None => path.to_owned(),
    };
    let mut info = context
        .client
        .kv_mount_for(&full)
        .await
        .map_err(|e| CliError::Usage(format!("Error: {e}")))?;
    if let Some(mount) = &target.mount {
        info.mount = mount.trim_matches('/').to_owned();
    }
    let relative = info.relative(&full).to_owned();
    if relative.is_empty() {
        return Err(CliError::Usage(format!(
            "Error: {full:?} names a mount, not a secret inside it"
        )));
    }
    Ok(Resolved { info, relative })
}

async fn put(context: &Context, args: WriteArgs) -> Result<Outcome, CliError> {
    let data = data::parse_data(&args.data)?;
    let resolved = resolve(context, &args.target).await?;
    write_version(context, &resolved, data, args.cas).await
}

/// Writes a whole new version and prints what `kv put` prints.
async fn write_version(
    context: &Context,
    resolved: &Resolved,
    data: Map<String, Value>,
    cas: Option<u64>,
) -> Result<Outcome, CliError> {
    let path = resolved.api_path("data");
    if resolved.info.version == 1 {
        if cas.is_some() {
            return Err(CliError::Usage(
                "Error: -cas needs a KV version 2 mount".into(),
            ));
        }
        context
            .client
            .write(&path, &data)
            .await
            .map_err(CliError::api(format!("writing data to {path}")))?;
        return Ok(Outcome::line(format!("Success! Data written to: {path}")));
    }
    let body = KvWriteRequest {
        data,
        options: cas.map(|cas| KvWriteOptions { cas: Some(cas) }),
    };
    let response = context
        .client
        .write(&path, &body)
        .await
        .map_err(CliError::api(format!("writing data to {path}")))?;
    written_output(context, &path, response)
}

/// Prints a v2 write's reply: the envelope as JSON, or path and metadata tables.
fn written_output(
    context: &Context,
    path: &str,
    response: Option<Response>,
) -> Result<Outcome, CliError> {
    let response = response.unwrap_or_default();
    let warnings = response.warnings.clone();
    let outcome = match context.format {
        Format::Json => Outcome::ok(json(&response)?),
        Format::Table => Outcome::ok(show::written(path, &response.data.unwrap_or_default())),
    };
    Ok(outcome.with_warnings(warnings))
}

async fn patch(context: &Context, args: PatchArgs) -> Result<Outcome, CliError> {
    let data = data::parse_data(&args.write.data)?;
    let resolved = resolve(context, &args.write.target).await?;
    resolved.require_v2("patch")?;
    let path = resolved.api_path("data");
    if args.method == "rw" {
        let kv = context.client.kv2(&resolved.info.mount);
        let current = kv
            .read(&resolved.relative, None)
            .await
            .map_err(CliError::api(format!("reading {path}")))?
            .ok_or_else(|| CliError::NotFound(format!("No value found at {path}")))?;
        let mut merged = current
            .data
            .ok_or_else(|| CliError::NotFound(format!("No data found at {path}")))?;
        merged.extend(data);
        let cas = args.write.cas.or(Some(current.metadata.version));
        return write_version(context, &resolved, merged, cas).await;
    }
    let body = KvWriteRequest {
        data,
        options: args.write.cas.map(|cas| KvWriteOptions { cas: Some(cas) }),
    };
    let response = context.client.patch(&path, &body).await.map_err(|e| {
        if e.status() == Some(404) {
            CliError::NotFound(format!("No value found at {path}"))
        } else {
            CliError::api(format!("patching {path}"))(e)
        }
    })?;
    written_output(context, &path, response)
}

async fn get(context: &Context, args: GetArgs) -> Result<Outcome, CliError> {
    let resolved = resolve(context, &args.target).await?;
    let base = resolved.api_path("data");
    let request_path = match args.version {
        Some(_) if resolved.info.version == 1 => {
            return Err(CliError::Usage(
                "Error: -version needs a KV version 2 mount".into(),
            ));
        }
        Some(version) => format!("{base}?version={version}"),
        None => base.clone(),
    };
    let response = context
        .client
        .read(&request_path)
        .await
        .map_err(CliError::api(format!("reading {base}")))?
        .ok_or_else(|| CliError::NotFound(format!("No value found at {base}")))?;
    let payload = response.data.clone().unwrap_or_default();
    // The secret's own key/value pairs: `data.data` for v2, `data` for v1.
    let secret = if resolved.info.version == 2 {
        payload.get("data").cloned().unwrap_or_default()
    } else {
        payload.clone()
    };
    if let Some(field) = &args.field {
        if !secret.is_object() {
            return Err(CliError::NotFound(format!("No data found at {base}")));
        }
        let value = secret
            .get(field)
            .ok_or_else(|| CliError::Failed(format!("Field \"{field}\" not present in secret")))?;
        return match context.format {
            Format::Json => Ok(Outcome::ok(json(value)?)),
            Format::Table => Ok(Outcome::ok(show::raw_field(value))),
        };
    }
    let outcome = match (context.format, resolved.info.version) {
        (Format::Json, _) => Outcome::ok(json(&response)?),
        (Format::Table, 2) => Outcome::ok(show::read_v2(&base, &payload)),
        (Format::Table, _) => Outcome::ok(show::read_v1(&payload)),
    };
    Ok(outcome.with_warnings(response.warnings))
}

async fn list(context: &Context, target: Target) -> Result<Outcome, CliError> {
    let resolved = match resolve(context, &target).await {
        Ok(resolved) => resolved,
        // `kv list secret` lists the mount's root.
        Err(CliError::Usage(_)) => {
            let info = context
                .client
                .kv_mount_for(&target.path)
                .await
                .map_err(|e| CliError::Usage(format!("Error: {e}")))?;
            Resolved {
                info,
                relative: String::new(),
            }
        }
        Err(other) => return Err(other),
    };
    let path = format!("{}/", resolved.api_path("metadata").trim_end_matches('/'));
    let keys = context
        .client
        .list(&path)
        .await
        .map_err(CliError::api(format!("listing {path}")))?
        .ok_or_else(|| CliError::NotFound(format!("No value found at {path}")))?;
    match context.format {
        Format::Json => Ok(Outcome::ok(json(&keys)?)),
        Format::Table => {
            let rows: Vec<Vec<String>> = keys.into_iter().map(|k| vec![k]).collect();
            Ok(Outcome::ok(columns(&["Keys"], &rows)))
        }
    }
}

async fn delete(context: &Context, args: VersionsArgs) -> Result<Outcome, CliError> {
    let resolved = resolve(context, &args.target).await?;
    let data_path = resolved.api_path("data");
    if args.versions.is_empty() {
        context
            .client
            .delete(&data_path)
            .await
            .map_err(CliError::api(format!("deleting {data_path}")))?;
    } else {
        resolved.require_v2("delete -versions")?;
        context
            .client
            .kv2(&resolved.info.mount)
            .delete_versions(&resolved.relative, &args.versions)
            .await
            .map_err(CliError::api(format!("deleting {data_path}")))?;
    }
    Ok(Outcome::line(format!(
        "Success! Data deleted (if it existed) at: {data_path}"
    )))
}

/// `kv undelete` and `kv destroy`.
async fn versions_action(
    context: &Context,
    args: VersionsArgs,
    action: &str,
) -> Result<Outcome, CliError> {
    if args.versions.is_empty() {
        return Err(CliError::Failed(format!(
            "No versions provided, use the \"-versions\" flag to specify the version to {action}."
        )));
    }
    let resolved = resolve(context, &args.target).await?;
    resolved.require_v2(action)?;
    let path = resolved.api_path(action);
    let kv = context.client.kv2(&resolved.info.mount);
    let result = if action == "undelete" {
        kv.undelete(&resolved.relative, &args.versions).await
    } else {
        kv.destroy(&resolved.relative, &args.versions).await
    };
    result.map_err(CliError::api(format!("writing to {path}")))?;
    Ok(Outcome::line(format!("Success! Data written to: {path}")))
}

async fn rollback(context: &Context, args: RollbackArgs) -> Result<Outcome, CliError> {
    let version = args.version.ok_or_else(|| {
        CliError::Usage("Must specify a version to rollback to (-version)".into())
    })?;
    let resolved = resolve(context, &args.target).await?;
    resolved.require_v2("rollback")?;
    let path = resolved.api_path("data");
    let metadata = context
        .client
        .kv2(&resolved.info.mount)
        .rollback(&resolved.relative, version)
        .await
        .map_err(CliError::api(format!(
            "rolling back {path} to version {version}"
        )))?;
    let metadata = serde_json::to_value(metadata)
        .map_err(|e| CliError::Failed(format!("Error encoding output: {e}")))?;
    written_output(context, &path, Some(Response::with_data(metadata)))
}

async fn rotate(context: &Context, target: Target) -> Result<Outcome, CliError> {
    let resolved = resolve(context, &target).await?;
    resolved.require_v2("rotate")?;
    let path = resolved.api_path("rotate");
    let response = context
        .client
        .write(&path, &Map::new())
        .await
        .map_err(CliError::api(format!(
            "rotating {}",
            resolved.api_path("data")
        )))?;
    written_output(context, &resolved.api_path("data"), response)
}

async fn metadata_get(context: &Context, target: Target) -> Result<Outcome, CliError> {
    let resolved = resolve(context, &target).await?;
    resolved.require_v2("metadata get")?;
    let path = resolved.api_path("metadata");
    let response = context
        .client
        .read(&path)
        .await
        .map_err(CliError::api(format!("reading {path}")))?
        .ok_or_else(|| CliError::NotFound(format!("No value found at {path}")))?;
    match context.format {
        Format::Json => Ok(Outcome::ok(json(&response)?)),
        Format::Table => Ok(Outcome::ok(show::metadata(
            &path,
            &response.data.unwrap_or_default(),
        ))),
    }
}

async fn metadata_put(context: &Context, args: MetadataPutArgs) -> Result<Outcome, CliError> {
    let custom = parse_pairs(&args.custom_metadata, "custom-metadata")?;
    let request = KvMetadataWriteRequest {
        max_versions: args.max_versions,
        cas_required: args.cas_required,
        delete_version_after: args.delete_version_after.map(DurationInput::Text),
        custom_metadata: (!custom.is_empty()).then_some(custom),
    };
    let resolved = resolve(context, &args.target).await?;
    resolved.require_v2("metadata put")?;
    let path = resolved.api_path("metadata");
    context
        .client
        .write(&path, &request)
        .await
        .map_err(CliError::api(format!("writing to {path}")))?;
    Ok(Outcome::line(format!("Success! Data written to: {path}")))
}
