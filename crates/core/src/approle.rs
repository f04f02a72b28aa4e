//! The `approle` auth method: roles a machine logs in to with the role's `role_id` and a
//! `secret_id` issued for it, as Vault's and OpenBao's.
//!
//! Storage, below the mount's prefix and behind the barrier:
//! - `hmac_key`: the mount's 32-byte HMAC-SHA256 key, made on first use;
//! - `role/<name>`: a role, with its `role_id`;
//! - `role_id/<hmac(role_id)>`: the name of the role with that `role_id`;
//! - `secret_id/<role>/<hmac(secret_id)>`: a secret ID's settings and remaining uses;
//! - `accessor/<role>/<accessor>`: the HMAC under which that accessor's secret ID is stored.
//!
//! Neither a `secret_id` nor a `role_id` is kept in clear outside its role: a login finds
//! them by their keyed hash. A secret ID's uses are counted down by compare-and-set, so that
//! concurrent logins never spend one use twice.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use ward_store::{Expect, Op};

use crate::engine::{Args, Call, Engine, Route};
use crate::mounts::MountEntry;
use crate::params::Params;
use crate::record::{CHANGE_ATTEMPTS, decode, encode};
use crate::token::LoginToken;
use crate::token::store::cidr_contains;
use crate::{Core, CoreError, CoreResult, Operation, Response};

/// The `approle` engine.
pub(crate) struct Approle;

/// The routes of an `approle` mount.
#[derive(Clone, Copy)]
pub(crate) enum ApproleRoute {
    Roles,
    Role,
    RoleId,
    SecretIds,
    CustomSecretId,
    SecretIdLookup,
    SecretIdDestroy,
    AccessorLookup,
    AccessorDestroy,
    Tidy,
    Login,
}

impl Engine for Approle {
    type Route = ApproleRoute;

