//! The [`Core`]: seal state, request authentication and authorisation, and dispatch.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use ward_crypto::Key256;
use ward_policy::Capability;
use ward_store::{Barrier, Storage};

use crate::audit::{AuditBroker, RequestFacts};
use crate::engine::{self, Engine, MountType, with_engine};
use crate::mounts::{MountEntry, MountKeys, MountTable};
use crate::policy_store::PolicyStore;
use crate::seal::Progress;
use crate::token::store::{TokenEntry, TokenStore};
use crate::{CoreError, CoreResult, Operation, Request, Response};

/// Settings the core needs from the server's configuration.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Name of the storage backend, reported by seal-status ("sqlite", "postgresql").
    pub storage_type: String,
    /// Cluster name reported by health and seal-status.
    pub cluster_name: String,
    /// TTL of tokens created without one, in seconds (Vault: 768h).
    pub default_token_ttl: u64,
    /// Longest TTL any token may have, in seconds (Vault: 768h).
    pub max_token_ttl: u64,
    /// The rotation scheduler's settings.
    pub rotation: crate::RotationConfig,
    /// This server as `sys/ha-status` lists it when it is the only one (without high
    /// availability; a cluster lists its members from storage).
    pub this_node: ThisNode,
}

/// Who this server is and where it is reached.
#[derive(Debug, Clone, Default)]
pub struct ThisNode {
    /// Its node id (by default its host name and port).
    pub node_id: String,
    /// The address clients reach it at.
    pub api_addr: String,
    /// The address other servers reach it at.
    pub cluster_addr: String,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            storage_type: "sqlite".into(),
            cluster_name: "ward-cluster".into(),
            default_token_ttl: 768 * 3600,
            max_token_ttl: 768 * 3600,
            rotation: crate::RotationConfig::default(),
            this_node: ThisNode::default(),
        }
    }
}

/// The engine and mount a request goes to.
pub(crate) struct Target {
    pub(crate) kind: MountType,
    pub(crate) mount: Arc<MountEntry>,
}

/// The caller of a request, once authenticated.
pub(crate) struct Caller {
    pub(crate) entry: Arc<TokenEntry>,
    pub(crate) token: crate::Token,
}

/// Ward's core: everything between the transport and storage.
pub struct Core {
    pub(crate) barrier: Barrier,
    pub(crate) config: CoreConfig,
    pub(crate) progress: tokio::sync::Mutex<Progress>,
    pub(crate) root_key: RwLock<Option<Key256>>,
    /// The cluster's id, read from storage at unseal (see `Core::load_cluster_id`).
    pub(crate) cluster_id: RwLock<Option<String>>,
    pub(crate) tokens: TokenStore,
    pub(crate) policies: PolicyStore,
    pub(crate) mounts: MountTable,
    pub(crate) mount_keys: MountKeys,
    pub(crate) transit: crate::transit::TransitCache,
    pub(crate) kv_memo: crate::kv::KvMemo,
    pub(crate) audit: AuditBroker,
    pub(crate) rotation: crate::rotation::Scheduler,
    pub(crate) usage: crate::rotation::usage::UsageTracker,
    /// The other servers sharing the storage, when there are any.
    pub(crate) cluster: std::sync::OnceLock<Arc<dyn ward_store::Cluster>>,
    /// Scheduled snapshots' last outcome.
    pub(crate) auto_snapshots: crate::snapshot::AutoSnapshots,
    /// Delivers webhooks; the transport provides it (the core has no network).
    webhooks: std::sync::OnceLock<Arc<dyn crate::webhook::WebhookSender>>,
    /// The configured seal when it is not Shamir; the transport builds it (an HSM, a KMS).
    pub(crate) seal: std::sync::OnceLock<crate::seals::ConfiguredSeal>,
}

