//! The servers the benchmark drives: Ward, OpenBao (the peer every figure is compared with) and
//! the trivial axum handler (the ceiling), each started as its own process. The dev servers
//! are ready when they start; the servers set up as in production (Ward over PostgreSQL, one
//! or two of them, and OpenBao over raft) are started from a config file and then initialised,
//! unsealed and given kv-v2 at `secret/` through the API (`initialise`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::ValueEnum;
use serde::Serialize;
use serde_json::{Value, json};

use crate::http::{Dial, RequestTemplate, send_once};
use crate::process::{ConfigFile, ConfigText, LaunchSpec, Listen, free_loopback_port};
use crate::scenario::call;
use crate::trivial::TRIVIAL_CA_FILE;

/// One kind of server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TargetKind {
    /// The trivial axum handler (this benchmark's own `trivial` subcommand).
    Trivial,
    /// Ward's dev server (`ward server --dev`).
    Ward,
    /// Ward over PostgreSQL (a throwaway cluster with fsync on), one server.
    #[value(name = "ward-pg")]
    WardPg,
    /// Two Ward servers over one PostgreSQL (`ha_enabled`), the load spread over both.
    #[value(name = "ward-pg-ha2")]
    WardPgHa2,
    /// OpenBao's dev server (`bao server -dev`), in memory.
    #[value(name = "openbao")]
    OpenBao,
    /// OpenBao over its raft storage in a scratch directory (`bao server -config`).
    #[value(name = "openbao-raft")]
    OpenBaoRaft,
}

/// The KV v2 mount every Vault-shaped server has (the dev servers make it themselves).
const KV_MOUNT: &str = "/v1/sys/mounts/secret";

impl TargetKind {
    /// Every kind, in the order they are reported.
    pub(crate) const ALL: [Self; 6] = [
        Self::Trivial,
        Self::Ward,
        Self::WardPg,
        Self::WardPgHa2,
        Self::OpenBao,
        Self::OpenBaoRaft,
    ];

    /// The name used in tables and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Trivial => "trivial",
            Self::Ward => "ward",
            Self::WardPg => "ward-pg",
            Self::WardPgHa2 => "ward-pg-ha2",
            Self::OpenBao => "openbao",
            Self::OpenBaoRaft => "openbao-raft",
        }
    }

    /// Whether the server speaks the Vault HTTP API (and so runs the KV scenarios).
    pub(crate) fn is_vault_shaped(self) -> bool {
        self != Self::Trivial
    }

    /// Whether it is Ward (else OpenBao or the trivial handler), which decides the binary.
    pub(crate) fn is_ward(self) -> bool {
        matches!(self, Self::Ward | Self::WardPg | Self::WardPgHa2)
    }

    /// Whether it needs a PostgreSQL cluster.
    pub(crate) fn needs_postgres(self) -> bool {
        matches!(self, Self::WardPg | Self::WardPgHa2)
    }

    /// Whether it is started from a config file and initialised through the API, as in
    /// production (else it is a dev server, ready at start).
    pub(crate) fn is_configured(self) -> bool {
        matches!(self, Self::WardPg | Self::WardPgHa2 | Self::OpenBaoRaft)
    }

    /// How many server processes it is (the load is spread over them).
    pub(crate) fn servers(self) -> usize {
        if self == Self::WardPgHa2 { 2 } else { 1 }
    }

    /// How to start this server from `program`, with root token `token` (dev servers), in
    /// `workdir`, over the PostgreSQL at `postgres_url` (`needs_postgres`); with `tls`, over
    /// TLS with a CA and certificate it makes itself and writes into `workdir` (dev servers).
    pub(crate) fn launch_spec(
        self,
        program: PathBuf,
        token: &str,
        workdir: PathBuf,
        tls: bool,
        postgres_url: Option<&str>,
    ) -> LaunchSpec {
        let mut spec = self.plain_launch_spec(program, token, workdir, postgres_url);
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
            // Served over plain HTTP, as their config says (`--tls` notes it).
            Self::WardPg | Self::WardPgHa2 | Self::OpenBaoRaft => return spec,
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

    fn plain_launch_spec(
        self,
        program: PathBuf,
        token: &str,
        workdir: PathBuf,
        postgres_url: Option<&str>,
    ) -> LaunchSpec {
        let token = token.to_owned();
        match self {
            Self::WardPg | Self::WardPgHa2 | Self::OpenBaoRaft => {
                self.configured_launch_spec(program, workdir, postgres_url.unwrap_or_default())
            }
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
                config: None,
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
                config: None,
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
                config: None,
            },
        }
    }

    /// A server started from a config file that it writes into `workdir` once its address is
    /// chosen, ready (for the launch) when it answers `sys/seal-status`: uninitialised, sealed.
    fn configured_launch_spec(
        self,
        program: PathBuf,
        workdir: PathBuf,
        postgres_url: &str,
    ) -> LaunchSpec {
        let path = workdir.join(format!("{}.conf", self.name()));
        let text: ConfigText = match self {
            Self::OpenBaoRaft => {
                let raft = workdir.join("openbao-raft");
                Box::new(move |listen| {
                    std::fs::create_dir_all(&raft)?;
                    Ok(openbao_raft_config(listen, free_loopback_port()?, &raft))
                })
            }
            _ => {
                let url = postgres_url.to_owned();
                let ha = self == Self::WardPgHa2;
                let table = self.name().replace('-', "_");
                Box::new(move |listen| Ok(ward_postgres_config(listen, &url, &table, ha)))
            }
        };
        let (flag, listen) = if self.is_ward() {
            ("--config", Listen::ReportsBoundAddress)
        } else {
            ("-config", Listen::FixedPort)
        };
        let arg = path.display().to_string();
        LaunchSpec {
            label: self.name(),
            program,
            args: Box::new(move |_listen| vec!["server".into(), flag.into(), arg.clone()]),
            listen,
            health_path: "/v1/sys/seal-status",
            workdir,
            ca_file: None,
            config: Some(ConfigFile { path, text }),
        }
    }
}

