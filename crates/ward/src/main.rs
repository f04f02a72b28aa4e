//! The `ward` binary: server, operator tool and client in one.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Interim argument handling for `ward server` until the CLI crate lands.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("server") {
        eprintln!("usage: ward server [--dev] [--config FILE]");
        return ExitCode::from(2);
    }
    let mut opts = ward_server::ServeOptions::default();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.trim_start_matches('-');
        let (name, inline) = a
            .split_once('=')
            .map_or((a, None), |(n, v)| (n, Some(v.to_owned())));
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match name {
            "dev" => opts.dev = true,
            "config" => opts.config = value().map(Into::into),
            "dev-root-token-id" => opts.dev_root_token_id = value(),
            "dev-listen-address" => opts.dev_listen_address = value(),
            other => {
                eprintln!("unknown flag: {other}");
                return ExitCode::from(2);
            }
        }
    }
    match ward_server::serve(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
