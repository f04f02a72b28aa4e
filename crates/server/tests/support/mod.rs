//! An in-process Ward on 127.0.0.1 (real HTTP, real SQLite in a temporary directory).

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use serde_json::Value;
use ward_core::{Core, CoreConfig};
use ward_store::{CacheLimits, CachedStorage, SqliteStorage, Storage};

pub struct TestServer {
    pub url: String,
    pub root_token: String,
    pub unseal_key: String,
    pub core: Arc<Core>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn storage(dir: &std::path::Path) -> Arc<dyn Storage> {
    Arc::new(CachedStorage::new(
        SqliteStorage::open(dir.join("ward.db")).unwrap(),
        CacheLimits::default(),
    ))
}

/// A dev-mode server: initialised (1 share), unsealed, `secret/` mounted.
pub async fn dev() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage(dir.path()).await;
    dev_over(storage, dir).await
}

/// A dev-mode server over `storage` (`dir` is the server's scratch directory).
pub async fn dev_over(storage: Arc<dyn Storage>, dir: tempfile::TempDir) -> TestServer {
    let core = Arc::new(Core::new(storage, CoreConfig::default()));
    let out = core.dev_init(None).await.unwrap();
    let key = hex::encode(out.keys[0].expose());
    start(core, dir, out.root_token.expose().to_owned(), key).await
}

/// Storage in tables of their own (prefix returned too) in the PostgreSQL cluster this test
/// process shares, with the read cache over it as the server has it.
pub async fn postgres_storage() -> (Arc<dyn Storage>, String) {
    let table = ward_test_postgres::unique_table();
    let options = ward_store::PostgresOptions {
        connection_url: ward_test_postgres::shared().url("postgres"),
        table: table.clone(),
        max_connections: 8,
        tls_ca_file: None,
    };
    let postgres = ward_store::PostgresStorage::connect(&options)
        .await
        .unwrap();
    let cached = CachedStorage::new(postgres, CacheLimits::default());
    (Arc::new(cached), table)
}

/// A dev-mode server with `config` (e.g. short rotation periods).
pub async fn dev_with(config: CoreConfig) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let core = Arc::new(Core::new(storage(dir.path()).await, config));
    let out = core.dev_init(None).await.unwrap();
    let key = hex::encode(out.keys[0].expose());
    start(core, dir, out.root_token.expose().to_owned(), key).await
}

/// An uninitialised, sealed server.
pub async fn fresh() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let core = Arc::new(Core::new(storage(dir.path()).await, CoreConfig::default()));
    start(core, dir, String::new(), String::new()).await
}

pub async fn start(
    core: Arc<Core>,
    dir: tempfile::TempDir,
    root_token: String,
    unseal_key: String,
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = core.clone();
    let task = tokio::spawn(async move {
        let _ = ward_server::serve_http(listener, serving).await;
    });
    TestServer {
        url,
        root_token,
        unseal_key,
        core,
        dir,
        http: reqwest::Client::new(),
        task,
    }
}

impl TestServer {
    /// Sends `method` to `/v1/<path>` with the root token and an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(&self.root_token.clone(), method, path, body)
            .await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}/v1/{path}", self.url));
        if !token.is_empty() {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// Enables a file audit device at `sys/audit/file`; the log's path.
    pub async fn enable_file_audit(&self) -> std::path::PathBuf {
        let file = self.dir.path().join("audit.log");
        let options = serde_json::json!({"type": "file", "options": {"file_path": file}});
        let (status, body) = self.call("PUT", "sys/audit/file", Some(options)).await;
        assert_eq!(status, 204, "{body}");
        file
    }

    /// Sends raw bytes (for malformed-input tests).
    pub async fn raw(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("X-Vault-Token", &self.root_token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl TestServer {
    /// Stores `text` as ACL policy `name` with the root token; returns the reply's warnings.
    pub async fn put_policy(&self, name: &str, text: &str) -> Vec<String> {
        let (status, body) = self
            .call(
                "PUT",
                &format!("sys/policies/acl/{name}"),
                Some(serde_json::json!({ "policy": text })),
            )
            .await;
        assert!(status == 204 || status == 200, "{status} {body}");
        body["warnings"]
            .as_array()
            .map(|w| w.iter().map(|w| w.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    /// Creates a token through `path` (`auth/token/create` or `auth/token/create-orphan`) as
    /// the holder of `parent`, with the request `body`; asserts success and returns the token.
    pub async fn new_token(&self, parent: &str, path: &str, body: Value) -> String {
        let (status, reply) = self.call_as(parent, "POST", path, Some(body)).await;
        assert_eq!(status, 200, "{reply}");
        reply["auth"]["client_token"].as_str().unwrap().to_owned()
    }
}

/// Asserts Vault's error shape: `{"errors": [...]}` with at least one message (or none for 404).
pub fn assert_errors(body: &Value) {
    assert!(
        body.get("errors").and_then(Value::as_array).is_some(),
        "not Vault's error shape: {body}"
    );
}

impl TestServer {
    /// Sends a request line exactly as given (no client-side URL normalisation) and returns
    /// the status code and body.
    pub async fn raw_request_line(&self, method: &str, target: &str) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: {}\r\nConnection: close\r\n\r\n",
            self.root_token
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf);
        let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        (
            status,
            serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
        )
    }
}

/// A dev-mode server whose transport settings (timeouts, limits) `configure` changes.
pub async fn dev_with_transport(
    configure: impl FnOnce(&mut ward_server::http::AppState),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let core = Arc::new(Core::new(storage(dir.path()).await, CoreConfig::default()));
    let out = core.dev_init(None).await.unwrap();
    let mut state = ward_server::http::AppState::new(core.clone());
    configure(&mut state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = ward_server::serve_state(listener, state).await;
    });
    TestServer {
        url,
        root_token: out.root_token.expose().to_owned(),
        unseal_key: hex::encode(out.keys[0].expose()),
        core,
        dir,
        http: reqwest::Client::new(),
        task,
    }
}

/// Stops `s` (sealed, its server dropped) and starts a new core with `config` on the same
/// database, unsealed with the same key: a restart as an operator does it.
pub async fn restart(s: TestServer, config: CoreConfig) -> TestServer {
    s.core.seal().await;
    let mut s = s;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let (root, key) = (s.root_token.clone(), s.unseal_key.clone());
    drop(s);
    // Let the dropped server's task end before the new one opens the database.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let core = Arc::new(Core::new(storage(dir.path()).await, config));
    let s = start(core, dir, root, key.clone()).await;
    let (status, body) = s
        .call(
            "POST",
            "sys/unseal",
            Some(serde_json::json!({ "key": key })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sealed"], false, "{body}");
    s
}
