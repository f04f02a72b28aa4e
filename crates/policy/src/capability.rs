//! Capabilities: the verbs a policy grants on a path, and a compact set of them.

use std::fmt;
use std::str::FromStr;

/// One capability a policy rule can name, spelled as in Vault's policy language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// `create` (POST/PUT to a path that does not exist yet).
    Create,
    /// `read` (GET).
    Read,
    /// `update` (POST/PUT to an existing path; also renew/revoke/rollback).
    Update,
    /// `patch` (PATCH).
    Patch,
    /// `delete` (DELETE).
    Delete,
    /// `list` (LIST).
    List,
    /// `sudo`: access to root-protected paths, on top of the operation's own capability.
    Sudo,
    /// `deny`: takes precedence over every other capability, including `sudo`.
    Deny,
}

impl Capability {
    /// Every capability, in the order Vault's documentation lists them.
    pub const ALL: [Capability; 8] = [
        Capability::Create,
        Capability::Read,
        Capability::Update,
        Capability::Patch,
        Capability::Delete,
        Capability::List,
        Capability::Sudo,
        Capability::Deny,
    ];

    /// The name used in policies and in the `sys/capabilities` API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::Create => "create",
            Capability::Read => "read",
            Capability::Update => "update",
            Capability::Patch => "patch",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Sudo => "sudo",
            Capability::Deny => "deny",
        }
    }

    /// Parses a capability name exactly as Vault does: lowercase, no surrounding spaces.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|cap| cap.as_str() == name)
    }

    const fn bit(self) -> u16 {
        match self {
            Capability::Create => 1 << 0,
            Capability::Read => 1 << 1,
            Capability::Update => 1 << 2,
            Capability::Patch => 1 << 3,
            Capability::Delete => 1 << 4,
            Capability::List => 1 << 5,
            Capability::Sudo => 1 << 6,
            Capability::Deny => 1 << 7,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Capability::from_str`]: the name is not a capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown capability {0:?} (expected one of create, read, update, patch, delete, list, sudo, deny)"
)]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Capability::from_name(name).ok_or_else(|| UnknownCapability(name.to_owned()))
    }
}

/// A set of capabilities as a bitset, plus the `root` marker that only the root policy carries.
///
/// `deny` is kept exclusive the way Vault keeps it: [`Capabilities::insert`] of `deny` clears
/// everything else, and inserting anything into a denied set leaves it denied.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u16);

/// The bit that marks the root policy's unlimited set; never produced by a policy rule.
const ROOT_BIT: u16 = 1 << 15;
const DENY_BIT: u16 = Capability::Deny.bit();

/// Names in the order the `sys/capabilities` API returns them: Vault sorts them as strings.
const SORTED_FOR_API: [Capability; 7] = [
    Capability::Create,
    Capability::Delete,
    Capability::List,
    Capability::Patch,
    Capability::Read,
    Capability::Sudo,
    Capability::Update,
];

impl Capabilities {
    /// No capability at all: what an unmatched path gets (and Vault reports as `["deny"]`).
    pub const NONE: Capabilities = Capabilities(0);
    /// An explicit `deny`.
    pub const DENY: Capabilities = Capabilities(DENY_BIT);
    /// The root policy's set: allows everything, reported as `["root"]`.
    pub const ROOT: Capabilities = Capabilities(ROOT_BIT);

    /// Builds a set from a list, with `deny` winning over anything else in it.
    pub fn from_slice(caps: &[Capability]) -> Capabilities {
        let mut set = Capabilities::NONE;
        for cap in caps {
            set.insert(*cap);
        }
        set
    }

    /// Adds one capability; `deny` replaces the whole set and a denied set stays denied.
    pub fn insert(&mut self, cap: Capability) {
        self.merge(Capabilities(cap.bit()));
    }

    /// Merges another rule's set for the same pattern, as Vault does across policies:
    /// `deny` on either side wins, otherwise the union.
    pub fn merge(&mut self, other: Capabilities) {
        if self.is_root() || other.is_root() {
            self.0 = ROOT_BIT;
        } else if self.is_denied() || other.is_denied() {
            self.0 = DENY_BIT;
        } else {
            self.0 |= other.0;
        }
    }

    /// Whether this set grants `cap`. The root set grants every capability except `deny`; a
    /// denied set grants nothing; asking whether a set grants `deny` tells whether it is denied.
    pub const fn contains(self, cap: Capability) -> bool {
        if self.0 & ROOT_BIT != 0 {
            return !matches!(cap, Capability::Deny);
        }
        self.0 & cap.bit() != 0
    }

    /// Whether the set carries an explicit `deny`.
    pub const fn is_denied(self) -> bool {
        self.0 & DENY_BIT != 0
    }

    /// Whether this is the root policy's unlimited set.
    pub const fn is_root(self) -> bool {
        self.0 & ROOT_BIT != 0
    }

    /// Whether the set grants nothing (empty or denied).
    pub const fn is_empty(self) -> bool {
        self.0 == 0 || self.is_denied()
    }

    /// The granted capabilities (never `deny`; for root, every grantable capability).
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |cap| *cap != Capability::Deny && self.contains(*cap))
    }

    /// The list the `sys/capabilities` API returns, exactly as Vault builds it: `["root"]` for
    /// the root policy, `["deny"]` when denied or when nothing is granted, otherwise the
    /// granted names sorted as strings (e.g. `["create", "read"]`).
    pub fn as_strs(self) -> Vec<&'static str> {
        if self.is_root() {
            return vec!["root"];
        }
        if self.is_empty() {
            return vec!["deny"];
        }
        SORTED_FOR_API
            .into_iter()
            .filter(|cap| self.contains(*cap))
            .map(Capability::as_str)
            .collect()
    }
}

impl From<Capability> for Capabilities {
    fn from(cap: Capability) -> Self {
        Capabilities(cap.bit())
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = Capabilities::NONE;
        for cap in iter {
            set.insert(cap);
        }
        set
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_strs()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for cap in Capability::ALL {
            assert_eq!(cap.as_str().parse::<Capability>(), Ok(cap));
        }
        assert!("Read".parse::<Capability>().is_err());
        assert!("write".parse::<Capability>().is_err());
        assert!("root".parse::<Capability>().is_err());
    }

    #[test]
    fn deny_is_exclusive_in_either_order() {
        let a = Capabilities::from_slice(&[Capability::Read, Capability::Deny]);
        let b = Capabilities::from_slice(&[Capability::Deny, Capability::Read]);
        assert_eq!(a, Capabilities::DENY);
        assert_eq!(b, Capabilities::DENY);
        assert!(!a.contains(Capability::Read));
        assert!(a.contains(Capability::Deny));
    }

    #[test]
    fn api_strings_are_sorted_like_vault() {
        let caps = Capabilities::from_slice(&[
            Capability::Update,
            Capability::Read,
            Capability::Sudo,
            Capability::Create,
            Capability::List,
            Capability::Delete,
            Capability::Patch,
        ]);
        assert_eq!(
            caps.as_strs(),
            [
                "create", "delete", "list", "patch", "read", "sudo", "update"
            ]
        );
        assert_eq!(Capabilities::NONE.as_strs(), ["deny"]);
        assert_eq!(Capabilities::DENY.as_strs(), ["deny"]);
        assert_eq!(Capabilities::ROOT.as_strs(), ["root"]);
    }

    #[test]
    fn root_grants_everything_but_deny() {
        for cap in Capability::ALL {
            assert_eq!(Capabilities::ROOT.contains(cap), cap != Capability::Deny);
        }
        assert_eq!(Capabilities::ROOT.iter().count(), 7);
    }
}
