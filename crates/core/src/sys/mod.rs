//! The authenticated part of `sys/`: mounts, policies, keyring rotation, seal, capabilities.

use serde_json::{Map, Value, json};

use crate::core::{Caller, now};
use crate::mounts::NewMount;
use crate::params::Params;
use crate::seal;
use crate::{Core, CoreError, CoreResult, Operation, Request, Response};

impl Core {
    pub(crate) async fn handle_sys(
        &self,
        caller: &Caller,
        rest: &str,
        req: Request,
    ) -> CoreResult<Response> {
        let p = Params(&req.data);
        let op = req.operation;
        if let Some(result) = self.handle_sys_audit(rest, op, &p).await {
            return result;
        }
        if rest == "mounts" {
            return match op {
                Operation::Read => Ok(self.mounts_response()),
                _ => Err(CoreError::UnsupportedOperation),
            };
        }
        if let Some(path) = rest.strip_prefix("mounts/") {
            return self.sys_mount(path, op, &p).await;
        }
        if rest == "policy" || rest == "policies/acl" {
            return match op {
                Operation::Read | Operation::List => {
                    let names = self.policies.list(&self.barrier).await?;
                    let mut data = json!({ "keys": names });
                    if rest == "policy" {
                        data["policies"] = json!(names);
                    }
                    Ok(Response::data(data))
                }
                _ => Err(CoreError::UnsupportedOperation),
            };
        }
        if let Some((name, acl_path)) = rest
            .strip_prefix("policy/")
            .map(|n| (n, false))
            .or_else(|| rest.strip_prefix("policies/acl/").map(|n| (n, true)))
        {
            return self.sys_policy(name, acl_path, op, &p).await;
        }
        if let Some(path) = rest.strip_prefix("rotate/mount/") {
            return match op {
                Operation::Write => self.sys_rotate_mount(path).await,
                _ => Err(CoreError::UnsupportedOperation),
            };
        }
        match (rest, op) {
            ("rotation/status", Operation::Read) => self.rotation_status().await,
            // The transport renders the metrics; the core authorises and audits the read.
            ("metrics", Operation::Read) => Ok(Response::data(json!({}))),
            ("rotate", Operation::Write) => self.rotate_keyring().await,
            ("key-status", Operation::Read) => self.key_status(),
            ("seal", Operation::Write) => {
                self.seal().await;
                Ok(Response::empty())
            }
            ("capabilities-self", Operation::Write) => {
                let entry = caller.entry.clone();
                self.capabilities(&entry.policies, &p).await
            }
            ("capabilities", Operation::Write) => {
                let token = p
                    .str("token")?
                    .ok_or_else(|| CoreError::bad("missing token"))?;
                let entry = self
                    .tokens
                    .get(&self.barrier, &crate::token::store::hash_token(&token))
                    .await?
                    .ok_or_else(|| CoreError::bad("invalid token"))?;
                self.capabilities(&entry.policies, &p).await
            }
            (path, Operation::Read) if path.starts_with("internal/ui/mounts/") => {
                let target = &path["internal/ui/mounts/".len()..];
                let mount = self
                    .mounts
                    .find(target)
                    .ok_or_else(|| CoreError::bad(format!("preflight capability check returned 403, please ensure client's policies grant access to path \"{target}/\"")))?;
                let mut data = mount.to_json();
                data["path"] = json!(mount.path);
                Ok(Response::data(data))
            }
            ("rotate" | "key-status" | "seal" | "capabilities" | "capabilities-self", _) => {
                Err(CoreError::UnsupportedOperation)
            }
            _ => Err(CoreError::NotFound(format!(
                "no handler for route \"sys/{rest}\". route entry not found."
            ))),
        }
    }

    fn mounts_response(&self) -> Response {
        let mut map = Map::new();
        for m in self.mounts.all().iter() {
            map.insert(m.path.clone(), m.to_json());
        }
        map.insert(
            "sys/".into(),
            json!({
                "type": "system", "description": "system endpoints used for control, policy and debugging",
                "accessor": "system", "uuid": "", "local": false, "seal_wrap": true,
                "external_entropy_access": false, "options": null,
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
                "plugin_version": "", "running_plugin_version": "", "running_sha256": "",
            }),
        );
        // Vault answers with the mounts both at the top level and under `data`.
        let data = Value::Object(map.clone());
        let mut body = map;
        body.insert("data".into(), data);
        body.insert("request_id".into(), json!(uuid::Uuid::new_v4().to_string()));
        body.insert("lease_id".into(), json!(""));
        body.insert("renewable".into(), json!(false));
        body.insert("lease_duration".into(), json!(0));
        body.insert("wrap_info".into(), Value::Null);
        body.insert("warnings".into(), Value::Null);
        body.insert("auth".into(), Value::Null);
        Response::raw(Value::Object(body))
    }

