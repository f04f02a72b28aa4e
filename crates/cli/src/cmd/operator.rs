//! `ward status` and `ward operator init|unseal|seal|rotate|key-status|rekey|generate-root`.

use std::io::IsTerminal;

use clap::Subcommand;
use serde_json::json;
use ward_api::{InitRequest, LeaderStatus, SealStatus, UnsealRequest};

use crate::cmd::{Outcome, read_stdin};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, json};

/// `ward operator ...`
#[derive(Debug, Subcommand)]
pub(crate) enum OperatorCommand {
    /// Initialise a new server: create the root key, split the unseal key, issue a root token.
    Init {
        /// Number of unseal key shares.
        #[arg(long, default_value_t = 5)]
        key_shares: u32,
        /// Number of shares needed to unseal.
        #[arg(long, default_value_t = 3)]
        key_threshold: u32,
        /// Number of recovery key shares (with an automatic seal, e.g. `pkcs11`; default 5).
        #[arg(long)]
        recovery_shares: Option<u32>,
        /// Number of recovery shares that authorise generate-root and recovery rekeys
        /// (default 3).
        #[arg(long)]
        recovery_threshold: Option<u32>,
        /// Only report whether the server is initialised (exit 0 yes, 2 no, 1 error).
        #[arg(long)]
        status: bool,
    },
    /// Give one unseal key share (prompted without echo when KEY is absent; `-` reads stdin).
    Unseal {
        /// The key share.
        key: Option<String>,
        /// Discard the shares given so far.
        #[arg(long)]
        reset: bool,
        /// Migrate the seal: the configured seal differs from the stored one (see `ward
        /// status`); the shares of the old seal move the root key to the new one.
        #[arg(long)]
        migrate: bool,
    },
    /// Seal the server: it drops its keys and serves nothing until unsealed.
    Seal,
    /// Add a new encryption key term to the keyring.
    Rotate,
    /// Show the keyring's newest term.
    KeyStatus,
    /// Replace the unseal key shares (new count or threshold) with a quorum of current ones.
    Rekey(crate::cmd::quorum::RekeyArgs),
    /// Make a new root token with a quorum of unseal key shares (one-time-password flow).
    GenerateRoot(crate::cmd::quorum::GenerateRootArgs),
    /// Save, restore, inspect or verify snapshots of the storage.
    #[command(subcommand)]
    Snapshot(crate::cmd::snapshot::SnapshotCommand),
}

/// Runs an operator command.
pub(crate) async fn run(context: &Context, command: OperatorCommand) -> Result<Outcome, CliError> {
    match command {
        OperatorCommand::Init {
            key_shares,
            key_threshold,
            recovery_shares,
            recovery_threshold,
            status,
        } => {
            if status {
                init_status(context).await
            } else {
                let recovery =
                    (recovery_shares.is_some() || recovery_threshold.is_some()).then(|| {
                        (
                            recovery_shares.unwrap_or(5),
                            recovery_threshold.unwrap_or(3),
                        )
                    });
                init(context, key_shares, key_threshold, recovery).await
            }
        }
        OperatorCommand::Unseal {
            key,
            reset,
            migrate,
        } => unseal(context, key, reset, migrate).await,
        OperatorCommand::Snapshot(command) => crate::cmd::snapshot::run(context, command).await,
        OperatorCommand::Rekey(args) => crate::cmd::quorum::rekey(context, args).await,
        OperatorCommand::GenerateRoot(args) => {
            crate::cmd::quorum::generate_root(context, args).await
        }
        OperatorCommand::Seal => {
            context
                .client
                .seal()
                .await
                .map_err(CliError::api("sealing"))?;
            Ok(Outcome::line("Success! Ward is sealed."))
        }
        OperatorCommand::Rotate => {
            context
                .client
                .rotate()
                .await
                .map_err(CliError::api("rotating the key"))?;
            let status = context
                .client
                .key_status()
                .await
                .map_err(CliError::api("reading the key status"))?;
            match context.format {
                Format::Json => Ok(Outcome::ok(json(&status)?)),
                Format::Table => Ok(Outcome::ok(format!(
                    "Success! Rotated key\n\n{}",
                    aligned(&[
                        ("Key Term", status.term.to_string()),
                        ("Install Time", status.install_time),
                    ])
                ))),
            }
        }
        OperatorCommand::KeyStatus => {
            let status = context
                .client
                .key_status()
                .await
                .map_err(CliError::api("reading the key status"))?;
            match context.format {
                Format::Json => Ok(Outcome::ok(json(&status)?)),
                Format::Table => Ok(Outcome::ok(aligned(&[
                    ("Key Term", status.term.to_string()),
                    ("Install Time", status.install_time),
                    ("Encryption Count", status.encryptions.to_string()),
                ]))),
            }
        }
    }
}

