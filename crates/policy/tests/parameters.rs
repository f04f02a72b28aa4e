//! Parameter constraints, read as the spec: Vault's "Policies" page (parameter constraints)
//! and its `ACL.AllowOperation`, rule by rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::acl;
use serde_json::{Map, Value, json};
use ward_policy::{Acl, Capability, Policy};

fn params(body: Value) -> Map<String, Value> {
    body.as_object().cloned().unwrap()
}

/// Whether an update of `path` with the JSON object `body` is allowed.
fn update(acl: &Acl, path: &str, body: Value) -> bool {
    acl.allows_request(path, Capability::Update, &params(body))
}

/// The capabilities a request can ask for (every one but `sudo` and `deny`).
fn request_capabilities() -> impl Iterator<Item = Capability> {
    Capability::ALL
        .into_iter()
        .filter(|c| !matches!(c, Capability::Sudo | Capability::Deny))
}

#[test]
fn a_rule_without_constraints_allows_any_parameters() {
    let acl = acl(&[r#"path "secret/*" { capabilities = ["update"] }"#]);
    assert!(update(&acl, "secret/a", json!({})));
    assert!(update(
        &acl,
        "secret/a",
        json!({"anything": [1, "x", null]})
    ));
    assert!(!acl.allows_request("secret/a", Capability::Create, &params(json!({}))));
    assert!(!update(&acl, "other", json!({})), "no rule, no grant");
    assert!(!acl.allows_request("secret/a", Capability::Deny, &params(json!({}))));
}

#[test]
fn denied_star_denies_any_request_with_parameters() {
    let acl = acl(&[r#"path "secret/foo" {
        capabilities = ["create", "update"]
        denied_parameters = { "*" = [] }
    }"#]);
    assert!(
        update(&acl, "secret/foo", json!({})),
        "no parameters, nothing denied"
    );
    assert!(!update(&acl, "secret/foo", json!({"bar": "zip"})));
    assert!(!update(&acl, "secret/foo", json!({"data": {}})));
    // Vault looks only at the presence of the `*` name, not at its values.
    let acl = acl_with_denied(r#"{ "*" = ["zip"] }"#);
    assert!(!update(&acl, "secret/foo", json!({"bar": "zap"})));
}

fn acl_with_denied(denied: &str) -> Acl {
    acl(&[&format!(
        r#"path "secret/foo" {{
            capabilities = ["create", "update"]
            denied_parameters = {denied}
        }}"#
    )])
}

fn acl_with_allowed(allowed: &str) -> Acl {
    acl(&[&format!(
        r#"path "secret/foo" {{
            capabilities = ["create", "update"]
            allowed_parameters = {allowed}
        }}"#
    )])
}

