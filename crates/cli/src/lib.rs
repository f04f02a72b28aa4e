//! Ward's command-line interface: operator, client and scanner commands.
//!
//! The commands and flags mirror the Vault CLI (`ward kv get -format=json secret/app` works
//! as `vault kv get ...` does), including Vault's single-dash long flags. The binary calls
//! [`run`]; the server itself is started through the callback it passes, so this crate does
//! not depend on the server.

mod args;
mod cmd;
mod context;
mod error;
mod output;
mod token_file;

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd::Outcome;
use crate::context::GlobalArgs;
use crate::error::CliError;

/// What `ward server` was asked to do, handed to the server by [`run`]'s callback.
#[derive(Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ServerArgs {
    /// Path to the server's TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run an in-memory, initialised and unsealed development server (never for production).
    #[arg(long)]
    pub dev: bool,
    /// The root token of the dev server (random when absent).
    #[arg(long, env = "WARD_DEV_ROOT_TOKEN_ID", hide_env_values = true)]
    pub dev_root_token_id: Option<String>,
    /// The dev server's listen address (default 127.0.0.1:8200; port 0 picks a free port).
    #[arg(long)]
    pub dev_listen_address: Option<String>,
    /// Run the development server over TLS with a CA and certificate made at start (implies
    /// `-dev`); prints the CA file to trust as `WARD_CACERT`.
    #[arg(long)]
    pub dev_tls: bool,
    /// Where `-dev-tls` writes ward-ca.pem, ward-cert.pem and ward-key.pem (default: a
    /// temporary directory removed at exit).
    #[arg(long, value_name = "DIR")]
    pub dev_tls_cert_dir: Option<PathBuf>,
}

impl fmt::Debug for ServerArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerArgs")
            .field("config", &self.config)
            .field("dev", &self.dev)
            .field(
                "dev_root_token_id",
                &self.dev_root_token_id.as_ref().map(|_| "<redacted>"),
            )
            .field("dev_listen_address", &self.dev_listen_address)
            .field("dev_tls", &self.dev_tls)
            .field("dev_tls_cert_dir", &self.dev_tls_cert_dir)
            .finish()
    }
}

/// The error type `serve` may return.
pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// Ward: a secrets manager and key-management service.
#[derive(Debug, Parser)]
#[command(name = "ward", bin_name = "ward", version, about)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Start a Ward server.
    Server(ServerArgs),
    /// Print the seal status (exit code 0 unsealed, 2 sealed, 1 error).
    Status,
    /// Operator commands: init, unseal, seal, rotate, key-status.
    #[command(subcommand)]
    Operator(cmd::operator::OperatorCommand),
    /// Read data at any API path (GET), e.g. `ward read transit/keys/app`.
    Read(cmd::generic::ReadArgs),
    /// Write data to any API path, e.g. `ward write transit/encrypt/app plaintext=...`.
    Write(cmd::generic::WriteArgs),
    /// Delete data at any API path.
    Delete(cmd::generic::DeleteArgs),
    /// List the keys under any API path (LIST).
    List(cmd::generic::ListArgs),
    /// Enable, list and disable secrets engines.
    #[command(subcommand)]
    Secrets(cmd::secrets::SecretsCommand),
    /// Read and write key/value secrets.
    #[command(subcommand)]
    Kv(cmd::kv::KvCommand),
    /// Authenticate with a token or an auth method and store the token for later commands.
    Login(cmd::login::LoginArgs),
    /// Enable, list, tune and disable auth methods.
    #[command(subcommand)]
    Auth(cmd::auth::AuthCommand),
    /// Create, look up, renew and revoke tokens.
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// Write, read, list and delete ACL policies.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCommand),
    /// Enable, list and disable audit devices; verify audit files' hash chain offline.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Find secrets in files, standard input or git history (`ward scan --help`).
    Scan(ScanPlaceholder),
    /// Reports for auditors: `ward report compliance [-format markdown|json|html] [-out FILE]`.
    #[command(subcommand)]
    Report(cmd::report::ReportCommand),
    /// Run a command with secrets in its environment (restarted when they change with
    /// --watch)
    Run(cmd::run::RunArgs),
    /// Run the agent: auto-auth, templates, exec and an API proxy, configured by a file.
    Agent(AgentArgs),
}

/// Arguments of `ward agent`.
#[derive(Debug, clap::Args)]
struct AgentArgs {
    /// The agent's TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// `ward scan` as the top-level help lists it. The real parsing is [`ScanCli`]'s: the scanner's
/// own `--format` and `--config` would clash with the client commands' global flags.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
struct ScanPlaceholder {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<std::ffi::OsString>,
}

/// The parser for `ward scan ...`.
#[derive(Debug, Parser)]
#[command(
    name = "ward scan",
    about = "Find secrets in files, standard input or git history"
)]
struct ScanCli {
    #[command(flatten)]
    args: ward_scan::cli::ScanArgs,
}

/// Parses the process's arguments (Vault's single-dash long flags accepted), runs the
/// command and returns its exit code. `serve` is called for `ward server ...`.
pub fn run(serve: impl FnOnce(ServerArgs) -> Result<(), ServeError>) -> ExitCode {
    let args = args::normalise_flags(std::env::args_os());
    if args.get(1).is_some_and(|a| a == "scan") {
        let scan_args = std::iter::once("ward scan".into()).chain(args.into_iter().skip(2));
        return run_scan(scan_args);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and --version are not errors; everything else is a usage error (1, a
            // local error, as Vault's).
            let code = if error.use_stderr() { 1 } else { 0 };
            let _ignored = error.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Server(server_args) => match serve(server_args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                print_stderr(&format!("Error running the server: {error}"));
                ExitCode::FAILURE
            }
        },
        Command::Agent(agent_args) => run_agent(&agent_args.config),
        command => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    print_stderr(&format!("Error starting the async runtime: {error}"));
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(dispatch(command, &cli.global));
            finish(result)
        }
    }
}

