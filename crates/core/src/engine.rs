//! The one interface every engine implements, and the router that reads their route tables.
//!
//! An engine (KV v2, transit, the token store, `sys/`, and every auth method to come)
//! declares its routes once, in a table of [`Route`]s: the path pattern below its mount, the
//! operations it serves, whether it is root-protected (`sudo`), whether a write to it is
//! checked for existence (Vault's create/update split) and whether it answers without a
//! token. Dispatch, authorisation, sudo, metric labels and audit all read that one table.
//!
//! The engines are types implementing [`Engine`], dispatched statically by [`MountType`]
//! (one `match`, in [`with_engine!`]) rather than through `dyn Engine`: each engine names its
//! routes with its own enum, which its handler matches exhaustively, and an async trait
//! method needs no boxing. Adding an engine is one module with one `impl Engine`, one
//! [`MountType`] variant and one line in [`with_engine!`].

use serde_json::{Map, Value};

use crate::core::Caller;
use crate::mounts::MountEntry;
use crate::{Core, CoreError, CoreResult, Operation, Request, Response};

/// Which engine serves a mount. Stored in the mount table by its name; a name Ward does not
/// know is an error, never a default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MountType {
    /// `sys/`: mounts, policies, audit devices, seal and keyring.
    System,
    /// `auth/token/`: the token store.
    Token,
    /// KV, version 2 when the mount's options say so (see [`MountType::KvV1`]).
    Kv,
    /// KV version 1: never stored (a `kv` mount without version 2 in its options is served
    /// by it; [`crate::mounts::MountEntry::engine`]), so that upgrading a mount to version 2
    /// is a change of its options only. Both keep their secrets the same way.
    #[serde(skip)]
    KvV1,
    /// Transit, Ward's KMS.
    Transit,
    /// The `userpass` auth method, mounted under `auth/`.
    Userpass,
    /// The `approle` auth method, mounted under `auth/`.
    Approle,
    /// The `cert` (TLS certificates) auth method, mounted under `auth/`.
    Cert,
}

impl MountType {
    /// The type's name, as the mount table and Vault's `sys/mounts` spell it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Token => "token",
            Self::Kv | Self::KvV1 => "kv",
            Self::Transit => "transit",
            Self::Userpass => "userpass",
            Self::Approle => "approle",
            Self::Cert => "cert",
        }
    }
}

/// Runs `$body` with `$engine` naming the engine type of `$kind`.
macro_rules! with_engine {
    ($kind:expr, $engine:ident => $body:expr) => {
        match $kind {
            $crate::engine::MountType::System => {
                type $engine = $crate::sys::System;
                $body
            }
            $crate::engine::MountType::Token => {
                type $engine = $crate::token::TokenEngine;
                $body
            }
            $crate::engine::MountType::Kv => {
                type $engine = $crate::kv::Kv;
                $body
            }
            $crate::engine::MountType::KvV1 => {
                type $engine = $crate::kv::KvV1;
                $body
            }
            $crate::engine::MountType::Transit => {
                type $engine = $crate::transit::Transit;
                $body
            }
            $crate::engine::MountType::Userpass => {
                type $engine = $crate::userpass::Userpass;
                $body
            }
            $crate::engine::MountType::Approle => {
                type $engine = $crate::approle::Approle;
                $body
            }
            $crate::engine::MountType::Cert => {
                type $engine = $crate::cert_auth::CertAuth;
                $body
            }
        }
    };
}
pub(crate) use with_engine;

/// One route of an engine, relative to its mount.
pub(crate) struct Route<R: 'static> {
    /// Segments separated by `/`: a literal word, `:name` for exactly one non-empty segment,
    /// or a last `*name` for whatever follows (possibly nothing). `""` is the mount itself.
    pub(crate) pattern: &'static str,
    /// The operations served; any other is answered 405.
    pub(crate) ops: &'static [Operation],
    /// What the engine's handler matches on.
    pub(crate) id: R,
    /// Root-protected: the caller needs `sudo` on the path besides the operation's
    /// capability.
    pub(crate) sudo: bool,
    /// A write is a `create` or an `update` depending on whether its target exists
    /// ([`Engine::exists`]); without this, every write is an `update`.
    pub(crate) checks_existence: bool,
    /// Served without a token, while sealed too, and not audited (health, seal status, init,
    /// unseal, leader).
    pub(crate) unauthenticated: bool,
    /// An auth method's login: served without a token, but audited and refused while
    /// sealed, as every other request is.
    pub(crate) login: bool,
    /// Needs a valid token, but no capability on the path itself: the handler decides what
    /// the caller may see (Vault's `sys/internal/ui/mounts/:path`).
    pub(crate) handler_authorises: bool,
}