impl Core {
    /// A core over `storage`, sealed.
    pub fn new(storage: Arc<dyn Storage>, config: CoreConfig) -> Self {
        let barrier = Barrier::new(storage);
        Self {
            kv_memo: crate::kv::KvMemo::new(&barrier),
            barrier,
            config,
            progress: tokio::sync::Mutex::new(Progress::default()),
            root_key: RwLock::new(None),
            cluster_id: RwLock::new(None),
            tokens: TokenStore::default(),
            policies: PolicyStore::default(),
            mounts: MountTable::default(),
            mount_keys: MountKeys::default(),
            transit: crate::transit::TransitCache::default(),
            audit: AuditBroker::default(),
            rotation: crate::rotation::Scheduler::default(),
            usage: crate::rotation::usage::UsageTracker::default(),
            cluster: std::sync::OnceLock::new(),
            auto_snapshots: crate::snapshot::AutoSnapshots::default(),
            webhooks: std::sync::OnceLock::new(),
            seal: std::sync::OnceLock::new(),
        }
    }

    /// Gives the core the sender its webhooks go through (the first one given stays).
    pub fn set_webhook_sender(&self, sender: Arc<dyn crate::webhook::WebhookSender>) {
        let _ = self.webhooks.set(sender);
    }

    /// The webhook sender: the transport's, or one that refuses every webhook.
    pub(crate) fn webhook_sender(&self) -> &dyn crate::webhook::WebhookSender {
        match self.webhooks.get() {
            Some(sender) => sender.as_ref(),
            None => &crate::webhook::NoSender,
        }
    }

    /// The configuration this core runs with.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// True when no keyring is loaded.
    pub fn is_sealed(&self) -> bool {
        self.barrier.is_sealed()
    }

    /// Handles an API request.
    pub async fn handle(&self, req: Request) -> CoreResult<Response> {
        self.handle_with_id(req, &uuid::Uuid::new_v4().to_string())
            .await
    }

    /// Handles an API request under `request_id` (the id its audit entries and the
    /// transport's logs carry). The routes that answer without a token (health, seal status,
    /// init, unseal, leader) are answered first, sealed or not, unaudited. With audit devices
    /// enabled, a request that changes something has its request entry written before the
    /// operation runs, and a read has it written together with its response entry; every
    /// response entry is written before this returns. If no device writes an entry, the request fails with
    /// [`CoreError::AuditFailed`]. An auth method's login needs no token, but is refused while
    /// sealed and audited like any other request.
    pub async fn handle_with_id(&self, req: Request, request_id: &str) -> CoreResult<Response> {
        let req = Request {
            path: req.path.trim_matches('/').to_owned(),
            ..req
        };
        let resolve = |path: &str| {
            let target = self.target(path);
            // The route's flags, looked up once for the open `sys/` routes and for logins.
            let route = target
                .as_ref()
                .map_or_else(engine::RouteFacts::default, |t| self.route_facts(t, path));
            (target, route)
        };
        let (mut target, mut route) = resolve(&req.path);
        if route.unauthenticated
            && let Some(Target {
                kind: MountType::System,
                mount,
            }) = &target
        {
            type System = crate::sys::System;
            let rest = mount.relative(&req.path);
            let found = engine::find(<System as Engine>::ROUTES, rest);
            return engine::run::<System>(self, None, mount, rest, found, &req).await;
        }
        if self.is_sealed() {
            return Err(CoreError::Sealed);
        }
        if self.cluster.get().is_some() {
            // What other servers wrote before this request came is in the caches it reads,
            // the mount table included: resolve the path again.
            self.fence().await?;
            (target, route) = resolve(&req.path);
        }
        // A login needs no token: its request goes on without a caller (and is audited).
        let caller = if route.login {
            Ok(None)
        } else {
            self.authenticate(req.token.as_ref(), req.remote_addr)
                .await
                .map(Some)
        };
        // Found once: the audit entries and the engine see the same mount. Audit names only
        // the mounts of the mount table, not the built-in `sys/` and `auth/token/`.
        let mount = target
            .as_ref()
            .filter(|t| !matches!(t.kind, MountType::System | MountType::Token))
            .map(|t| &t.mount);
        let facts = RequestFacts {
            id: request_id,
            request: &req,
            caller: caller.as_ref().ok().and_then(Option::as_ref),
            mount,
        };
        let Some(audit) = self.audit.begin(&facts) else {
            return self.dispatch(caller?.as_ref(), &req, target.as_ref()).await;
        };
        // A read changes nothing, so nothing is carried out that the log could miss: its
        // request entry waits to go out with its response entry, one write instead of two.
        // If they cannot be written, no data leaves.
        let read_entries = if matches!(req.operation, Operation::Read | Operation::List) {
            Some(audit.request_entries(caller.as_ref().err()))
        } else {
            audit.log_request(caller.as_ref().err()).await?;
            None
        };
        let result = match caller {
            Ok(caller) => self.dispatch(caller.as_ref(), &req, target.as_ref()).await,
            Err(e) => Err(e),
        };
        match read_entries {
            Some(requested) => audit.log_read(requested, &result).await?,
            None => audit.log_response(&result).await?,
        }
        result
    }