    const ROUTES: &'static [Route<ApproleRoute>] = {
        use ApproleRoute as A;
        use Operation::{Delete, List, Read, Write};
        &[
            Route::new("role", &[List], A::Roles),
            Route::new("role/:role_name", &[Read, Write, Delete], A::Role).checks_existence(),
            Route::new("role/:role_name/role-id", &[Read, Write], A::RoleId),
            Route::new("role/:role_name/secret-id", &[Write, List], A::SecretIds),
            Route::new(
                "role/:role_name/custom-secret-id",
                &[Write],
                A::CustomSecretId,
            ),
            Route::new(
                "role/:role_name/secret-id/lookup",
                &[Write],
                A::SecretIdLookup,
            ),
            Route::new(
                "role/:role_name/secret-id/destroy",
                &[Write, Delete],
                A::SecretIdDestroy,
            ),
            Route::new(
                "role/:role_name/secret-id-accessor/lookup",
                &[Write],
                A::AccessorLookup,
            ),
            Route::new(
                "role/:role_name/secret-id-accessor/destroy",
                &[Write, Delete],
                A::AccessorDestroy,
            ),
            Route::new("tidy/secret-id", &[Write], A::Tidy),
            Route::new("login", &[Write], A::Login).login(),
        ]
    };

    async fn exists(
        core: &Core,
        mount: &MountEntry,
        _route: ApproleRoute,
        args: Args<'_>,
    ) -> CoreResult<bool> {
        Ok(read_role(core, mount, args.get(0)).await?.is_some())
    }

    async fn handle(core: &Core, call: Call<'_, ApproleRoute>) -> CoreResult<Response> {
        use ApproleRoute as A;
        let p = Params(call.data);
        let (mount, name) = (call.mount, call.args.get(0));
        let role = async || {
            read_role(core, mount, name)
                .await?
                .map(|(role, _)| role)
                .ok_or_else(|| CoreError::NotFound(format!("role \"{name}\" does not exist")))
        };
        match (call.route, call.operation) {
            (A::Roles, _) => list(core, &format!("{}role/", mount.storage_prefix())).await,
            (A::Role, Operation::Read) => match read_role(core, mount, name).await? {
                Some((role, _)) => Ok(Response::data(role.to_json())),
                None => Err(CoreError::NotFound(String::new())),
            },
            (A::Role, Operation::Delete) => {
                delete_role(core, mount, name).await?;
                Ok(Response::empty())
            }
            (A::Role, _) => {
                let key = HmacKey::load(core, mount).await?;
                let role_id = p.str("role_id")?;
                if role_id.as_deref() == Some("") {
                    return Err(CoreError::bad("role_id cannot be empty"));
                }
                change_role(core, mount, &key, name, |stored| {
                    let role = stored.map_or_else(|| new_id().map(Role::new), Ok)?;
                    let role = role.updated(&p)?;
                    Ok(match &role_id {
                        Some(id) => Role {
                            role_id: id.clone(),
                            ..role
                        },
                        None => role,
                    })
                })
                .await?;
                Ok(Response::empty())
            }
            (A::RoleId, Operation::Read) => match read_role(core, mount, name).await? {
                Some((role, _)) => Ok(Response::data(json!({ "role_id": role.role_id }))),
                None => Err(CoreError::NotFound(String::new())),
            },
            (A::RoleId, _) => {
                let id = p
                    .str("role_id")?
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| CoreError::bad("missing role_id"))?;
                role().await?;
                let key = HmacKey::load(core, mount).await?;
                change_role(core, mount, &key, name, |stored| {
                    let role = stored.ok_or_else(|| CoreError::NotFound(String::new()))?;
                    Ok(Role {
                        role_id: id.clone(),
                        ..role
                    })
                })
                .await?;
                Ok(Response::empty())
            }
            (A::SecretIds, Operation::List) => {
                role().await.map_err(|e| CoreError::bad(e.to_string()))?;
                list(core, &accessors_prefix(mount, name)).await
            }
            (A::SecretIds, _) => {
                let secret_id = Zeroizing::new(new_id()?);
                core.approle_store_secret_id(mount, &role().await?, name, secret_id, &p)
                    .await
            }
            (A::CustomSecretId, _) => {
                let secret_id = secret_id_param(&p)?;
                core.approle_store_secret_id(mount, &role().await?, name, secret_id, &p)
                    .await
            }
            (A::SecretIdLookup | A::SecretIdDestroy, _) => {
                role().await?;
                let key = HmacKey::load(core, mount).await?;
                let hmac = key.hash(secret_id_param(&p)?.as_bytes());
                let entry = read_secret_id(core, mount, name, &hmac).await?;
                match (call.route, entry) {
                    (A::SecretIdLookup, Some((entry, _))) => Ok(Response::data(entry.to_json())),
                    (A::SecretIdDestroy, Some((entry, _))) => {
                        delete_secret_id(core, mount, name, &hmac, &entry.accessor).await?;
                        Ok(Response::empty())
                    }
                    _ => Ok(Response::empty()),
                }
            }
            (A::AccessorLookup | A::AccessorDestroy, _) => {
                role().await?;
                let accessor = p
                    .str("secret_id_accessor")?
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| CoreError::bad("missing secret_id_accessor"))?;
                let missing =
                    format!("failed to find accessor entry for secret_id_accessor: \"{accessor}\"");
                let hmac = core
                    .barrier
                    .get(&accessor_key(mount, name, &accessor))
                    .await?;
                let hmac = match hmac {
                    Some(bytes) => String::from_utf8(bytes.expose().to_vec())
                        .map_err(|_| CoreError::corrupt("approle accessor"))?,
                    None if matches!(call.route, A::AccessorLookup) => {
                        return Err(CoreError::NotFound(missing));
                    }
                    None => return Err(CoreError::bad(missing)),
                };
                if matches!(call.route, A::AccessorDestroy) {
                    delete_secret_id(core, mount, name, &hmac, &accessor).await?;
                    return Ok(Response::empty());
                }
                match read_secret_id(core, mount, name, &hmac).await? {
                    Some((entry, _)) => Ok(Response::data(entry.to_json())),
                    None => Err(CoreError::NotFound(missing)),
                }
            }
            (A::Tidy, _) => {
                tidy(core, mount).await?;
                Ok(Response {
                    warnings: vec![
                        "Tidy operation successfully started. Any information from the \
                         operation will be printed to Ward's server logs."
                            .into(),
                    ],
                    outcome: crate::Outcome::Accepted,
                    ..Response::default()
                })
            }
            (A::Login, _) => core.approle_login(mount, &p, call.remote).await,
        }
    }
}