/// Ward's config over PostgreSQL, as in production but for the listen address and mlock.
fn ward_postgres_config(listen: SocketAddr, url: &str, table: &str, ha: bool) -> String {
    format!(
        "address = \"{listen}\"\ndisable_mlock = true\n[storage]\nbackend = \"postgres\"\n\
         connection_url = \"{url}\"\ntable = \"{table}\"\nha_enabled = {ha}\n"
    )
}

/// OpenBao's config over raft (one node) in `dir`, plain HTTP on `listen`.
fn openbao_raft_config(listen: SocketAddr, cluster: SocketAddr, dir: &Path) -> String {
    format!(
        "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"bench\"\n}}\n\
         listener \"tcp\" {{\n  address = \"{listen}\"\n  cluster_address = \"{cluster}\"\n  \
         tls_disable = true\n}}\napi_addr = \"http://{listen}\"\ncluster_addr = \"https://{cluster}\"\n\
         disable_mlock = true\n",
        dir.display()
    )
}

/// Initialises a configured server (one of `dials`, all on one storage) with a single key
/// share, unseals every one, waits until each serves requests and the first is active or
/// a standby that writes, mounts kv-v2 at `secret/`, and returns the root token.
pub(crate) async fn initialise(
    dials: &[Dial],
    first_writes_as_standby: bool,
) -> anyhow::Result<String> {
    let first = dials.first().context("no server to initialise")?;
    let anonymous = RequestTemplate::new(first.addr, None)?;
    let shares = Bytes::from(json!({"secret_shares": 1, "secret_threshold": 1}).to_string());
    let init: Value =
        serde_json::from_slice(&call(first, anonymous.put_json("/v1/sys/init", shares)?).await?)
            .context("the sys/init answer is not JSON")?;
    let (Some(key), Some(root)) = (init["keys_base64"][0].as_str(), init["root_token"].as_str())
    else {
        bail!("the sys/init answer has no key or root token");
    };
    let unseal = Bytes::from(json!({ "key": key }).to_string());
    for dial in dials {
        let anonymous = RequestTemplate::new(dial.addr, None)?;
        call(dial, anonymous.put_json("/v1/sys/unseal", unseal.clone())?)
            .await
            .context("unsealing")?;
        wait_for_health(dial, "/v1/sys/health?standbyok=true").await?;
    }
    // OpenBao's raft elects its one node leader a moment after the unseal; until then the
    // node is a standby that cannot write. Ward's standbys write, as the active server does.
    if !first_writes_as_standby {
        wait_for_health(first, "/v1/sys/health").await?;
    }
    let template = RequestTemplate::new(first.addr, Some(root))?;
    let kv = Bytes::from(json!({"type": "kv", "options": {"version": "2"}}).to_string());
    call(first, template.post_json(KV_MOUNT, kv)?)
        .await
        .context("mounting kv-v2 at secret/")?;
    Ok(root.to_owned())
}

