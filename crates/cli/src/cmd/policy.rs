//! `ward policy write|read|list|delete`.

use clap::Subcommand;
use serde_json::json;

use crate::cmd::{Outcome, read_file, read_stdin};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, json};

/// `ward policy ...`
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Create or replace a policy from a file (`-` reads stdin).
    Write {
        /// The policy's name.
        name: String,
        /// The HCL or JSON policy file, or `-`.
        file: String,
    },
    /// Print a policy's document.
    Read {
        /// The policy's name.
        name: String,
    },
    /// List the policies.
    List,
    /// Delete a policy.
    Delete {
        /// The policy's name.
        name: String,
    },
}

/// Runs a policy command.
pub(crate) async fn run(context: &Context, command: PolicyCommand) -> Result<Outcome, CliError> {
    let client = &context.client;
    match command {
        PolicyCommand::Write { name, file } => {
            let document = if file == "-" {
                read_stdin("the policy")?
            } else {
                read_file(&file, "the policy")?
            };
            let warnings = client
                .write_policy(&name, &document)
                .await
                .map_err(CliError::api(format!("uploading policy {name}")))?;
            Ok(Outcome::line(format!("Success! Uploaded policy: {name}"))
                .with_warnings(Some(warnings)))
        }
        PolicyCommand::Read { name } => {
            let policy = client
                .read_policy(&name)
                .await
                .map_err(CliError::api(format!("reading policy {name}")))?
                .ok_or_else(|| CliError::NotFound(format!("No policy named: {name}")))?;
            match context.format {
                Format::Json => Ok(Outcome::ok(json(
                    &json!({"name": policy.name, "policy": policy.policy}),
                )?)),
                Format::Table => {
                    let mut text = policy.policy;
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    Ok(Outcome::ok(text))
                }
            }
        }
        PolicyCommand::List => {
            let names = client
                .list_policies()
                .await
                .map_err(CliError::api("listing policies"))?;
            match context.format {
                Format::Json => Ok(Outcome::ok(json(&names)?)),
                Format::Table => Ok(Outcome::ok(
                    names.iter().map(|n| format!("{n}\n")).collect::<String>(),
                )),
            }
        }
        PolicyCommand::Delete { name } => {
            client
                .delete_policy(&name)
                .await
                .map_err(CliError::api(format!("deleting policy {name}")))?;
            Ok(Outcome::line(format!("Success! Deleted policy: {name}")))
        }
    }
}