/// A fresh random identifier in UUID form, as Vault's `role_id`s, `secret_id`s and accessors.
fn new_id() -> CoreResult<String> {
    let bytes = ward_crypto::random_array::<16>()?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

fn secret_id_param(p: &Params<'_>) -> CoreResult<Zeroizing<String>> {
    match p.str("secret_id")? {
        Some(id) if !id.is_empty() => Ok(Zeroizing::new(id)),
        _ => Err(CoreError::bad("missing secret_id")),
    }
}

/// The sorted keys below `prefix`; 404 when there are none, as Vault's lists.
async fn list(core: &Core, prefix: &str) -> CoreResult<Response> {
    let keys = core.barrier.list(prefix).await?;
    if keys.is_empty() {
        return Err(CoreError::NotFound(String::new()));
    }
    Ok(Response::data(json!({ "keys": keys })))
}

/// The mount's key for the hashes under which role and secret IDs are stored.
struct HmacKey(ward_crypto::HmacSha256Key);

impl HmacKey {
    /// The mount's key, made and stored on first use.
    async fn load(core: &Core, mount: &MountEntry) -> CoreResult<Self> {
        let key = format!("{}hmac_key", mount.storage_prefix());
        // Of two first uses at once, one key is stored and both read it back.
        for _ in 0..2 {
            if let Some(bytes) = core.barrier.get(&key).await? {
                return Ok(Self(ward_crypto::HmacSha256Key::new(bytes.expose())));
            }
            let fresh = Zeroizing::new(ward_crypto::random_array::<32>()?);
            let op = Op::put(key.clone(), Expect::Absent, fresh.to_vec());
            core.barrier.try_commit(vec![op]).await?;
        }
        Err(CoreError::Contended {
            record: "approle HMAC key",
        })
    }

    /// The hex HMAC of `value`.
    fn hash(&self, value: &[u8]) -> String {
        ward_crypto::lower_hex(&self.0.sign(value))
    }
}

fn role_key(mount: &MountEntry, name: &str) -> String {
    format!("{}role/{name}", mount.storage_prefix())
}

fn role_id_key(mount: &MountEntry, key: &HmacKey, role_id: &str) -> String {
    format!(
        "{}role_id/{}",
        mount.storage_prefix(),
        key.hash(role_id.as_bytes())
    )
}

fn secret_ids_prefix(mount: &MountEntry, role: &str) -> String {
    format!("{}secret_id/{role}/", mount.storage_prefix())
}

fn accessors_prefix(mount: &MountEntry, role: &str) -> String {
    format!("{}accessor/{role}/", mount.storage_prefix())
}

fn accessor_key(mount: &MountEntry, role: &str, accessor: &str) -> String {
    format!("{}{accessor}", accessors_prefix(mount, role))
}

/// Role `name` and the stamp of its entry.
async fn read_role(
    core: &Core,
    mount: &MountEntry,
    name: &str,
) -> CoreResult<Option<(Role, Vec<u8>)>> {
    let Some(entry) = core.barrier.get_entry(&role_key(mount, name)).await? else {
        return Ok(None);
    };
    Ok(Some((
        decode(entry.value.expose(), "approle role")?,
        entry.stamp(),
    )))
}

/// Stores role `name` as `change` makes it from the stored one (`None`: absent), with its
/// `role_id` index, by compare-and-set: of two concurrent changes neither is lost, and no
/// two roles share a `role_id`.
async fn change_role(
    core: &Core,
    mount: &MountEntry,
    key: &HmacKey,
    name: &str,
    change: impl Fn(Option<Role>) -> CoreResult<Role>,
) -> CoreResult<()> {
    let role_key = role_key(mount, name);
    for _ in 0..CHANGE_ATTEMPTS {
        let (stored, expect) = match read_role(core, mount, name).await? {
            Some((role, stamp)) => (Some(role), Expect::Value(stamp)),
            None => (None, Expect::Absent),
        };
        let old_id = stored.as_ref().map(|role| role.role_id.clone());
        let role = change(stored)?;
        role.check()?;
        let mut ops = vec![Op::put(role_key.clone(), expect, encode(&role)?)];
        if old_id.as_deref() != Some(role.role_id.as_str()) {
            let index = role_id_key(mount, key, &role.role_id);
            if core.barrier.get(&index).await?.is_some() {
                return Err(CoreError::bad("role_id already in use"));
            }
            ops.push(Op::put(index, Expect::Absent, name.as_bytes().to_vec()));
            if let Some(old) = old_id {
                ops.push(Op::delete(role_id_key(mount, key, &old), Expect::Any));
            }
        }
        if core.barrier.try_commit(ops).await? {
            return Ok(());
        }
    }
    Err(CoreError::Contended {
        record: "approle role",
    })
}

/// Deletes role `name`, its `role_id` index and every secret ID issued for it.
async fn delete_role(core: &Core, mount: &MountEntry, name: &str) -> CoreResult<()> {
    let Some((role, _)) = read_role(core, mount, name).await? else {
        return Ok(());
    };
    let key = HmacKey::load(core, mount).await?;
    let mut ops = vec![
        Op::delete(role_key(mount, name), Expect::Any),
        Op::delete(role_id_key(mount, &key, &role.role_id), Expect::Any),
    ];
    for prefix in [
        secret_ids_prefix(mount, name),
        accessors_prefix(mount, name),
    ] {
        for child in core.barrier.list(&prefix).await? {
            ops.push(Op::delete(format!("{prefix}{child}"), Expect::Any));
        }
    }
    core.barrier.commit(ops).await?;
    Ok(())
}

/// The secret ID stored under `hmac` for role `role`, and the stamp of its entry.
async fn read_secret_id(
    core: &Core,
    mount: &MountEntry,
    role: &str,
    hmac: &str,
) -> CoreResult<Option<(SecretId, Vec<u8>)>> {
    let key = format!("{}{hmac}", secret_ids_prefix(mount, role));
    let Some(entry) = core.barrier.get_entry(&key).await? else {
        return Ok(None);
    };
    Ok(Some((
        decode(entry.value.expose(), "approle secret ID")?,
        entry.stamp(),
    )))
}

/// Deletes a secret ID and its accessor.
async fn delete_secret_id(
    core: &Core,
    mount: &MountEntry,
    role: &str,
    hmac: &str,
    accessor: &str,
) -> CoreResult<()> {
    core.barrier
        .commit(vec![
            Op::delete(
                format!("{}{hmac}", secret_ids_prefix(mount, role)),
                Expect::Any,
            ),
            Op::delete(accessor_key(mount, role, accessor), Expect::Any),
        ])
        .await?;
    Ok(())
}

/// Deletes every expired secret ID of the mount, every secret ID of a role deleted while it
/// was being issued, and every accessor left without its secret ID. Runs to the end before
/// answering (Vault answers first and tidies behind).
async fn tidy(core: &Core, mount: &MountEntry) -> CoreResult<()> {
    let (now, mut removed) = (now_nanos(), 0usize);
    let prefix = format!("{}secret_id/", mount.storage_prefix());
    for role in core.barrier.list(&prefix).await? {
        let role = role.trim_end_matches('/');
        let role_gone = read_role(core, mount, role).await?.is_none();
        for hmac in core.barrier.list(&secret_ids_prefix(mount, role)).await? {
            if let Some((entry, _)) = read_secret_id(core, mount, role, &hmac).await?
                && (role_gone || entry.expired(now))
            {
                delete_secret_id(core, mount, role, &hmac, &entry.accessor).await?;
                removed += 1;
            }
        }
    }
    let prefix = format!("{}accessor/", mount.storage_prefix());
    for role in core.barrier.list(&prefix).await? {
        let role = role.trim_end_matches('/');
        for accessor in core.barrier.list(&accessors_prefix(mount, role)).await? {
            let key = accessor_key(mount, role, &accessor);
            let Some(hmac) = core.barrier.get(&key).await? else {
                continue;
            };
            let hmac = String::from_utf8_lossy(hmac.expose()).into_owned();
            if read_secret_id(core, mount, role, &hmac).await?.is_none() {
                core.barrier.delete(&key).await?;
            }
        }
    }
    tracing::info!(mount = %mount.path, removed, "approle secret IDs tidied");
    Ok(())
}

/// A stored role. No `Debug`: it holds the `role_id`.
#[derive(Serialize, Deserialize)]
struct Role {
    role_id: String,
    bind_secret_id: bool,
    secret_id_bound_cidrs: Vec<String>,
    secret_id_num_uses: u64,
    secret_id_ttl: u64,
    token_policies: Vec<String>,
    token_ttl: u64,
    token_max_ttl: u64,
    token_bound_cidrs: Vec<String>,
    #[serde(default)]
    token_num_uses: u64,
    #[serde(default)]
    token_explicit_max_ttl: u64,
}

impl Role {
    fn new(role_id: String) -> Self {
        Self {
            role_id,
            bind_secret_id: true,
            secret_id_bound_cidrs: Vec::new(),
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            token_policies: Vec::new(),
            token_ttl: 0,
            token_max_ttl: 0,
            token_bound_cidrs: Vec::new(),
            token_num_uses: 0,
            token_explicit_max_ttl: 0,
        }
    }

    /// This role with the settings `p` gives (`policies` is Vault's older name of
    /// `token_policies`).
    fn updated(mut self, p: &Params<'_>) -> CoreResult<Self> {
        if let Some(bind) = p.bool("bind_secret_id")? {
            self.bind_secret_id = bind;
        }
        if let Some(cidrs) = cidrs(p, "secret_id_bound_cidrs")? {
            self.secret_id_bound_cidrs = cidrs;
        }
        if let Some(uses) = uses(p, "secret_id_num_uses")? {
            self.secret_id_num_uses = uses;
        }
        if let Some(ttl) = p.duration("secret_id_ttl")? {
            self.secret_id_ttl = ttl;
        }
        if let Some(policies) = p.token_policies()? {
            self.token_policies = policies;
        }
        if let Some(ttl) = p.duration("token_ttl")? {
            self.token_ttl = ttl;
        }
        if let Some(max) = p.duration("token_max_ttl")? {
            self.token_max_ttl = max;
        }
        if let Some(cidrs) = cidrs(p, "token_bound_cidrs")? {
            self.token_bound_cidrs = cidrs;
        }
        if let Some(uses) = uses(p, "token_num_uses")? {
            self.token_num_uses = uses;
        }
        if let Some(max) = p.duration("token_explicit_max_ttl")? {
            self.token_explicit_max_ttl = max;
        }
        // Accepted by Vault, not built here yet: refused rather than silently ignored.
        for unsupported in ["token_period", "period"] {
            if p.duration(unsupported)?.is_some_and(|t| t > 0) {
                return Err(CoreError::bad(format!(
                    "{unsupported} (periodic tokens) is not supported by Ward yet"
                )));
            }
        }
        let service = |kind: &str| matches!(kind, "" | "default" | "service" | "default-service");
        if let Some(kind) = p.str("token_type")?.filter(|kind| !service(kind)) {
            return Err(CoreError::bad(format!(
                "token_type {kind:?} is not supported by Ward yet (service tokens only)"
            )));
        }
        Ok(self)
    }

    /// Vault's rules for a role as a whole.
    fn check(&self) -> CoreResult<()> {
        if self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(CoreError::bad(
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ));
        }
        if !self.bind_secret_id
            && self.secret_id_bound_cidrs.is_empty()
            && self.token_bound_cidrs.is_empty()
        {
            return Err(CoreError::bad(
                "at least one constraint should be enabled on the role",
            ));
        }
        Ok(())
    }

    /// OpenBao's answer to a read of the role: never its `role_id`.
    fn to_json(&self) -> Value {
        json!({
            "bind_secret_id": self.bind_secret_id,
            "local_secret_ids": false,
            "secret_id_bound_cidrs": non_empty(&self.secret_id_bound_cidrs),
            "secret_id_num_uses": self.secret_id_num_uses,
            "secret_id_ttl": self.secret_id_ttl,
            "token_bound_cidrs": self.token_bound_cidrs,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": false,
            "token_num_uses": self.token_num_uses,
            "token_period": 0,
            "token_policies": self.token_policies,
            "token_strictly_bind_ip": false,
            "token_ttl": self.token_ttl,
            "token_type": "default",
        })
    }
}

