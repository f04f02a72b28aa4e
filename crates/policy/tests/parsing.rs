//! Reading policies: HCL and JSON, Vault's extra keys, and every way a policy can be wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use ward_policy::{
    Acl, Capabilities, Capability, DEFAULT_POLICY, Policy, PolicyError, PolicyFormat, RuleLocation,
    is_reserved,
};

fn err(text: &str) -> PolicyError {
    Policy::parse("p", text).expect_err("policy should be rejected")
}

#[test]
fn hcl_and_json_give_the_same_acl() {
    let hcl = r#"
        # A comment
        path "secret/*" {
          capabilities = ["create", "read", "update", "patch", "delete", "list"]
        }
        path "secret/super-secret" {
          capabilities = ["deny"]
        }
        path "secret/+/teamb" {
          capabilities = ["read"]
        }
    "#;
    let json = r#"{
        "path": {
            "secret/*": {"capabilities": ["create", "read", "update", "patch", "delete", "list"]},
            "secret/super-secret": {"capabilities": ["deny"]},
            "secret/+/teamb": {"capabilities": ["read"]}
        }
    }"#;
    let from_hcl = Policy::parse("p", hcl).unwrap();
    let from_json = Policy::parse("p", json).unwrap();
    assert_eq!(from_hcl.rules().len(), 3);
    let mut hcl_rules: Vec<_> = from_hcl.rules().to_vec();
    let mut json_rules: Vec<_> = from_json.rules().to_vec();
    hcl_rules.sort_by(|a, b| a.pattern().cmp(b.pattern()));
    json_rules.sort_by(|a, b| a.pattern().cmp(b.pattern()));
    assert_eq!(hcl_rules, json_rules);

    let (a, b) = (Acl::new(&[from_hcl]), Acl::new(&[from_json]));
    for path in [
        "secret/x",
        "secret/super-secret",
        "secret/a/teamb",
        "secret/a/b/c",
        "other",
    ] {
        assert_eq!(a.capabilities(path), b.capabilities(path), "{path}");
    }
    assert_eq!(a.capabilities("secret/a/teamb").as_strs(), ["read"]);
}

#[test]
fn json_also_takes_hcl1_list_forms() {
    let policy = Policy::parse(
        "p",
        r#"{"path": [{"a/*": {"capabilities": ["read"]}}, {"b": [{"capabilities": ["list"]}]}]}"#,
    )
    .unwrap();
    let acl = Acl::new(&[policy]);
    assert!(acl.allows("a/x", Capability::Read));
    assert!(acl.allows("b", Capability::List));
}

#[test]
fn raw_text_and_normalised_name_are_kept() {
    let text = "path \"x\" { capabilities = [\"read\"] }\n";
    let policy = Policy::parse("  Ops-Team ", text).unwrap();
    assert_eq!(policy.name(), "ops-team");
    assert_eq!(policy.raw(), text);
    assert!(!policy.is_root());
}

#[test]
fn top_level_name_is_accepted_and_ignored_like_vault() {
    let policy = Policy::parse(
        "real",
        "name = \"other\"\npath \"x\" { capabilities = [\"read\"] }",
    )
    .unwrap();
    assert_eq!(policy.name(), "real");
}

