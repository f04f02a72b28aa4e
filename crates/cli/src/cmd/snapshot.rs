//! `ward operator snapshot save|restore|inspect|verify FILE`: save and restore through the
//! server's API; inspect and verify offline, on the file alone (the format's parser is
//! `ward-snapshot`'s, the same the server uses).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use ward_snapshot::{Decoder, Header, Item};

use crate::cmd::Outcome;
use crate::cmd::operator::aligned;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, json};

/// `ward operator snapshot ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SnapshotCommand {
    /// Save a snapshot of the server's storage to FILE (written atomically, checked as it
    /// arrives).
    Save {
        /// Where to write it.
        file: PathBuf,
    },
    /// Replace the server's storage with the snapshot in FILE.
    Restore {
        /// The snapshot.
        file: PathBuf,
        /// Accept a snapshot taken under another root key (another cluster): the server is
        /// sealed afterwards, and the snapshot's unseal keys open it.
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Show a snapshot file's header (no server needed).
    Inspect {
        /// The snapshot.
        file: PathBuf,
    },
    /// Check that a snapshot file is complete and unaltered (no server needed): exit 0 if
    /// it is, 1 with the reason if not.
    Verify {
        /// The snapshot.
        file: PathBuf,
    },
}

impl SnapshotCommand {
    /// Whether the command runs without a server.
    pub(crate) fn is_offline(&self) -> bool {
        matches!(self, Self::Inspect { .. } | Self::Verify { .. })
    }
}

/// Runs `inspect` or `verify`, which need no server.
pub(crate) fn run_offline(command: &SnapshotCommand, format: Format) -> Result<Outcome, CliError> {
    match command {
        SnapshotCommand::Inspect { file } => inspect(file, format),
        SnapshotCommand::Verify { file } => verify(file),
        _ => Err(CliError::Usage(
            "this snapshot command needs a server".into(),
        )),
    }
}

/// Runs `save` or `restore`.
pub(crate) async fn run(context: &Context, command: SnapshotCommand) -> Result<Outcome, CliError> {
    match command {
        SnapshotCommand::Save { file } => save(context, &file).await,
        SnapshotCommand::Restore { file, force } => {
            let opened = tokio::fs::File::open(&file)
                .await
                .map_err(|source| CliError::Io {
                    action: format!("opening {}", file.display()),
                    source,
                })?;
            context
                .client
                .snapshot_restore(opened, force)
                .await
                .map_err(CliError::api("restoring the snapshot"))?;
            Ok(Outcome::line(if force {
                "Success! Snapshot restored. The server is sealed if the snapshot came from \
                 another root key: unseal it with the snapshot's unseal keys."
            } else {
                "Success! Snapshot restored."
            }))
        }
        offline => run_offline(&offline, context.format),
    }
}

/// Saves into a temporary file beside `file`, checking the snapshot as it arrives, then
/// renames it into place: `file` is never a partial snapshot.
async fn save(context: &Context, file: &Path) -> Result<Outcome, CliError> {
    let io = |action: &str| {
        let action = format!("{action} {}", file.display());
        move |source| CliError::Io { action, source }
    };
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(io("creating a file beside"))?;
    let mut decoder = Decoder::new();
    let mut header = None;
    let mut check_failed = None;
    let size = {
        let out = temp.as_file_mut();
        context
            .client
            .snapshot_save(|piece| {
                out.write_all(piece)?;
                decoder.push(piece);
                loop {
                    match decoder.next_item() {
                        Ok(Some(Item::Header(h))) => header = Some(h),
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            check_failed.get_or_insert(e);
                            break;
                        }
                    }
                }
                Ok(())
            })
            .await
            .map_err(CliError::api("taking the snapshot"))?
    };
    if let Some(e) = check_failed {
        return Err(CliError::Failed(format!(
            "Error: the snapshot received is invalid: {e}"
        )));
    }
    decoder
        .finish()
        .map_err(|e| CliError::Failed(format!("Error: the snapshot received is invalid: {e}")))?;
    temp.as_file().sync_all().map_err(io("writing"))?;
    temp.persist(file)
        .map_err(|e| e.error)
        .map_err(io("writing"))?;
    // The rename itself is durable once the directory is.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    let records = header.map_or(0, |h| h.records);
    Ok(Outcome::line(format!(
        "Success! Snapshot saved to {} ({records} records, {size} bytes)",
        file.display()
    )))
}

/// Reads `file` through the parser: its header, its trailer's digest, or what is wrong.
fn check(
    file: &Path,
    stop_after_header: bool,
) -> Result<(Header, u64, Option<[u8; 32]>), CliError> {
    let mut input = std::fs::File::open(file).map_err(|source| CliError::Io {
        action: format!("opening {}", file.display()),
        source,
    })?;
    let invalid = |e: ward_snapshot::SnapshotError| {
        CliError::Failed(format!(
            "Error: {} is not a valid snapshot: {e}",
            file.display()
        ))
    };
    let mut decoder = Decoder::new();
    let mut header = None;
    let mut digest = None;
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf).map_err(|source| CliError::Io {
            action: format!("reading {}", file.display()),
            source,
        })?;
        if n == 0 {
            break;
        }
        size += n as u64;
        decoder.push(&buf[..n]);
        while let Some(item) = decoder.next_item().map_err(invalid)? {
            match item {
                Item::Header(h) => header = Some(h),
                Item::Record { .. } => {}
                Item::End(trailer) => digest = Some(trailer.digest),
            }
            if stop_after_header && let Some(h) = header.take() {
                return Ok((h, size, None));
            }
        }
    }
    decoder.finish().map_err(invalid)?;
    let header = header.ok_or_else(|| invalid(ward_snapshot::SnapshotError::Truncated))?;
    Ok((header, size, digest))
}

fn inspect(file: &Path, format: Format) -> Result<Outcome, CliError> {
    let (header, _, _) = check(file, true)?;
    let created = ward_api::time::rfc3339_seconds(header.created_unix).unwrap_or_default();
    match format {
        Format::Json => Ok(Outcome::ok(json(&serde_json::json!({
            "version": header.version,
            "created": created,
            "storage": header.storage,
            "keyring_term": header.keyring_term,
            "key_id": hex(&header.key_id),
            "records": header.records,
        }))?)),
        Format::Table => Ok(Outcome::ok(aligned(&[
            ("Format Version", header.version.to_string()),
            ("Created", created),
            ("Storage", header.storage),
            ("Keyring Term", header.keyring_term.to_string()),
            ("Root Key ID", hex(&header.key_id)),
            ("Records", header.records.to_string()),
        ]))),
    }
}

fn verify(file: &Path) -> Result<Outcome, CliError> {
    let (header, size, digest) = check(file, false)?;
    Ok(Outcome::line(format!(
        "Success! {} is a complete, unaltered snapshot ({} records, {size} bytes, SHA-256 {})",
        file.display(),
        header.records,
        digest.map(|d| hex(&d)).unwrap_or_default()
    )))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
