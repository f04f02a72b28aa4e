//! The authenticated part of `sys/`: mounts, policies, keyring rotation, seal, capabilities.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::core::Caller;
use crate::engine::{Args, Call, Engine, MountType, Route};
use crate::mounts::{
    MountEntry, NewMount, apply_config, auth_mount_path, no_mount, normalise_mount_path,
};
use crate::params::Params;
use crate::{Core, CoreError, CoreResult, Operation, Response};

mod open;
mod quorum;

pub(crate) use quorum::Attempts;

/// The `sys/` engine.
pub(crate) struct System;

/// The routes of `sys/`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SysRoute {
    Health,
    SealStatus,
    Init,
    Unseal,
    Leader,
    HaStatus,
    StepDown,
    /// `rekey/init`, or with `envelope` OpenBao's `rotate/root/init`; with `recovery`,
    /// `rekey-recovery-key/init` (OpenBao: `rotate/recovery/init`).
    RekeyInit {
        envelope: bool,
        recovery: bool,
    },
    RekeyUpdate {
        envelope: bool,
        recovery: bool,
    },
    /// `generate-root/attempt`, or with `envelope` OpenBao's `generate-root-token/attempt`.
    GenerateRoot {
        envelope: bool,
    },
    GenerateRootUpdate {
        envelope: bool,
    },
    Mounts,
    Mount,
    Auths,
    Auth,
    Policies {
        legacy: bool,
    },
    Policy {
        legacy: bool,
    },
    RotateMount,
    RotationStatus,
    ComplianceReport,
    Metrics,
    Rotate,
    KeyStatus,
    Seal,
    CapabilitiesSelf,
    Capabilities,
    UiMount,
    Audits,
    Audit,
    AuditHash,
    /// `storage/snapshot` (and Vault's `storage/raft/snapshot`): read takes a snapshot, write
    /// restores one; `force` (`snapshot-force`) accepts one from another root key.
    SnapshotAutoStatus,
    Snapshot {
        force: bool,
        /// Vault's spelling (`storage/raft/...`): the snapshot goes out in Vault's container.
        vault: bool,
    },
}

impl Engine for System {
    type Route = SysRoute;

