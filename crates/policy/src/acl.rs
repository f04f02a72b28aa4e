//! The ACL: the rules of a token's policies merged and indexed for fast checks.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use serde_json::{Map, Value};

use crate::capability::{Capabilities, Capability};
use crate::params::MergedConstraints;
use crate::pattern::{PatternKind, Priority, SegmentPattern, classify};
use crate::policy::{PathRule, Policy};
use crate::segment_trie::SegmentTrie;

/// Maps keyed by path text. The keys come from policies; request paths are only looked up,
/// so a fast hash (randomly seeded per process all the same) is safe here.
pub(crate) type PathMap<V> = HashMap<Box<str>, V, RandomState>;

/// What the merged rules for one pattern grant: capabilities and, only when some rule for
/// the pattern has them, parameter or wrapping-TTL constraints.
#[derive(Debug, Clone)]
struct Grant {
    caps: Capabilities,
    constraints: Option<Box<MergedConstraints>>,
}

impl Grant {
    fn new(rule: &PathRule) -> Grant {
        let caps = rule.capabilities();
        let constraints = if caps.is_denied() {
            None
        } else {
            MergedConstraints::of(rule.parameter_constraints())
        };
        Grant { caps, constraints }
    }

    /// Vault's merge of another rule for the same pattern: a `deny` on either side leaves
    /// only the `deny` (constraints are moot then); otherwise capabilities and constraints
    /// merge.
    fn merge(&mut self, rule: &PathRule) {
        self.caps.merge(rule.capabilities());
        if self.caps.is_denied() {
            self.constraints = None;
            return;
        }
        let other = rule.parameter_constraints();
        if other.is_empty() {
            return;
        }
        match &mut self.constraints {
            Some(constraints) => constraints.merge(other),
            None => self.constraints = MergedConstraints::of(other),
        }
    }

    /// Whether this grant allows `capability` to a request with `params`.
    fn allows(&self, capability: Capability, params: &Map<String, Value>) -> bool {
        self.caps.contains(capability)
            && self
                .constraints
                .as_ref()
                .is_none_or(|constraints| constraints.permits(capability, params))
    }
}

/// The merged rules of a set of policies, indexed so that a check allocates nothing:
/// a hash map of exact paths, a hash map of glob prefixes probed by length (longest
/// first), and the `+` patterns sorted by priority so the first match is the winner.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: PathMap<Grant>,
    prefixes: PathMap<Grant>,
    /// The distinct lengths of `prefixes`' keys, longest first.
    prefix_lengths: Vec<usize>,
    /// Highest priority first; a rule's index is its rank in `segment_trie`.
    segment_rules: Vec<(SegmentPattern, Grant)>,
    segment_trie: SegmentTrie,
}

impl Acl {
    /// Merges the rules of `policies` as Vault's `NewACL` does: rules with the same pattern
    /// (in one policy or several) merge into the union of their capabilities, except that
    /// `deny` on any of them makes the merged rule `deny`; their parameter constraints merge
    /// too (allowed and denied values per name, required names, wrapping TTLs: see
    /// [`Acl::allows_request`]). Different patterns stay separate rules; at check time only
    /// the best-matching one decides.
    ///
    /// If the built-in root policy ([`Policy::root`]) is among `policies`, the result is the
    /// root ACL. (Vault refuses to build an ACL mixing root with other policies; root tokens
    /// only ever carry `root`, so Ward lets root absorb the rest.)
    pub fn new(policies: &[Policy]) -> Acl {
        Acl::from_policies(policies)
    }

