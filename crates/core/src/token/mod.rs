//! The token auth method: `auth/token/*`.

pub(crate) mod expiry;
pub(crate) mod store;

use serde_json::{Value, json};
use ward_api::time::rfc3339_seconds;

use crate::core::{Caller, now};
use crate::engine::{Call, Engine, Route};
use crate::params::Params;
use crate::{AuthInfo, Core, CoreError, CoreResult, Operation, Response};
use store::{Refusal, TokenEntry, hash_token, mint_accessor, mint_token, validate_cidrs};

/// The token store's engine at `auth/token/`.
pub(crate) struct TokenEngine;

/// The routes of the token store.
#[derive(Clone, Copy)]
pub(crate) enum TokenRoute {
    Create { orphan: bool },
    LookupSelf,
    Lookup,
    LookupAccessor,
    RenewSelf,
    Renew,
    RevokeSelf,
    Revoke,
    RevokeOrphan,
    RevokeAccessor,
    Accessors,
}

impl Engine for TokenEngine {
    type Route = TokenRoute;

    const ROUTES: &'static [Route<TokenRoute>] = {
        use Operation::{List, Read, Write};
        use TokenRoute as T;
        &[
            Route::new("create", &[Write], T::Create { orphan: false }),
            Route::new("create-orphan", &[Write], T::Create { orphan: true }),
            Route::new("lookup-self", &[Read, Write], T::LookupSelf),
            Route::new("lookup", &[Read, Write], T::Lookup),
            Route::new("lookup-accessor", &[Write], T::LookupAccessor),
            Route::new("renew-self", &[Write], T::RenewSelf),
            Route::new("renew", &[Write], T::Renew),
            Route::new("revoke-self", &[Write], T::RevokeSelf),
            Route::new("revoke", &[Write], T::Revoke),
            Route::new("revoke-orphan", &[Write], T::RevokeOrphan).sudo(),
            Route::new("revoke-accessor", &[Write], T::RevokeAccessor),
            Route::new("accessors", &[List], T::Accessors).sudo(),
        ]
    };

    async fn handle(core: &Core, call: Call<'_, TokenRoute>) -> CoreResult<Response> {
        use TokenRoute as T;
        let p = Params(call.data);
        let caller = call.caller()?;
        let token_param = |missing: &str| -> CoreResult<String> {
            p.str("token")?.ok_or_else(|| CoreError::bad(missing))
        };
        let accessor_entry = async || {
            let accessor = p
                .str("accessor")?
                .ok_or_else(|| CoreError::bad("missing accessor"))?;
            core.tokens
                .by_accessor(&core.barrier, &accessor)
                .await?
                .ok_or_else(|| CoreError::bad("invalid accessor"))
        };
        match call.route {
            T::Create { orphan } => core.token_create(caller, &p, orphan).await,
            T::LookupSelf => core.lookup_response(&caller.entry, Some(caller.token.expose())),
            T::Lookup => {
                let token = token_param("missing token to look up")?;
                let entry = core.live_token(&token).await?;
                core.lookup_response(&entry, Some(&token))
            }
            T::LookupAccessor => core.lookup_response(&*accessor_entry().await?, None),
            T::RenewSelf => {
                core.token_renew(caller.token.expose(), p.duration("increment")?)
                    .await
            }
            T::Renew => {
                let token = token_param("missing token to renew")?;
                core.token_renew(&token, p.duration("increment")?).await
            }
            T::RevokeSelf => {
                core.tokens
                    .revoke_tree(&core.barrier, &caller.entry.hash)
                    .await?;
                Ok(Response::empty())
            }
            T::Revoke => {
                let token = token_param("missing token to revoke")?;
                core.tokens
                    .revoke_tree(&core.barrier, &hash_token(&token))
                    .await?;
                Ok(Response::empty())
            }
            T::RevokeOrphan => {
                let token = token_param("missing token to revoke")?;
                core.tokens
                    .revoke_orphan(&core.barrier, &hash_token(&token))
                    .await?;
                Ok(Response::empty())
            }
            T::RevokeAccessor => {
                let entry = accessor_entry().await?;
                core.tokens.revoke_tree(&core.barrier, &entry.hash).await?;
                Ok(Response::empty())
            }
            T::Accessors => {
                let keys = core.tokens.accessors(&core.barrier).await?;
                Ok(Response::data(json!({ "keys": keys })))
            }
        }
    }
}