    /// Whether `path` is served without a token: the open routes of `sys/` (health, seal
    /// status, init, unseal, leader) and the logins of the auth methods mounted.
    pub fn answers_without_token(&self, path: &str) -> bool {
        let path = path.trim_matches('/');
        self.target(path).is_some_and(|t| {
            let facts = self.route_facts(&t, path);
            facts.unauthenticated || facts.login
        })
    }

    /// The facts of the route serving `path` at `target`.
    fn route_facts(&self, target: &Target, path: &str) -> engine::RouteFacts {
        let rest = target.mount.relative(path);
        with_engine!(target.kind, E => engine::facts::<E>(rest))
    }

    /// The engine and mount serving `path`: `sys/` and `auth/token/` are built in, every
    /// other engine is where the mount table says.
    pub(crate) fn target(&self, path: &str) -> Option<Target> {
        if let Some((kind, mount)) = crate::mounts::builtin(path) {
            return Some(Target { kind, mount });
        }
        let mount = self.mounts.find(path)?;
        Some(Target {
            kind: mount.engine(),
            mount,
        })
    }

    /// Authorises and runs a request at `target`; only a login has no caller.
    async fn dispatch(
        &self,
        caller: Option<&Caller>,
        req: &Request,
        target: Option<&Target>,
    ) -> CoreResult<Response> {
        let Some(Target { kind, mount }) = target else {
            // A path nothing serves is a `create`.
            let path = req.path.as_str();
            let caller = caller.ok_or(CoreError::PermissionDenied)?;
            self.authorise(caller, path, req.operation, false, false, &req.data)
                .await?;
            return Err(CoreError::NotFound(format!(
                "no handler for route \"{path}\". route entry not found."
            )));
        };
        with_engine!(*kind, E => self.dispatch_to::<E>(caller, req, mount).await)
    }

    /// Authorises and runs a request below `mount`, served by engine `E`; the route is found
    /// once, for authorisation and for the engine. A login is run without a caller, anything
    /// else needs one.
    async fn dispatch_to<E: Engine>(
        &self,
        caller: Option<&Caller>,
        req: &Request,
        mount: &MountEntry,
    ) -> CoreResult<Response> {
        let rest = mount.relative(&req.path);
        let found = engine::find(E::ROUTES, rest);
        // Vault's existence check decides between the `create` and `update` capabilities.
        let exists = match &found {
            Some(f) if req.operation == Operation::Write && f.route.checks_existence => {
                E::exists(self, mount, f.route.id, f.args).await?
            }
            _ => true,
        };
        let sudo = found.as_ref().is_some_and(|f| f.route.sudo);
        let login = found.as_ref().is_some_and(|f| f.route.login);
        let caller = if login {
            None
        } else {
            let caller = caller.ok_or(CoreError::PermissionDenied)?;
            if !found.as_ref().is_some_and(|f| f.route.handler_authorises) {
                self.authorise(caller, &req.path, req.operation, exists, sudo, &req.data)
                    .await?;
            }
            Some(caller)
        };
        engine::run::<E>(self, caller, mount, rest, found, req).await
    }