    /// [`Acl::new`] for policies held elsewhere (in `Arc`s, a cache…), without cloning them.
    pub fn from_policies<'a, I>(policies: I) -> Acl
    where
        I: IntoIterator<Item = &'a Policy>,
        I::IntoIter: Clone,
    {
        let policies = policies.into_iter();
        if policies.clone().any(Policy::is_root) {
            return Acl::root();
        }
        let mut acl = Acl::default();
        let mut segment_index: HashMap<&str, usize> = HashMap::new();
        for rule in policies.flat_map(|policy| policy.rules()) {
            match classify(rule.pattern()) {
                PatternKind::Exact(path) => merge_into(&mut acl.exact, path, rule),
                PatternKind::Prefix(prefix) => merge_into(&mut acl.prefixes, prefix, rule),
                PatternKind::Segment => match segment_index.get(rule.pattern()) {
                    Some(&index) => acl.segment_rules[index].1.merge(rule),
                    None => {
                        segment_index.insert(rule.pattern(), acl.segment_rules.len());
                        acl.segment_rules
                            .push((SegmentPattern::new(rule.pattern()), Grant::new(rule)));
                    }
                },
            }
        }
        let mut lengths: Vec<usize> = acl.prefixes.keys().map(|key| key.len()).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        acl.prefix_lengths = lengths;
        acl.segment_rules
            .sort_by(|(a, _), (b, _)| b.priority().cmp(&a.priority()));
        for (rank, (pattern, _)) in acl.segment_rules.iter().enumerate() {
            acl.segment_trie.insert(pattern, rank);
        }
        acl
    }

    /// The ACL of the root policy: every capability on every path.
    pub fn root() -> Acl {
        Acl {
            root: true,
            ..Acl::default()
        }
    }

    /// Whether this is the root ACL.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The capabilities on `path` as OpenBao's `sys/capabilities` reports them (it looks the
    /// path up as a LIST request, so this is also what a LIST request gets): an exact rule for
    /// the path, or for the path less one trailing `/`; otherwise the best glob or `+` rule
    /// for the path as given, then for the path less its trailing `/`.
    /// [`Capabilities::ROOT`] for the root ACL, [`Capabilities::NONE`] when no rule matches.
    /// Leading `/`s are ignored.
    pub fn capabilities(&self, path: &str) -> Capabilities {
        if self.root {
            return Capabilities::ROOT;
        }
        self.grant_for_list(path)
            .map_or(Capabilities::NONE, |grant| grant.caps)
    }

    /// The capabilities on `path` for any request other than LIST: the exact rule for the
    /// path if there is one, else the highest-priority glob or `+` rule that matches it, with
    /// no trailing-`/` fallback. Leading `/`s are ignored.
    pub fn capabilities_direct(&self, path: &str) -> Capabilities {
        if self.root {
            return Capabilities::ROOT;
        }
        self.grant_direct(path)
            .map_or(Capabilities::NONE, |grant| grant.caps)
    }

    /// Whether some rule grants anything (not `deny`) on `mount` (a path ending in `/`) or on
    /// a path below it: Vault's `hasMountAccess`, which lets a token that may use something
    /// under a mount read what the mount is (`sys/internal/ui/mounts/:path`, which every
    /// `vault kv` command asks first).
    pub fn grants_under(&self, mount: &str) -> bool {
        let mount = mount.trim_start_matches('/');
        if self.root || !self.capabilities(mount).is_empty() {
            return true;
        }
        let literal = |path: &str, grant: &Grant| path.starts_with(mount) && !grant.caps.is_empty();
        self.exact.iter().any(|(path, grant)| literal(path, grant))
            || self
                .prefixes
                .iter()
                .any(|(path, grant)| literal(path, grant))
            || self
                .segment_rules
                .iter()
                .any(|(pattern, grant)| !grant.caps.is_empty() && pattern.may_match_under(mount))
    }

    /// Whether the rule that applies to `path` grants `capability`: looked up as a LIST
    /// request for [`Capability::List`] (see [`Acl::capabilities`]) and directly for the
    /// others (see [`Acl::capabilities_direct`]). Always false for [`Capability::Deny`],
    /// which is not something a request can be allowed to do.
    ///
    /// This looks at capabilities only; to authorise a request, whose parameters the rule
    /// may constrain, use [`Acl::allows_request`].
    pub fn allows(&self, path: &str, capability: Capability) -> bool {
        match capability {
            Capability::Deny => false,
            Capability::List => self.capabilities(path).contains(capability),
            _ => self.capabilities_direct(path).contains(capability),
        }
    }

