//! The ACL: the rules of a token's policies merged and indexed for fast checks.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::capability::{Capabilities, Capability};
use crate::pattern::{PatternKind, Priority, SegmentPattern, classify};
use crate::policy::Policy;
use crate::segment_trie::SegmentTrie;

/// Maps keyed by path text. The keys come from policies; request paths are only looked up,
/// so a fast hash (randomly seeded per process all the same) is safe here.
pub(crate) type PathMap<V> = HashMap<Box<str>, V, RandomState>;

/// The merged rules of a set of policies, indexed so that a check allocates nothing:
/// a hash map of exact paths, a hash map of glob prefixes probed by length (longest
/// first), and the `+` patterns sorted by priority so the first match is the winner.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: PathMap<Capabilities>,
    prefixes: PathMap<Capabilities>,
    /// The distinct lengths of `prefixes`' keys, longest first.
    prefix_lengths: Vec<usize>,
    /// Highest priority first; a rule's index is its rank in `segment_trie`.
    segment_rules: Vec<(SegmentPattern, Capabilities)>,
    segment_trie: SegmentTrie,
}

impl Acl {
    /// Merges the rules of `policies` as Vault's `NewACL` does: rules with the same pattern
    /// (in one policy or several) merge into the union of their capabilities, except that
    /// `deny` on any of them makes the merged rule `deny`. Different patterns stay separate
    /// rules; at check time only the best-matching one decides.
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
            let caps = rule.capabilities();
            match classify(rule.pattern()) {
                PatternKind::Exact(path) => merge_into(&mut acl.exact, path, caps),
                PatternKind::Prefix(prefix) => merge_into(&mut acl.prefixes, prefix, caps),
                PatternKind::Segment => match segment_index.get(rule.pattern()) {
                    Some(&index) => acl.segment_rules[index].1.merge(caps),
                    None => {
                        segment_index.insert(rule.pattern(), acl.segment_rules.len());
                        acl.segment_rules
                            .push((SegmentPattern::new(rule.pattern()), caps));
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

    /// The capabilities on `path` as Vault's `sys/capabilities` reports them (Vault looks the
    /// path up as a LIST request, so this is also what a LIST request gets): an exact rule for
    /// the path, or for the path less one trailing `/`; otherwise the best glob or `+` rule
    /// for the path less its trailing `/`, then for the path as given. [`Capabilities::ROOT`]
    /// for the root ACL, [`Capabilities::NONE`] when no rule matches.
    /// Leading `/`s are ignored.
    pub fn capabilities(&self, path: &str) -> Capabilities {
        if self.root {
            return Capabilities::ROOT;
        }
        let path = path.trim_start_matches('/');
        if let Some(caps) = self.exact.get(path) {
            return *caps;
        }
        let trimmed = path.strip_suffix('/');
        if let Some(caps) = trimmed.and_then(|trimmed| self.exact.get(trimmed)) {
            return *caps;
        }
        if let Some(caps) = trimmed.and_then(|trimmed| self.best_non_exact(trimmed)) {
            return caps;
        }
        self.best_non_exact(path).unwrap_or(Capabilities::NONE)
    }

    /// The capabilities on `path` for any request other than LIST: the exact rule for the
    /// path if there is one, else the highest-priority glob or `+` rule that matches it, with
    /// no trailing-`/` fallback. Leading `/`s are ignored.
    pub fn capabilities_direct(&self, path: &str) -> Capabilities {
        if self.root {
            return Capabilities::ROOT;
        }
        let path = path.trim_start_matches('/');
        if let Some(caps) = self.exact.get(path) {
            return *caps;
        }
        self.best_non_exact(path).unwrap_or(Capabilities::NONE)
    }

    /// Whether the rule that applies to `path` grants `capability`: looked up as a LIST
    /// request for [`Capability::List`] (see [`Acl::capabilities`]) and directly for the
    /// others (see [`Acl::capabilities_direct`]). Always false for [`Capability::Deny`],
    /// which is not something a request can be allowed to do.
    pub fn allows(&self, path: &str, capability: Capability) -> bool {
        match capability {
            Capability::Deny => false,
            Capability::List => self.capabilities(path).contains(capability),
            _ => self.capabilities_direct(path).contains(capability),
        }
    }

    /// The best glob or `+` rule for `path`, as Vault's `CheckAllowedFromNonExactPaths`.
    fn best_non_exact(&self, path: &str) -> Option<Capabilities> {
        let prefix_match = self.longest_prefix(path);
        if self.segment_rules.is_empty() {
            return prefix_match.map(|(_, caps)| caps);
        }
        let Some(rank) = self.segment_trie.best_match(path) else {
            return prefix_match.map(|(_, caps)| caps);
        };
        let (pattern, caps) = &self.segment_rules[rank];
        match prefix_match {
            Some((prefix, prefix_caps)) if Priority::of_prefix(prefix) > pattern.priority() => {
                Some(prefix_caps)
            }
            _ => Some(*caps),
        }
    }

    /// The longest glob prefix of `path`, probing one hash lookup per distinct prefix length.
    fn longest_prefix<'p>(&self, path: &'p str) -> Option<(&'p str, Capabilities)> {
        self.prefix_lengths.iter().find_map(|&len| {
            let candidate = path.get(..len)?;
            self.prefixes.get(candidate).map(|caps| (candidate, *caps))
        })
    }
}

fn merge_into(map: &mut PathMap<Capabilities>, key: &str, caps: Capabilities) {
    match map.get_mut(key) {
        Some(existing) => existing.merge(caps),
        None => {
            map.insert(key.into(), caps);
        }
    }
}
