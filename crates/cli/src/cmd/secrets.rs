//! `ward secrets enable|list|disable`.

use std::collections::BTreeMap;

use clap::Subcommand;
use ward_api::MountEnableRequest;

use crate::cmd::Outcome;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, columns, json};

/// `ward secrets ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Enable a secrets engine (`kv-v2` is `kv` with version 2).
    Enable {
        /// Where to mount it (default: the type's name).
        #[arg(long)]
        path: Option<String>,
        /// A description shown by `secrets list`.
        #[arg(long, default_value = "")]
        description: String,
        /// Engine version (KV: 1 or 2).
        #[arg(long)]
        version: Option<u32>,
        /// The engine type: kv, kv-v2, transit, ...
        engine_type: String,
    },
    /// List the enabled secrets engines.
    List {
        /// Show the options of each mount too.
        #[arg(long)]
        detailed: bool,
    },
    /// Disable a secrets engine. Deletes all of its data.
    Disable {
        /// The mount path.
        path: String,
    },
}

/// Runs a secrets command.
pub(crate) async fn run(context: &Context, command: SecretsCommand) -> Result<Outcome, CliError> {
    match command {
        SecretsCommand::Enable {
            path,
            description,
            version,
            engine_type,
        } => enable(context, path, description, version, engine_type).await,
        SecretsCommand::List { detailed } => list(context, detailed).await,
        SecretsCommand::Disable { path } => {
            let path = mount_path(&path);
            context
                .client
                .disable_mount(&path)
                .await
                .map_err(CliError::api(format!("disabling secrets engine at {path}")))?;
            Ok(Outcome::line(format!(
                "Success! Disabled the secrets engine (if it existed) at: {path}"
            )))
        }
    }
}

async fn enable(
    context: &Context,
    path: Option<String>,
    description: String,
    version: Option<u32>,
    engine_type: String,
) -> Result<Outcome, CliError> {
    let requested_type = engine_type.trim().to_owned();
    let (wire_type, version) = match requested_type.as_str() {
        "kv-v2" => ("kv".to_owned(), Some(version.unwrap_or(2))),
        other => (other.to_owned(), version),
    };
    if wire_type.is_empty() {
        return Err(CliError::Usage("Error: the engine type is empty".into()));
    }
    let path = mount_path(path.as_deref().unwrap_or(&requested_type));
    let options = version.map(|v| BTreeMap::from([("version".to_owned(), v.to_string())]));
    let request = MountEnableRequest {
        engine_type: wire_type,
        description,
        options,
        ..MountEnableRequest::default()
    };
    context
        .client
        .enable_mount(&path, &request)
        .await
        .map_err(CliError::api(format!("enabling secrets engine at {path}")))?;
    Ok(Outcome::line(format!(
        "Success! Enabled the {requested_type} secrets engine at: {path}"
    )))
}

async fn list(context: &Context, detailed: bool) -> Result<Outcome, CliError> {
    let mounts = context
        .client
        .mounts()
        .await
        .map_err(CliError::api("listing secrets engines"))?;
    if context.format == Format::Json {
        return Ok(Outcome::ok(json(&mounts)?));
    }
    let mut headers = vec!["Path", "Type", "Accessor", "Description"];
    if detailed {
        headers.push("Options");
    }
    let rows: Vec<Vec<String>> = mounts
        .iter()
        .map(|(path, info)| {
            let mut row = vec![
                path.clone(),
                info.engine_type.clone(),
                info.accessor.clone(),
                if info.description.is_empty() {
                    "n/a".into()
                } else {
                    info.description.clone()
                },
            ];
            if detailed {
                let options = info.options.as_ref().map_or_else(
                    || "n/a".to_owned(),
                    |o| {
                        let items: Vec<String> =
                            o.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        format!("map[{}]", items.join(" "))
                    },
                );
                row.push(options);
            }
            row
        })
        .collect();
    Ok(Outcome::ok(columns(&headers, &rows)))
}

/// A mount path with exactly one trailing slash, as Vault prints them.
fn mount_path(path: &str) -> String {
    format!("{}/", path.trim_matches('/'))
}