    /// Finds and validates the token; spends a use of a limited-use token.
    pub(crate) async fn authenticate(
        &self,
        token: Option<&crate::Token>,
        remote: Option<IpAddr>,
    ) -> CoreResult<Caller> {
        let token = token.ok_or(CoreError::PermissionDenied)?;
        let now = now();
        let (hash, entry) = self
            .usable_token(token.expose(), remote, now)
            .await?
            .ok_or(CoreError::PermissionDenied)?;
        let entry = if entry.num_uses > 0 {
            self.tokens
                .spend_use(&self.barrier, &hash, now, remote)
                .await?
                .ok_or(CoreError::PermissionDenied)?
        } else {
            entry
        };
        Ok(Caller {
            entry,
            token: token.duplicate(),
        })
    }

    /// Whether `token` is, at this moment, a token this server would accept from `remote`.
    /// Spends none of its uses: the transport asks this before it reads a request's body,
    /// and the request itself is authenticated again when it is handled.
    pub async fn token_is_valid(&self, token: &str, remote: Option<IpAddr>) -> bool {
        !self.is_sealed() && matches!(self.usable_token(token, remote, now()).await, Ok(Some(_)))
    }

    /// The hash and stored entry of `token` if it may be used at `now` from `remote`: it
    /// exists, is unexpired, its CIDRs admit `remote`, and every ancestor is alive (a token
    /// dies with them). Spends nothing.
    async fn usable_token(
        &self,
        token: &str,
        remote: Option<IpAddr>,
        now: i64,
    ) -> CoreResult<Option<(String, Arc<TokenEntry>)>> {
        if token.is_empty() || token.len() > 256 {
            return Ok(None);
        }
        let hash = crate::token::store::hash_token(token);
        let Some(entry) = self.tokens.get(&self.barrier, &hash).await? else {
            return Ok(None);
        };
        if !TokenStore::check_usable(&entry, now, remote)
            || !self
                .tokens
                .lineage_alive(&self.barrier, &entry, now)
                .await?
        {
            return Ok(None);
        }
        Ok(Some((hash, entry)))
    }

    /// Whether the caller's policies allow `op` on `path` with the request's parameters
    /// `params` (the deciding rule's `allowed_parameters`, `denied_parameters`,
    /// `required_parameters` and wrapping TTLs apply, as in Vault); root tokens always may.
    async fn authorise(
        &self,
        caller: &Caller,
        path: &str,
        op: Operation,
        exists: bool,
        sudo: bool,
        params: &Map<String, Value>,
    ) -> CoreResult<()> {
        if caller.entry.is_root() {
            return Ok(());
        }
        // The policy handlers normalise the name: authorise the policy they will act on.
        let canonical = PolicyStore::canonical_request_path(path);
        let path = canonical.as_deref().unwrap_or(path);
        let acl = self
            .policies
            .acl(&self.barrier, &caller.entry.policies)
            .await?;
        let allowed = match op {
            Operation::Read => acl.allows_request(path, Capability::Read, params),
            // A LIST names a folder: Vault checks it with its trailing `/`, so that
            // `secret/metadata/app/*` allows listing `secret/metadata/app/`.
            Operation::List => acl.allows_request(&format!("{path}/"), Capability::List, params),
            Operation::Patch => acl.allows_request(path, Capability::Patch, params),
            Operation::Delete => acl.allows_request(path, Capability::Delete, params),
            Operation::Write if exists => acl.allows_request(path, Capability::Update, params),
            Operation::Write => acl.allows_request(path, Capability::Create, params),
        };
        if !allowed || (sudo && !acl.allows(path, Capability::Sudo)) {
            return Err(CoreError::PermissionDenied);
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