#[test]
fn legacy_policy_key_maps_like_vault() {
    let policy = Policy::parse(
        "p",
        r#"
        path "r" { policy = "read" }
        path "w" { policy = "write" }
        path "s" { policy = "sudo" }
        path "d" { policy = "deny" }
        "#,
    )
    .unwrap();
    let acl = Acl::new(&[policy]);
    assert_eq!(acl.capabilities("r").as_strs(), ["list", "read"]);
    assert_eq!(
        acl.capabilities("w").as_strs(),
        ["create", "delete", "list", "read", "update"]
    );
    assert_eq!(
        acl.capabilities("s").as_strs(),
        ["create", "delete", "list", "read", "sudo", "update"]
    );
    assert_eq!(acl.capabilities("d").as_strs(), ["deny"]);
    assert!(matches!(
        err(r#"path "x" { policy = "admin" }"#),
        PolicyError::InvalidLegacyPolicy { value, .. } if value == "admin"
    ));
}

#[test]
fn parameter_constraints_are_parsed_and_a_wrapping_ttl_is_warned_about() {
    let policy = Policy::parse(
        "p",
        r#"
        path "secret/restricted" {
          capabilities = ["create"]
          allowed_parameters = {
            "foo" = []
            "Bar" = ["zip", "zap"]
          }
          denied_parameters = { "baz" = ["*"] }
          required_parameters = ["foo"]
          min_wrapping_ttl = "1m"
          max_wrapping_ttl = 3600
        }
        "#,
    )
    .unwrap();
    let rule = &policy.rules()[0];
    let constraints = rule.parameter_constraints();
    let allowed = constraints.allowed_parameters.as_ref().unwrap();
    assert_eq!(allowed["foo"], Vec::<serde_json::Value>::new());
    assert_eq!(allowed["bar"], vec![json!("zip"), json!("zap")]);
    assert_eq!(
        constraints.denied_parameters.as_ref().unwrap()["baz"],
        vec![json!("*")]
    );
    assert_eq!(constraints.required_parameters, ["foo"]);
    assert_eq!(constraints.min_wrapping_ttl, Some(Duration::from_secs(60)));
    assert_eq!(
        constraints.max_wrapping_ttl,
        Some(Duration::from_secs(3600))
    );
    // A wrapping TTL, which no Ward request can meet, denies (the capability stays)...
    let acl = Acl::new(std::slice::from_ref(&policy));
    assert!(acl.allows("secret/restricted", Capability::Create));
    let params = json!({"foo": "x"}).as_object().cloned().unwrap();
    assert!(!acl.allows_request("secret/restricted", Capability::Create, &params));
    // ...and the policy says so; the other constraints need no warning.
    assert_eq!(policy.warnings().len(), 1, "{:?}", policy.warnings());
    let warning = &policy.warnings()[0];
    assert!(warning.contains("response wrapping"), "{warning}");
    assert!(warning.contains("min_wrapping_ttl"), "{warning}");
    assert!(!warning.contains("not enforced"), "{warning}");
    let unwrapped = Policy::parse(
        "p",
        r#"path "x" {
             capabilities = ["create"]
             denied_parameters = { "baz" = [] }
             required_parameters = ["foo"]
           }"#,
    )
    .unwrap();
    assert!(
        unwrapped.warnings().is_empty(),
        "{:?}",
        unwrapped.warnings()
    );
}

#[test]
fn hcl1_block_form_of_allowed_parameters_is_read_too() {
    let policy = Policy::parse(
        "p",
        r#"path "x" {
             capabilities = ["update"]
             allowed_parameters { ttl = ["1h"] }
           }"#,
    )
    .unwrap();
    let allowed = policy.rules()[0]
        .parameter_constraints()
        .allowed_parameters
        .clone()
        .unwrap();
    assert_eq!(allowed["ttl"], vec![json!("1h")]);
}

#[test]
fn a_plain_policy_has_no_warnings_but_odd_ones_do() {
    assert!(
        Policy::parse("p", DEFAULT_POLICY)
            .unwrap()
            .warnings()
            .is_empty()
    );
    let odd = Policy::parse(
        "p",
        r#"path "a/*/b" { capabilities = ["read"] }
path "empty" { capabilities = [] }"#,
    )
    .unwrap();
    assert!(
        odd.warnings()[0].contains("literal '*'"),
        "{:?}",
        odd.warnings()
    );
    assert!(
        odd.warnings()[1].contains("grants no capability"),
        "{:?}",
        odd.warnings()
    );
}