/// What an auth method's login gives the token it issues.
pub(crate) struct LoginToken {
    /// The user's or role's `token_policies`; `default` is added.
    pub(crate) policies: Vec<String>,
    /// Shown as the token's `meta` and the `auth` block's `metadata` (`username`, ...).
    pub(crate) meta: serde_json::Map<String, Value>,
    /// The user or role name: the token's display name is `<mount>-<name>` and its path
    /// `auth/<mount>/login/<name>`, as Vault's; empty (AppRole's logins), `<mount>` and
    /// `auth/<mount>/login`.
    pub(crate) name: String,
    /// The role's `token_ttl` and `token_max_ttl` (0: the mount's, else the server's).
    pub(crate) ttl: u64,
    pub(crate) max_ttl: u64,
    pub(crate) bound_cidrs: Vec<String>,
    /// Uses the token has (0: unlimited), and its explicit max TTL (0: none), as the
    /// role's `token_num_uses` and `token_explicit_max_ttl` say.
    pub(crate) num_uses: u64,
    pub(crate) explicit_max_ttl: u64,
}

impl Core {
    /// Issues the token of a login at `mount` (orphan, renewable, its path
    /// `auth/<mount>/login/<name>`, by which disabling the mount revokes it). Its TTL is the
    /// role's, else the mount's default lease TTL, else the server's; never past the role's
    /// max TTL, the mount's max lease TTL or the server's maximum.
    pub(crate) async fn issue_login_token(
        &self,
        mount: &crate::mounts::MountEntry,
        login: LoginToken,
    ) -> CoreResult<Response> {
        let mount_ttl = |key: &str| {
            mount
                .config
                .get(key)
                .and_then(Value::as_u64)
                .filter(|t| *t > 0)
        };
        let max_ttl = [
            Some(login.max_ttl).filter(|t| *t > 0),
            Some(login.explicit_max_ttl).filter(|t| *t > 0),
            mount_ttl("max_lease_ttl"),
        ]
        .into_iter()
        .flatten()
        .fold(self.config.max_token_ttl, u64::min);
        let ttl = Some(login.ttl)
            .filter(|t| *t > 0)
            .or(mount_ttl("default_lease_ttl"))
            .unwrap_or(self.config.default_token_ttl)
            .min(max_ttl);
        let mut policies = login.policies;
        policies.push("default".into());
        policies.sort();
        policies.dedup();
        let mount_name = mount.path.trim_start_matches("auth/").trim_end_matches('/');
        let token = mint_token()?;
        let now = now();
        let entry = TokenEntry {
            hash: hash_token(&token),
            accessor: mint_accessor()?,
            parent: None,
            policies,
            meta: login.meta,
            display_name: match login.name.as_str() {
                "" => mount_name.replace('/', "-"),
                name => format!("{}-{name}", mount_name.replace('/', "-")),
            },
            num_uses: login.num_uses,
            creation_time: now,
            ttl,
            explicit_max_ttl: login.explicit_max_ttl,
            expire_time: Some(now + clamp(ttl)),
            issue_time: now,
            renewable: true,
            bound_cidrs: login.bound_cidrs,
            path: format!("{}login/{}", mount.path, login.name)
                .trim_end_matches('/')
                .to_owned(),
            orphan: true,
            max_ttl,
            last_renewal: None,
        };
        let entry = self
            .tokens
            .create(&self.barrier, None, |_| Ok(entry))
            .await?;
        Ok(Response {
            auth: Some(auth_info(&entry, token, now)),
            ..Response::default()
        })
    }

    /// Creates a root token (no parent, no expiry), with the given id or a fresh one.
    pub(crate) async fn create_root_token(&self, id: Option<&str>) -> CoreResult<String> {
        let token = match id {
            Some(id) => id.to_owned(),
            None => mint_token()?,
        };
        let entry = TokenEntry {
            hash: hash_token(&token),
            accessor: mint_accessor()?,
            parent: None,
            policies: vec!["root".into()],
            meta: Default::default(),
            display_name: "root".into(),
            num_uses: 0,
            creation_time: now(),
            ttl: 0,
            explicit_max_ttl: 0,
            expire_time: None,
            issue_time: now(),
            renewable: false,
            bound_cidrs: Vec::new(),
            path: "auth/token/root".into(),
            orphan: true,
            max_ttl: 0,
            last_renewal: None,
        };
        self.tokens
            .create(&self.barrier, None, |_| Ok(entry))
            .await?;
        Ok(token)
    }