/// `list`, or null when empty (as OpenBao shows an unset CIDR list).
fn non_empty(list: &[String]) -> Value {
    if list.is_empty() {
        Value::Null
    } else {
        json!(list)
    }
}

/// A count of uses: 0 is unlimited, a negative one is refused in Vault's words.
fn uses(p: &Params<'_>, name: &str) -> CoreResult<Option<u64>> {
    if p.0.get(name).and_then(Value::as_i64).is_some_and(|n| n < 0) {
        return Err(CoreError::bad(format!("{name} cannot be negative")));
    }
    p.u64(name)
}

/// A CIDR list parameter, each entry a network or an address.
fn cidrs(p: &Params<'_>, name: &str) -> CoreResult<Option<Vec<String>>> {
    let Some(list) = p.str_list(name)? else {
        return Ok(None);
    };
    let list: Vec<String> = list.into_iter().filter(|c| !c.is_empty()).collect();
    for c in &list {
        if network(c).is_none() {
            return Err(CoreError::bad(format!("invalid CIDR in {name}: {c:?}")));
        }
    }
    Ok(Some(list))
}

/// `cidr` as a network, a bare address as its /32 or /128.
fn network(cidr: &str) -> Option<ipnet::IpNet> {
    cidr.parse().ok().or_else(|| {
        cidr.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// Whether every network of `inner` lies inside one of `outer` (always, when `outer` is
/// empty: no bound to stay within).
fn within(inner: &[String], outer: &[String]) -> bool {
    outer.is_empty()
        || inner.iter().all(|c| {
            let net = network(c);
            outer
                .iter()
                .filter_map(|o| network(o))
                .any(|o| net.is_some_and(|n| o.contains(&n)))
        })
}

/// Whether `remote` is in one of `cidrs` (any address is, when there are none).
fn admitted(cidrs: &[String], remote: Option<std::net::IpAddr>) -> bool {
    cidrs.is_empty() || remote.is_some_and(|ip| cidrs.iter().any(|c| cidr_contains(c, ip)))
}

/// Vault's refusal of a login from outside a CIDR list.
fn outside(remote: Option<std::net::IpAddr>, how: &str) -> CoreError {
    let address = remote.map(|ip| ip.to_string()).unwrap_or_default();
    CoreError::bad(format!("source address {address:?} unauthorized {how}"))
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A stored secret ID, found by its keyed hash. It never holds the secret ID itself.
#[derive(Serialize, Deserialize)]
struct SecretId {
    accessor: String,
    cidr_list: Vec<String>,
    token_bound_cidrs: Vec<String>,
    metadata: Map<String, Value>,
    /// Logins left; 0: unlimited.
    num_uses: u64,
    /// Seconds it lives; 0: forever.
    ttl: u64,
    /// Unix nanoseconds.
    created: i64,
    last_updated: i64,
}

impl SecretId {
    fn expired(&self, now: i64) -> bool {
        self.ttl > 0 && now >= self.expires()
    }

    fn expires(&self) -> i64 {
        let ttl = i64::try_from(self.ttl).unwrap_or(i64::MAX / 2);
        self.created
            .saturating_add(ttl.saturating_mul(1_000_000_000))
    }

    /// OpenBao's answer to a lookup: never the secret ID.
    fn to_json(&self) -> Value {
        let time = |nanos: i64| {
            ward_api::time::rfc3339_nanos(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)),
            )
        };
        json!({
            "cidr_list": self.cidr_list,
            "creation_time": time(self.created),
            "expiration_time": if self.ttl > 0 { time(self.expires()) } else { "0001-01-01T00:00:00Z".into() },
            "last_updated_time": time(self.last_updated),
            "metadata": self.metadata,
            "secret_id_accessor": self.accessor,
            "secret_id_num_uses": self.num_uses,
            "secret_id_ttl": self.ttl,
            "token_bound_cidrs": self.token_bound_cidrs,
        })
    }
}

/// A secret ID's `metadata`: a JSON object of strings, or such an object as a JSON string
/// (how Vault's clients send it).
fn metadata(p: &Params<'_>) -> CoreResult<Map<String, Value>> {
    let invalid = || CoreError::bad("failed to parse metadata: expected a JSON object of strings");
    let map = match p.0.get("metadata") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::String(text)) if text.is_empty() => return Ok(Map::new()),
        Some(Value::String(text)) => {
            serde_json::from_str::<Map<String, Value>>(text).map_err(|_| invalid())?
        }
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(invalid()),
    };
    if !map.values().all(Value::is_string) {
        return Err(invalid());
    }
    Ok(map)
}