#[test]
fn unknown_capability_is_named_with_its_path_and_line() {
    let e = err(
        "path \"ok\" {\n  capabilities = [\"read\"]\n}\n\npath \"secret/*\" {\n  capabilities = [\"read\", \"wirte\"]\n}\n",
    );
    assert_eq!(
        e,
        PolicyError::UnknownCapability {
            at: RuleLocation {
                path: "secret/*".into(),
                line: Some(5)
            },
            capability: "wirte".into(),
        }
    );
    let message = e.to_string();
    assert!(message.contains("\"wirte\""), "{message}");
    assert!(message.contains("line 5"), "{message}");
    assert!(message.contains("secret/*"), "{message}");
    // Even after a deny (Vault would stop reading there), and in JSON.
    assert!(matches!(
        err(r#"{"path": {"x": {"capabilities": ["deny", "root"]}}}"#),
        PolicyError::UnknownCapability { capability, at } if capability == "root" && at.line.is_none()
    ));
    // Capabilities are case-sensitive, as in Vault.
    assert!(matches!(
        err(r#"path "x" { capabilities = ["READ"] }"#),
        PolicyError::UnknownCapability { .. }
    ));
}

#[test]
fn bad_hcl_reports_the_line() {
    match err(
        "path \"a\" {\n  capabilities = [\"read\"]\n}\npath \"b\" {\n  capabilities = [\"read\"\n",
    ) {
        PolicyError::Syntax { format, line, .. } => {
            assert_eq!(format, PolicyFormat::Hcl);
            assert!(line >= 5, "line {line}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(err("path \"a\" {"), PolicyError::Syntax { .. }));
    assert!(matches!(err("}"), PolicyError::Syntax { .. }));
}

#[test]
fn bad_json_reports_the_line() {
    match err("{\n  \"path\": {\n    \"a\": {\"capabilities\": [\"read\"],}\n  }\n}") {
        PolicyError::Syntax {
            format,
            line,
            message,
            ..
        } => {
            assert_eq!(format, PolicyFormat::Json);
            assert_eq!(line, 3);
            assert!(!message.contains(" at line "), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn empty_path_is_rejected() {
    assert_eq!(
        err("\n\npath \"\" { capabilities = [\"read\"] }"),
        PolicyError::EmptyPath { line: Some(3) }
    );
    assert_eq!(
        err(r#"path "/" { capabilities = ["read"] }"#),
        PolicyError::EmptyPath { line: Some(1) }
    );
    assert_eq!(
        err(r#"{"path": {"": {"capabilities": ["read"]}}}"#),
        PolicyError::EmptyPath { line: None }
    );
}

#[test]
fn wrong_types_are_rejected() {
    let cases = [
        r#"path "x" { capabilities = "read" }"#,
        r#"path "x" { capabilities = [1] }"#,
        r#"path "x" { capabilities = { read = true } }"#,
        r#"path "x" { policy = ["read"] }"#,
        r#"path "x" { required_parameters = "foo" }"#,
        r#"path "x" { allowed_parameters = ["foo"] }"#,
        r#"path "x" { denied_parameters = { foo = "bar" } }"#,
        r#"{"path": {"x": {"capabilities": "read"}}}"#,
    ];
    for text in cases {
        assert!(
            matches!(err(text), PolicyError::WrongType { .. }),
            "{text}: {:?}",
            err(text)
        );
    }
    let message = err(r#"path "x" { capabilities = "read" }"#).to_string();
    assert!(
        message.contains("capabilities") && message.contains("list of strings"),
        "{message}"
    );
}

#[test]
fn structure_errors_are_rejected() {
    assert!(matches!(
        err(r#"path { capabilities = ["read"] }"#),
        PolicyError::UnexpectedTopLevel { .. }
    ));
    assert!(matches!(
        err(r#"path "a" "b" { capabilities = ["read"] }"#),
        PolicyError::UnexpectedTopLevel { .. }
    ));
    assert!(matches!(
        err(r#"paths "a" { capabilities = ["read"] }"#),
        PolicyError::UnexpectedTopLevel { .. }
    ));
    assert!(matches!(
        err("capabilities = [\"read\"]"),
        PolicyError::UnexpectedTopLevel { line: Some(1), .. }
    ));
    assert!(matches!(
        err(r#"{"paths": {}}"#),
        PolicyError::UnexpectedTopLevel { .. }
    ));
    assert!(matches!(
        err(r#"{"path": "x"}"#),
        PolicyError::UnexpectedTopLevel { .. }
    ));
    assert!(matches!(
        err(r#"{"path": {"x": 1}}"#),
        PolicyError::UnexpectedTopLevel { .. }
    ));
}

#[test]
fn unknown_unsupported_and_duplicate_keys_are_rejected() {
    assert!(matches!(
        err(r#"path "x" { capabilites = ["read"] }"#),
        PolicyError::UnknownKey { key, .. } if key == "capabilites"
    ));
    for key in [
        "expiration",
        "mfa_methods",
        "control_group",
        "pagination_limit",
    ] {
        let text = format!("path \"x\" {{\n capabilities = [\"read\"]\n {key} = \"x\"\n}}");
        assert!(
            matches!(&err(&text), PolicyError::UnsupportedKey { key: k, .. } if k == key),
            "{key}"
        );
    }
    // HCL itself refuses a repeated attribute; an attribute and a block of one name reach us.
    assert!(matches!(
        err(r#"path "x" {
             capabilities = ["read"]
             capabilities = ["update"]
           }"#),
        PolicyError::Syntax { line: 3, .. }
    ));
    assert!(matches!(
        err(r#"path "x" {
             allowed_parameters = {}
             allowed_parameters { a = [] }
           }"#),
        PolicyError::DuplicateKey { key, .. } if key == "allowed_parameters"
    ));
}

#[test]
fn vault_forbidden_and_unsupported_patterns_are_rejected() {
    assert!(matches!(
        err(r#"path "secret/+*" { capabilities = ["read"] }"#),
        PolicyError::InvalidPattern { .. }
    ));
    assert!(matches!(
        err(r#"path "secret/{{identity.entity.id}}/*" { capabilities = ["read"] }"#),
        PolicyError::InvalidPattern { .. }
    ));
}

#[test]
fn expressions_and_bad_durations_are_rejected() {
    assert!(matches!(
        err(r#"path "x" { capabilities = [var.cap] }"#),
        PolicyError::NotLiteral { .. }
    ));
    assert!(matches!(
        err(r#"path "x" { capabilities = ["${x}"] }"#),
        PolicyError::NotLiteral { .. }
    ));
    assert!(matches!(
        err(r#"path "x" { max_wrapping_ttl = "soon" }"#),
        PolicyError::InvalidDuration { .. }
    ));
    assert!(matches!(
        err(r#"path "x" {
             capabilities = ["read"]
             min_wrapping_ttl = "2h"
             max_wrapping_ttl = "1h"
           }"#),
        PolicyError::WrappingTtlOrder { .. }
    ));
}

#[test]
fn reserved_and_invalid_names_are_rejected() {
    assert!(is_reserved("root"));
    assert_eq!(
        Policy::parse("Root", "").unwrap_err(),
        PolicyError::ReservedName("root".into())
    );
    assert!(matches!(
        Policy::parse("a/b", ""),
        Err(PolicyError::InvalidNameChar { found: '/', .. })
    ));
    assert_eq!(Policy::parse("", ""), Err(PolicyError::EmptyName));
    // `default` can be rewritten, as in Vault.
    assert!(Policy::parse("default", DEFAULT_POLICY).is_ok());
}

#[test]
fn an_empty_policy_is_valid_and_grants_nothing() {
    for text in ["", "# nothing here\n", "{}"] {
        let policy = Policy::parse("p", text).unwrap();
        assert!(policy.rules().is_empty());
        assert_eq!(
            Acl::new(&[policy]).capabilities("secret/x"),
            Capabilities::NONE
        );
    }
}

#[test]
fn garbage_never_panics() {
    let samples = [
        "path",
        "path \"",
        "path \"x\" {",
        "{",
        "[",
        "\u{0}",
        "path \"x\" { capabilities = [",
        "{\"path\": [1, 2]}",
        "path \"x\" { capabilities = [\"read\"] } }",
        "path \"é/+/*\" { capabilities = [\"read\"] }",
        "path \"x\" { allowed_parameters = { (1) = [] } }",
        "path \"x\" { capabilities = [\"read\", null] }",
        "<<EOF\nx\nEOF",
        "path \"x\" { max_wrapping_ttl = 1e400 }",
        "path \"x\" { max_wrapping_ttl = -5 }",
    ];
    for sample in samples {
        let _ = Policy::parse("p", sample);
    }
    // Every prefix of a real policy: parse errors, never panics.
    for end in 0..DEFAULT_POLICY.len() {
        if DEFAULT_POLICY.is_char_boundary(end) {
            let _ = Policy::parse("p", &DEFAULT_POLICY[..end]);
        }
    }
}
