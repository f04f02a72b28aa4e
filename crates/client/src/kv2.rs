//! KV version 2: finding a path's mount, and [`Kv2`], the typed view of one mount.

use reqwest::Method;
use serde_json::{Map, Value};
use ward_api::{
    KvMetadata, KvMetadataWriteRequest, KvReadData, KvVersionMetadata, KvVersionsRequest,
    KvWriteOptions, KvWriteRequest, Response,
};

use crate::client::decode_optional;
use crate::token::missing;
use crate::{Client, ClientError};

/// Which mount serves a path, and its KV version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvMountInfo {
    /// The mount path without slashes (`secret`).
    pub mount: String,
    /// The KV version: 1 or 2.
    pub version: u8,
}

impl KvMountInfo {
    /// The part of `path` after the mount (`secret/app/db` → `app/db`).
    pub fn relative<'p>(&self, path: &'p str) -> &'p str {
        let path = path.trim_start_matches('/');
        path.strip_prefix(self.mount.as_str())
            .map_or(path, |rest| rest.trim_start_matches('/'))
    }
}

impl Client {
    /// Finds the mount serving `path` as Vault's CLI does, by asking
    /// `sys/internal/ui/mounts/<path>`. Servers that do not offer that path (or deny it) get
    /// a fallback: the longest matching entry of `sys/mounts`, and failing that the first
    /// path segment as a KV v2 mount.
    pub async fn kv_mount_for(&self, path: &str) -> Result<KvMountInfo, ClientError> {
        let path = path.trim_matches('/');
        if let Ok(Some(response)) = self.read(&format!("sys/internal/ui/mounts/{path}")).await
            && let Some(data) = response.data
            && let Some(mount) = data.get("path").and_then(Value::as_str)
        {
            return Ok(KvMountInfo {
                mount: mount.trim_matches('/').to_owned(),
                version: kv_version(data.get("options")),
            });
        }
        if let Ok(mounts) = self.mounts().await {
            let best = mounts
                .iter()
                .filter(|(mount, _)| {
                    let mount = mount.trim_end_matches('/');
                    path == mount || path.starts_with(&format!("{mount}/"))
                })
                .max_by_key(|(mount, _)| mount.len());
            if let Some((mount, info)) = best {
                let is_two = info
                    .options
                    .as_ref()
                    .and_then(|o| o.get("version"))
                    .is_some_and(|v| v == "2");
                let version = if is_two { 2 } else { 1 };
                return Ok(KvMountInfo {
                    mount: mount.trim_matches('/').to_owned(),
                    version,
                });
            }
        }
        let first = path.split('/').next().unwrap_or_default();
        if first.is_empty() {
            return Err(ClientError::InvalidRequest("empty secret path".into()));
        }
        Ok(KvMountInfo {
            mount: first.to_owned(),
            version: 2,
        })
    }

    /// The KV v2 engine mounted at `mount`.
    pub fn kv2(&self, mount: &str) -> Kv2<'_> {
        Kv2 {
            client: self,
            mount: mount.trim_matches('/').to_owned(),
        }
    }
}

/// `options.version` of a mount: 2 when it says so, else 1.
fn kv_version(options: Option<&Value>) -> u8 {
    let version = options.and_then(|o| o.get("version"));
    let is_two = match version {
        Some(Value::String(s)) => s == "2",
        Some(Value::Number(n)) => n.as_u64() == Some(2),
        _ => false,
    };
    if is_two { 2 } else { 1 }
}

/// A KV version 2 mount. Paths are relative to the mount (`app/db`, not `secret/app/db`).
#[derive(Debug, Clone)]
pub struct Kv2<'a> {
    client: &'a Client,
    mount: String,
}

