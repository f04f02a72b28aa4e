//! Path matching, read as the spec: Vault's "Policies" page, example by example.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::acl;
use ward_policy::{Acl, Capabilities, Capability, Policy};

fn caps(acl: &Acl, path: &str) -> Vec<&'static str> {
    acl.capabilities(path).as_strs()
}

#[test]
fn exact_path_matches_only_itself() {
    // "Permit reading only secret/foo. An attached token cannot read secret/food or
    // secret/foo/bar."
    let acl = acl(&[r#"path "secret/foo" { capabilities = ["read"] }"#]);
    assert!(acl.allows("secret/foo", Capability::Read));
    assert!(!acl.allows("secret/food", Capability::Read));
    assert!(!acl.allows("secret/foo/bar", Capability::Read));
    assert!(!acl.allows("secret/foo", Capability::Update));
}

#[test]
fn trailing_star_is_a_prefix_glob() {
    // "Permit reading everything under secret/bar: secret/bar/zip, secret/bar/zip/zap, but
    // not secret/bars/zip." and "everything prefixed with zip-: secret/zip-zap or
    // secret/zip-zap/zong, but not secret/zip/zap".
    let acl = acl(&[r#"
        path "secret/bar/*" { capabilities = ["read"] }
        path "secret/zip-*" { capabilities = ["read"] }
    "#]);
    for allowed in [
        "secret/bar/zip",
        "secret/bar/zip/zap",
        "secret/zip-zap",
        "secret/zip-zap/zong",
    ] {
        assert!(acl.allows(allowed, Capability::Read), "{allowed}");
    }
    for refused in [
        "secret/bars/zip",
        "secret/zip/zap",
        "secret/bar",
        "secret/zip",
    ] {
        assert!(!acl.allows(refused, Capability::Read), "{refused}");
    }
}

#[test]
fn plus_matches_exactly_one_segment() {
    // "Permit reading the teamb path under any top-level path under secret/" and
    // "secret/foo/bar/teamb, secret/bar/foo/teamb, etc."
    let acl = acl(&[r#"
        path "secret/+/teamb" { capabilities = ["read"] }
        path "secret/+/+/teamb" { capabilities = ["update"] }
    "#]);
    assert_eq!(caps(&acl, "secret/foo/teamb"), ["read"]);
    assert_eq!(caps(&acl, "secret/foo/bar/teamb"), ["update"]);
    assert_eq!(caps(&acl, "secret/bar/foo/teamb"), ["update"]);
    assert_eq!(caps(&acl, "secret/teamb"), ["deny"]);
    assert_eq!(caps(&acl, "secret/a/b/c/teamb"), ["deny"]);
    assert_eq!(caps(&acl, "secret/foo/teamb/x"), ["deny"]);
    assert_eq!(caps(&acl, "secret/foo/teambx"), ["deny"]);
}

#[test]
fn plus_combines_with_a_trailing_star() {
    let acl = acl(&[r#"
        path "secret/+/config*" { capabilities = ["read"] }
        path "+/*" { capabilities = ["list"] }
    "#]);
    assert_eq!(caps(&acl, "secret/app/config"), ["read"]);
    assert_eq!(caps(&acl, "secret/app/config-prod/deep"), ["read"]);
    assert_eq!(caps(&acl, "secret/app/other"), ["list"]);
    assert_eq!(caps(&acl, "kv/anything/at/all"), ["list"]);
    assert_eq!(caps(&acl, "toplevel"), ["deny"]);
}

#[test]
fn exact_match_beats_every_glob() {
    let acl = acl(&[r#"
        path "secret/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }
        path "secret/super-secret" { capabilities = ["deny"] }
        path "secret/+" { capabilities = ["read"] }
        path "secret/public" { capabilities = ["list"] }
    "#]);
    assert_eq!(caps(&acl, "secret/super-secret"), ["deny"]);
    assert_eq!(caps(&acl, "secret/public"), ["list"]);
    // secret/+ outranks secret/* (rule 2), and it alone decides: no union with secret/*.
    assert_eq!(caps(&acl, "secret/other"), ["read"]);
    assert_eq!(
        caps(&acl, "secret/a/b"),
        ["create", "delete", "list", "patch", "read", "update"]
    );
}

/// Each rule of the priority list, with the examples from Vault's docs and source: the
/// higher-priority pattern grants `read`, the other `update`, and only `read` may show.
#[test]
fn priority_rules_pick_one_pattern_alone() {
    let cases = [
        // Rule 1: the first wildcard later wins.
        ("foo/a*", "foo/+", "foo/ab"),
        ("foo/bar/+/baz", "foo/+/bar/baz", "foo/bar/bar/baz"),
        ("secret/team-a/*", "secret/+/*", "secret/team-a/x"),
        // Rule 2: not ending in `*` wins.
        ("foo/+/bar", "foo/+/ba*", "foo/x/bar"),
        ("foo/+", "foo/*", "foo/x"),
        // Rule 3: fewer `+` wins ("secret/*" over "secret/+/+/foo/*").
        ("secret/*", "secret/+/+/foo/*", "secret/a/b/foo/c"),
        ("foo/bar/+/baz/*", "foo/bar/+/+/*", "foo/bar/x/baz/y"),
        // Rule 4: longer wins.
        ("foo/+/bar/ba*", "foo/+/bar/b*", "foo/x/bar/baz"),
        ("secret/fo*", "secret/f*", "secret/foo"),
        // Rule 5: lexically greater wins when all else ties ('a' sorts after '+').
        ("+/a/+", "+/+/a", "z/a/a"),
    ];
    for (winner, loser, path) in cases {
        // Order in the text must not matter, nor which policy holds which.
        for texts in [
            vec![format!(
                "path \"{winner}\" {{ capabilities = [\"read\"] }}\npath \"{loser}\" {{ capabilities = [\"update\"] }}"
            )],
            vec![
                format!("path \"{loser}\" {{ capabilities = [\"update\"] }}"),
                format!("path \"{winner}\" {{ capabilities = [\"read\"] }}"),
            ],
        ] {
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            let acl = acl(&texts);
            assert_eq!(
                caps(&acl, path),
                ["read"],
                "{winner} should beat {loser} on {path}"
            );
        }
    }
}

#[test]
fn rule_5_only_decides_where_both_patterns_match() {
    let acl = acl(&[r#"
        path "+/a/+" { capabilities = ["read"] }
        path "+/+/a" { capabilities = ["update"] }
    "#]);
    assert_eq!(caps(&acl, "z/a/a"), ["read"]);
    assert_eq!(caps(&acl, "z/a/b"), ["read"]);
    assert_eq!(caps(&acl, "z/b/a"), ["update"]);
}

#[test]
fn deny_on_the_winning_pattern_overrides_sudo_and_everything() {
    let acl = acl(&[
        r#"path "sys/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }"#,
        r#"path "sys/seal" { capabilities = ["deny"] }"#,
        r#"path "sys/seal" { capabilities = ["update", "sudo"] }"#,
    ]);
    for cap in Capability::ALL {
        assert!(!acl.allows("sys/seal", cap), "{cap} on sys/seal");
    }
    assert_eq!(caps(&acl, "sys/seal"), ["deny"]);
    assert!(acl.allows("sys/mounts", Capability::Sudo));
}

#[test]
fn same_pattern_across_policies_is_a_union() {
    let acl = acl(&[
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
        r#"path "secret/data/app/*" { capabilities = ["create", "update"] }"#,
        r#"path "secret/data/app/*" { capabilities = ["list"] }"#,
    ]);
    assert_eq!(
        caps(&acl, "secret/data/app/db"),
        ["create", "list", "read", "update"]
    );
}

#[test]
fn same_pattern_twice_in_one_policy_merges_too() {
    let acl = acl(&[r#"
        path "a/+/c" { capabilities = ["read"] }
        path "a/+/c" { capabilities = ["update"] }
        path "x" { capabilities = ["read"] }
        path "x" { capabilities = ["deny"] }
    "#]);
    assert_eq!(caps(&acl, "a/b/c"), ["read", "update"]);
    assert_eq!(caps(&acl, "x"), ["deny"]);
}

#[test]
fn different_patterns_do_not_union() {
    // secret/+/db is more specific than secret/*: a token with both gets only read there,
    // even though secret/* alone would grant update.
    let acl = acl(&[
        r#"path "secret/*" { capabilities = ["update"] }"#,
        r#"path "secret/+/db" { capabilities = ["read"] }"#,
    ]);
    assert_eq!(caps(&acl, "secret/prod/db"), ["read"]);
    assert!(!acl.allows("secret/prod/db", Capability::Update));
}

#[test]
fn a_rule_without_capabilities_still_wins_and_grants_nothing() {
    let acl = acl(&[r#"
        path "secret/*" { capabilities = ["read"] }
        path "secret/locked" { capabilities = [] }
    "#]);
    assert_eq!(caps(&acl, "secret/locked"), ["deny"]);
    assert_eq!(caps(&acl, "secret/open"), ["read"]);
}

#[test]
fn leading_slashes_are_ignored_on_both_sides() {
    let acl = acl(&[r#"path "/secret/foo" { capabilities = ["read"] }"#]);
    assert!(acl.allows("secret/foo", Capability::Read));
    assert!(acl.allows("/secret/foo", Capability::Read));
    assert!(acl.allows("///secret/foo", Capability::Read));
}

#[test]
fn list_falls_back_to_the_path_without_its_trailing_slash() {
    let acl = acl(&[r#"
        path "secret/metadata" { capabilities = ["list"] }
        path "kv/+/keys" { capabilities = ["list"] }
        path "kv/*" { capabilities = ["read"] }
    "#]);
    // Exact rule for the trimmed path (Vault and OpenBao alike).
    assert!(acl.allows("secret/metadata/", Capability::List));
    assert_eq!(caps(&acl, "secret/metadata/"), ["list"]);
    // Glob and `+` rules see the path as given first (OpenBao 2.7.2): `kv/*` decides, and
    // grants no list; without the `/`, `kv/+/keys` decides.
    assert!(!acl.allows("kv/a/keys/", Capability::List));
    assert_eq!(caps(&acl, "kv/a/keys/"), ["read"]);
    assert!(acl.allows("kv/a/keys", Capability::List));
    // Other operations see the path as given.
    assert_eq!(
        acl.capabilities_direct("secret/metadata/"),
        Capabilities::NONE
    );
    assert!(!acl.allows("secret/metadata/", Capability::Read));
    assert!(acl.allows("kv/a/keys/", Capability::Read));
}

#[test]
fn the_default_policy_allows_self_service_and_nothing_else() {
    let acl = Acl::new(&[Policy::default_policy()]);
    assert!(acl.allows("auth/token/lookup-self", Capability::Read));
    assert!(!acl.allows("auth/token/lookup-self", Capability::Update));
    assert!(acl.allows("auth/token/renew-self", Capability::Update));
    assert!(acl.allows("auth/token/revoke-self", Capability::Update));
    assert!(acl.allows("sys/capabilities-self", Capability::Update));
    assert!(acl.allows("sys/internal/ui/resultant-acl", Capability::Read));
    assert!(acl.allows("sys/leases/renew", Capability::Update));
    assert!(acl.allows("sys/leases/lookup", Capability::Update));
    assert!(acl.allows("sys/wrapping/unwrap", Capability::Update));
    assert!(acl.allows("sys/tools/hash/sha2-256", Capability::Update));
    assert_eq!(
        caps(&acl, "cubbyhole/my-notes"),
        ["create", "delete", "list", "read", "update"]
    );
    for refused in [
        "auth/token/lookup",
        "auth/token/create",
        "auth/token/lookup-self/x",
        "sys/capabilities",
        "sys/policies/acl/default",
        "sys/seal",
        "secret/data/x",
        "cubbyhole",
        "",
    ] {
        assert_eq!(caps(&acl, refused), ["deny"], "{refused}");
    }
}

#[test]
fn root_reports_root_and_allows_all() {
    let acl = Acl::root();
    assert!(acl.is_root());
    assert_eq!(caps(&acl, "sys/seal"), ["root"]);
    assert!(acl.allows("sys/seal", Capability::Sudo));
    assert!(!acl.allows("sys/seal", Capability::Deny));
    // The root policy absorbs others.
    let mixed = Acl::new(&[Policy::default_policy(), Policy::root()]);
    assert_eq!(caps(&mixed, "anything"), ["root"]);
}

/// A tiny deterministic generator: enough for "many random paths" without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn path(&mut self) -> String {
        const PIECES: [&str; 10] = [
            "sys", "secret", "data", "+", "*", "", "a b", "é", "x/", "...",
        ];
        let segments = (self.next() % 6) as usize;
        let mut path = String::new();
        for i in 0..segments {
            if i > 0 || self.next().is_multiple_of(4) {
                path.push('/');
            }
            path.push_str(PIECES[(self.next() % PIECES.len() as u64) as usize]);
        }
        path
    }
}

#[test]
fn no_policy_allows_nothing_and_root_allows_everything_on_random_paths() {
    let empty = Acl::new(&[]);
    let root = Acl::root();
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    for _ in 0..20_000 {
        let path = rng.path();
        assert_eq!(empty.capabilities(&path), Capabilities::NONE, "{path:?}");
        assert_eq!(empty.capabilities(&path).as_strs(), ["deny"]);
        assert_eq!(root.capabilities(&path).as_strs(), ["root"]);
        for cap in Capability::ALL {
            assert!(!empty.allows(&path, cap), "{cap} on {path:?}");
            assert_eq!(
                root.allows(&path, cap),
                cap != Capability::Deny,
                "{cap} on {path:?}"
            );
        }
    }
}

#[test]
fn a_catch_all_glob_covers_every_random_path_unless_denied() {
    let acl = acl(&[r#"
        path "*" { capabilities = ["read"] }
        path "sys/*" { capabilities = ["deny"] }
    "#]);
    let mut rng = XorShift(42);
    for _ in 0..5_000 {
        let path = rng.path();
        let trimmed = path.trim_start_matches('/');
        let expected = !trimmed.starts_with("sys/");
        assert_eq!(acl.allows(&path, Capability::Read), expected, "{path:?}");
    }
}

#[test]
fn acls_build_from_borrowed_policies_and_cross_threads() {
    let policies = [
        Policy::default_policy(),
        Policy::parse("kv", r#"path "kv/*" { capabilities = ["read"] }"#).unwrap(),
    ];
    let refs: Vec<&Policy> = policies.iter().collect();
    let acl = Acl::from_policies(refs.iter().copied());
    assert!(acl.allows("kv/x", Capability::Read));
    assert!(acl.allows("auth/token/lookup-self", Capability::Read));
    let shared = std::sync::Arc::new(acl);
    let worker = {
        let shared = std::sync::Arc::clone(&shared);
        std::thread::spawn(move || shared.allows("kv/y", Capability::Read))
    };
    assert!(worker.join().unwrap());
}

#[test]
fn a_folder_deny_decides_the_list_of_that_folder() {
    let acl = acl(&[r#"
        path "secret/metadata/*" { capabilities = ["list", "read"] }
        path "secret/metadata/private/*" { capabilities = ["deny"] }
    "#]);
    assert!(!acl.allows("secret/metadata/private/", Capability::List));
    assert_eq!(caps(&acl, "secret/metadata/private/"), ["deny"]);
    assert!(acl.allows("secret/metadata/", Capability::List));
    // Without the `/`, the path names an entry of `secret/metadata/` (as in OpenBao).
    assert_eq!(caps(&acl, "secret/metadata/private"), ["list", "read"]);
}

#[test]
fn a_mount_is_visible_to_a_token_that_may_use_something_below_it() {
    // Vault's hasMountAccess, behind `sys/internal/ui/mounts/:path`.
    let wide = acl(&[r#"
        path "kv2/data/app/*" { capabilities = ["read"] }
        path "tr/encrypt/k" { capabilities = ["update"] }
        path "glob*" { capabilities = ["read"] }
    "#]);
    for visible in ["kv2/", "tr/", "globby/"] {
        assert!(wide.grants_under(visible), "{visible}");
    }
    for hidden in ["kv/", "t/", "gl/"] {
        assert!(!wide.grants_under(hidden), "{hidden}");
    }
    let denied = acl(&[r#"path "walled/*" { capabilities = ["deny"] }"#]);
    assert!(!denied.grants_under("walled/"));
    assert!(Acl::root().grants_under("anything/"));
    let any_mount = acl(&[r#"path "+/metadata/shared" { capabilities = ["list"] }"#]);
    assert!(any_mount.grants_under("kv/"));
    let narrow = acl(&[r#"path "a/+/c" { capabilities = ["read"] }"#]);
    assert!(narrow.grants_under("a/b/"));
    assert!(!narrow.grants_under("a/b/c/d/"));
    assert!(!narrow.grants_under("x/"));
}