impl Core {
    /// Stores `secret_id` for role `name` with the settings `p` gives, within the role's
    /// bounds; answers with it and its accessor.
    async fn approle_store_secret_id(
        &self,
        mount: &MountEntry,
        role: &Role,
        name: &str,
        secret_id: Zeroizing<String>,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let cidr_list = cidrs(p, "cidr_list")?.unwrap_or_default();
        if !within(&cidr_list, &role.secret_id_bound_cidrs) {
            return Err(CoreError::bad(format!(
                "failed to verify subset relationship between CIDR blocks on the role {:?} \
                 and CIDR blocks on the secret ID {cidr_list:?}",
                role.secret_id_bound_cidrs
            )));
        }
        let token_bound_cidrs = cidrs(p, "token_bound_cidrs")?.unwrap_or_default();
        if !within(&token_bound_cidrs, &role.token_bound_cidrs) {
            return Err(CoreError::bad(format!(
                "failed to verify subset relationship between the token CIDR blocks on the \
                 role {:?} and the token CIDR blocks on the secret ID {token_bound_cidrs:?}",
                role.token_bound_cidrs
            )));
        }
        let num_uses = uses(p, "num_uses")?.unwrap_or(role.secret_id_num_uses);
        let role_uses = role.secret_id_num_uses;
        if role_uses > 0 && (num_uses == 0 || num_uses > role_uses) {
            return Err(CoreError::bad(
                "num_uses cannot be higher than the role's secret_id_num_uses",
            ));
        }
        let ttl = p.duration("ttl")?.unwrap_or(role.secret_id_ttl);
        if role.secret_id_ttl > 0 && (ttl == 0 || ttl > role.secret_id_ttl) {
            return Err(CoreError::bad(
                "ttl cannot be longer than the role's secret_id_ttl",
            ));
        }
        let now = now_nanos();
        let entry = SecretId {
            accessor: new_id()?,
            cidr_list,
            token_bound_cidrs,
            metadata: metadata(p)?,
            num_uses,
            ttl,
            created: now,
            last_updated: now,
        };
        let key = HmacKey::load(self, mount).await?;
        let hmac = key.hash(secret_id.as_bytes());
        let stored = self
            .barrier
            .try_commit(vec![
                Op::put(
                    format!("{}{hmac}", secret_ids_prefix(mount, name)),
                    Expect::Absent,
                    encode(&entry)?,
                ),
                Op::put(
                    accessor_key(mount, name, &entry.accessor),
                    Expect::Absent,
                    hmac.into_bytes(),
                ),
            ])
            .await?;
        if !stored {
            return Err(CoreError::bad(
                "failed to store secret_id: SecretID is already registered",
            ));
        }
        Ok(Response::data(json!({
            "secret_id": *secret_id,
            "secret_id_accessor": entry.accessor,
            "secret_id_num_uses": entry.num_uses,
            "secret_id_ttl": entry.ttl,
        })))
    }

