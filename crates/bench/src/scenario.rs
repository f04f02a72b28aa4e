//! The load scenarios. Each one says which servers it runs on, prepares them (writes what it
//! reads, mounts what it needs, enables an audit device), hands the load generator a request
//! factory, and undoes what would change the next scenario's figures. A new scenario is a new
//! variant here and nothing else.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::http::{BenchRequest, Dial, RequestFactory, RequestTemplate, send_once};
use crate::targets::TargetKind;

/// The secret the KV read scenario reads.
const KV_READ_PATH: &str = "/v1/secret/data/bench/read";

/// The KV write scenario spreads each worker's writes over this many keys.
const KV_WRITE_KEYS_PER_WORKER: u64 = 64;

/// Setup calls that take longer than this fail the run.
const SETUP_TIME_LIMIT: Duration = Duration::from_secs(10);

/// The transit key the transit scenarios use (aes256-gcm96, the default type).
const TRANSIT_KEY: &str = "bench";

/// Plaintext size of the transit scenarios.
const TRANSIT_PLAINTEXT_BYTES: usize = 1024;

/// Items in one transit batch request.
const TRANSIT_BATCH_ITEMS: usize = 100;

/// The audit device the audited KV read enables (and disables afterwards).
const AUDIT_DEVICE_PATH: &str = "/v1/sys/audit/bench-file";

/// The password of the userpass login scenario's user.
const USERPASS_PASSWORD: &str = "bench-password-0123456789";

/// One kind of request stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scenario {
    /// GET / on the trivial handler.
    TrivialGet,
    /// KV v2 read of a 100-byte secret.
    KvRead,
    /// KV v2 write of a 100-byte value, spread over 64 keys per worker.
    KvWrite,
    /// The KV read with one file audit device enabled (disabled again afterwards).
    KvReadAudited,
    /// Transit encrypt of 1 KiB with an aes256-gcm96 key.
    TransitEncrypt,
    /// Transit decrypt of a 1 KiB plaintext's ciphertext.
    TransitDecrypt,
    /// Transit encrypt of a batch of 100 plaintexts of 1 KiB in one request.
    TransitEncryptBatch,
    /// Transit decrypt of a batch of 100 ciphertexts in one request.
    TransitDecryptBatch,
    /// A new connection for every request (TCP, the TLS handshake under `--tls`, one GET of
    /// the health path): connections set up per second.
    NewConnection,
    /// An AppRole login (role ID and an unlimited secret ID) issuing a token.
    ApproleLogin,
    /// A userpass login (one password hash check) issuing a token.
    UserpassLogin,
}

/// Where a scenario sends its requests.
pub(crate) struct Endpoint<'a> {
    /// The server's kind.
    pub(crate) kind: TargetKind,
    /// How to reach it.
    pub(crate) dial: Dial,
    /// Its root token (ignored by the trivial server).
    pub(crate) token: &'a str,
    /// A scratch directory for files the server writes (the audit log).
    pub(crate) scratch: &'a Path,
}

impl Scenario {
    /// Every scenario, in the order they run and are reported.
    pub(crate) const ALL: [Self; 11] = [
        Self::TrivialGet,
        Self::KvRead,
        Self::KvWrite,
        Self::KvReadAudited,
        Self::TransitEncrypt,
        Self::TransitDecrypt,
        Self::TransitEncryptBatch,
        Self::TransitDecryptBatch,
        Self::NewConnection,
        Self::ApproleLogin,
        Self::UserpassLogin,
    ];