impl Kv2<'_> {
    /// The mount path (no slashes).
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// `<mount>/<section>/<path>`.
    pub fn api_path(&self, section: &str, path: &str) -> String {
        format!("{}/{section}/{}", self.mount, path.trim_matches('/'))
    }

    /// Reads the latest (or the given) version. `Ok(None)` when the secret does not exist;
    /// a deleted or destroyed version comes back with `data: None` and its metadata.
    ///
    /// Answers from the read cache while the entry is fresh (see
    /// [`Resilience::cache_ttl`](crate::Resilience::cache_ttl)); [`Kv2::read_fresh`] asks
    /// the server every time.
    pub async fn read(
        &self,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<KvReadData>, ClientError> {
        let api_path = self.data_path(path, version);
        let (response, _) = self.client.read_cached_as::<KvReadData>(&api_path).await?;
        Ok(response.and_then(|r| r.data))
    }

    /// `<mount>/data/<path>[?version=N]`.
    fn data_path(&self, path: &str, version: Option<u64>) -> String {
        let mut api_path = self.api_path("data", path);
        if let Some(version) = version {
            api_path.push_str(&format!("?version={version}"));
        }
        api_path
    }

    /// Like [`Kv2::read`], bypassing the cache (and refreshing it).
    pub async fn read_fresh(
        &self,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<KvReadData>, ClientError> {
        let api_path = self.data_path(path, version);
        self.client.invalidate_cache(&api_path);
        let (response, _) = self.client.read_cached_as::<KvReadData>(&api_path).await?;
        Ok(response.and_then(|r| r.data))
    }

    /// Writes a new version (replacing all keys). `cas`: write only if the current version
    /// is this one (0: only if the secret does not exist).
    pub async fn write(
        &self,
        path: &str,
        data: Map<String, Value>,
        cas: Option<u64>,
    ) -> Result<KvVersionMetadata, ClientError> {
        let api_path = self.api_path("data", path);
        let body = KvWriteRequest {
            data,
            options: cas.map(|cas| KvWriteOptions { cas: Some(cas) }),
        };
        let response = self.client.write_as(&api_path, &body).await?;
        response
            .and_then(|r: Response<KvVersionMetadata>| r.data)
            .ok_or_else(|| missing(&api_path, "data"))
    }

    /// Writes a new version merging `data` into the latest one (JSON merge patch: `null`
    /// removes a key).
    pub async fn patch(
        &self,
        path: &str,
        data: Map<String, Value>,
        cas: Option<u64>,
    ) -> Result<KvVersionMetadata, ClientError> {
        let api_path = self.api_path("data", path);
        let body = KvWriteRequest {
            data,
            options: cas.map(|cas| KvWriteOptions { cas: Some(cas) }),
        };
        let response = self.client.patch(&api_path, &body).await?;
        let data = response
            .and_then(|r| r.data)
            .ok_or_else(|| missing(&api_path, "data"))?;
        serde_json::from_value(data).map_err(|source| ClientError::Decode {
            path: api_path,
            source,
        })
    }

    /// Lists the secrets and folders (ending in `/`) under `path`.
    pub async fn list(&self, path: &str) -> Result<Option<Vec<String>>, ClientError> {
        let api_path = format!("{}/", self.api_path("metadata", path).trim_end_matches('/'));
        self.client.list(&api_path).await
    }

    /// Soft-deletes the latest version (`DELETE <mount>/data/<path>`).
    pub async fn delete_latest(&self, path: &str) -> Result<(), ClientError> {
        self.client
            .delete(&self.api_path("data", path))
            .await
            .map(drop)
    }

    /// Soft-deletes the given versions.
    pub async fn delete_versions(&self, path: &str, versions: &[u64]) -> Result<(), ClientError> {
        self.versions_call("delete", path, versions).await
    }

    /// Restores soft-deleted versions.
    pub async fn undelete(&self, path: &str, versions: &[u64]) -> Result<(), ClientError> {
        self.versions_call("undelete", path, versions).await
    }

    /// Permanently destroys the data of the given versions.
    pub async fn destroy(&self, path: &str, versions: &[u64]) -> Result<(), ClientError> {
        self.versions_call("destroy", path, versions).await
    }

    /// Reads the secret's metadata and version history. `Ok(None)` when it does not exist.
    pub async fn read_metadata(&self, path: &str) -> Result<Option<KvMetadata>, ClientError> {
        let response: Option<Response<KvMetadata>> = self
            .client
            .read_as(&self.api_path("metadata", path))
            .await?;
        Ok(response.and_then(|r| r.data))
    }

    /// Changes the secret's metadata settings (only the fields given).
    pub async fn write_metadata(
        &self,
        path: &str,
        request: &KvMetadataWriteRequest,
    ) -> Result<(), ClientError> {
        self.client
            .write(&self.api_path("metadata", path), request)
            .await
            .map(drop)
    }

    /// Deletes the secret's metadata and every version.
    pub async fn delete_metadata(&self, path: &str) -> Result<(), ClientError> {
        self.client
            .delete(&self.api_path("metadata", path))
            .await
            .map(drop)
    }

    /// Writes the data of `version` as a new version, as Vault's `kv rollback` does: the
    /// write carries `cas` = the current version so a concurrent write is not overwritten.
    pub async fn rollback(
        &self,
        path: &str,
        version: u64,
    ) -> Result<KvVersionMetadata, ClientError> {
        let metadata = self
            .read_metadata(path)
            .await?
            .ok_or_else(|| ClientError::InvalidRequest(format!("no secret at {path}")))?;
        let old = self
            .read(path, Some(version))
            .await?
            .ok_or_else(|| ClientError::InvalidRequest(format!("no version {version}")))?;
        let data = old.data.ok_or_else(|| {
            ClientError::InvalidRequest(format!(
                "version {version} is deleted or destroyed and cannot be rolled back to"
            ))
        })?;
        self.write(path, data, Some(metadata.current_version)).await
    }

    /// POST `{"versions": [...]}` to `<mount>/<action>/<path>`.
    async fn versions_call(
        &self,
        action: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), ClientError> {
        let api_path = self.api_path(action, path);
        let body = KvVersionsRequest {
            versions: versions.to_vec(),
        };
        let reply = self
            .client
            .send_json(Method::POST, &api_path, Some(&body))
            .await?;
        decode_optional::<Value>(&api_path, reply).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_strips_the_mount() {
        let info = KvMountInfo {
            mount: "secret".into(),
            version: 2,
        };
        assert_eq!(info.relative("secret/app/db"), "app/db");
        assert_eq!(info.relative("/secret/app"), "app");
        assert_eq!(info.relative("secret"), "");
    }

    #[test]
    fn kv_version_reads_strings_and_numbers() {
        assert_eq!(kv_version(Some(&serde_json::json!({"version": "2"}))), 2);
        assert_eq!(kv_version(Some(&serde_json::json!({"version": 2}))), 2);
        assert_eq!(kv_version(Some(&serde_json::json!({"version": "1"}))), 1);
        assert_eq!(kv_version(None), 1);
    }

    #[test]
    fn api_paths_put_the_section_after_the_mount() {
        let client = Client::new("http://127.0.0.1:8200", None).unwrap();
        let kv = client.kv2("/secret/");
        assert_eq!(kv.api_path("data", "app/db"), "secret/data/app/db");
        assert_eq!(kv.api_path("metadata", "/app/"), "secret/metadata/app");
    }
}
