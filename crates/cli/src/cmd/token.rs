//! `ward token create|lookup|renew|revoke`.

use clap::{ArgAction, Subcommand};
use serde_json::json;
use ward_api::{
    Auth, DurationInput, Response, TokenAccessorRequest, TokenCreateRequest, TokenRenewRequest,
    TokenRequest,
};

use crate::cmd::{Outcome, parse_pairs};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, display_value, human_duration, json, key_value_table, object_rows};

/// Lookup fields that hold seconds and are shown as durations.
const DURATION_FIELDS: [&str; 5] = [
    "creation_ttl",
    "explicit_max_ttl",
    "ttl",
    "period",
    "lease_duration",
];

/// `ward token ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a child token of the current token (or an orphan with -orphan).
    Create {
        /// Policy to attach (repeatable, or comma-separated).
        #[arg(long = "policy", value_delimiter = ',')]
        policies: Vec<String>,
        /// Initial TTL (`1h`, `30m`, seconds).
        #[arg(long)]
        ttl: Option<String>,
        /// A hard TTL limit that renewals cannot pass.
        #[arg(long)]
        explicit_max_ttl: Option<String>,
        /// Renewal period, for a periodic token.
        #[arg(long)]
        period: Option<String>,
        /// Number of uses (0: unlimited).
        #[arg(long)]
        num_uses: Option<u64>,
        /// Whether the token may be renewed (`-renewable=false` to forbid).
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
        renewable: Option<bool>,
        /// Create a token with no parent.
        #[arg(long)]
        orphan: bool,
        /// Metadata `key=value` (repeatable).
        #[arg(long = "metadata")]
        metadata: Vec<String>,
        /// Name shown in lookups and audit entries.
        #[arg(long)]
        display_name: Option<String>,
        /// Do not attach the default policy.
        #[arg(long)]
        no_default_policy: bool,
        /// `service` or `batch`.
        #[arg(long = "type")]
        token_type: Option<String>,
    },
    /// Show a token's properties (the current token when TOKEN is absent).
    Lookup {
        /// The token (or, with -accessor, its accessor).
        token: Option<String>,
        /// Treat the argument as an accessor.
        #[arg(long)]
        accessor: bool,
    },
    /// Extend a token's TTL (the current token when TOKEN is absent).
    Renew {
        /// The token to renew.
        token: Option<String>,
        /// Requested extension (`1h`).
        #[arg(long)]
        increment: Option<String>,
    },
    /// Revoke a token and its children.
    Revoke {
        /// The token (or, with -accessor, its accessor).
        token: Option<String>,
        /// Treat the argument as an accessor.
        #[arg(long)]
        accessor: bool,
        /// Revoke the current token.
        #[arg(long = "self")]
        revoke_self: bool,
    },
}