    /// The name used on the command line (`--only`), in tables and in JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::TrivialGet => "trivial",
            Self::KvRead => "kv-read",
            Self::KvWrite => "kv-write",
            Self::KvReadAudited => "kv-read-audited",
            Self::TransitEncrypt => "transit-encrypt",
            Self::TransitDecrypt => "transit-decrypt",
            Self::TransitEncryptBatch => "transit-encrypt-batch",
            Self::TransitDecryptBatch => "transit-decrypt-batch",
            Self::NewConnection => "new-connection",
            Self::ApproleLogin => "approle-login",
            Self::UserpassLogin => "userpass-login",
        }
    }

    /// The scenario called `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|scenario| scenario.name() == name)
    }

    /// Whether every request goes over a connection of its own.
    pub(crate) fn new_connection_per_request(self) -> bool {
        self == Self::NewConnection
    }

    /// Whether this scenario runs on `kind`.
    pub(crate) fn runs_on(self, kind: TargetKind) -> bool {
        match self {
            Self::TrivialGet => kind == TargetKind::Trivial,
            Self::NewConnection => true,
            // OpenBao 2.x refuses audit devices over the API ("use declarative,
            // config-based audit device management instead").
            Self::KvReadAudited => kind == TargetKind::Ward,
            _ => kind.is_vault_shaped(),
        }
    }

    /// Prepares the server (writes the data the scenario reads, checks it reads back) and
    /// returns the factory of the scenario's requests.
    pub(crate) async fn prepare(self, endpoint: &Endpoint<'_>) -> anyhow::Result<RequestFactory> {
        let token = endpoint.kind.is_vault_shaped().then_some(endpoint.token);
        let template = RequestTemplate::new(endpoint.dial.addr, token)?;
        match self {
            Self::TrivialGet => Ok(Arc::new(move |_worker, _sequence| template.get("/"))),
            Self::NewConnection => {
                let path = if endpoint.kind.is_vault_shaped() {
                    "/v1/sys/health"
                } else {
                    "/"
                };
                Ok(Arc::new(move |_worker, _sequence| template.get(path)))
            }
            Self::KvRead => {
                write_read_secret(&endpoint.dial, &template).await?;
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
            Self::KvReadAudited => {
                write_read_secret(&endpoint.dial, &template).await?;
                let log = endpoint
                    .scratch
                    .join(format!("audit-{}.log", endpoint.kind.name()));
                let enable = json!({"type": "file", "options": {"file_path": log}});
                call(
                    &endpoint.dial,
                    template.put_json(AUDIT_DEVICE_PATH, Bytes::from(enable.to_string()))?,
                )
                .await
                .context("enabling a file audit device")?;
                Ok(Arc::new(move |_worker, _sequence| {
                    template.get(KV_READ_PATH)
                }))
            }
            Self::TransitEncrypt => {
                prepare_transit_key(&endpoint.dial, &template).await?;
                let body = Bytes::from(json!({ "plaintext": transit_plaintext() }).to_string());
                Ok(transit_factory(template, "encrypt", body))
            }
            Self::TransitEncryptBatch => {
                prepare_transit_key(&endpoint.dial, &template).await?;
                let item = json!({ "plaintext": transit_plaintext() });
                let batch = vec![item; TRANSIT_BATCH_ITEMS];
                let body = Bytes::from(json!({ "batch_input": batch }).to_string());
                Ok(transit_factory(template, "encrypt", body))
            }
            Self::TransitDecrypt => {
                prepare_transit_key(&endpoint.dial, &template).await?;
                let ciphertext = transit_ciphertext(&endpoint.dial, &template).await?;
                let body = Bytes::from(json!({ "ciphertext": ciphertext }).to_string());
                Ok(transit_factory(template, "decrypt", body))
            }
            Self::TransitDecryptBatch => {
                prepare_transit_key(&endpoint.dial, &template).await?;
                let ciphertext = transit_ciphertext(&endpoint.dial, &template).await?;
                let batch = vec![json!({ "ciphertext": ciphertext }); TRANSIT_BATCH_ITEMS];
                let body = Bytes::from(json!({ "batch_input": batch }).to_string());
                Ok(transit_factory(template, "decrypt", body))
            }
            // A login carries no token, as a client's first request.
            Self::ApproleLogin => {
                let body = prepare_approle(&endpoint.dial, &template).await?;
                let anonymous = RequestTemplate::new(endpoint.dial.addr, None)?;
                Ok(login_factory(anonymous, APPROLE_LOGIN_PATH, body))
            }
            Self::UserpassLogin => {
                let body = prepare_userpass(&endpoint.dial, &template).await?;
                let anonymous = RequestTemplate::new(endpoint.dial.addr, None)?;
                Ok(login_factory(anonymous, USERPASS_LOGIN_PATH, body))
            }
        }
    }

    /// Undoes what `prepare` set up that would change the next scenario's figures.
    pub(crate) async fn finish(self, endpoint: &Endpoint<'_>) -> anyhow::Result<()> {
        if self == Self::KvReadAudited {
            let template = RequestTemplate::new(endpoint.dial.addr, Some(endpoint.token))?;
            call(&endpoint.dial, template.delete(AUDIT_DEVICE_PATH)?)
                .await
                .context("disabling the file audit device")?;
        }
        Ok(())
    }
}

/// The AppRole login scenario's login path.
const APPROLE_LOGIN_PATH: &str = "/v1/auth/approle/login";

