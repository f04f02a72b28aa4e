//! The servers the benchmark drives: Ward, OpenBao (the peer every figure is compared with) and
//! the trivial axum handler (the ceiling), each started as its own process.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::ValueEnum;
use serde::Serialize;

use crate::process::{LaunchSpec, Listen};
use crate::trivial::TRIVIAL_CA_FILE;

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

    /// How to start this server from `program`, with root token `token`, in `workdir`; with
    /// `tls`, over TLS with a CA and certificate it makes itself and writes into `workdir`.
    pub(crate) fn launch_spec(
        self,
        program: PathBuf,
        token: &str,
        workdir: PathBuf,
        tls: bool,
    ) -> LaunchSpec {
        let mut spec = self.plain_launch_spec(program, token, workdir);
        if !tls {
            return spec;
        }
        let dir = spec.workdir.display().to_string();
        let (extra, ca_file): (Vec<String>, _) = match self {
            Self::Trivial => (vec!["--tls-dir".into(), dir], TRIVIAL_CA_FILE),
            Self::Ward => (
                vec!["--dev-tls".into(), "--dev-tls-cert-dir".into(), dir],
                "ward-ca.pem",
            ),
            Self::OpenBao => (
                vec!["-dev-tls".into(), format!("-dev-tls-cert-dir={dir}")],
                "vault-ca.pem",
            ),
        };
        spec.ca_file = Some(spec.workdir.join(ca_file));
        let plain = spec.args;
        spec.args = Box::new(move |listen| {
            let mut args = plain(listen);
            args.extend(extra.iter().cloned());
            args
        });
        spec
    }

    fn plain_launch_spec(self, program: PathBuf, token: &str, workdir: PathBuf) -> LaunchSpec {
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
                ca_file: None,
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
                ca_file: None,
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
                ca_file: None,
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
        let ward = TargetKind::Ward.launch_spec("ward".into(), "tok", "/tmp".into(), false);
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

        let bao = TargetKind::OpenBao.launch_spec("bao".into(), "tok", "/tmp".into(), false);
        let args = (bao.args)(addr);
        assert!(args.contains(&"-dev-root-token-id=tok".to_owned()));
        assert!(args.contains(&"-dev-listen-address=127.0.0.1:8300".to_owned()));
        assert_eq!(bao.listen, Listen::FixedPort);
        assert!(!TargetKind::Trivial.is_vault_shaped());
    }

    #[test]
    fn over_tls_every_server_makes_its_ca_in_the_workdir() {
        let addr: SocketAddr = "127.0.0.1:8300".parse().unwrap();
        for (kind, flag, ca) in [
            (TargetKind::Trivial, "--tls-dir", TRIVIAL_CA_FILE),
            (TargetKind::Ward, "--dev-tls", "ward-ca.pem"),
            (TargetKind::OpenBao, "-dev-tls", "vault-ca.pem"),
        ] {
            let spec = kind.launch_spec("x".into(), "tok", "/tmp/w".into(), true);
            assert!((spec.args)(addr).contains(&flag.to_owned()));
            assert_eq!(spec.ca_file, Some(PathBuf::from("/tmp/w").join(ca)));
        }
    }
}
