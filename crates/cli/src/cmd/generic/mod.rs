//! Vault's generic commands on any API path: `ward read`, `write`, `delete` and `list`.
//!
//! They send the request as given (`ward write transit/encrypt/app plaintext=...`) and print
//! the reply as Vault's CLI does. Exit codes follow Vault's: 0 on success, 2 for an error the
//! server returned or nothing found, 1 for a local error (bad data arguments, an unreadable
//! file, a missing `-field`).

mod show;

use clap::Args;
use serde_json::{Map, Value};
use ward_api::Response;

use crate::cmd::{Outcome, data};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, columns, json};

/// `ward read`
#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    /// Print only this field of the reply (a data key, or `lease_id`, `token`, ...).
    #[arg(long)]
    field: Option<String>,
    /// The API path (`transit/keys/app`).
    path: String,
    /// `key=value` pairs sent as URL parameters.
    #[arg(allow_hyphen_values = true)]
    data: Vec<String>,
}

/// `ward write`
#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// Write even with no data (endpoints that take none, such as `transit/keys/NAME`).
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Print only this field of the reply.
    #[arg(long)]
    field: Option<String>,
    /// The API path.
    path: String,
    /// `key=value`, `key=@file`, `key=-` (stdin), or `-` / `@file.json` holding a JSON object.
    #[arg(allow_hyphen_values = true)]
    data: Vec<String>,
}

/// `ward delete`
#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// The API path.
    path: String,
    /// `key=value` pairs sent as URL parameters.
    #[arg(allow_hyphen_values = true)]
    data: Vec<String>,
}

/// `ward list`
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// The API path.
    path: String,
}

/// The path as Vault's CLI cleans it: no surrounding spaces, no leading slash.
fn sanitise(path: &str) -> String {
    path.trim().trim_start_matches('/').to_owned()
}

/// Data arguments as Vault reports a failure to parse them (exit 1).
fn parse_data(args: &[String]) -> Result<Map<String, Value>, CliError> {
    data::parse_args_data(args).map_err(|e| match e {
        CliError::Usage(message) => {
            CliError::Failed(format!("Failed to parse K=V data: {message}"))
        }
        other => other,
    })
}

/// Data arguments as URL parameters: lists give one parameter per item.
fn query_pairs(args: &[String]) -> Result<Vec<(String, String)>, CliError> {
    let mut pairs = Vec::new();
    for (key, value) in parse_data(args)? {
        let items = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        for item in items {
            let text = match item {
                Value::String(s) => s,
                other => other.to_string(),
            };
            pairs.push((key.clone(), text));
        }
    }
    Ok(pairs)
}

/// Prints a reply: `-field`, the JSON envelope, or the table.
fn secret_output(
    context: &Context,
    response: Response,
    field: Option<&str>,
) -> Result<Outcome, CliError> {
    let warnings = response.warnings.clone();
    let stdout = match (field, context.format) {
        (Some(field), format) => show::field_output(&response, field, format)?,
        (None, Format::Json) => json(&response)?,
        (None, Format::Table) => show::secret_table(&response),
    };
    Ok(Outcome::ok(stdout).with_warnings(warnings))
}

/// `ward read PATH [k=v...]`
pub(crate) async fn read(context: &Context, args: ReadArgs) -> Result<Outcome, CliError> {
    let path = sanitise(&args.path);
    let query = query_pairs(&args.data)?;
    let response = context
        .client
        .read_with_query(&path, &query)
        .await
        .map_err(CliError::request(format!("reading {path}")))?
        .ok_or_else(|| CliError::NotFound(format!("No value found at {path}")))?;
    secret_output(context, response, args.field.as_deref())
}

/// `ward write PATH k=v...`
pub(crate) async fn write(context: &Context, args: WriteArgs) -> Result<Outcome, CliError> {
    if args.data.is_empty() && !args.force {
        return Err(CliError::Failed("Must supply data or use -force".into()));
    }
    let path = sanitise(&args.path);
    let data = parse_data(&args.data)?;
    let response = context
        .client
        .write(&path, &data)
        .await
        .map_err(CliError::request(format!("writing data to {path}")))?;
    match response {
        Some(response) if !show::is_empty(&response) => {
            secret_output(context, response, args.field.as_deref())
        }
        // As Vault: the success line in table format only, so JSON output stays parseable.
        reply => {
            let warnings = reply.and_then(|r| r.warnings);
            let stdout = match context.format {
                Format::Table => format!("Success! Data written to: {path}\n"),
                Format::Json => String::new(),
            };
            Ok(Outcome::ok(stdout).with_warnings(warnings))
        }
    }
}

/// `ward delete PATH [k=v...]`
pub(crate) async fn delete(context: &Context, args: DeleteArgs) -> Result<Outcome, CliError> {
    let path = sanitise(&args.path);
    let query = query_pairs(&args.data)?;
    let response = context
        .client
        .delete_with_query(&path, &query)
        .await
        .map_err(CliError::request(format!("deleting {path}")))?;
    Ok(
        Outcome::line(format!("Success! Data deleted (if it existed) at: {path}"))
            .with_warnings(response.and_then(|r| r.warnings)),
    )
}

/// `ward list PATH`
pub(crate) async fn list(context: &Context, args: ListArgs) -> Result<Outcome, CliError> {
    let path = sanitise(&args.path);
    let keys = context
        .client
        .list(&path)
        .await
        .map_err(CliError::request(format!("listing {path}")))?;
    match (keys, context.format) {
        (Some(keys), Format::Json) => Ok(Outcome::ok(json(&keys)?)),
        (Some(keys), Format::Table) => {
            let rows: Vec<Vec<String>> = keys.into_iter().map(|k| vec![k]).collect();
            Ok(Outcome::ok(columns(&["Keys"], &rows)))
        }
        // Vault prints an empty object for machine formats, still exiting 2.
        (None, Format::Json) => Ok(Outcome {
            stdout: "{}\n".to_owned(),
            code: 2,
            warnings: Vec::new(),
        }),
        (None, Format::Table) => Err(CliError::NotFound(format!("No value found at {path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_spaces_and_the_leading_slash() {
        assert_eq!(sanitise(" /transit/keys/app "), "transit/keys/app");
    }

    #[test]
    fn data_becomes_url_parameters_and_bad_pairs_exit_1() {
        let args: Vec<String> = ["version=2", "k=a", "k=b"].map(String::from).to_vec();
        assert_eq!(
            query_pairs(&args).unwrap(),
            [("k", "a"), ("k", "b"), ("version", "2")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let error = query_pairs(&["secret".to_owned()]).unwrap_err();
        assert_eq!(error.exit_code(), 1);
        assert!(error.to_string().starts_with("Failed to parse K=V data: "));
        assert!(!error.to_string().contains("secret"));
    }
}