/// The userpass login scenario's login path.
const USERPASS_LOGIN_PATH: &str = "/v1/auth/userpass/login/bench";

/// A factory that posts the same login `body` to `path`.
fn login_factory(template: RequestTemplate, path: &'static str, body: Bytes) -> RequestFactory {
    Arc::new(move |_worker, _sequence| template.post_json(path, body.clone()))
}

/// Enables auth method `kind` at `kind/` unless it is there.
async fn enable_auth(dial: &Dial, template: &RequestTemplate, kind: &str) -> anyhow::Result<()> {
    let methods = call(dial, template.get("/v1/sys/auth")?)
        .await
        .context("listing auth methods")?;
    let methods: Value = serde_json::from_slice(&methods).context("sys/auth is not JSON")?;
    let listed = methods
        .get("data")
        .unwrap_or(&methods)
        .get(format!("{kind}/"))
        .is_some();
    if !listed {
        let body = Bytes::from(json!({ "type": kind }).to_string());
        call(
            dial,
            template.post_json(&format!("/v1/sys/auth/{kind}"), body)?,
        )
        .await
        .with_context(|| format!("enabling {kind}"))?;
    }
    Ok(())
}

/// Enables AppRole, writes a role with an unlimited secret ID, logs in once to check, and
/// returns the login body.
async fn prepare_approle(dial: &Dial, template: &RequestTemplate) -> anyhow::Result<Bytes> {
    enable_auth(dial, template, "approle").await?;
    let role = "/v1/auth/approle/role/bench";
    let body = Bytes::from(json!({"token_policies": "default", "token_ttl": "1h"}).to_string());
    call(dial, template.post_json(role, body)?)
        .await
        .context("writing the AppRole role")?;
    let answer: Value =
        serde_json::from_slice(&call(dial, template.get(&format!("{role}/role-id"))?).await?)
            .context("the role-id answer is not JSON")?;
    let Some(role_id) = answer["data"]["role_id"].as_str() else {
        bail!("the role-id answer has no role_id: {answer}");
    };
    let path = format!("{role}/secret-id");
    let answer: Value = serde_json::from_slice(
        &call(dial, template.post_json(&path, Bytes::from_static(b"{}"))?).await?,
    )
    .context("the secret-id answer is not JSON")?;
    let Some(secret_id) = answer["data"]["secret_id"].as_str() else {
        bail!("the secret-id answer has no secret_id");
    };
    let body = Bytes::from(json!({"role_id": role_id, "secret_id": secret_id}).to_string());
    check_login(dial, template, APPROLE_LOGIN_PATH, &body).await?;
    Ok(body)
}

/// Enables userpass, writes a user, logs in once to check, and returns the login body.
async fn prepare_userpass(dial: &Dial, template: &RequestTemplate) -> anyhow::Result<Bytes> {
    enable_auth(dial, template, "userpass").await?;
    let user =
        json!({"password": USERPASS_PASSWORD, "token_policies": "default", "token_ttl": "1h"});
    call(
        dial,
        template.post_json(
            "/v1/auth/userpass/users/bench",
            Bytes::from(user.to_string()),
        )?,
    )
    .await
    .context("writing the userpass user")?;
    let body = Bytes::from(json!({ "password": USERPASS_PASSWORD }).to_string());
    check_login(dial, template, USERPASS_LOGIN_PATH, &body).await?;
    Ok(body)
}

/// Logs in once with `body` and insists on a token in the answer.
async fn check_login(
    dial: &Dial,
    template: &RequestTemplate,
    path: &str,
    body: &Bytes,
) -> anyhow::Result<()> {
    let answer: Value =
        serde_json::from_slice(&call(dial, template.post_json(path, body.clone())?).await?)
            .context("the login answer is not JSON")?;
    if answer["auth"]["client_token"].as_str().is_none() {
        bail!("the login answer has no token: {answer}");
    }
    Ok(())
}

/// A factory that posts the same `body` to `transit/<operation>/bench`.
fn transit_factory(template: RequestTemplate, operation: &str, body: Bytes) -> RequestFactory {
    let path = format!("/v1/transit/{operation}/{TRANSIT_KEY}");
    Arc::new(move |_worker, _sequence| template.post_json(&path, body.clone()))
}

/// The 1 KiB transit plaintext, base64 as the API takes it.
fn transit_plaintext() -> String {
    let bytes: Vec<u8> = (0..TRANSIT_PLAINTEXT_BYTES)
        .map(|i| (i % 251) as u8)
        .collect();
    BASE64.encode(bytes)
}

