//! Typed helpers for `sys/`: init, unseal, seal, status, health, rotation, mounts, policies.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use ward_api::report::ComplianceReport;
use ward_api::{
    AclPolicy, HealthResponse, InitRequest, InitResponse, InitStatus, KeyStatus, LeaderStatus,
    MountEnableRequest, MountInfo, PolicyWriteRequest, Response, SealStatus, UnsealRequest,
};

use crate::client::{api_error, decode_optional, decode_required, with_query};
use crate::{Client, ClientError};

/// Statuses `sys/health` uses to report a state, each with a normal body.
const HEALTH_STATUSES: [u16; 7] = [200, 429, 472, 473, 501, 503, 530];

impl Client {
    /// `GET sys/init`: whether the server is initialised.
    pub async fn init_status(&self) -> Result<InitStatus, ClientError> {
        let reply = self.send(Method::GET, "sys/init", None).await?;
        decode_required("sys/init", reply)
    }

    /// `PUT sys/init`: initialises the server; returns the key shares and root token.
    pub async fn init(&self, request: &InitRequest) -> Result<InitResponse, ClientError> {
        let reply = self
            .send_json(Method::PUT, "sys/init", Some(request))
            .await?;
        decode_required("sys/init", reply)
    }

    /// `PUT sys/unseal`: gives one key share (or resets); returns the new seal status.
    pub async fn unseal(&self, request: &UnsealRequest) -> Result<SealStatus, ClientError> {
        let reply = self
            .send_json(Method::PUT, "sys/unseal", Some(request))
            .await?;
        decode_required("sys/unseal", reply)
    }

    /// `PUT sys/seal`: seals the server.
    pub async fn seal(&self) -> Result<(), ClientError> {
        let reply = self.send(Method::PUT, "sys/seal", None).await?;
        decode_optional::<serde_json::Value>("sys/seal", reply).map(drop)
    }