impl<R: Copy> Route<R> {
    /// A route serving `ops` at `pattern`.
    pub(crate) const fn new(pattern: &'static str, ops: &'static [Operation], id: R) -> Self {
        Self {
            pattern,
            ops,
            id,
            sudo: false,
            checks_existence: false,
            unauthenticated: false,
            login: false,
            handler_authorises: false,
        }
    }

    /// This route, root-protected.
    pub(crate) const fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }

    /// This route, with writes checked for existence.
    pub(crate) const fn checks_existence(mut self) -> Self {
        self.checks_existence = true;
        self
    }

    /// This route, served without a token.
    pub(crate) const fn unauthenticated(mut self) -> Self {
        self.unauthenticated = true;
        self
    }

    /// This route, a login: no token needed (see [`Route::login`]).
    pub(crate) const fn login(mut self) -> Self {
        self.login = true;
        self
    }

    /// This route, authorised by its handler rather than by the path's capabilities.
    pub(crate) const fn handler_authorises(mut self) -> Self {
        self.handler_authorises = true;
        self
    }
}

/// Most captures a pattern has.
const MAX_CAPTURES: usize = 4;

/// The segments a path matched a pattern's `:name` and `*name` with, in pattern order.
#[derive(Clone, Copy, Default)]
pub(crate) struct Args<'a> {
    values: [&'a str; MAX_CAPTURES],
    len: usize,
}

impl<'a> Args<'a> {
    /// The `i`-th capture ("" when the pattern has fewer).
    pub(crate) fn get(&self, i: usize) -> &'a str {
        self.values[..self.len].get(i).copied().unwrap_or("")
    }

    fn push(&mut self, value: &'a str) -> bool {
        match self.values.get_mut(self.len) {
            Some(slot) => {
                *slot = value;
                self.len += 1;
                true
            }
            None => false,
        }
    }
}

/// Matches `rest` (a path below a mount, without leading or trailing `/`) against `pattern`.
fn capture<'a>(pattern: &str, rest: &'a str) -> Option<Args<'a>> {
    let mut args = Args::default();
    let mut remaining = Some(rest).filter(|r| !r.is_empty());
    for word in pattern.split('/').filter(|w| !w.is_empty()) {
        if word.starts_with('*') {
            return args.push(remaining.unwrap_or("")).then_some(args);
        }
        let (segment, tail) = match remaining?.split_once('/') {
            Some((segment, tail)) => (segment, Some(tail)),
            None => (remaining?, None),
        };
        if segment.is_empty() {
            return None;
        }
        if word.starts_with(':') {
            if !args.push(segment) {
                return None;
            }
        } else if word != segment {
            return None;
        }
        remaining = tail;
    }
    remaining.is_none().then_some(args)
}

/// A route found for a path.
pub(crate) struct Found<'a, R: 'static> {
    pub(crate) route: &'static Route<R>,
    pub(crate) args: Args<'a>,
}

/// The first route of `routes` whose pattern `rest` matches.
pub(crate) fn find<'a, R>(routes: &'static [Route<R>], rest: &'a str) -> Option<Found<'a, R>> {
    routes
        .iter()
        .find_map(|route| capture(route.pattern, rest).map(|args| Found { route, args }))
}

