//! `ward token create|lookup|renew|revoke` end to end against a dev server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, assert_exit, ok, stderr, table_value};
use serde_json::Value;

/// `ward token create ARGS -format=json` as `token` (None: root); returns the auth block.
fn create(server: &Server, token: Option<&str>, args: &[&str]) -> Value {
    let mut full = vec!["token", "create", "-format=json"];
    full.extend_from_slice(args);
    let token = token.unwrap_or(server.root_token());
    let out = ok(server.ward_full(Some(token), &full, None));
    let json: Value = serde_json::from_str(&out).unwrap();
    json["auth"].clone()
}

fn secret(auth: &Value, field: &str) -> String {
    auth[field].as_str().unwrap().to_owned()
}

#[test]
fn create_and_lookup() {
    let server = Server::start();
    let auth = create(
        &server,
        None,
        &[
            "-policy=app",
            "-policy=ops,audit",
            "-ttl=1h",
            "-metadata",
            "owner=me",
        ],
    );
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["metadata"]["owner"], "me");
    let policies: Vec<&str> = auth["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for policy in ["app", "audit", "default", "ops"] {
        assert!(
            policies.contains(&policy),
            "{policy} missing from {policies:?}"
        );
    }
    let token = secret(&auth, "client_token");
    let accessor = secret(&auth, "accessor");

    // The table shape of `vault token create`.
    let table = ok(server.ward(&["token", "create", "-ttl=30m", "-metadata=team=a"]));
    assert_eq!(
        table_value(&table, "token_duration").as_deref(),
        Some("30m")
    );
    assert_eq!(
        table_value(&table, "token_renewable").as_deref(),
        Some("true")
    );
    assert_eq!(table_value(&table, "token_meta_team").as_deref(), Some("a"));
    assert!(table_value(&table, "token").is_some_and(|t| !t.is_empty()));

    // Lookup by token (as root), by accessor, and of itself.
    let by_token = ok(server.ward(&["token", "lookup", &token]));
    assert_eq!(
        table_value(&by_token, "accessor").as_deref(),
        Some(accessor.as_str())
    );
    assert_eq!(
        table_value(&by_token, "meta").as_deref(),
        Some("map[owner:me]")
    );
    assert_eq!(
        table_value(&by_token, "creation_ttl").as_deref(),
        Some("1h")
    );
    let by_accessor = ok(server.ward(&["token", "lookup", "-accessor", &accessor]));
    assert_eq!(
        table_value(&by_accessor, "accessor").as_deref(),
        Some(accessor.as_str())
    );
    assert!(
        !by_accessor.contains(&token),
        "an accessor lookup must not reveal the token"
    );
    let own: Value = serde_json::from_str(&ok(server.ward_full(
        Some(&token),
        &["token", "lookup", "-format=json"],
        None,
    )))
    .unwrap();
    assert_eq!(own["data"]["accessor"], accessor);
    assert!(own["data"]["ttl"].as_u64().unwrap() <= 3600);
}

#[test]
fn renew_extends_and_respects_renewable() {
    let server = Server::start();
    let auth = create(&server, None, &["-ttl=10m"]);
    let token = secret(&auth, "client_token");
    let renewed = ok(server.ward(&["token", "renew", "-increment=2h", &token]));
    assert_eq!(
        table_value(&renewed, "token_duration").as_deref(),
        Some("2h")
    );
    // Self-renewal with the token's own credentials.
    let own: Value = serde_json::from_str(&ok(server.ward_full(
        Some(&token),
        &["token", "renew", "-increment=1h", "-format=json"],
        None,
    )))
    .unwrap();
    assert_eq!(own["auth"]["lease_duration"], 3600);

    let fixed = create(&server, None, &["-ttl=10m", "-renewable=false"]);
    assert_eq!(fixed["renewable"], false);
    let refused = server.ward(&["token", "renew", &secret(&fixed, "client_token")]);
    assert_exit(&refused, 2);
    assert!(
        stderr(&refused).contains("Error renewing token"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn revoke_by_token_accessor_and_self_with_orphans_surviving() {
    let server = Server::start();
    // The parent may create tokens (the default policy does not allow it, as in Vault).
    let creator =
        "path \"auth/token/create*\" {\n  capabilities = [\"create\", \"update\", \"sudo\"]\n}\n";
    ok(server.ward_stdin(&["policy", "write", "creator", "-"], creator));
    let parent = secret(&create(&server, None, &["-policy=creator"]), "client_token");
    // A child and an orphan created by the parent.
    let child = secret(&create(&server, Some(&parent), &[]), "client_token");
    let orphan = secret(
        &create(&server, Some(&parent), &["-orphan"]),
        "client_token",
    );

    let revoked = ok(server.ward(&["token", "revoke", &parent]));
    assert_eq!(revoked.trim(), "Success! Revoked token (if it existed)");
    for gone in [&parent, &child] {
        let lookup = server.ward(&["token", "lookup", gone]);
        assert_exit(&lookup, 2);
        assert!(
            !stderr(&lookup).contains(gone.as_str()),
            "token leaked: {}",
            stderr(&lookup)
        );
    }
    ok(server.ward(&["token", "lookup", &orphan]));

    // Revoke by accessor.
    let auth = create(&server, None, &[]);
    ok(server.ward(&["token", "revoke", "-accessor", &secret(&auth, "accessor")]));
    assert_exit(
        &server.ward(&["token", "lookup", &secret(&auth, "client_token")]),
        2,
    );

    // Revoke itself.
    let own = secret(&create(&server, None, &[]), "client_token");
    ok(server.ward_full(Some(&own), &["token", "revoke", "-self"], None));
    assert_exit(&server.ward(&["token", "lookup", &own]), 2);

    // No target at all is a usage error (a local one: 1).
    assert_exit(&server.ward(&["token", "revoke"]), 1);
}

#[test]
fn limited_uses_and_bad_tokens() {
    let server = Server::start();
    let auth = create(&server, None, &["-num-uses=3"]);
    let token = secret(&auth, "client_token");
    let lookup = ok(server.ward(&["token", "lookup", &token]));
    assert_eq!(table_value(&lookup, "num_uses").as_deref(), Some("3"));

    let bogus = server.ward_full(
        Some("not-a-real-token-hunter2"),
        &["kv", "get", "secret/x"],
        None,
    );
    assert_exit(&bogus, 2);
    assert!(stderr(&bogus).contains("Code: 403"), "{}", stderr(&bogus));
    assert!(!stderr(&bogus).contains("hunter2"), "{}", stderr(&bogus));
}