    /// `auth/<mount>/login`: a token for the role whose `role_id` is given, with a live
    /// `secret_id` of that role when the role binds one, asked for from inside the secret
    /// ID's and the role's `secret_id` CIDRs. A secret ID's use is spent by compare-and-set
    /// before the token is issued. An unknown role, an unknown, expired or spent secret ID
    /// all get one answer.
    async fn approle_login(
        &self,
        mount: &MountEntry,
        p: &Params<'_>,
        remote: Option<std::net::IpAddr>,
    ) -> CoreResult<Response> {
        let invalid = || CoreError::bad("invalid role or secret ID");
        let role_id = p
            .str("role_id")?
            .filter(|id| !id.is_empty())
            .map(Zeroizing::new)
            .ok_or_else(|| CoreError::bad("missing role_id"))?;
        let key = HmacKey::load(self, mount).await?;
        let Some(name) = self
            .barrier
            .get(&role_id_key(mount, &key, &role_id))
            .await?
        else {
            return Err(invalid());
        };
        let name = String::from_utf8(name.expose().to_vec())
            .map_err(|_| CoreError::corrupt("approle role_id index"))?;
        let role = read_role(self, mount, &name).await?.map(|(role, _)| role);
        let Some(role) = role.filter(|role| {
            ward_crypto::constant_time_eq(role.role_id.as_bytes(), role_id.as_bytes())
        }) else {
            return Err(invalid());
        };
        let mut meta = Map::new();
        let mut bound_cidrs = role.token_bound_cidrs.clone();
        if role.bind_secret_id {
            let secret_id = secret_id_param(p)?;
            let entry = self
                .approle_spend_secret_id(mount, &key, &name, &role, &secret_id, remote)
                .await?;
            meta = entry.metadata;
            if !entry.token_bound_cidrs.is_empty() {
                bound_cidrs = entry.token_bound_cidrs;
            }
        }
        if !role.bind_secret_id && !admitted(&role.secret_id_bound_cidrs, remote) {
            return Err(outside(remote, "by CIDR restrictions on the role"));
        }
        meta.insert("role_name".into(), json!(name));
        let login = LoginToken {
            policies: role.token_policies,
            meta,
            name: String::new(),
            ttl: role.token_ttl,
            max_ttl: role.token_max_ttl,
            bound_cidrs,
            num_uses: role.token_num_uses,
            explicit_max_ttl: role.token_explicit_max_ttl,
        };
        self.issue_login_token(mount, login).await
    }