/// What a handler gets: who asks, at which mount, which route with which captures.
pub(crate) struct Call<'a, R> {
    /// Who asks; `None` only on an [unauthenticated](Route::unauthenticated) or
    /// [login](Route::login) route.
    pub(crate) caller: Option<&'a Caller>,
    pub(crate) mount: &'a MountEntry,
    /// The route's id.
    pub(crate) route: R,
    /// The route's captures.
    pub(crate) args: Args<'a>,
    pub(crate) operation: Operation,
    /// The request's parameters (its JSON body, or its query for reads).
    pub(crate) data: &'a Map<String, Value>,
    /// The client's address, when the transport knows it.
    pub(crate) remote: Option<std::net::IpAddr>,
    /// The request's second factor, as the transport carried it ([`Request::mfa`]).
    pub(crate) mfa: Option<&'a str>,
    /// The client's certificate chain, when it presented one ([`Request::client_certificates`]).
    pub(crate) client_certificates: Option<&'a [Vec<u8>]>,
    /// The request's streamed body, when the transport streamed one ([`Request::body`]).
    pub(crate) body: Option<&'a crate::BodyStream>,
}

impl<R> Call<'_, R> {
    /// Who asks (a route that needs a token always has one).
    pub(crate) fn caller(&self) -> CoreResult<&Caller> {
        self.caller.ok_or(CoreError::PermissionDenied)
    }
}

/// An engine: a route table and the handlers behind it.
pub(crate) trait Engine {
    /// Names the engine's routes, for its handler to match on.
    type Route: Copy + 'static;

    /// The engine's routes, tried in order.
    const ROUTES: &'static [Route<Self::Route>];

    /// Answers a request to one of [`Self::ROUTES`] with an operation it serves.
    async fn handle(core: &Core, call: Call<'_, Self::Route>) -> CoreResult<Response>;

    /// Whether the target of a write to a route that [checks
    /// existence](Route::checks_existence) exists.
    async fn exists(
        _core: &Core,
        _mount: &MountEntry,
        _route: Self::Route,
        _args: Args<'_>,
    ) -> CoreResult<bool> {
        Ok(true)
    }

    /// The error for a path below the mount that no route matches.
    fn unmatched(mount: &MountEntry, rest: &str, _operation: Operation) -> CoreError {
        CoreError::NotFound(format!(
            "no handler for route \"{}{rest}\". route entry not found.",
            mount.path
        ))
    }

    /// Rewraps the data keys this engine stored under `mount` with older versions of the
    /// mount's key, a batch at a time; returns how many it moved (0: none left).
    async fn rewrap_data_keys(
        _core: &Core,
        _mount: &MountEntry,
        _keys: &crate::mounts::MountKeySet,
    ) -> CoreResult<u64> {
        Ok(0)
    }
}

/// The facts of a path's route that authorisation, audit and the transport need, whatever
/// the engine: not generic, so they can be asked for without knowing the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RouteFacts {
    /// A route matched.
    pub(crate) matched: bool,
    pub(crate) sudo: bool,
    pub(crate) checks_existence: bool,
    pub(crate) unauthenticated: bool,
    pub(crate) login: bool,
}

/// The facts of the route of `rest` in engine `E`'s table.
pub(crate) fn facts<E: Engine>(rest: &str) -> RouteFacts {
    find(E::ROUTES, rest).map_or(RouteFacts::default(), |found| RouteFacts {
        matched: true,
        sudo: found.route.sudo,
        checks_existence: found.route.checks_existence,
        unauthenticated: found.route.unauthenticated,
        login: found.route.login,
    })
}

/// Runs `req` (at `rest` below `mount`) through engine `E`, on the route `found` for it (from
/// [`find`]): 405 for an operation its route does not serve, the engine's own error for a
/// path no route matches.
pub(crate) async fn run<E: Engine>(
    core: &Core,
    caller: Option<&Caller>,
    mount: &MountEntry,
    rest: &str,
    found: Option<Found<'_, E::Route>>,
    req: &Request,
) -> CoreResult<Response> {
    let Some(found) = found else {
        return Err(E::unmatched(mount, rest, req.operation));
    };
    if !found.route.ops.contains(&req.operation) {
        return Err(CoreError::UnsupportedOperation);
    }
    let call = Call {
        caller,
        mount,
        route: found.route.id,
        args: found.args,
        operation: req.operation,
        data: &req.data,
        remote: req.remote_addr,
        mfa: req.mfa.as_deref(),
        client_certificates: req.client_certificates.as_deref(),
        body: req.body.as_ref(),
    };
    E::handle(core, call).await
}