/// Runs `ward agent` on a runtime of its own: its template functions block on the client
/// from worker threads while the listener and renewal go on.
fn run_agent(config: &std::path::Path) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            print_stderr(&format!("Error starting the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ward_agent::run(config)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            print_stderr(&format!("ward agent: {error}"));
            ExitCode::from(error.exit_code())
        }
    }
}

/// Parses and runs `ward scan` (its exit codes: 0 clean, 1 findings, 2 error).
fn run_scan(args: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    match ScanCli::try_parse_from(args) {
        Ok(scan) => {
            let code = ward_scan::cli::run(&scan.args);
            ExitCode::from(u8::try_from(code).unwrap_or(2))
        }
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            let _ignored = error.print();
            ExitCode::from(code)
        }
    }
}

/// Runs a client command.
async fn dispatch(command: Command, global: &GlobalArgs) -> Result<Outcome, CliError> {
    // Verifying audit files needs no server.
    if let Command::Audit(cmd::audit::AuditCommand::Verify {
        files,
        public_key,
        head,
    }) = &command
    {
        return cmd::audit::verify(files, public_key.as_deref(), head.as_deref());
    }
    // Nor inspecting or verifying a snapshot file.
    if let Command::Operator(cmd::operator::OperatorCommand::Snapshot(snapshot)) = &command
        && snapshot.is_offline()
    {
        return cmd::snapshot::run_offline(snapshot, global.format()?);
    }
    // The report has output formats of its own (markdown, html).
    if let Command::Report(c) = command {
        return cmd::report::run(global, c).await;
    }
    let context = global.context()?;
    match command {
        Command::Status => cmd::operator::status(&context).await,
        Command::Operator(c) => cmd::operator::run(&context, c).await,
        Command::Read(args) => cmd::generic::read(&context, args).await,
        Command::Write(args) => cmd::generic::write(&context, args).await,
        Command::Delete(args) => cmd::generic::delete(&context, args).await,
        Command::List(args) => cmd::generic::list(&context, args).await,
        Command::Secrets(c) => cmd::secrets::run(&context, c).await,
        Command::Kv(c) => cmd::kv::run(&context, c).await,
        Command::Login(args) => cmd::login::run(context, args).await,
        Command::Auth(c) => cmd::auth::run(&context, c).await,
        Command::Token(c) => cmd::token::run(&context, c).await,
        Command::Policy(c) => cmd::policy::run(&context, c).await,
        Command::Audit(c) => cmd::audit::run(&context, c).await,
        Command::Run(args) => cmd::run::run(&context, args).await,
        Command::Server(_) | Command::Scan(_) | Command::Report(_) | Command::Agent(_) => {
            Err(CliError::Usage("not a client command".into()))
        }
    }
}

/// Prints a command's output (or error) and turns it into an exit code.
fn finish(result: Result<Outcome, CliError>) -> ExitCode {
    match result {
        Ok(outcome) => {
            if !outcome.warnings.is_empty() {
                let list: Vec<String> = outcome
                    .warnings
                    .iter()
                    .map(|w| format!("  * {w}"))
                    .collect();
                print_stderr(&format!(
                    "WARNING! The following warnings were returned from Ward:\n\n{}\n",
                    list.join("\n\n")
                ));
            }
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`ward kv list | head`) is not an error worth reporting.
            let _ignored = stdout
                .write_all(outcome.stdout.as_bytes())
                .and_then(|()| stdout.flush());
            ExitCode::from(outcome.code)
        }
        Err(error) => {
            print_stderr(&error.to_string());
            ExitCode::from(error.exit_code())
        }
    }
}

/// Writes one message line to stderr, ignoring a closed stderr.
pub(crate) fn print_stderr(message: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ignored = writeln!(stderr, "{message}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_trees_are_consistent() {
        // clap's own checks: no duplicate flags or ids after global flags propagate.
        Cli::command().debug_assert();
        ScanCli::command().debug_assert();
    }

    #[test]
    fn vault_style_arguments_parse() {
        let args = args::normalise_flags(
            [
                "ward",
                "kv",
                "get",
                "-format=json",
                "-version=3",
                "-mount",
                "secret",
                "app",
            ]
            .map(std::ffi::OsString::from),
        );
        let cli = Cli::try_parse_from(args).unwrap();
        assert_eq!(cli.global.format().unwrap(), output::Format::Json);
        let Command::Kv(kv) = cli.command else {
            panic!("not kv")
        };
        assert!(format!("{kv:?}").contains("version: Some(3)"));
    }

    #[test]
    fn server_flags_reach_the_callback_args() {
        let args = args::normalise_flags(
            [
                "ward",
                "server",
                "-dev",
                "-dev-listen-address=127.0.0.1:0",
                "-dev-root-token-id",
                "root",
                "-dev-tls",
                "-dev-tls-cert-dir=certs",
            ]
            .map(std::ffi::OsString::from),
        );
        let Command::Server(server) = Cli::try_parse_from(args).unwrap().command else {
            panic!("not server")
        };
        assert!(server.dev_tls);
        assert_eq!(server.dev_tls_cert_dir, Some(PathBuf::from("certs")));
        assert!(server.dev);
        assert_eq!(server.dev_listen_address.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(server.dev_root_token_id.as_deref(), Some("root"));
        assert!(!format!("{server:?}").contains("\"root\""));
    }
}
