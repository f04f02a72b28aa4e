//! The servers the benchmark drives: Ward, OpenBao (the peer every figure is compared with) and
//! the trivial axum handler (the ceiling), each started as its own process.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::ValueEnum;
use serde::Serialize;

use crate::process::{LaunchSpec, Listen};

/// One kind of server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TargetKind {
    /// The trivial axum handler (this benchmark's own `trivial` subcommand).
    Trivial,
    /// Ward's dev server (`ward server --dev`).
    Ward,
    /// OpenBao's dev server (`bao server -dev`), in memory.
    #[value(name = "openbao")]
    OpenBao,
}

impl TargetKind {
    /// Every kind, in the order they are reported.
    pub(crate) const ALL: [Self; 3] = [Self::Trivial, Self::Ward, Self::OpenBao];

    /// The name used in tables and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Trivial => "trivial",
            Self::Ward => "ward",
            Self::OpenBao => "openbao",
        }
    }

    /// Whether the server speaks the Vault HTTP API (and so runs the KV scenarios).
    pub(crate) fn is_vault_shaped(self) -> bool {
        matches!(self, Self::Ward | Self::OpenBao)
    }

    /// How to start this server from `program`, with root token `token`, in `workdir`.
    pub(crate) fn launch_spec(self, program: PathBuf, token: &str, workdir: PathBuf) -> LaunchSpec {
        let token = token.to_owned();
        match self {
            Self::Trivial => LaunchSpec {
                label: self.name(),
                program,
                args: Box::new(|listen: SocketAddr| {
                    vec!["trivial".into(), "--listen".into(), listen.to_string()]
                }),
                listen: Listen::ReportsBoundAddress,
                health_path: "/",
                workdir,
            },
            Self::Ward => LaunchSpec {
                label: self.name(),
                program,
                args: Box::new(move |listen: SocketAddr| {
                    vec![
                        "server".into(),
                        "--dev".into(),
                        "--dev-listen-address".into(),
                        listen.to_string(),
                        "--dev-root-token-id".into(),
                        token.clone(),
                    ]
                }),
                listen: Listen::ReportsBoundAddress,
                health_path: "/v1/sys/health",
                workdir,
            },
            Self::OpenBao => LaunchSpec {
                label: self.name(),
                program,
                args: Box::new(move |listen: SocketAddr| {
                    vec![
                        "server".into(),
                        "-dev".into(),
                        format!("-dev-root-token-id={token}"),
                        format!("-dev-listen-address={listen}"),
                    ]
                }),
                listen: Listen::FixedPort,
                health_path: "/v1/sys/health",
                workdir,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_shaped_servers_get_the_token_and_address() {
        let addr: SocketAddr = "127.0.0.1:8300".parse().unwrap();
        let ward = TargetKind::Ward.launch_spec("ward".into(), "tok", "/tmp".into());
        let args = (ward.args)(addr);
        assert_eq!(args[..2], ["server", "--dev"]);
        assert!(
            args.windows(2)
                .any(|pair| pair == ["--dev-root-token-id", "tok"])
        );
        assert!(
            args.windows(2)
                .any(|pair| pair == ["--dev-listen-address", "127.0.0.1:8300"])
        );

        let bao = TargetKind::OpenBao.launch_spec("bao".into(), "tok", "/tmp".into());
        let args = (bao.args)(addr);
        assert!(args.contains(&"-dev-root-token-id=tok".to_owned()));
        assert!(args.contains(&"-dev-listen-address=127.0.0.1:8300".to_owned()));
        assert_eq!(bao.listen, Listen::FixedPort);
        assert!(!TargetKind::Trivial.is_vault_shaped());
    }
}