/// The metric label of a request at `rest` below the mount at `prefix`: the pattern of the
/// route it matched, `*name` written `:name` (and left out when it matched nothing), or,
/// when none matched, the words it shares with some pattern's leading literals, then
/// `:unknown` (and `:path` for anything after). Nothing a client chooses becomes a label.
pub(crate) fn template<E: Engine>(prefix: &str, rest: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + rest.len().min(32) + 8);
    out.push_str(prefix);
    if let Some(found) = find(E::ROUTES, rest) {
        let mut captured = found.args.values[..found.args.len].iter();
        for word in found.route.pattern.split('/').filter(|w| !w.is_empty()) {
            match word.strip_prefix('*') {
                Some(_) if captured.next().is_some_and(|c| c.is_empty()) => continue,
                Some(name) => {
                    out.push(':');
                    out.push_str(name);
                }
                None => {
                    if word.starts_with(':') {
                        captured.next();
                    }
                    out.push_str(word);
                }
            }
            out.push('/');
        }
        if out.ends_with('/') {
            out.pop();
        }
        return out;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let known = E::ROUTES
        .iter()
        .map(|route| {
            route
                .pattern
                .split('/')
                .zip(&segments)
                .take_while(|(word, segment)| {
                    !word.starts_with([':', '*']) && !word.is_empty() && word == *segment
                })
                .count()
        })
        .max()
        .unwrap_or(0);
    for word in &segments[..known] {
        out.push_str(word);
        out.push('/');
    }
    out.push_str(":unknown");
    if segments.len() > known + 1 {
        out.push_str("/:path");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_capture_words_and_tails() {
        let args = capture("keys/:name/config", "keys/k1/config").unwrap();
        assert_eq!((args.len, args.get(0)), (1, "k1"));
        assert!(capture("keys/:name/config", "keys/k1").is_none());
        assert!(capture("keys/:name", "keys/k1/config").is_none());
        assert!(capture("keys/:name", "keys").is_none());
        assert_eq!(capture("data/*path", "data/a/b").unwrap().get(0), "a/b");
        assert_eq!(capture("data/*path", "data").unwrap().get(0), "");
        assert!(capture("data/*path", "datum").is_none());
        assert!(capture("", "").is_some());
        assert!(capture("", "x").is_none());
        assert!(capture("x", "").is_none());
        let args = capture("export/:kind/:name/:version", "export/a/b/c").unwrap();
        assert_eq!([args.get(0), args.get(1), args.get(2)], ["a", "b", "c"]);
    }

    #[test]
    fn a_mount_type_ward_does_not_know_is_an_error() {
        for (name, kind) in [("kv", MountType::Kv), ("transit", MountType::Transit)] {
            let parsed: MountType = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(parsed, kind);
            assert_eq!(kind.as_str(), name);
        }
        for unknown in ["kv-v1", "KV", "database", ""] {
            assert!(serde_json::from_value::<MountType>(serde_json::json!(unknown)).is_err());
        }
    }

    #[test]
    fn labels_come_from_the_route_tables() {
        use crate::kv::Kv;
        use crate::sys::System;
        use crate::transit::Transit;
        assert_eq!(
            template::<Kv>("secret/", "data/app/db"),
            "secret/data/:path"
        );
        assert_eq!(template::<Kv>("secret/", "data"), "secret/data");
        assert_eq!(template::<Kv>("secret/", "zz/x"), "secret/:unknown/:path");
        assert_eq!(
            template::<Transit>("t/", "keys/k/rotate"),
            "t/keys/:name/rotate"
        );
        assert_eq!(
            template::<System>("sys/", "policies/acl/dev"),
            "sys/policies/acl/:name"
        );
        assert_eq!(
            template::<System>("sys/", "rotate/zz"),
            "sys/rotate/:unknown"
        );
        assert!(facts::<System>("audit/file").sudo);
        assert!(!facts::<System>("audit-hash/file").sudo);
        assert!(facts::<System>("health").unauthenticated);
        assert!(facts::<Kv>("data/a").checks_existence);
        assert!(!facts::<Kv>("nothing").matched);
    }
}