    /// A token that exists and has not expired, nor any of its ancestors, or 400 "bad
    /// token" as Vault answers.
    async fn live_token(&self, token: &str) -> CoreResult<std::sync::Arc<TokenEntry>> {
        let entry = self.tokens.get(&self.barrier, &hash_token(token)).await?;
        let now = now();
        match entry {
            Some(e)
                if e.expire_time.is_none_or(|t| t > now)
                    && self.tokens.lineage_alive(&self.barrier, &e, now).await? =>
            {
                Ok(e)
            }
            _ => Err(CoreError::bad("bad token")),
        }
    }

    async fn token_create(
        &self,
        caller: &Caller,
        p: &Params<'_>,
        orphan_path: bool,
    ) -> CoreResult<Response> {
        let parent = &caller.entry;
        if p.str("type")?
            .is_some_and(|t| t != "service" && t != "default")
        {
            return Err(CoreError::bad("only service tokens are supported"));
        }
        if p.has("id") {
            return Err(CoreError::bad("custom token ids are not supported"));
        }
        let no_parent = orphan_path || p.bool("no_parent")?.unwrap_or(false);
        if no_parent && !orphan_path && !parent.is_root() {
            return Err(CoreError::bad(
                "root or sudo privileges required to create orphan token",
            ));
        }
        let mut policies = match p.str_list("policies")? {
            Some(list) => {
                let mut out = Vec::new();
                for name in list {
                    out.push(crate::policy_store::PolicyStore::name(&name)?);
                }
                out
            }
            None => parent
                .policies
                .iter()
                .filter(|p| *p != "default")
                .cloned()
                .collect(),
        };
        if !parent.is_root() {
            if policies.iter().any(|p| p == "root") {
                return Err(CoreError::bad(
                    "root tokens may not be created from a non-root token",
                ));
            }
            if let Some(extra) = policies
                .iter()
                .find(|p| *p != "default" && !parent.policies.contains(p))
            {
                return Err(CoreError::bad(format!(
                    "child policies must be subset of parent: \"{extra}\" is not held by the parent"
                )));
            }
        }
        if !p.bool("no_default_policy")?.unwrap_or(false)
            && !policies.iter().any(|p| p == "root" || p == "default")
        {
            policies.push("default".into());
        }
        policies.sort();
        policies.dedup();
        let is_root = policies.iter().any(|p| p == "root");
        let max = self.config.max_token_ttl;
        let explicit_max = p.duration("explicit_max_ttl")?.unwrap_or(0);
        let requested = p.duration("ttl")?.or(p.duration("period")?);
        let mut ttl = match requested {
            Some(t) if t > 0 => t,
            _ if is_root => 0,
            _ => self.config.default_token_ttl,
        };
        if ttl > 0 || !is_root {
            ttl = ttl.min(max);
            if explicit_max > 0 {
                ttl = ttl.min(explicit_max);
            }
        }
        let now = now();
        let bound_cidrs = p.str_list("token_bound_cidrs")?.unwrap_or_default();
        validate_cidrs(&bound_cidrs)?;
        let meta = p.str_map("meta")?.unwrap_or_default();
        let display_name = format!(
            "token{}",
            p.str("display_name")?
                .map(|d| format!("-{d}"))
                .unwrap_or_default()
        );
        let num_uses = p.u64("num_uses")?.unwrap_or(0);
        let renewable = p.bool("renewable")?.unwrap_or(true);
        let token = mint_token()?;
        let accessor = mint_accessor()?;
        let hash = hash_token(&token);
        // Built from the creator as stored now (under its lock): a child never outlives it.
        let build = |creator: Option<&TokenEntry>| {
            let mut ttl = ttl;
            let mut expire_time = (ttl > 0).then(|| now + ttl as i64);
            if !no_parent && let Some(parent_expiry) = creator.and_then(|c| c.expire_time) {
                expire_time = Some(expire_time.map_or(parent_expiry, |t| t.min(parent_expiry)));
                ttl = u64::try_from(expire_time.unwrap_or(now) - now).unwrap_or(0);
            }
            Ok(TokenEntry {
                hash,
                accessor,
                parent: (!no_parent).then(|| parent.hash.clone()),
                policies,
                meta,
                display_name,
                num_uses,
                creation_time: now,
                ttl,
                explicit_max_ttl: explicit_max,
                expire_time,
                issue_time: now,
                renewable: renewable && ttl > 0,
                bound_cidrs,
                path: if no_parent {
                    "auth/token/create-orphan".into()
                } else {
                    "auth/token/create".into()
                },
                orphan: no_parent,
                max_ttl: 0,
                last_renewal: None,
            })
        };
        let entry = self
            .tokens
            .create(&self.barrier, Some(&parent.hash), build)
            .await?;
        Ok(Response {
            auth: Some(auth_info(&entry, token, now)),
            ..Response::default()
        })
    }

