//! `ward login`: authenticates with a token or an auth method and keeps the token for later
//! commands (see [`crate::token_file`]), as `vault login` does.

use std::io::IsTerminal;

use clap::Args;
use serde_json::{Map, Value};
use ward_api::{Auth, Response};

use crate::cmd::token::auth_rows;
use crate::cmd::{Outcome, data, read_stdin};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, json, key_value_table};
use crate::{print_stderr, token_file};

/// `ward login`
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The auth method: token, userpass, approle or cert.
    #[arg(long, default_value = "token")]
    method: String,
    /// Where the auth method is mounted (default: the method's name).
    #[arg(long)]
    path: Option<String>,
    /// Do not store the token in ~/.ward-token.
    #[arg(long)]
    no_store: bool,
    /// Print only the token.
    #[arg(long)]
    token_only: bool,
    /// Print nothing on success.
    #[arg(long)]
    no_print: bool,
    /// The token (`-method=token`; `-` reads it from stdin, none prompts for it), or the
    /// method's `key=value` settings: `username=` and `password=` (prompted for when
    /// absent) and `totp=` for userpass, `role_id=` and `secret_id=` for approle, `name=`
    /// (the role) for cert.
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Runs `ward login`.
pub(crate) async fn run(context: Context, args: LoginArgs) -> Result<Outcome, CliError> {
    let method = args.method.trim().to_owned();
    let mount = args
        .path
        .as_deref()
        .unwrap_or(&method)
        .trim_matches('/')
        .to_owned();
    let response = match method.as_str() {
        "token" => token_login(context.clone(), &args.args).await?,
        "userpass" => {
            let mut data = data::parse_args_data(&args.args)?;
            let username = take(&mut data, "username")
                .or_else(|| std::env::var("USER").ok())
                .ok_or_else(|| CliError::Usage("Error: username= is required".into()))?;
            if !data.contains_key("password") {
                let password = read_secret("Password (will be hidden): ", "the password")?;
                data.insert("password".into(), Value::String(password));
            }
            let path = format!("auth/{mount}/login/{username}");
            match method_login(&context, &path, &data).await {
                Err(error) if needs_passcode(&error, &data) => {
                    let passcode = read_secret("TOTP passcode: ", "the TOTP passcode")?;
                    data.insert("totp".into(), Value::String(passcode));
                    method_login(&context, &path, &data).await?
                }
                other => other?,
            }
        }
        "approle" => {
            let data = data::parse_args_data(&args.args)?;
            for required in ["role_id", "secret_id"] {
                if !data.contains_key(required) {
                    return Err(CliError::Usage(format!("Error: {required}= is required")));
                }
            }
            method_login(&context, &format!("auth/{mount}/login"), &data).await?
        }
        "cert" => {
            let data = data::parse_args_data(&args.args)?;
            method_login(&context, &format!("auth/{mount}/login"), &data).await?
        }
        other => {
            return Err(CliError::Failed(format!(
                "Unknown auth method: {other}. Use \"ward auth list\" to see the complete \
                 list of auth methods. The methods `ward login` knows are token, userpass, \
                 approle and cert; others work through `ward write auth/<path>/login`."
            )));
        }
    };
    let auth = response
        .auth
        .as_ref()
        .ok_or_else(|| CliError::Failed("Error authenticating: no token was returned".into()))?;
    let mut outcome = Outcome::ok(String::new()).with_warnings(response.warnings.clone());
    if args.no_store {
        print_stderr(
            "The token was not stored in ~/.ward-token. Set the WARD_TOKEN environment\n\
             variable or pass the token with -token to each command.\n",
        );
    } else {
        token_file::store(&auth.client_token)?;
        if std::env::var_os("WARD_TOKEN").is_some() || std::env::var_os("VAULT_TOKEN").is_some() {
            print_stderr(
                "WARNING! The WARD_TOKEN or VAULT_TOKEN environment variable is set: it\n\
                 takes precedence over the stored token.\n",
            );
        }
    }
    outcome.stdout = if args.no_print {
        String::new()
    } else if args.token_only {
        format!("{}\n", auth.client_token)
    } else if context.format == Format::Json {
        json(&response)?
    } else {
        let stored = if args.no_store {
            "Success! You are now authenticated.\n\n".to_owned()
        } else {
            "Success! You are now authenticated. The token information displayed below is\n\
             already stored in ~/.ward-token. You do NOT need to run \"ward login\" again.\n\
             Future Ward requests will automatically use this token.\n\n"
                .to_owned()
        };
        stored + &key_value_table(&auth_rows(auth))
    };
    Ok(outcome)
}

/// `-method=token`: the token given (or read), checked by looking it up with itself.
async fn token_login(mut context: Context, args: &[String]) -> Result<Response, CliError> {
    let token = match args {
        [] => read_secret("Token (will be hidden): ", "the token")?,
        [dash] if dash == "-" => read_stdin("the token")?,
        [pair] if pair.starts_with("token=") => pair["token=".len()..].to_owned(),
        [token] if !token.contains('=') => token.clone(),
        _ => {
            return Err(CliError::Usage(
                "Error: -method=token takes one argument: the token, or - to read it from stdin"
                    .into(),
            ));
        }
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(CliError::Usage("Error: the token is empty".into()));
    }
    context
        .client
        .set_token(Some(&token))
        .map_err(|e| CliError::Usage(format!("Error: the token is not valid: {e}")))?;
    let lookup = context
        .client
        .lookup_self()
        .await
        .map_err(CliError::request("authenticating: error looking up token"))?;
    Ok(Response::with_auth(Auth {
        client_token: token,
        accessor: lookup.accessor,
        token_policies: lookup.policies.clone(),
        policies: lookup.policies,
        metadata: lookup.meta,
        lease_duration: lookup.ttl,
        renewable: lookup.renewable,
        entity_id: lookup.entity_id,
        token_type: lookup.token_type,
        orphan: lookup.orphan,
        num_uses: lookup.num_uses,
    }))
}

/// A write to an auth method's login path.
async fn method_login(
    context: &Context,
    path: &str,
    data: &Map<String, Value>,
) -> Result<Response, CliError> {
    context
        .client
        .write(path, data)
        .await
        .map_err(CliError::request("authenticating"))?
        .ok_or_else(|| CliError::Failed("Error authenticating: no token was returned".into()))
}

/// Whether a userpass login failed only for want of a TOTP passcode that a person at a
/// terminal can still type.
fn needs_passcode(error: &CliError, data: &Map<String, Value>) -> bool {
    let CliError::Request {
        source: ward_client::ClientError::Api { errors, .. },
        ..
    } = error
    else {
        return false;
    };
    !data.contains_key("totp")
        && std::io::stdin().is_terminal()
        && errors.iter().any(|e| e == "TOTP passcode required")
}

fn take(data: &mut Map<String, Value>, key: &str) -> Option<String> {
    match data.remove(key)? {
        Value::String(text) => Some(text),
        other => Some(other.to_string()),
    }
}

/// A secret typed at the terminal without echo, or a line of stdin when it is not a
/// terminal (a pipe or a file).
fn read_secret(prompt: &str, what: &str) -> Result<String, CliError> {
    let io = |source| CliError::Io {
        action: format!("reading {what}"),
        source,
    };
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).map_err(io)?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(io)?;
        line
    };
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}
