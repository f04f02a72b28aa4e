//! Ward's load benchmark: starts Ward, OpenBao and a trivial axum handler as separate
//! processes, drives each over loopback keep-alive connections at a fixed concurrency, and
//! prints requests per second, p50 and p99, the KV-read / trivial ratios, idle RSS and
//! start-to-unsealed times, side by side from the same run.

mod bench;
mod cli;
mod http;
mod load;
mod process;
mod report;
mod scenario;
mod targets;
mod trivial;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Returning from main on ctrl-c drops the running servers, which kills them.
    let outcome = tokio::select! {
        outcome = run(cli) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ward-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Trivial { listen, tls_dir }) => trivial::serve(listen, tls_dir).await,
        None => {
            let json = cli.run.json;
            let plan = cli.run.into_plan()?;
            let report = bench::run(plan).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_table());
            }
            Ok(())
        }
    }
}