    /// Renews `token`: its new expiry is `increment` (or its own TTL) from now, capped by
    /// the longest life it may have counted from its creation (the server's maximum TTL and
    /// its explicit max TTL) and by its ancestors' expiry. The stored entry is changed by
    /// compare-and-set under the token's lock, so a renewal never brings back a token
    /// revoked, used up or expired meanwhile, nor writes back a stale use count.
    async fn token_renew(&self, token: &str, increment: Option<u64>) -> CoreResult<Response> {
        let gone = || CoreError::bad("token not found");
        let hash = hash_token(token);
        let now = now();
        let entry = self
            .tokens
            .get(&self.barrier, &hash)
            .await?
            .ok_or_else(gone)?;
        let lineage_ends = match self.tokens.lineage(&self.barrier, &entry, now).await? {
            store::Lineage::Alive { ends } => ends,
            store::Lineage::Dead => return Err(gone()),
        };
        let max_ttl = self.config.max_token_ttl;
        let mut warnings = Vec::new();
        let renewed = self
            .tokens
            .update(&self.barrier, &hash, now, |entry| {
                if !entry.renewable || entry.expire_time.is_none() {
                    return Err(CoreError::bad("lease is not renewable").into());
                }
                let requested = increment.filter(|i| *i > 0).unwrap_or(entry.ttl);
                let mut max_end = entry.creation_time.saturating_add(clamp(max_ttl));
                for cap in [entry.explicit_max_ttl, entry.max_ttl] {
                    if cap > 0 {
                        max_end = max_end.min(entry.creation_time.saturating_add(clamp(cap)));
                    }
                }
                let mut end = now.saturating_add(clamp(requested));
                warnings.clear();
                if end > max_end {
                    end = max_end;
                    warnings.push(format!(
                        "TTL of \"{requested}s\" exceeded the effective max_ttl of \"{}s\"; TTL value is capped accordingly",
                        u64::try_from(max_end - now).unwrap_or(0)
                    ));
                }
                if let Some(parent_end) = lineage_ends
                    && end > parent_end
                {
                    end = parent_end;
                    warnings.push(
                        "TTL of the token was capped by its parent token's expiry".to_owned(),
                    );
                }
                let end = end.max(now);
                let mut renewed = entry.clone();
                renewed.expire_time = Some(end);
                renewed.last_renewal = Some(now);
                Ok(renewed)
            })
            .await
            .map_err(|refusal| match refusal {
                Refusal::Gone => gone(),
                Refusal::Refused(e) => e,
            })?;
        Ok(Response {
            auth: Some(auth_info(&renewed, token.to_owned(), now)),
            warnings,
            ..Response::default()
        })
    }

    fn lookup_response(&self, e: &TokenEntry, token: Option<&str>) -> CoreResult<Response> {
        let now = now();
        let mut data = json!({
            "accessor": e.accessor,
            "creation_time": e.creation_time,
            "creation_ttl": e.ttl,
            "display_name": e.display_name,
            "entity_id": "",
            "expire_time": e.expire_time.and_then(rfc3339_seconds),
            "explicit_max_ttl": e.explicit_max_ttl,
            "id": token.unwrap_or(""),
            "issue_time": rfc3339_seconds(e.issue_time),
            "meta": if e.meta.is_empty() { Value::Null } else { Value::Object(e.meta.clone()) },
            "num_uses": e.num_uses,
            "orphan": e.orphan,
            "path": e.path,
            "policies": e.policies,
            "renewable": e.renewable,
            "ttl": e.remaining(now),
            "type": "service",
            "bound_cidrs": e.bound_cidrs,
        });
        // Only a renewed token has them, as in OpenBao.
        if let (Some(at), Value::Object(fields)) = (e.last_renewal, &mut data) {
            fields.insert("last_renewal_time".into(), json!(at));
            fields.insert("last_renewal".into(), json!(rfc3339_seconds(at)));
        }
        Ok(Response::data(data))
    }
}

/// Seconds as a signed offset, saturating (a configured TTL never overflows a timestamp).
fn clamp(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

fn auth_info(e: &TokenEntry, token: String, now: i64) -> AuthInfo {
    AuthInfo {
        client_token: token.into(),
        accessor: e.accessor.clone(),
        policies: e.policies.clone(),
        metadata: e.meta.clone(),
        lease_duration: e.remaining(now),
        renewable: e.renewable,
        orphan: e.orphan,
        num_uses: e.num_uses,
    }
}