    const ROUTES: &'static [Route<SysRoute>] = {
        use Operation::{Delete, List, Read, Write};
        use SysRoute as S;
        &[
            Route::new("health", &[Read], S::Health).unauthenticated(),
            Route::new("seal-status", &[Read], S::SealStatus).unauthenticated(),
            Route::new("init", &[Read, Write], S::Init).unauthenticated(),
            Route::new("unseal", &[Write], S::Unseal).unauthenticated(),
            Route::new("leader", &[Read], S::Leader).unauthenticated(),
            Route::new("ha-status", &[Read], S::HaStatus),
            Route::new("step-down", &[Write], S::StepDown).sudo(),
            Route::new(
                "rekey/init",
                &[Read, Write, Delete],
                S::RekeyInit {
                    envelope: false,
                    recovery: false,
                },
            )
            .unauthenticated(),
            Route::new(
                "rekey/update",
                &[Write],
                S::RekeyUpdate {
                    envelope: false,
                    recovery: false,
                },
            )
            .unauthenticated(),
            Route::new(
                "rekey-recovery-key/init",
                &[Read, Write, Delete],
                S::RekeyInit {
                    envelope: false,
                    recovery: true,
                },
            )
            .unauthenticated(),
            Route::new(
                "rekey-recovery-key/update",
                &[Write],
                S::RekeyUpdate {
                    envelope: false,
                    recovery: true,
                },
            )
            .unauthenticated(),
            Route::new(
                "generate-root/attempt",
                &[Read, Write, Delete],
                S::GenerateRoot { envelope: false },
            )
            .unauthenticated(),
            Route::new(
                "generate-root/update",
                &[Write],
                S::GenerateRootUpdate { envelope: false },
            )
            .unauthenticated(),
            Route::new(
                "generate-root-token/attempt",
                &[Read, Write, Delete],
                S::GenerateRoot { envelope: true },
            )
            .sudo(),
            Route::new(
                "generate-root-token/update",
                &[Write],
                S::GenerateRootUpdate { envelope: true },
            )
            .sudo(),
            Route::new("mounts", &[Read], S::Mounts),
            Route::new("mounts/*path", &[Read, Write, Delete], S::Mount),
            Route::new("auth", &[Read], S::Auths),
            Route::new("auth/*path", &[Read, Write, Delete], S::Auth).sudo(),
            Route::new("policy", &[Read, List], S::Policies { legacy: true }),
            Route::new("policies/acl", &[Read, List], S::Policies { legacy: false }),
            Route::new(
                "policy/*name",
                &[Read, Write, Delete],
                S::Policy { legacy: true },
            )
            .checks_existence(),
            Route::new(
                "policies/acl/*name",
                &[Read, Write, Delete],
                S::Policy { legacy: false },
            )
            .checks_existence(),
            Route::new("rotate/mount/*path", &[Write], S::RotateMount).sudo(),
            // OpenBao's authenticated rekey, which `bao operator rotate-keys` calls.
            Route::new(
                "rotate/root/init",
                &[Read, Write, Delete],
                S::RekeyInit {
                    envelope: true,
                    recovery: false,
                },
            )
            .sudo(),
            Route::new(
                "rotate/root/update",
                &[Write],
                S::RekeyUpdate {
                    envelope: true,
                    recovery: false,
                },
            )
            .sudo(),
            Route::new(
                "rotate/recovery/init",
                &[Read, Write, Delete],
                S::RekeyInit {
                    envelope: true,
                    recovery: true,
                },
            )
            .sudo(),
            Route::new(
                "rotate/recovery/update",
                &[Write],
                S::RekeyUpdate {
                    envelope: true,
                    recovery: true,
                },
            )
            .sudo(),
            Route::new("rotation/status", &[Read], S::RotationStatus),
            // Root, or a policy granting read on `sys/reports/compliance` (or `sys/reports/*`).
            Route::new("reports/compliance", &[Read], S::ComplianceReport),
            // The transport renders the metrics; the core authorises and audits the read.
            Route::new("metrics", &[Read], S::Metrics),
            Route::new("rotate", &[Write], S::Rotate).sudo(),
            Route::new("key-status", &[Read], S::KeyStatus).sudo(),
            Route::new("seal", &[Write], S::Seal).sudo(),
            Route::new("capabilities-self", &[Write], S::CapabilitiesSelf),
            Route::new("capabilities", &[Write], S::Capabilities),
            Route::new("internal/ui/mounts/*path", &[Read], S::UiMount).handler_authorises(),
            Route::new("audit", &[Read], S::Audits).sudo(),
            Route::new("audit/*path", &[Write, Delete], S::Audit).sudo(),
            Route::new("audit-hash/*path", &[Write], S::AuditHash),
            Route::new(
                "storage/snapshot",
                &[Read, Write],
                S::Snapshot {
                    force: false,
                    vault: false,
                },
            )
            .sudo(),
            Route::new(
                "storage/snapshot-auto/status",
                &[Read],
                S::SnapshotAutoStatus,
            ),
            Route::new(
                "storage/snapshot-force",
                &[Write],
                S::Snapshot {
                    force: true,
                    vault: false,
                },
            )
            .sudo(),
            Route::new(
                "storage/raft/snapshot",
                &[Read, Write],
                S::Snapshot {
                    force: false,
                    vault: true,
                },
            )
            .sudo(),
            Route::new(
                "storage/raft/snapshot-force",
                &[Write],
                S::Snapshot {
                    force: true,
                    vault: true,
                },
            )
            .sudo(),
        ]
    };

    async fn exists(
        core: &Core,
        _mount: &MountEntry,
        _route: SysRoute,
        args: Args<'_>,
    ) -> CoreResult<bool> {
        core.policies.exists(&core.barrier, args.get(0)).await
    }

    async fn handle(core: &Core, call: Call<'_, SysRoute>) -> CoreResult<Response> {
        use SysRoute as S;
        let p = Params(call.data);
        let op = call.operation;
        let arg = call.args.get(0);
        match call.route {
            S::Health | S::SealStatus | S::Init | S::Unseal | S::Leader => {
                core.sys_open(call.route, op, &p).await
            }
            S::HaStatus => core.ha_status().await,
            S::SnapshotAutoStatus => core.auto_snapshot_status(),
            S::Snapshot { force, vault } => match op {
                Operation::Read => Ok(Response::bare(crate::Bare::Snapshot(
                    core.snapshot(vault).await?,
                ))),
                _ => {
                    let body = call
                        .body
                        .and_then(crate::BodyStream::take)
                        .ok_or_else(|| CoreError::bad("no snapshot in the request body"))?;
                    core.restore_snapshot(body, force).await?;
                    Ok(Response::empty())
                }
            },
            S::StepDown => core.step_down().await,
            S::RekeyInit { .. }
            | S::RekeyUpdate { .. }
            | S::GenerateRoot { .. }
            | S::GenerateRootUpdate { .. } => core.sys_quorum(call.route, op, &p).await,
            S::Mounts => Ok(core.mounts_response()),
            S::Mount => core.sys_mount(arg, op, &p).await,
            S::Auths => Ok(core.auths_response()),
            S::Auth => core.sys_auth(arg, op, &p).await,
            S::Policies { legacy } => {
                let names = core.policies.list(&core.barrier).await?;
                if !legacy {
                    return Ok(Response::data(json!({ "keys": names })));
                }
                // The legacy path answers at the top level too, as OpenBao does.
                let data = json!({ "keys": names, "policies": names });
                Ok(Response::data(data).with_data_at_top_level())
            }
            S::Policy { legacy } => core.sys_policy(arg, !legacy, op, &p).await,
            S::RotateMount => core.sys_rotate_mount(arg).await,
            S::RotationStatus => core.rotation_status().await,
            S::ComplianceReport => core.compliance_report_response(&p).await,
            S::Metrics => Ok(Response::data(json!({}))),
            S::Rotate => core.rotate_keyring().await,
            S::KeyStatus => core.key_status(),
            S::Seal => {
                core.seal().await;
                Ok(Response::empty())
            }
            S::CapabilitiesSelf => {
                let caller = call.caller()?;
                core.capabilities(&caller.entry.policies, &p).await
            }
            S::Capabilities => {
                let token = p
                    .str("token")?
                    .ok_or_else(|| CoreError::bad("missing token"))?;
                let entry = core
                    .tokens
                    .get(&core.barrier, &crate::token::store::hash_token(&token))
                    .await?
                    .ok_or_else(|| CoreError::bad("invalid token"))?;
                core.capabilities(&entry.policies, &p).await
            }
            S::UiMount => core.ui_mount(call.caller()?, arg).await,
            S::Audits => Ok(core.audit_list()),
            S::Audit if op == Operation::Delete => core
                .audit
                .disable(&core.barrier, arg)
                .await
                .map(|()| Response::empty()),
            S::Audit => core.audit_enable(arg, &p).await,
            S::AuditHash => core.audit_hash(arg, &p),
        }
    }
}