    async fn sys_mount(&self, path: &str, op: Operation, p: &Params<'_>) -> CoreResult<Response> {
        if path.ends_with("/tune") {
            return Err(CoreError::bad("mount tuning is not supported yet"));
        }
        match op {
            Operation::Write => {
                let requested = p
                    .str("type")?
                    .ok_or_else(|| CoreError::bad("missing 'type' of the engine to mount"))?;
                let mut options = p
                    .str_map("options")
                    .or_else(|_| {
                        // Vault also accepts options.version as a number.
                        match p.0.get("options") {
                            Some(Value::Object(m)) => Ok(Some(
                                m.iter()
                                    .map(|(k, v)| {
                                        (k.clone(), json!(v.to_string().trim_matches('"')))
                                    })
                                    .collect(),
                            )),
                            _ => Err(CoreError::bad(
                                "invalid value for 'options': expected a map",
                            )),
                        }
                    })?
                    .unwrap_or_default();
                let engine = match requested.as_str() {
                    "kv-v2" => {
                        options.insert("version".into(), json!("2"));
                        "kv"
                    }
                    "kv" => match options.get("version").and_then(Value::as_str) {
                        Some("2") => "kv",
                        _ => {
                            return Err(CoreError::bad(
                                "kv version 1 is not supported: mount type \"kv-v2\" or options {\"version\": \"2\"}",
                            ));
                        }
                    },
                    "transit" => "transit",
                    other => {
                        return Err(CoreError::bad(format!(
                            "plugin not found in the catalog: {other}"
                        )));
                    }
                };
                let description = p.str("description")?.unwrap_or_default();
                let config = match p.0.get("config") {
                    Some(Value::Object(c)) => c.clone(),
                    None | Some(Value::Null) => Map::new(),
                    Some(_) => {
                        return Err(CoreError::bad("invalid value for 'config': expected a map"));
                    }
                };
                self.mounts
                    .enable(
                        &self.barrier,
                        &self.mount_keys,
                        path,
                        NewMount {
                            mount_type: engine.into(),
                            description,
                            options,
                            config,
                        },
                    )
                    .await?;
                Ok(Response::empty())
            }
            Operation::Delete => {
                self.mounts
                    .disable(&self.barrier, &self.mount_keys, path)
                    .await?;
                Ok(Response::empty())
            }
            Operation::Read => {
                let target = format!("{}/", path.trim_matches('/'));
                let mount = self.mounts.all().iter().find(|m| m.path == target).cloned();
                mount
                    .map(|m| Response::data(m.to_json()))
                    .ok_or_else(|| CoreError::bad(format!("no mount at {target}")))
            }
            _ => Err(CoreError::UnsupportedOperation),
        }
    }

    async fn sys_policy(
        &self,
        name: &str,
        acl_path: bool,
        op: Operation,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        match op {
            Operation::Read => {
                let (name, text) = self
                    .policies
                    .read(&self.barrier, name)
                    .await?
                    .ok_or_else(|| CoreError::NotFound(String::new()))?;
                let field = if acl_path { "policy" } else { "rules" };
                Ok(Response::data(json!({ "name": name, field: text })))
            }
            Operation::Write => {
                let text = p
                    .str("policy")?
                    .or(p.str("rules")?)
                    .ok_or_else(|| CoreError::bad("'policy' parameter not supplied or empty"))?;
                if text.trim().is_empty() {
                    return Err(CoreError::bad("'policy' parameter not supplied or empty"));
                }
                let warnings = self.policies.write(&self.barrier, name, &text).await?;
                Ok(Response {
                    warnings,
                    ..Response::empty()
                })
            }
            Operation::Delete => {
                self.policies.delete(&self.barrier, name).await?;
                Ok(Response::empty())
            }
            _ => Err(CoreError::UnsupportedOperation),
        }
    }

    async fn capabilities(&self, policies: &[String], p: &Params<'_>) -> CoreResult<Response> {
        let paths = p
            .str_list("paths")?
            .or(p.str("path")?.map(|x| vec![x]))
            .ok_or_else(|| CoreError::bad("missing 'paths'"))?;
        let acl = self.policies.acl(&self.barrier, policies).await?;
        let is_root = policies.iter().any(|p| p == "root");
        let mut data = Map::new();
        let mut all = Vec::new();
        for path in &paths {
            let caps: Vec<String> = if is_root {
                vec!["root".into()]
            } else {
                let c = acl.capabilities(path.trim_start_matches('/')).as_strs();
                if c.is_empty() {
                    vec!["deny".into()]
                } else {
                    c.into_iter().map(String::from).collect()
                }
            };
            all.extend(caps.iter().cloned());
            data.insert(path.clone(), json!(caps));
        }
        all.sort();
        all.dedup();
        data.insert("capabilities".into(), json!(all));
        Ok(Response::data(Value::Object(data)))
    }

    /// Adds a keyring term; new writes use it, old entries stay readable.
    pub(crate) async fn rotate_keyring(&self) -> CoreResult<Response> {
        // Serialise with unseal and other rotations: two rotations from the same keyring
        // would both install a term N+1, and entries written under the loser would be lost.
        let _guard = self.progress.lock().await;
        let root_key = self.root_key()?;
        let current = self.barrier.keyring()?;
        let next = current.rotated(now())?;
        seal::store_keyring(self.barrier.raw_storage().as_ref(), &root_key, &next).await?;
        self.barrier.unseal(std::sync::Arc::new(next));
        tracing::info!("keyring rotated");
        Ok(Response::empty())
    }

    fn key_status(&self) -> CoreResult<Response> {
        let ring = self.barrier.keyring()?;
        let term = ring.active_term();
        let installed = chrono::DateTime::from_timestamp(term.installed_unix(), 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        Ok(Response::data(json!({
            "term": term.number(),
            "install_time": installed,
            "encryptions": term.encryptions(),
        })))
    }
}