/// Runs a token command.
pub(crate) async fn run(context: &Context, command: TokenCommand) -> Result<Outcome, CliError> {
    match command {
        TokenCommand::Create {
            policies,
            ttl,
            explicit_max_ttl,
            period,
            num_uses,
            renewable,
            orphan,
            metadata,
            display_name,
            no_default_policy,
            token_type,
        } => {
            let meta = parse_pairs(&metadata, "metadata")?;
            let policies: Vec<String> = policies.into_iter().filter(|p| !p.is_empty()).collect();
            let request = TokenCreateRequest {
                policies: (!policies.is_empty()).then_some(policies),
                meta: (!meta.is_empty()).then_some(meta),
                no_parent: orphan,
                no_default_policy,
                renewable,
                ttl: ttl.map(DurationInput::Text),
                explicit_max_ttl: explicit_max_ttl.map(DurationInput::Text),
                period: period.map(DurationInput::Text),
                num_uses,
                display_name,
                token_type,
            };
            let path = if orphan {
                "auth/token/create-orphan"
            } else {
                "auth/token/create"
            };
            let response = context
                .client
                .write(path, &request)
                .await
                .map_err(CliError::api("creating token"))?;
            auth_output(context, response)
        }
        TokenCommand::Lookup { token, accessor } => {
            let response = match (token, accessor) {
                (None, true) => return Err(usage("-accessor needs an accessor argument")),
                (None, false) => context.client.read("auth/token/lookup-self").await,
                (Some(token), false) => {
                    context
                        .client
                        .write("auth/token/lookup", &TokenRequest { token })
                        .await
                }
                (Some(accessor), true) => {
                    context
                        .client
                        .write(
                            "auth/token/lookup-accessor",
                            &TokenAccessorRequest { accessor },
                        )
                        .await
                }
            }
            .map_err(CliError::api("looking up token"))?
            .ok_or_else(|| {
                CliError::Failed("Error looking up token: no token data returned".into())
            })?;
            match context.format {
                Format::Json => Ok(Outcome::ok(json(&response)?)),
                Format::Table => {
                    let data = response.data.unwrap_or_default();
                    Ok(Outcome::ok(key_value_table(&object_rows(
                        &data,
                        &DURATION_FIELDS,
                    ))))
                }
            }
        }
        TokenCommand::Renew { token, increment } => {
            let body = TokenRenewRequest {
                increment: increment.map(DurationInput::Text),
                token: None,
            };
            let response = match token {
                None => context.client.write("auth/token/renew-self", &body).await,
                Some(token) => {
                    let body = TokenRenewRequest {
                        token: Some(token),
                        ..body
                    };
                    context.client.write("auth/token/renew", &body).await
                }
            }
            .map_err(CliError::api("renewing token"))?;
            auth_output(context, response)
        }
        TokenCommand::Revoke {
            token,
            accessor,
            revoke_self,
        } => {
            let result = match (token, accessor, revoke_self) {
                (None, _, true) => context.client.revoke_self().await,
                (Some(_), _, true) => return Err(usage("-self takes no token argument")),
                (Some(accessor_id), true, false) => {
                    context.client.revoke_accessor(&accessor_id).await
                }
                (Some(token), false, false) => context.client.revoke_token(&token).await,
                (None, _, false) => {
                    return Err(usage(
                        "Not enough arguments: a token, an -accessor or -self",
                    ));
                }
            };
            result.map_err(CliError::api("revoking token"))?;
            Ok(Outcome::line("Success! Revoked token (if it existed)"))
        }
    }
}

/// Prints the `auth` block of a create/renew reply as Vault does.
fn auth_output(context: &Context, response: Option<Response>) -> Result<Outcome, CliError> {
    let response =
        response.ok_or_else(|| CliError::Failed("Error: the server returned no token".into()))?;
    let warnings = response.warnings.clone();
    if context.format == Format::Json {
        return Ok(Outcome::ok(json(&response)?).with_warnings(warnings));
    }
    let auth: Auth = response
        .auth
        .ok_or_else(|| CliError::Failed("Error: the server returned no token".into()))?;
    Ok(Outcome::ok(key_value_table(&auth_rows(&auth))).with_warnings(warnings))
}

/// The Key/Value rows Vault prints for a token issued in a reply's `auth` block.
pub(crate) fn auth_rows(auth: &Auth) -> Vec<(String, String)> {
    let duration = if auth.lease_duration == 0 {
        "∞".to_owned()
    } else {
        human_duration(auth.lease_duration)
    };
    let mut rows = vec![
        ("token".to_owned(), auth.client_token.clone()),
        ("token_accessor".to_owned(), auth.accessor.clone()),
        ("token_duration".to_owned(), duration),
        ("token_renewable".to_owned(), auth.renewable.to_string()),
        ("token_policies".to_owned(), json_list(&auth.token_policies)),
        (
            "identity_policies".to_owned(),
            json_list(&identity_policies(auth)),
        ),
        ("policies".to_owned(), json_list(&auth.policies)),
    ];
    for (key, value) in auth.metadata.iter().flatten() {
        rows.push((format!("token_meta_{key}"), display_value(&json!(value))));
    }
    rows
}

/// Policies that come from the identity system rather than the token itself.
fn identity_policies(auth: &Auth) -> Vec<String> {
    auth.policies
        .iter()
        .filter(|p| !auth.token_policies.contains(p))
        .cloned()
        .collect()
}

/// A list as Vault prints policy lists: `["a" "b"]`.
fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

fn usage(message: &str) -> CliError {
    CliError::Usage(format!("Error: {message}"))
}