impl Core {
    /// `sys/internal/ui/mounts/:path`: the mount serving `path`, for a token that may use
    /// something below it (what every `vault kv` command asks first, to learn the KV
    /// version); 403 otherwise, and for a path no mount serves, as OpenBao answers.
    async fn ui_mount(&self, caller: &Caller, path: &str) -> CoreResult<Response> {
        let path = path.trim_matches('/');
        let denied = |shown: &str| {
            CoreError::Forbidden(format!(
                "preflight capability check returned 403, please ensure client's policies \
                 grant access to path \"{shown}/\""
            ))
        };
        let Some(target) = self.target(path) else {
            return Err(denied(path));
        };
        let mount = target.mount;
        let acl = self
            .policies
            .acl(&self.barrier, &caller.entry.policies)
            .await?;
        if !caller.entry.is_root() && !acl.grants_under(&mount.path) {
            return Err(denied(path));
        }
        let mut data = mount.to_json();
        data["path"] = json!(mount.path);
        Ok(Response::data(data))
    }

    fn mounts_response(&self) -> Response {
        let mut map = Map::new();
        for m in self.mounts.all().iter().filter(|m| !m.is_auth()) {
            map.insert(m.path.clone(), m.to_json());
        }
        map.insert(
            "sys/".into(),
            json!({
                "type": "system", "description": "system endpoints used for control, policy and debugging",
                "accessor": "system", "uuid": "", "local": false, "seal_wrap": true,
                "external_entropy_access": false, "options": null,
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false,
                           "passthrough_request_headers": ["Accept"]},
                "plugin_version": "", "running_plugin_version": "", "running_sha256": "",
            }),
        );
        // Vault answers with the mounts both at the top level and under `data`.
        Response::data(Value::Object(map)).with_data_at_top_level()
    }

    async fn sys_mount(&self, path: &str, op: Operation, p: &Params<'_>) -> CoreResult<Response> {
        if let Some(mount) = path.strip_suffix("/tune") {
            return self.sys_tune(mount, op, p).await;
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
                        MountType::Kv
                    }
                    // Version 1 unless the options say 2, as Vault mounts `kv`.
                    "kv" => {
                        if let Some(version) = options.get("version") {
                            kv_version(version)?;
                        }
                        MountType::Kv
                    }
                    "transit" => MountType::Transit,
                    other => {
                        return Err(CoreError::bad(format!(
                            "plugin not found in the catalog: {other}"
                        )));
                    }
                };
                let path = normalise_mount_path(path)?;
                self.enable_mount(&path, engine, options, p).await
            }
            Operation::Delete => {
                let path = normalise_mount_path(path)?;
                self.mounts
                    .disable(&self.barrier, &self.mount_keys, &path)
                    .await?;
                Ok(Response::empty())
            }
            Operation::Read => {
                let mount = self.mount_at(path, false)?;
                // OpenBao answers with the mount both at the top level and under `data`.
                Ok(Response::data(mount.to_json()).with_data_at_top_level())
            }
            _ => Err(CoreError::UnsupportedOperation),
        }
    }

    /// Mounts `engine` at `path` (normalised) with the request's `description` and `config`.
    async fn enable_mount(
        &self,
        path: &str,
        engine: MountType,
        options: Map<String, Value>,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let description = p.str("description")?.unwrap_or_default();
        let mut config = Map::new();
        match p.0.get("config") {
            Some(Value::Object(given)) => apply_config(&mut config, given)?,
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(CoreError::bad("invalid value for 'config': expected a map"));
            }
        }
        let new = NewMount {
            mount_type: engine,
            description,
            options,
            config,
        };
        self.mounts
            .enable(&self.barrier, &self.mount_keys, path, new)
            .await?;
        Ok(Response::empty())
    }

    /// `sys/auth`: the auth methods, the built-in token store's `token/` among them, keyed
    /// by their path below `auth/`, as OpenBao answers.
    fn auths_response(&self) -> Response {
        let mut map = Map::new();
        let token = crate::mounts::builtin("auth/token/").map(|(_, m)| m);
        let auths = self.mounts.all();
        for m in auths.iter().filter(|m| m.is_auth()).chain(token.as_ref()) {
            let name = m.path.trim_start_matches("auth/");
            map.insert(name.to_owned(), m.to_json());
        }
        Response::data(Value::Object(map)).with_data_at_top_level()
    }

    /// `sys/auth/:path` (and its `tune`): enable, read and disable an auth method. Disabling
    /// one revokes every token its logins issued.
    async fn sys_auth(&self, path: &str, op: Operation, p: &Params<'_>) -> CoreResult<Response> {
        if let Some(mount) = path.strip_suffix("/tune") {
            let mount = format!("auth/{}", mount.trim_start_matches('/'));
            return self.sys_tune(&mount, op, p).await;
        }
        let full = auth_mount_path(path)?;
        match op {
            Operation::Write => {
                let requested = p
                    .str("type")?
                    .ok_or_else(|| CoreError::bad("missing 'type' of the auth method to enable"))?;
                let engine = match requested.as_str() {
                    "userpass" => MountType::Userpass,
                    "approle" => MountType::Approle,
                    "cert" => MountType::Cert,
                    other => {
                        return Err(CoreError::bad(format!(
                            "plugin not found in the catalog: {other}"
                        )));
                    }
                };
                if full == "auth/token/" {
                    return Err(CoreError::bad("path is already in use at token/"));
                }
                let options = p.str_map("options")?.unwrap_or_default();
                self.enable_mount(&full, engine, options, p).await
            }
            Operation::Delete => {
                if full == "auth/token/" {
                    return Err(CoreError::bad(
                        "token credential backend cannot be disabled",
                    ));
                }
                // Tainted first: no login issues a token from then on, and a disable cut
                // short is finished at the next unseal.
                if self.mounts.taint(&self.barrier, &full).await? {
                    self.finish_auth_disable(&full).await?;
                }
                Ok(Response::empty())
            }
            _ => {
                let mount = self.mount_at(&full, true)?;
                Ok(Response::data(mount.to_json()).with_data_at_top_level())
            }
        }
    }

    /// Revokes the tokens the [tainted](crate::mounts::MountEntry::tainted) auth method at
    /// `path` issued, then removes it.
    pub(crate) async fn finish_auth_disable(&self, path: &str) -> CoreResult<()> {
        self.tokens.revoke_issued_below(&self.barrier, path).await?;
        self.mounts
            .disable(&self.barrier, &self.mount_keys, path)
            .await
    }

    /// The mount of the table at `path` exactly: an auth method's (`sys/auth`) or a secrets
    /// engine's (`sys/mounts`).
    fn mount_at(&self, path: &str, auth: bool) -> CoreResult<Arc<MountEntry>> {
        let target = format!("{}/", path.trim_matches('/'));
        let mounts = self.mounts.all();
        let mount = mounts
            .iter()
            .find(|m| m.path == target && m.is_auth() == auth)
            .cloned();
        mount.ok_or_else(|| no_mount(&target))
    }

    /// `sys/mounts/:path/tune` and `sys/auth/:path/tune`: a mount's lease TTLs (0 shows as
    /// the system's), description and options, read and changed as OpenBao does. An auth
    /// method's `path` starts with `auth/` (the Vault CLI's `auth tune` sends
    /// `sys/mounts/auth/:path/tune`).
    async fn sys_tune(&self, path: &str, op: Operation, p: &Params<'_>) -> CoreResult<Response> {
        let auth = path.trim_start_matches('/').strip_prefix("auth/");
        if op == Operation::Write {
            let path = match auth {
                Some(auth) => auth_mount_path(auth)?,
                None => normalise_mount_path(path)?,
            };
            let description = p.str("description")?;
            let options = p.str_map("options")?;
            let mut settings = p.0.clone();
            settings.remove("description");
            self.mounts
                .tune(&self.barrier, &path, |mount| {
                    apply_config(&mut mount.config, &settings)?;
                    if let Some(description) = description {
                        mount.description = description;
                    }
                    for (key, value) in options.unwrap_or_default() {
                        if key == "version" && mount.mount_type == MountType::Kv {
                            // Version 1 may become 2 (`kv enable-versioning`; its secrets
                            // become version 1 of each, as they are kept alike), never the
                            // other way round.
                            if kv_version(&value)? == "1" && mount.is_kv_v2() {
                                return Err(CoreError::bad(
                                    "cannot downgrade mount from version 2",
                                ));
                            }
                        } else if key == "version" && mount.options.get("version") != Some(&value) {
                            return Err(CoreError::bad("the version of a mount cannot change"));
                        }
                        mount.options.insert(key, value);
                    }
                    Ok(())
                })
                .await?;
            return Ok(Response::empty());
        }
        if op != Operation::Read {
            return Err(CoreError::UnsupportedOperation);
        }
        let mount = self.mount_at(path, auth.is_some())?;
        let ttl = |key: &str, system: u64| match mount.config.get(key).and_then(Value::as_u64) {
            Some(0) | None => system,
            Some(seconds) => seconds,
        };
        let mut data = json!({
            "default_lease_ttl": ttl("default_lease_ttl", self.config.default_token_ttl),
            "max_lease_ttl": ttl("max_lease_ttl", self.config.max_token_ttl),
            "force_no_cache": mount.config.get("force_no_cache").and_then(Value::as_bool).unwrap_or(false),
            "description": mount.description,
        });
        if !mount.options.is_empty() {
            data["options"] = json!(mount.options);
        }
        Ok(Response::data(data).with_data_at_top_level())
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
                if acl_path {
                    return Ok(Response::data(json!({ "name": name, "policy": text })));
                }
                let data = json!({ "name": name, "rules": text });
                Ok(Response::data(data).with_data_at_top_level())
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
}

/// A `kv` mount's version as given in its options, when enabled or tuned: "1" or "2".
fn kv_version(given: &Value) -> CoreResult<&str> {
    match given.as_str() {
        Some(version @ ("1" | "2")) => Ok(version),
        _ => Err(CoreError::bad(format!(
            "invalid KV version {given}: it is \"1\" or \"2\""
        ))),
    }
}