/// Mounts transit at `transit/` unless it is there, and creates the key (creating a key that
/// exists changes nothing, in Vault and in Ward).
async fn prepare_transit_key(dial: &Dial, template: &RequestTemplate) -> anyhow::Result<()> {
    let mounts = call(dial, template.get("/v1/sys/mounts")?)
        .await
        .context("listing mounts")?;
    let mounts: Value = serde_json::from_slice(&mounts).context("sys/mounts is not JSON")?;
    let listed = mounts
        .get("data")
        .unwrap_or(&mounts)
        .get("transit/")
        .is_some();
    if !listed {
        let body = Bytes::from(json!({"type": "transit"}).to_string());
        call(dial, template.post_json("/v1/sys/mounts/transit", body)?)
            .await
            .context("mounting transit")?;
    }
    let path = format!("/v1/transit/keys/{TRANSIT_KEY}");
    call(dial, template.post_json(&path, Bytes::from_static(b"{}"))?)
        .await
        .context("creating the transit key")?;
    Ok(())
}

/// Encrypts the 1 KiB plaintext once, decrypts it back to check the round trip, and returns
/// the ciphertext.
async fn transit_ciphertext(dial: &Dial, template: &RequestTemplate) -> anyhow::Result<String> {
    let plaintext = transit_plaintext();
    let body = Bytes::from(json!({ "plaintext": plaintext }).to_string());
    let path = format!("/v1/transit/encrypt/{TRANSIT_KEY}");
    let answer: Value =
        serde_json::from_slice(&call(dial, template.post_json(&path, body)?).await?)
            .context("the encrypt answer is not JSON")?;
    let Some(ciphertext) = answer["data"]["ciphertext"].as_str() else {
        bail!("the encrypt answer has no ciphertext: {answer}");
    };
    let body = Bytes::from(json!({ "ciphertext": ciphertext }).to_string());
    let path = format!("/v1/transit/decrypt/{TRANSIT_KEY}");
    let answer: Value =
        serde_json::from_slice(&call(dial, template.post_json(&path, body)?).await?)
            .context("the decrypt answer is not JSON")?;
    if answer["data"]["plaintext"].as_str() != Some(plaintext.as_str()) {
        bail!("transit decrypt did not give back the plaintext");
    }
    Ok(ciphertext.to_owned())
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
async fn write_read_secret(dial: &Dial, template: &RequestTemplate) -> anyhow::Result<()> {
    let value = secret_value();
    call(
        dial,
        template.post_json(KV_READ_PATH, kv_write_body(&value))?,
    )
    .await
    .context("writing the KV read scenario's secret")?;
    let read = call(dial, template.get(KV_READ_PATH)?)
        .await
        .context("reading the KV read scenario's secret back")?;
    let read: Value = serde_json::from_slice(&read).context("the KV read answer is not JSON")?;
    if read["data"]["data"]["v"].as_str() != Some(value.as_str()) {
        bail!("the KV read answer does not hold the value written: {read}");
    }
    Ok(())
}

/// Sends a setup request and insists on a 2xx answer.
pub(crate) async fn call(dial: &Dial, request: BenchRequest) -> anyhow::Result<Bytes> {
    let path = request.uri().path().to_owned();
    let (status, body) = send_once(dial, request, SETUP_TIME_LIMIT).await?;
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
        assert!(Scenario::TransitEncrypt.runs_on(TargetKind::OpenBao));
        assert!(Scenario::KvReadAudited.runs_on(TargetKind::Ward));
        assert!(!Scenario::KvReadAudited.runs_on(TargetKind::OpenBao));
    }

    #[test]
    fn transit_plaintext_is_1_kib() {
        let plaintext = BASE64.decode(transit_plaintext()).unwrap();
        assert_eq!(plaintext.len(), TRANSIT_PLAINTEXT_BYTES);
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
            dial: Dial::plain("127.0.0.1:9".parse().unwrap()),
            token: "t",
            scratch: Path::new("/tmp"),
        };
        let factory = Scenario::KvWrite.prepare(&endpoint).await.unwrap();
        let first = factory(3, 5).unwrap();
        assert_eq!(first.uri().path(), "/v1/secret/data/bench/w-3-5");
        assert_eq!(first.method(), hyper::Method::POST);
        let wrapped = factory(3, 5 + KV_WRITE_KEYS_PER_WORKER).unwrap();
        assert_eq!(wrapped.uri().path(), "/v1/secret/data/bench/w-3-5");
    }
}
