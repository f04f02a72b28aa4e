//! The load scenarios. Each one says which servers it runs on, prepares them (writes what it
//! reads, mounts what it needs) and hands the load generator a request factory. A new scenario
//! (transit encrypt of 1 KiB, batches, KV read with an audit device) is a new variant here and
//! nothing else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::http::{BenchRequest, RequestFactory, RequestTemplate, send_once};
use crate::targets::TargetKind;

/// The secret the KV read scenario reads.
const KV_READ_PATH: &str = "/v1/secret/data/bench/read";

/// The KV write scenario spreads each worker's writes over this many keys.
const KV_WRITE_KEYS_PER_WORKER: u64 = 64;

/// Setup calls that take longer than this fail the run.
const SETUP_TIME_LIMIT: Duration = Duration::from_secs(10);

/// One kind of request stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scenario {
    /// GET / on the trivial handler.
    TrivialGet,
    /// KV v2 read of a 100-byte secret.
    KvRead,
    /// KV v2 write of a 100-byte value, spread over 64 keys per worker.
    KvWrite,
}

/// Where a scenario sends its requests.
pub(crate) struct Endpoint<'a> {
    /// The server's kind.
    pub(crate) kind: TargetKind,
    /// Its address.
    pub(crate) addr: SocketAddr,
    /// Its root token (ignored by the trivial server).
    pub(crate) token: &'a str,
}

impl Scenario {
    /// Every scenario, in the order they run and are reported.
    pub(crate) const ALL: [Self; 3] = [Self::TrivialGet, Self::KvRead, Self::KvWrite];

    /// The name used on the command line (`--only`), in tables and in JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::TrivialGet => "trivial",
            Self::KvRead => "kv-read",
            Self::KvWrite => "kv-write",
        }
    }

    /// The scenario called `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|scenario| scenario.name() == name)
    }

    /// Whether this scenario runs on `kind`.
    pub(crate) fn runs_on(self, kind: TargetKind) -> bool {
        match self {
            Self::TrivialGet => kind == TargetKind::Trivial,
            Self::KvRead | Self::KvWrite => kind.is_vault_shaped(),
        }
    }

    /// Prepares the server (writes the data the scenario reads, checks it reads back) and
    /// returns the factory of the scenario's requests.
    pub(crate) async fn prepare(self, endpoint: &Endpoint<'_>) -> anyhow::Result<RequestFactory> {
        let token = endpoint.kind.is_vault_shaped().then_some(endpoint.token);
        let template = RequestTemplate::new(endpoint.addr, token)?;
        match self {
            Self::TrivialGet => Ok(Arc::new(move |_worker, _sequence| template.get("/"))),
            Self::KvRead => {
                write_read_secret(endpoint.addr, &template).await?;
                Ok(Arc::new(move |_worker, _sequence| {
                    template.get(KV_READ_PATH)
                }))
            }
            Self::KvWrite => {
                let body = kv_write_body(&secret_value());
                Ok(Arc::new(move |worker, sequence| {
                    let key = sequence % KV_WRITE_KEYS_PER_WORKER;
                    let path = format!("/v1/secret/data/bench/w-{worker}-{key}");
                    template.post_json(&path, body.clone())
                }))
            }
        }
    }
}

/// The 100-byte secret value every KV scenario reads or writes.
fn secret_value() -> String {
    (b'a'..=b'z')
        .chain(b'A'..=b'Z')
        .chain(b'0'..=b'9')
        .cycle()
        .take(100)
        .map(char::from)
        .collect()
}

fn kv_write_body(value: &str) -> Bytes {
    Bytes::from(json!({ "data": { "v": value } }).to_string())
}

/// Writes the secret the read scenario reads, then reads it back to check that the server
/// returns what was written (a benchmark of wrong answers would be worthless).
async fn write_read_secret(addr: SocketAddr, template: &RequestTemplate) -> anyhow::Result<()> {
    let value = secret_value();
    call(
        addr,
        template.post_json(KV_READ_PATH, kv_write_body(&value))?,
    )
    .await
    .context("writing the KV read scenario's secret")?;
    let read = call(addr, template.get(KV_READ_PATH)?)
        .await
        .context("reading the KV read scenario's secret back")?;
    let read: Value = serde_json::from_slice(&read).context("the KV read answer is not JSON")?;
    if read["data"]["data"]["v"].as_str() != Some(value.as_str()) {
        bail!("the KV read answer does not hold the value written: {read}");
    }
    Ok(())
}

/// Sends a setup request and insists on a 2xx answer.
async fn call(addr: SocketAddr, request: BenchRequest) -> anyhow::Result<Bytes> {
    let path = request.uri().path().to_owned();
    let (status, body) = send_once(addr, request, SETUP_TIME_LIMIT).await?;
    if !status.is_success() {
        bail!(
            "{path} answered {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for scenario in Scenario::ALL {
            assert_eq!(Scenario::from_name(scenario.name()), Some(scenario));
        }
        assert_eq!(Scenario::from_name("nope"), None);
    }

    #[test]
    fn kv_scenarios_run_on_vault_shaped_servers_only() {
        assert!(Scenario::KvRead.runs_on(TargetKind::Ward));
        assert!(Scenario::KvWrite.runs_on(TargetKind::OpenBao));
        assert!(!Scenario::KvRead.runs_on(TargetKind::Trivial));
        assert!(Scenario::TrivialGet.runs_on(TargetKind::Trivial));
        assert!(!Scenario::TrivialGet.runs_on(TargetKind::Ward));
    }

    #[test]
    fn the_secret_is_100_bytes_and_the_write_body_is_kv_v2_shaped() {
        let value = secret_value();
        assert_eq!(value.len(), 100);
        let body: Value = serde_json::from_slice(&kv_write_body(&value)).unwrap();
        assert_eq!(body["data"]["v"], value.as_str());
    }

    #[tokio::test]
    async fn kv_write_spreads_keys_per_worker() {
        let endpoint = Endpoint {
            kind: TargetKind::Ward,
            addr: "127.0.0.1:9".parse().unwrap(),
            token: "t",
        };
        let factory = Scenario::KvWrite.prepare(&endpoint).await.unwrap();
        let first = factory(3, 5).unwrap();
        assert_eq!(first.uri().path(), "/v1/secret/data/bench/w-3-5");
        assert_eq!(first.method(), hyper::Method::POST);
        let wrapped = factory(3, 5 + KV_WRITE_KEYS_PER_WORKER).unwrap();
        assert_eq!(wrapped.uri().path(), "/v1/secret/data/bench/w-3-5");
    }
}
