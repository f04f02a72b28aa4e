//! `ward operator rekey` and `ward operator generate-root`: what a quorum of unseal-key
//! holders does on a running server, printed as `bao operator rekey|generate-root` print it.

use clap::Args;
use ward_api::{
    GenerateRootRequest, GenerateRootStatus, QuorumShare, RekeyRequest, RekeyStatus, RekeyUpdate,
};

use crate::cmd::operator::{aligned, read_key};
use crate::cmd::{Outcome, read_stdin};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, json, key_value_table};

/// `ward operator rekey` flags.
#[derive(Debug, Args)]
pub(crate) struct RekeyArgs {
    /// A current unseal key share (prompted without echo when absent; `-` reads stdin).
    key: Option<String>,
    /// Start a rekey to -key-shares / -key-threshold.
    #[arg(long)]
    init: bool,
    /// Number of new key shares.
    #[arg(long, default_value_t = 5)]
    key_shares: u32,
    /// Number of new shares needed to unseal.
    #[arg(long, default_value_t = 3)]
    key_threshold: u32,
    /// Cancel the rekey under way, discarding the shares given.
    #[arg(long)]
    cancel: bool,
    /// Print the rekey under way.
    #[arg(long)]
    status: bool,
    /// The nonce `-init` printed; each share is given with it.
    #[arg(long)]
    nonce: Option<String>,
}

/// `ward operator generate-root` flags.
#[derive(Debug, Args)]
pub(crate) struct GenerateRootArgs {
    /// An unseal key share (prompted without echo when absent; `-` reads stdin).
    key: Option<String>,
    /// Start a root token generation; the server makes the OTP unless -otp gives one.
    #[arg(long)]
    init: bool,
    /// Cancel the generation under way, discarding the shares given.
    #[arg(long)]
    cancel: bool,
    /// Print the generation under way.
    #[arg(long)]
    status: bool,
    /// The nonce `-init` printed; each share is given with it.
    #[arg(long)]
    nonce: Option<String>,
    /// Decode this encoded token (`-` reads stdin) with -otp and print the root token.
    #[arg(long)]
    decode: Option<String>,
    /// The OTP: to decode with, or (with -init) to use instead of one the server makes.
    #[arg(long)]
    otp: Option<String>,
}

/// Runs `ward operator rekey`.
pub(crate) async fn rekey(context: &Context, args: RekeyArgs) -> Result<Outcome, CliError> {
    let client = &context.client;
    if args.cancel {
        client
            .rekey_cancel()
            .await
            .map_err(CliError::api("canceling rekey"))?;
        return Ok(Outcome::line(
            "Success! Canceled rekeying (if it was started)",
        ));
    }
    if args.init {
        let request = RekeyRequest {
            secret_shares: args.key_shares,
            secret_threshold: args.key_threshold,
        };
        let status = client
            .rekey_start(&request)
            .await
            .map_err(CliError::api("initializing rekey"))?;
        return rekey_status_outcome(context, &status);
    }
    let status = client
        .rekey_status()
        .await
        .map_err(CliError::api("reading rekey status"))?;
    if args.status {
        return rekey_status_outcome(context, &status);
    }
    if !status.started {
        return Err(CliError::Failed(
            "No rekey is in progress. Start a rekey process by running \"ward operator rekey \
             -init\"."
                .into(),
        ));
    }
    let share = share_with_nonce(args.key, args.nonce)?;
    let update = client
        .rekey_update(&share)
        .await
        .map_err(CliError::api("posting unseal key"))?;
    match update {
        RekeyUpdate::Progress(status) => rekey_status_outcome(context, &status),
        RekeyUpdate::Complete(done) if context.format == Format::Json => {
            Ok(Outcome::ok(json(&done)?))
        }
        RekeyUpdate::Complete(done) => {
            let mut out = String::from("\n");
            for (i, key) in done.keys_base64.iter().enumerate() {
                out.push_str(&format!("Key {}: {key}\n", i + 1));
            }
            let (shares, threshold) = (status.n, status.t);
            out.push_str(&format!(
                "\nOperation nonce: {}\n\nWard unseal keys rekeyed to {shares} key shares and a \
                 key threshold of {threshold}. Please\nsecurely distribute the key shares printed \
                 above. When Ward is re-sealed,\nrestarted, or stopped, you must supply at least \
                 {threshold} of these keys to unseal it\nbefore it can start servicing \
                 requests.\n",
                done.nonce
            ));
            Ok(Outcome::ok(out))
        }
    }
}