/// `ward status`: exit 0 when unsealed, 2 when sealed, 1 on error (as `vault status`; its 2
/// means sealed, so an error cannot use it).
pub(crate) async fn status(context: &Context) -> Result<Outcome, CliError> {
    let status = context
        .client
        .seal_status()
        .await
        .map_err(|e| CliError::Failed(CliError::api("checking seal status")(e).to_string()))?;
    let code = if status.sealed { 2 } else { 0 };
    let stdout = status_text(context, &status).await?;
    Ok(Outcome {
        code,
        ..Outcome::ok(stdout)
    })
}

async fn init_status(context: &Context) -> Result<Outcome, CliError> {
    let status = context
        .client
        .init_status()
        .await
        .map_err(CliError::api("checking init status"))?;
    if status.initialized {
        Ok(Outcome::line("Ward is initialized"))
    } else {
        Ok(Outcome {
            code: 2,
            ..Outcome::line("Ward is not initialized")
        })
    }
}

async fn init(
    context: &Context,
    shares: u32,
    threshold: u32,
    recovery: Option<(u32, u32)>,
) -> Result<Outcome, CliError> {
    // The server judges the split (a refusal is a remote error, exit 2, as Vault's).
    let request = InitRequest {
        secret_shares: shares,
        secret_threshold: threshold,
        recovery_shares: recovery.map(|(n, _)| n),
        recovery_threshold: recovery.map(|(_, t)| t),
        ..InitRequest::default()
    };
    let response = context
        .client
        .init(&request)
        .await
        .map_err(CliError::api("initializing"))?;
    if context.format == Format::Json {
        // The shape `vault operator init -format=json` prints.
        return Ok(Outcome::ok(json(&json!({
            "unseal_keys_b64": response.keys_base64,
            "unseal_keys_hex": response.keys,
            "unseal_shares": shares,
            "unseal_threshold": threshold,
            "recovery_keys_b64": response.recovery_keys_base64,
            "recovery_keys_hex": response.recovery_keys,
            "recovery_keys_shares": response.recovery_keys.len(),
            "recovery_keys_threshold": if response.recovery_keys.is_empty() {
                0
            } else {
                recovery.map_or(3, |(_, t)| t)
            },
            "root_token": response.root_token,
        }))?));
    }
    if !response.recovery_keys.is_empty() {
        // An automatic seal: recovery keys, as `vault operator init` prints them.
        let threshold = recovery.map_or(3, |(_, t)| t);
        let mut out = String::new();
        for (i, key) in response.recovery_keys_base64.iter().enumerate() {
            out.push_str(&format!("Recovery Key {}: {key}\n", i + 1));
        }
        out.push_str(&format!(
            "\nInitial Root Token: {}\n\nSuccess! Ward is initialized\n\nRecovery key \
             initialized with {} key shares and a key threshold of {threshold}. Please\nsecurely \
             distribute the key shares printed above.\n",
            response.root_token,
            response.recovery_keys.len()
        ));
        return Ok(Outcome::ok(out));
    }
    let mut out = String::new();
    for (i, key) in response.keys_base64.iter().enumerate() {
        out.push_str(&format!("Unseal Key {}: {key}\n", i + 1));
    }
    out.push_str(&format!(
        "\nInitial Root Token: {}\n\nWard initialized with {shares} key shares and a key \
         threshold of {threshold}. Please securely\ndistribute the key shares printed above. \
         When Ward is re-sealed,\nrestarted, or stopped, you must supply at least {threshold} \
         of these keys to unseal it\nbefore it can start servicing requests.\n\nWard does not \
         store the generated root key. Without at least {threshold} keys to\nreconstruct the \
         root key, Ward will remain permanently sealed!\n",
        response.root_token
    ));
    Ok(Outcome::ok(out))
}

async fn unseal(
    context: &Context,
    key: Option<String>,
    reset: bool,
    migrate: bool,
) -> Result<Outcome, CliError> {
    let request = if reset {
        UnsealRequest {
            reset: true,
            ..UnsealRequest::default()
        }
    } else {
        let key = read_key(key)?.to_string();
        UnsealRequest {
            key: Some(key),
            migrate,
            ..UnsealRequest::default()
        }
    };
    let status = context
        .client
        .unseal(&request)
        .await
        .map_err(CliError::api("unsealing"))?;
    Ok(Outcome::ok(status_text(context, &status).await?))
}

