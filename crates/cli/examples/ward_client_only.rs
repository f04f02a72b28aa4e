//! The CLI without a server: for trying the client commands against any Vault-compatible
//! server (`cargo run -p ward-cli --example ward_client_only -- kv get secret/app`).

use std::process::ExitCode;

fn main() -> ExitCode {
    ward_cli::run(|_| Err("this build has no server; use the `ward` binary".into()))
}