#[test]
fn a_denied_name_with_an_empty_list_is_denied_whatever_its_value() {
    // "Deny the bar parameter whatever its value" (Vault's example).
    let acl = acl_with_denied(r#"{ "bar" = [] }"#);
    for value in [
        json!("zip"),
        json!(""),
        json!(1),
        json!(null),
        json!([]),
        json!({}),
    ] {
        assert!(
            !update(&acl, "secret/foo", json!({"bar": value})),
            "{value}"
        );
    }
    assert!(update(&acl, "secret/foo", json!({"baz": "zip"})));
    assert!(update(&acl, "secret/foo", json!({})));
}

#[test]
fn a_denied_name_with_values_denies_only_those_values() {
    // "Allow the bar parameter unless its value is zip or zap".
    let acl = acl_with_denied(r#"{ "bar" = ["zip", "zap"] }"#);
    assert!(!update(&acl, "secret/foo", json!({"bar": "zip"})));
    assert!(!update(&acl, "secret/foo", json!({"bar": "zap", "baz": 1})));
    assert!(update(&acl, "secret/foo", json!({"bar": "zop"})));
    assert!(
        update(&acl, "secret/foo", json!({"bar": "zipper"})),
        "no glob, no prefix"
    );
    // An array is denied when one element is; a string is also a comma-separated list.
    assert!(!update(&acl, "secret/foo", json!({"bar": ["zop", "zap"]})));
    assert!(update(&acl, "secret/foo", json!({"bar": ["zop", "zup"]})));
    assert!(!update(&acl, "secret/foo", json!({"bar": "zop, zip"})));
    assert!(update(&acl, "secret/foo", json!({"bar": "zop,zup"})));
    assert!(update(&acl, "secret/foo", json!({"bar": ""})));
}

#[test]
fn denied_values_glob_with_a_leading_or_trailing_star() {
    let acl = acl_with_denied(r#"{ "policies" = ["root", "admin*", "*-prod", "*secret*"] }"#);
    for denied in [
        "root",
        "admin",
        "admin-ops",
        "db-prod",
        "topsecret-ish",
        "default,admin-x",
        "default, root",
    ] {
        assert!(
            !update(&acl, "secret/foo", json!({"policies": denied})),
            "{denied}"
        );
    }
    for allowed in [
        "roots",
        "sysadmin",
        "db-prod2",
        "default",
        "app,db-dev",
        "*",
    ] {
        assert!(
            update(&acl, "secret/foo", json!({"policies": allowed})),
            "{allowed}"
        );
    }
    assert!(!update(
        &acl,
        "secret/foo",
        json!({"policies": ["app", "admin-x"]})
    ));
    assert!(update(
        &acl,
        "secret/foo",
        json!({"policies": ["app", "web"]})
    ));
    // A lone `*` is no glob (Vault's GlobbedStringsMatch): it matches only "*".
    let star = acl_with_denied(r#"{ "bar" = ["*"] }"#);
    assert!(update(&star, "secret/foo", json!({"bar": "zip"})));
    assert!(!update(&star, "secret/foo", json!({"bar": "*"})));
}

#[test]
fn allowed_parameters_must_allow_every_parameter() {
    // "Allow the bar parameter with any value, and baz only as zip or zap; nothing else."
    let acl = acl_with_allowed(r#"{ "bar" = [], "baz" = ["zip", "zap*"] }"#);
    assert!(update(&acl, "secret/foo", json!({})));
    assert!(update(
        &acl,
        "secret/foo",
        json!({"bar": "anything", "baz": "zip"})
    ));
    assert!(update(&acl, "secret/foo", json!({"bar": {"nested": true}})));
    assert!(
        update(&acl, "secret/foo", json!({"baz": "zapper"})),
        "globbed"
    );
    assert!(!update(&acl, "secret/foo", json!({"baz": "zop"})));
    assert!(
        !update(&acl, "secret/foo", json!({"bar": 1, "other": 1})),
        "not listed"
    );
    // Every element of an array, every item of a comma-separated string.
    assert!(update(&acl, "secret/foo", json!({"baz": ["zip", "zap2"]})));
    assert!(!update(&acl, "secret/foo", json!({"baz": ["zip", "zop"]})));
    assert!(update(&acl, "secret/foo", json!({"baz": "zip, zap"})));
    assert!(!update(&acl, "secret/foo", json!({"baz": "zip,zop"})));
    // No value at all is allowed, as leaving the parameter out would be (Vault's behaviour).
    assert!(update(&acl, "secret/foo", json!({"baz": ""})));
    assert!(update(&acl, "secret/foo", json!({"baz": []})));
    assert!(!update(&acl, "secret/foo", json!({"baz": null})));
    assert!(!update(&acl, "secret/foo", json!({"baz": 1})));
}

#[test]
fn star_in_allowed_parameters_allows_any_other_name() {
    let any = acl_with_allowed(r#"{ "*" = [] }"#);
    assert!(update(&any, "secret/foo", json!({"a": 1, "b": "x"})));
    // `*` admits names without a list of their own; a name with a list still needs a match.
    let acl = acl_with_allowed(r#"{ "*" = [], "ttl" = ["1h", 3600] }"#);
    assert!(update(&acl, "secret/foo", json!({"a": 1, "ttl": "1h"})));
    assert!(update(&acl, "secret/foo", json!({"ttl": 3600})));
    assert!(!update(&acl, "secret/foo", json!({"a": 1, "ttl": "2h"})));
    assert!(!update(&acl, "secret/foo", json!({"ttl": 7200})));
    // An empty map constrains nothing (Vault treats it as absent).
    let empty = acl_with_allowed("{}");
    assert!(update(&empty, "secret/foo", json!({"a": 1})));
}

#[test]
fn non_string_values_compare_as_json() {
    let acl = acl_with_allowed(r#"{ "renewable" = [false], "num_uses" = [1, 2] }"#);
    assert!(update(&acl, "secret/foo", json!({"renewable": false})));
    assert!(!update(&acl, "secret/foo", json!({"renewable": true})));
    assert!(!update(&acl, "secret/foo", json!({"renewable": "false"})));
    assert!(update(&acl, "secret/foo", json!({"num_uses": 2.0})));
    assert!(!update(&acl, "secret/foo", json!({"num_uses": "1"})));
    let denied = acl_with_denied(r#"{ "num_uses" = [0] }"#);
    assert!(!update(&denied, "secret/foo", json!({"num_uses": 0})));
    assert!(update(&denied, "secret/foo", json!({"num_uses": 5})));
}

#[test]
fn denied_is_checked_before_allowed() {
    let acl = acl(&[r#"path "secret/foo" {
        capabilities = ["update"]
        allowed_parameters = { "bar" = [] }
        denied_parameters = { "bar" = ["zip"] }
    }"#]);
    assert!(update(&acl, "secret/foo", json!({"bar": "zap"})));
    assert!(!update(&acl, "secret/foo", json!({"bar": "zip"})));
}

#[test]
fn required_parameters_must_all_be_present() {
    let acl = acl(&[r#"path "secret/foo" {
        capabilities = ["create", "update", "read"]
        required_parameters = ["bar", "Baz"]
    }"#]);
    assert!(update(&acl, "secret/foo", json!({"bar": 1, "baz": null})));
    assert!(!update(&acl, "secret/foo", json!({"bar": 1})));
    assert!(
        !update(&acl, "secret/foo", json!({})),
        "checked before the no-parameter rule"
    );
    // Vault looks the lowercased name up as is: the request's name must be lower case.
    assert!(!update(&acl, "secret/foo", json!({"bar": 1, "BAZ": 1})));
    // Reads are checked too (their parameters are the query's).
    assert!(!acl.allows_request("secret/foo", Capability::Read, &params(json!({}))));
}

#[test]
fn parameter_names_are_compared_in_lower_case() {
    let acl = acl_with_denied(r#"{ "Policies" = ["root"], "TTL" = [] }"#);
    assert!(!update(&acl, "secret/foo", json!({"policies": "root"})));
    assert!(!update(&acl, "secret/foo", json!({"POLICIES": "root"})));
    assert!(!update(&acl, "secret/foo", json!({"tTl": "1h"})));
    assert!(update(&acl, "secret/foo", json!({"policies": "app"})));
    let allowed = acl_with_allowed(r#"{ "Data" = [] }"#);
    assert!(update(
        &allowed,
        "secret/foo",
        json!({"DATA": {}, "data": {}})
    ));
    assert!(!update(&allowed, "secret/foo", json!({"Dätä": {}})));
    // Values keep their case.
    assert!(update(&acl, "secret/foo", json!({"policies": "ROOT"})));
}

#[test]
fn parameters_are_checked_for_reads_and_writes_not_lists_or_deletes() {
    let acl = acl(&[r#"path "secret/*" {
        capabilities = ["create", "read", "update", "patch", "delete", "list"]
        allowed_parameters = { "data" = [] }
    }"#]);
    let extra = params(json!({"data": {}, "options": {"cas": 0}}));
    for cap in [
        Capability::Create,
        Capability::Read,
        Capability::Update,
        Capability::Patch,
    ] {
        assert!(!acl.allows_request("secret/x", cap, &extra), "{cap}");
        assert!(
            acl.allows_request("secret/x", cap, &params(json!({"data": {"k": "v"}}))),
            "{cap}"
        );
    }
    assert!(acl.allows_request("secret/x", Capability::Delete, &extra));
    assert!(acl.allows_request("secret/x/", Capability::List, &extra));
}

#[test]
fn a_wrapping_ttl_denies_every_operation() {
    for constraint in [r#"min_wrapping_ttl = "1m""#, r#"max_wrapping_ttl = 3600"#] {
        let acl = acl(&[&format!(
            r#"path "secret/*" {{
                capabilities = ["create", "read", "update", "patch", "delete", "list"]
                {constraint}
            }}"#
        )]);
        for cap in request_capabilities() {
            let path = if cap == Capability::List {
                "secret/x/"
            } else {
                "secret/x"
            };
            assert!(!acl.allows_request(path, cap, &params(json!({}))), "{cap}");
            assert!(acl.allows(path, cap), "capabilities alone still say {cap}");
        }
        // sys/capabilities reports the rule's capabilities unchanged.
        assert_eq!(acl.capabilities("secret/x").as_strs().len(), 6);
    }
    // A zero TTL is no constraint (Vault reads it as unset).
    let zero = acl(&[r#"path "secret/*" {
        capabilities = ["read"]
        min_wrapping_ttl = 0
    }"#]);
    assert!(zero.allows_request("secret/x", Capability::Read, &params(json!({}))));
}

#[test]
fn only_the_deciding_rule_constrains() {
    let acl = acl(&[r#"
        path "secret/*" {
            capabilities = ["update"]
            denied_parameters = { "bar" = [] }
        }
        path "secret/open" { capabilities = ["update"] }
        path "secret/+/wrapped" {
            capabilities = ["update"]
            max_wrapping_ttl = "1h"
        }
    "#]);
    assert!(!update(&acl, "secret/closed", json!({"bar": 1})));
    assert!(
        update(&acl, "secret/open", json!({"bar": 1})),
        "the exact rule wins"
    );
    assert!(
        !update(&acl, "secret/a/wrapped", json!({})),
        "the + rule wins"
    );
    assert!(
        !update(&acl, "secret/a/wrapped2", json!({"bar": 1})),
        "back to the glob"
    );
    assert!(update(&acl, "secret/a/wrapped2", json!({"baz": 1})));
}

#[test]
fn same_pattern_in_two_policies_merges_constraints() {
    let first = r#"path "secret/foo" {
        capabilities = ["update"]
        allowed_parameters = { "a" = ["1"], "b" = [], "c" = ["x"] }
        denied_parameters = { "d" = ["1"], "e" = ["x"] }
        required_parameters = ["a"]
    }"#;
    let second = r#"path "secret/foo" {
        capabilities = ["create"]
        allowed_parameters = { "a" = ["2"], "b" = ["only"], "c" = [], "f" = [] }
        denied_parameters = { "d" = ["2"], "e" = [] }
        required_parameters = ["f"]
    }"#;
    for order in [[first, second], [second, first]] {
        let acl = acl(&order);
        let ok = |body: Value| update(&acl, "secret/foo", body);
        // allowed values append per name; an empty list on either side means any value.
        assert!(ok(json!({"a": "1", "f": 0})));
        assert!(ok(json!({"a": "2", "f": 0})));
        assert!(!ok(json!({"a": "3", "f": 0})));
        assert!(ok(json!({"a": "1", "f": 0, "b": "any", "c": "any"})));
        assert!(
            !ok(json!({"a": "1", "f": 0, "g": 1})),
            "names from neither policy"
        );
        // denied values append per name; an empty list denies every value.
        assert!(!ok(json!({"a": "1", "f": 0, "d": "1"})));
        assert!(!ok(json!({"a": "1", "f": 0, "d": "2"})));
        assert!(!ok(json!({"a": "1", "f": 0, "e": "y"})));
        // required names are the union.
        assert!(!ok(json!({"a": "1"})));
        assert!(!ok(json!({"f": 0})));
        // capabilities are the union, as before.
        assert!(acl.allows_request(
            "secret/foo",
            Capability::Create,
            &params(json!({"a": "2", "f": 0}))
        ));
    }
}

#[test]
fn a_rule_without_constraints_does_not_lift_another_policys() {
    // As in Vault, the merged rule keeps the constraints of the policy that has them.
    let acl = acl(&[
        r#"path "secret/foo" { capabilities = ["update"] }"#,
        r#"path "secret/foo" {
            capabilities = ["update"]
            denied_parameters = { "bar" = [] }
        }"#,
    ]);
    assert!(!update(&acl, "secret/foo", json!({"bar": 1})));
    let wrapped = acl_pair(r#"min_wrapping_ttl = "1m""#);
    assert!(!update(&wrapped, "secret/foo", json!({})));
}

fn acl_pair(constraint: &str) -> Acl {
    acl(&[
        r#"path "secret/foo" { capabilities = ["update", "read"] }"#,
        &format!(
            r#"path "secret/foo" {{
                capabilities = ["read"]
                {constraint}
            }}"#
        ),
    ])
}

#[test]
fn deny_in_a_merged_rule_still_wins() {
    let acl = acl(&[
        r#"path "secret/foo" {
            capabilities = ["update"]
            allowed_parameters = { "*" = [] }
        }"#,
        r#"path "secret/foo" { capabilities = ["deny"] }"#,
    ]);
    assert!(!update(&acl, "secret/foo", json!({})));
    assert!(!update(&acl, "secret/foo", json!({"a": 1})));
}

#[test]
fn root_bypasses_every_constraint() {
    let root = Acl::root();
    for cap in request_capabilities() {
        assert!(
            root.allows_request("any/path", cap, &params(json!({"x": 1}))),
            "{cap}"
        );
    }
    assert!(!root.allows_request("any/path", Capability::Deny, &params(json!({}))));
    let with_root = Acl::new(&[
        Policy::root(),
        Policy::parse(
            "p",
            r#"path "*" {
                capabilities = ["update"]
                min_wrapping_ttl = "1m"
            }"#,
        )
        .unwrap(),
    ]);
    assert!(update(&with_root, "secret/foo", json!({"x": 1})));
}