fn rekey_status_outcome(context: &Context, status: &RekeyStatus) -> Result<Outcome, CliError> {
    if context.format == Format::Json {
        return Ok(Outcome::ok(json(status)?));
    }
    let mut rows = vec![
        ("Nonce", none_as_na(&status.nonce)),
        ("Started", status.started.to_string()),
    ];
    if status.started {
        rows.extend([
            (
                "Progress",
                format!("{}/{}", status.progress, status.required),
            ),
            ("New Shares", status.n.to_string()),
            ("New Threshold", status.t.to_string()),
            (
                "Verification Required",
                status.verification_required.to_string(),
            ),
        ]);
    }
    let rows: Vec<(String, String)> = rows.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Ok(Outcome::ok(key_value_table(&rows)))
}

/// Runs `ward operator generate-root`.
pub(crate) async fn generate_root(
    context: &Context,
    args: GenerateRootArgs,
) -> Result<Outcome, CliError> {
    let client = &context.client;
    if let Some(encoded) = args.decode {
        let encoded = match encoded.as_str() {
            "-" => read_stdin("the encoded token")?,
            _ => encoded,
        };
        let otp = args.otp.ok_or_else(|| {
            CliError::Usage("Error: -decode needs the -otp it was made with".into())
        })?;
        let token = ward_api::decode_root_token(&encoded, &otp).ok_or_else(|| {
            CliError::Failed(
                "Error decoding root token: the encoded token and the OTP do not match \
                 (wrong OTP, or a damaged value)"
                    .into(),
            )
        })?;
        return Ok(Outcome::line(token));
    }
    if args.cancel {
        client
            .generate_root_cancel()
            .await
            .map_err(CliError::api("canceling root token generation"))?;
        return Ok(Outcome::line(
            "Success! Root token generation canceled (if it was started)",
        ));
    }
    if args.init {
        let request = GenerateRootRequest {
            otp: args.otp.unwrap_or_default(),
            pgp_key: String::new(),
        };
        let status = client
            .generate_root_start(&request)
            .await
            .map_err(CliError::api("initializing root generation"))?;
        let mut outcome = root_status_outcome(context, &status, true)?;
        if !status.otp.is_empty() && context.format == Format::Table {
            outcome.stdout.insert_str(
                0,
                "A One-Time-Password has been generated for you and is shown in the OTP field.\n\
                 You will need this value to decode the resulting root token, so keep it safe.\n",
            );
        }
        return Ok(outcome);
    }
    let status = client
        .generate_root_status()
        .await
        .map_err(CliError::api("getting root generation status"))?;
    if args.status {
        return root_status_outcome(context, &status, true);
    }
    if !status.started {
        return Err(CliError::Failed(
            "No root generation is in progress. Start a root generation by running \"ward \
             operator generate-root -init\"."
                .into(),
        ));
    }
    let share = share_with_nonce(args.key, args.nonce)?;
    let status = client
        .generate_root_update(&share)
        .await
        .map_err(CliError::api("posting unseal key"))?;
    root_status_outcome(context, &status, false)
}

fn root_status_outcome(
    context: &Context,
    status: &GenerateRootStatus,
    with_otp_length: bool,
) -> Result<Outcome, CliError> {
    if context.format == Format::Json {
        return Ok(Outcome::ok(json(status)?));
    }
    let mut rows = vec![
        ("Nonce", none_as_na(&status.nonce)),
        ("Started", status.started.to_string()),
        (
            "Progress",
            format!("{}/{}", status.progress, status.required),
        ),
        ("Complete", status.complete.to_string()),
    ];
    if !status.otp.is_empty() {
        rows.push(("OTP", status.otp.clone()));
    }
    if with_otp_length {
        rows.push(("OTP Length", status.otp_length.to_string()));
    }
    if !status.encoded_token.is_empty() {
        rows.push(("Encoded Token", status.encoded_token.clone()));
    }
    Ok(Outcome::ok(aligned(&rows)))
}

/// The share to give (argument, `-` for stdin, or a hidden prompt) and the nonce it goes with.
fn share_with_nonce(key: Option<String>, nonce: Option<String>) -> Result<QuorumShare, CliError> {
    let nonce = nonce.filter(|n| !n.is_empty()).ok_or_else(|| {
        CliError::Failed("Missing nonce value: specify it via the -nonce flag".into())
    })?;
    Ok(QuorumShare {
        key: read_key(key)?,
        nonce,
    })
}

fn none_as_na(text: &str) -> String {
    if text.is_empty() {
        "n/a".into()
    } else {
        text.to_owned()
    }
}