    /// Whether a request needing `capability` on `path`, with parameters `params` (a JSON
    /// body's top-level fields, or a read's query parameters), is allowed: the rule that
    /// applies (as for [`Acl::allows`]) must grant `capability`, and the request must meet
    /// that rule's constraints, as Vault's `AllowOperation` checks them:
    ///
    /// - `min_wrapping_ttl` / `max_wrapping_ttl`: Ward has no response wrapping, and Vault
    ///   denies a request that is not wrapped, so the rule denies every request;
    /// - for [`Capability::Read`], [`Capability::Create`], [`Capability::Update`] and
    ///   [`Capability::Patch`] only (not list or delete): `required_parameters` must all be
    ///   present, then, if there are parameters, none may be denied by `denied_parameters`
    ///   and, if `allowed_parameters` has names, each must be allowed by it. Parameter names
    ///   are compared in lower case; `*` as a name means any parameter; values may use a
    ///   leading or trailing `*` glob; a string value is also read as a comma-separated list
    ///   and an array value element by element.
    ///
    /// Always true for the root ACL (except for [`Capability::Deny`]). A rule without
    /// constraints costs nothing more than [`Acl::allows`].
    pub fn allows_request(
        &self,
        path: &str,
        capability: Capability,
        params: &Map<String, Value>,
    ) -> bool {
        if capability == Capability::Deny {
            return false;
        }
        if self.root {
            return true;
        }
        let grant = match capability {
            Capability::List => self.grant_for_list(path),
            _ => self.grant_direct(path),
        };
        grant.is_some_and(|grant| grant.allows(capability, params))
    }

    /// The rule for `path` as a LIST request sees it (see [`Acl::capabilities`]).
    fn grant_for_list(&self, path: &str) -> Option<&Grant> {
        let path = path.trim_start_matches('/');
        if let Some(grant) = self.exact.get(path) {
            return Some(grant);
        }
        let trimmed = path.strip_suffix('/');
        if let Some(grant) = trimmed.and_then(|trimmed| self.exact.get(trimmed)) {
            return Some(grant);
        }
        // Globs and `+` rules see the path as given, trailing `/` included, before the path
        // without it, as in OpenBao 2.7.2. The other order (HashiCorp Vault since 1.15.2)
        // lets `secret/metadata/*` decide a LIST of `secret/metadata/private/` over a `deny`
        // on `secret/metadata/private/*`.
        if let Some(grant) = self.best_non_exact(path) {
            return Some(grant);
        }
        trimmed.and_then(|trimmed| self.best_non_exact(trimmed))
    }

    /// The rule for `path` as any request but LIST sees it (see [`Acl::capabilities_direct`]).
    fn grant_direct(&self, path: &str) -> Option<&Grant> {
        let path = path.trim_start_matches('/');
        self.exact.get(path).or_else(|| self.best_non_exact(path))
    }

    /// The best glob or `+` rule for `path`, as Vault's `CheckAllowedFromNonExactPaths`.
    fn best_non_exact(&self, path: &str) -> Option<&Grant> {
        let prefix_match = self.longest_prefix(path);
        if self.segment_rules.is_empty() {
            return prefix_match.map(|(_, grant)| grant);
        }
        let Some(rank) = self.segment_trie.best_match(path) else {
            return prefix_match.map(|(_, grant)| grant);
        };
        let (pattern, grant) = &self.segment_rules[rank];
        match prefix_match {
            Some((prefix, prefix_grant)) if Priority::of_prefix(prefix) > pattern.priority() => {
                Some(prefix_grant)
            }
            _ => Some(grant),
        }
    }

    /// The longest glob prefix of `path`, probing one hash lookup per distinct prefix length.
    fn longest_prefix<'p>(&self, path: &'p str) -> Option<(&'p str, &Grant)> {
        self.prefix_lengths.iter().find_map(|&len| {
            let candidate = path.get(..len)?;
            self.prefixes.get(candidate).map(|grant| (candidate, grant))
        })
    }
}

fn merge_into(map: &mut PathMap<Grant>, key: &str, rule: &PathRule) {
    match map.get_mut(key) {
        Some(existing) => existing.merge(rule),
        None => {
            map.insert(key.into(), Grant::new(rule));
        }
    }
}