    /// Spends one use of `secret_id` of role `name` (deleting it with its last use) and
    /// returns it as it was; refuses it when unknown, expired, or asked for from outside
    /// its CIDRs.
    async fn approle_spend_secret_id(
        &self,
        mount: &MountEntry,
        key: &HmacKey,
        name: &str,
        role: &Role,
        secret_id: &str,
        remote: Option<std::net::IpAddr>,
    ) -> CoreResult<SecretId> {
        let hmac = key.hash(secret_id.as_bytes());
        let entry_key = format!("{}{hmac}", secret_ids_prefix(mount, name));
        for _ in 0..CHANGE_ATTEMPTS {
            let Some((mut entry, stamp)) = read_secret_id(self, mount, name, &hmac).await? else {
                return Err(CoreError::bad("invalid role or secret ID"));
            };
            let now = now_nanos();
            if entry.expired(now) {
                delete_secret_id(self, mount, name, &hmac, &entry.accessor).await?;
                return Err(CoreError::bad("invalid role or secret ID"));
            }
            // Before the use is spent, so that a refused login spends none.
            if !admitted(&entry.cidr_list, remote) {
                return Err(outside(
                    remote,
                    "through CIDR restrictions on the secret ID",
                ));
            }
            if !admitted(&role.secret_id_bound_cidrs, remote) {
                return Err(outside(remote, "by CIDR restrictions on the role"));
            }
            let ops = match entry.num_uses {
                0 => return Ok(entry),
                1 => vec![
                    Op::delete(entry_key.clone(), Expect::Value(stamp)),
                    Op::delete(accessor_key(mount, name, &entry.accessor), Expect::Any),
                ],
                left => {
                    entry.num_uses = left - 1;
                    entry.last_updated = now;
                    let op = Op::put(entry_key.clone(), Expect::Value(stamp), encode(&entry)?);
                    entry.num_uses = left;
                    vec![op]
                }
            };
            if self.barrier.try_commit(ops).await? {
                return Ok(entry);
            }
        }
        Err(CoreError::Contended {
            record: "approle secret ID",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_within_bounds() {
        let outer = vec!["10.0.0.0/8".to_owned()];
        assert!(within(&["10.1.0.0/16".into(), "10.2.3.4".into()], &outer));
        assert!(!within(&["11.0.0.0/16".into()], &outer));
        assert!(!within(&["0.0.0.0/0".into()], &outer));
        assert!(within(&["0.0.0.0/0".into()], &[]));
    }

    #[test]
    fn ids_are_random_uuids() {
        let (a, b) = (new_id().unwrap(), new_id().unwrap());
        assert_ne!(a, b);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 4);
    }
}
