//! `ward auth enable|list|tune|disable`: auth methods, through Vault's `sys/auth` API.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use crate::cmd::Outcome;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, columns, json};

/// `ward auth ...`
#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Enable an auth method (userpass, approle, cert).
    Enable {
        /// Where to mount it below auth/ (default: the method's name).
        #[arg(long)]
        path: Option<String>,
        /// A description shown by `auth list`.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        ttls: Ttls,
        /// The auth method's type.
        method_type: String,
    },
    /// List the enabled auth methods.
    List {
        /// Show each method's TTLs and token type too.
        #[arg(long)]
        detailed: bool,
    },
    /// Change an auth method's TTLs or description.
    Tune {
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        ttls: Ttls,
        /// The auth method's path.
        path: String,
    },
    /// Disable an auth method. Revokes every token it issued.
    Disable {
        /// The auth method's path.
        path: String,
    },
}

/// The lease TTLs of an auth method's tokens.
#[derive(Debug, clap::Args)]
pub(crate) struct Ttls {
    /// Default TTL of the tokens it issues (`1h`, or seconds; default: the system's).
    #[arg(long)]
    default_lease_ttl: Option<String>,
    /// Longest TTL of the tokens it issues.
    #[arg(long)]
    max_lease_ttl: Option<String>,
}

impl Ttls {
    fn config(self) -> Map<String, Value> {
        let mut config = Map::new();
        for (key, value) in [
            ("default_lease_ttl", self.default_lease_ttl),
            ("max_lease_ttl", self.max_lease_ttl),
        ] {
            if let Some(value) = value {
                config.insert(key.into(), Value::String(value));
            }
        }
        config
    }
}

/// Runs an auth command.
pub(crate) async fn run(context: &Context, command: AuthCommand) -> Result<Outcome, CliError> {
    let client = &context.client;
    match command {
        AuthCommand::Enable {
            path,
            description,
            ttls,
            method_type,
        } => {
            let method_type = method_type.trim().to_owned();
            let path = method_path(path.as_deref().unwrap_or(&method_type));
            let body = json!({
                "type": method_type,
                "description": description.unwrap_or_default(),
                "config": ttls.config(),
            });
            client
                .write(&format!("sys/auth/{path}"), &body)
                .await
                .map_err(CliError::api(format!("enabling {method_type} auth")))?;
            Ok(Outcome::line(format!(
                "Success! Enabled {method_type} auth method at: {path}"
            )))
        }
        AuthCommand::List { detailed } => list(context, detailed).await,
        AuthCommand::Tune {
            description,
            ttls,
            path,
        } => {
            let path = method_path(&path);
            let mut body = ttls.config();
            if let Some(description) = description {
                body.insert("description".into(), Value::String(description));
            }
            client
                .write(&format!("sys/auth/{path}tune"), &body)
                .await
                .map_err(CliError::api(format!("tuning auth method {path}")))?;
            Ok(Outcome::line(format!(
                "Success! Tuned the auth method at: {path}"
            )))
        }
        AuthCommand::Disable { path } => {
            let path = method_path(&path);
            client
                .delete(&format!("sys/auth/{path}"))
                .await
                .map_err(CliError::api(format!("disabling auth method at {path}")))?;
            Ok(Outcome::line(format!(
                "Success! Disabled the auth method (if it existed) at: {path}"
            )))
        }
    }
}

async fn list(context: &Context, detailed: bool) -> Result<Outcome, CliError> {
    let methods = context
        .client
        .read("sys/auth")
        .await
        .map_err(CliError::api("listing enabled auth methods"))?
        .and_then(|response| response.data)
        .and_then(|data| match data {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    if context.format == Format::Json {
        return Ok(Outcome::ok(json(&methods)?));
    }
    let text = |entry: &Value, key: &str| match &entry[key] {
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => "n/a".to_owned(),
    };
    let ttl = |entry: &Value, key: &str| match entry["config"][key].as_u64() {
        Some(seconds) if seconds > 0 => seconds.to_string(),
        _ => "system".to_owned(),
    };
    let rows: Vec<Vec<String>> = methods
        .iter()
        .map(|(path, entry)| {
            let mut row = vec![path.clone(), text(entry, "type"), text(entry, "accessor")];
            if detailed {
                row.push(ttl(entry, "default_lease_ttl"));
                row.push(ttl(entry, "max_lease_ttl"));
                row.push(entry["config"]["token_type"].as_str().unwrap_or("").into());
            }
            row.push(text(entry, "description"));
            row
        })
        .collect();
    let headers: &[&str] = if detailed {
        &[
            "Path",
            "Plugin",
            "Accessor",
            "Default TTL",
            "Max TTL",
            "Token Type",
            "Description",
        ]
    } else {
        &["Path", "Type", "Accessor", "Description"]
    };
    Ok(Outcome::ok(columns(headers, &rows)))
}

/// An auth method's path with exactly one trailing slash, as Vault prints them.
fn method_path(path: &str) -> String {
    format!("{}/", path.trim().trim_matches('/'))
}