/// The seal status with, once unsealed, the cluster's (`sys/leader`), as `vault status`
/// and `vault operator unseal` print them.
async fn status_text(context: &Context, status: &SealStatus) -> Result<String, CliError> {
    let leader = match status.sealed {
        true => None,
        false => context.client.leader().await.ok(),
    };
    match context.format {
        Format::Json => {
            let mut object = serde_json::to_value(status)
                .map_err(|e| CliError::Failed(format!("Error encoding JSON output: {e}")))?;
            if let (Some(leader), Some(fields)) = (&leader, object.as_object_mut()) {
                fields.insert("ha_enabled".into(), json!(leader.ha_enabled));
                if leader.ha_enabled {
                    fields.insert("is_self".into(), json!(leader.is_self));
                    fields.insert("active_time".into(), json!(leader.active_time));
                    fields.insert("leader_address".into(), json!(leader.leader_address));
                    fields.insert(
                        "leader_cluster_address".into(),
                        json!(leader.leader_cluster_address),
                    );
                }
            }
            json(&object)
        }
        Format::Table => Ok(seal_status_table(status, leader.as_ref())),
    }
}

/// An unseal key share: the argument, stdin for `-` (or when stdin is not a terminal), else
/// a prompt that does not echo. Wiped on drop.
pub(crate) fn read_key(key: Option<String>) -> Result<zeroize::Zeroizing<String>, CliError> {
    let key = zeroize::Zeroizing::new(match key.as_deref() {
        Some("-") => read_stdin("the unseal key")?,
        Some(key) => key.to_owned(),
        None if std::io::stdin().is_terminal() => {
            rpassword::prompt_password("Unseal Key (will be hidden): ").map_err(|source| {
                CliError::Io {
                    action: "reading the unseal key".into(),
                    source,
                }
            })?
        }
        None => read_stdin("the unseal key")?,
    });
    let key = zeroize::Zeroizing::new(key.trim().to_owned());
    if key.is_empty() {
        return Err(CliError::Usage("Error: no unseal key given".into()));
    }
    Ok(key)
}

/// The table `vault status` and `vault operator unseal` print.
fn seal_status_table(status: &SealStatus, leader: Option<&LeaderStatus>) -> String {
    let mut rows = vec![("Seal Type", status.seal_type.clone())];
    if let Some(kind) = &status.recovery_seal_type {
        rows.push(("Recovery Seal Type", kind.clone()));
    }
    rows.extend([
        ("Initialized", status.initialized.to_string()),
        ("Sealed", status.sealed.to_string()),
        (
            if status.recovery_seal {
                "Total Recovery Shares"
            } else {
                "Total Shares"
            },
            status.n.to_string(),
        ),
        ("Threshold", status.t.to_string()),
    ]);
    if status.migration {
        rows.push(("Seal Migration in Progress", "true".into()));
    }
    if status.sealed {
        rows.push((
            "Unseal Progress",
            format!("{}/{}", status.progress, status.t),
        ));
        let nonce = if status.nonce.is_empty() {
            "n/a".to_owned()
        } else {
            status.nonce.clone()
        };
        rows.push(("Unseal Nonce", nonce));
    }
    rows.push(("Version", status.version.clone()));
    let build_date = if status.build_date.is_empty() {
        status.commit_date.clone().unwrap_or_else(|| "n/a".into())
    } else {
        status.build_date.clone()
    };
    rows.push(("Build Date", build_date));
    if let Some(storage) = &status.storage_type {
        rows.push(("Storage Type", storage.clone()));
    }
    if let Some(name) = &status.cluster_name {
        rows.push(("Cluster Name", name.clone()));
    }
    if let Some(id) = &status.cluster_id {
        rows.push(("Cluster ID", id.clone()));
    }
    match leader.filter(|l| l.ha_enabled) {
        None => rows.push(("HA Enabled", "false".into())),
        Some(leader) => {
            rows.push(("HA Enabled", "true".into()));
            rows.push(("HA Cluster", leader.leader_cluster_address.clone()));
            if leader.is_self {
                rows.push(("HA Mode", "active".into()));
                rows.push(("Active Since", leader.active_time.clone()));
            } else {
                rows.push(("HA Mode", "standby".into()));
                rows.push(("Active Node Address", leader.leader_address.clone()));
            }
        }
    }
    let rows: Vec<(String, String)> = rows.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    crate::output::key_value_table(&rows)
}

/// Label/value lines aligned on the value column, without a header (Vault's key-status).
pub(crate) fn aligned(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 4;
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}{v}\n"))
        .collect()
}