    /// `GET sys/storage/snapshot`: the snapshot, handed to `sink` a piece at a time as it
    /// arrives (never held whole). Returns its size in bytes. A snapshot cut short by the
    /// server fails here, as a transport error.
    pub async fn snapshot_save(
        &self,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, ClientError> {
        let path = "sys/storage/snapshot";
        let mut reply = self.send_streamed(Method::GET, path, None).await?;
        if !reply.status().is_success() {
            let status = reply.status();
            let body = reply.bytes().await.map_err(ClientError::Transport)?;
            return Err(api_error(&crate::client::RawReply {
                status,
                body: body.to_vec(),
                retry_after: None,
            }));
        }
        let mut size = 0u64;
        while let Some(piece) = reply.chunk().await.map_err(ClientError::Transport)? {
            sink(&piece).map_err(ClientError::Write)?;
            size += piece.len() as u64;
        }
        Ok(size)
    }

    /// `POST sys/storage/snapshot` (`snapshot-force` with `force`): restores the snapshot in
    /// `file`, streamed from it.
    pub async fn snapshot_restore(
        &self,
        file: tokio::fs::File,
        force: bool,
    ) -> Result<(), ClientError> {
        let path = if force {
            "sys/storage/snapshot-force"
        } else {
            "sys/storage/snapshot"
        };
        let reply = self
            .send_streamed(Method::POST, path, Some(reqwest::Body::from(file)))
            .await?;
        let status = reply.status();
        let body = reply.bytes().await.map_err(ClientError::Transport)?;
        let reply = crate::client::RawReply {
            status,
            body: body.to_vec(),
            retry_after: None,
        };
        decode_optional::<serde_json::Value>(path, reply).map(drop)
    }

    /// `GET sys/seal-status`.
    pub async fn seal_status(&self) -> Result<SealStatus, ClientError> {
        let reply = self.send(Method::GET, "sys/seal-status", None).await?;
        decode_required("sys/seal-status", reply)
    }

    /// `GET sys/leader`: whether the server runs in a cluster, and which server is active.
    pub async fn leader(&self) -> Result<LeaderStatus, ClientError> {
        let reply = self.send(Method::GET, "sys/leader", None).await?;
        decode_required("sys/leader", reply)
    }

    /// `GET sys/health`: the status code (200 active, 429 standby, 501 uninitialised,
    /// 503 sealed, ...) and the body, which the server sends with every one of them.
    pub async fn health(&self) -> Result<(u16, HealthResponse), ClientError> {
        // Its 429 and 503 are answers (standby, sealed), not reasons to retry.
        let reply = self
            .send_with(Method::GET, "sys/health", None, false)
            .await?;
        let status = reply.status.as_u16();
        if !HEALTH_STATUSES.contains(&status) {
            return Err(api_error(&reply));
        }
        let body = serde_json::from_slice(&reply.body).map_err(|source| ClientError::Decode {
            path: "sys/health".into(),
            source,
        })?;
        Ok((status, body))
    }

    /// `PUT sys/rotate`: adds a new term to the barrier keyring.
    pub async fn rotate(&self) -> Result<(), ClientError> {
        let reply = self.send(Method::PUT, "sys/rotate", None).await?;
        decode_optional::<serde_json::Value>("sys/rotate", reply).map(drop)
    }

    /// `GET sys/key-status`: the keyring's newest term.
    pub async fn key_status(&self) -> Result<KeyStatus, ClientError> {
        let reply = self.send(Method::GET, "sys/key-status", None).await?;
        // Vault sends the fields at the top level and inside `data`; accept either.
        let body: serde_json::Value = decode_required("sys/key-status", reply)?;
        let fields = match body.get("data") {
            Some(data) if data.is_object() => data.clone(),
            _ => body,
        };
        serde_json::from_value(fields).map_err(|source| ClientError::Decode {
            path: "sys/key-status".into(),
            source,
        })
    }

    /// `GET sys/reports/compliance`: the compliance report; `period` (a duration such as
    /// `720h`, default 30 days) bounds its event-based checks. Needs root or a policy that
    /// grants `read` on `sys/reports/compliance`.
    pub async fn compliance_report(
        &self,
        period: Option<&str>,
    ) -> Result<ComplianceReport, ClientError> {
        let query: Vec<(String, String)> = period
            .map(|p| ("period".to_owned(), p.to_owned()))
            .into_iter()
            .collect();
        let path = with_query("sys/reports/compliance", &query);
        let reply = self.send(Method::GET, &path, None).await?;
        #[derive(serde::Deserialize)]
        struct Body {
            data: ComplianceReport,
        }
        let body: Body = decode_required("sys/reports/compliance", reply)?;
        Ok(body.data)
    }

    /// `GET sys/mounts`: the enabled secrets engines, keyed by path (`secret/`).
    pub async fn mounts(&self) -> Result<BTreeMap<String, MountInfo>, ClientError> {
        let reply = self.send(Method::GET, "sys/mounts", None).await?;
        let body: serde_json::Value = decode_required("sys/mounts", reply)?;
        // Vault repeats the mounts at the top level for old clients; `data` is canonical.
        let map = match body.get("data") {
            Some(data) if data.is_object() => data.clone(),
            _ => body,
        };
        let serde_json::Value::Object(entries) = map else {
            return Ok(BTreeMap::new());
        };
        let mut mounts = BTreeMap::new();
        for (path, entry) in entries {
            if entry.get("type").is_some() {
                let info = serde_json::from_value(entry).map_err(|source| ClientError::Decode {
                    path: "sys/mounts".into(),
                    source,
                })?;
                mounts.insert(path, info);
            }
        }
        Ok(mounts)
    }

    /// `POST sys/mounts/<path>`: enables a secrets engine.
    pub async fn enable_mount(
        &self,
        path: &str,
        request: &MountEnableRequest,
    ) -> Result<(), ClientError> {
        let api_path = format!("sys/mounts/{}", path.trim_matches('/'));
        self.write(&api_path, request).await.map(drop)
    }

    /// `DELETE sys/mounts/<path>`: disables a secrets engine and deletes its data.
    pub async fn disable_mount(&self, path: &str) -> Result<(), ClientError> {
        let api_path = format!("sys/mounts/{}", path.trim_matches('/'));
        self.delete(&api_path).await.map(drop)
    }

    /// `LIST sys/policies/acl`: the ACL policy names.
    pub async fn list_policies(&self) -> Result<Vec<String>, ClientError> {
        Ok(self.list("sys/policies/acl").await?.unwrap_or_default())
    }

    /// `GET sys/policies/acl/<name>`; `Ok(None)` when there is no such policy.
    pub async fn read_policy(&self, name: &str) -> Result<Option<AclPolicy>, ClientError> {
        let response: Option<Response<AclPolicy>> =
            self.read_as(&format!("sys/policies/acl/{name}")).await?;
        Ok(response.and_then(|r| r.data))
    }

    /// `PUT sys/policies/acl/<name>`: creates or replaces a policy. Returns the server's
    /// warnings about the document (empty when none).
    pub async fn write_policy(&self, name: &str, policy: &str) -> Result<Vec<String>, ClientError> {
        let path = format!("sys/policies/acl/{name}");
        let body = PolicyWriteRequest {
            policy: policy.to_owned(),
        };
        let reply = self.send_json(Method::PUT, &path, Some(&body)).await?;
        let response: Option<Response> = decode_optional(&path, reply)?;
        Ok(response.and_then(|r| r.warnings).unwrap_or_default())
    }

    /// `DELETE sys/policies/acl/<name>`.
    pub async fn delete_policy(&self, name: &str) -> Result<(), ClientError> {
        self.delete(&format!("sys/policies/acl/{name}"))
            .await
            .map(drop)
    }

    /// True when the error says the server is sealed or not initialised (503/501).
    pub fn is_sealed_error(error: &ClientError) -> bool {
        matches!(
            error.status().and_then(|s| StatusCode::from_u16(s).ok()),
            Some(StatusCode::SERVICE_UNAVAILABLE | StatusCode::NOT_IMPLEMENTED)
        )
    }
}