/// Waits until the server answers 200 to `health` (a `sys/health` query).
async fn wait_for_health(dial: &Dial, health: &str) -> anyhow::Result<()> {
    let anonymous = RequestTemplate::new(dial.addr, None)?;
    let started = Instant::now();
    loop {
        let probe = anonymous.get(health)?;
        let answer = send_once(dial, probe, SERVING_TIME_LIMIT).await;
        if matches!(&answer, Ok((status, _)) if status.is_success()) {
            return Ok(());
        }
        if started.elapsed() > SERVING_TIME_LIMIT {
            bail!(
                "{health} on {} did not answer 200 within {SERVING_TIME_LIMIT:?} of the \
                 unseal: {answer:?}",
                dial.addr
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long an unsealed server may take to serve requests.
const SERVING_TIME_LIMIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_shaped_servers_get_the_token_and_address() {
        let addr: SocketAddr = "127.0.0.1:8300".parse().unwrap();
        let ward = TargetKind::Ward.launch_spec("ward".into(), "tok", "/tmp".into(), false, None);
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

        let bao = TargetKind::OpenBao.launch_spec("bao".into(), "tok", "/tmp".into(), false, None);
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
            let spec = kind.launch_spec("x".into(), "tok", "/tmp/w".into(), true, None);
            assert!((spec.args)(addr).contains(&flag.to_owned()));
            assert_eq!(spec.ca_file, Some(PathBuf::from("/tmp/w").join(ca)));
        }
    }

    #[test]
    fn configured_servers_start_from_the_config_file_they_write() {
        let addr: SocketAddr = "127.0.0.1:8300".parse().unwrap();
        let workdir = tempfile::tempdir().unwrap();
        let dir = workdir.path().to_path_buf();
        let url = "postgres://postgres@127.0.0.1:5999/postgres";
        for (kind, ha) in [(TargetKind::WardPg, false), (TargetKind::WardPgHa2, true)] {
            let spec = kind.launch_spec("ward".into(), "tok", dir.clone(), false, Some(url));
            let file = dir.join(format!("{}.conf", kind.name()));
            assert_eq!(
                (spec.args)(addr),
                ["server", "--config", &file.display().to_string()]
            );
            assert_eq!(spec.health_path, "/v1/sys/seal-status");
            let config = spec.config.unwrap();
            assert_eq!(config.path, file);
            let text = (config.text)(addr).unwrap();
            assert!(text.contains("backend = \"postgres\""), "{text}");
            assert!(text.contains(url), "{text}");
            assert!(text.contains(&format!("ha_enabled = {ha}")), "{text}");
        }
        assert_eq!(TargetKind::WardPgHa2.servers(), 2);

        let bao = TargetKind::OpenBaoRaft.launch_spec("bao".into(), "tok", dir.clone(), true, None);
        assert_eq!(bao.listen, Listen::FixedPort);
        assert_eq!(bao.ca_file, None, "configured servers serve plain HTTP");
        let text = (bao.config.unwrap().text)(addr).unwrap();
        assert!(text.contains("storage \"raft\""), "{text}");
        assert!(text.contains("address = \"127.0.0.1:8300\""), "{text}");
        assert!(
            text.contains("api_addr = \"http://127.0.0.1:8300\""),
            "{text}"
        );
        assert!(dir.join("openbao-raft").is_dir());
    }
}
