//! `ward operator rekey` and `ward operator generate-root` end to end against a
//! production-mode server, printing what `bao operator rekey|generate-root` print.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, assert_exit, ok, stderr, stdout, table_value};
use serde_json::Value;

/// Initialises with 5 shares / threshold 3 and unseals; returns (keys, root token).
fn initialised(server: &Server) -> (Vec<String>, String) {
    let out = ok(server.ward_full(
        None,
        &[
            "operator",
            "init",
            "-key-shares=5",
            "-key-threshold=3",
            "-format=json",
        ],
        None,
    ));
    let json: Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<String> = serde_json::from_value(json["unseal_keys_b64"].clone()).unwrap();
    for key in &keys[..3] {
        ok(server.ward_full(None, &["operator", "unseal", key], None));
    }
    (keys, json["root_token"].as_str().unwrap().to_owned())
}

#[test]
fn rekey_then_generate_root_through_the_cli() {
    let server = Server::production();
    let (old, root) = initialised(&server);
    let ward = |args: &[&str]| server.ward_full(None, args, None);

    let status = ok(ward(&["operator", "rekey", "-status"]));
    assert_eq!(table_value(&status, "Nonce").as_deref(), Some("n/a"));
    assert_eq!(table_value(&status, "Started").as_deref(), Some("false"));
    let refused = ward(&["operator", "rekey", "-nonce=x", &old[0]]);
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("No rekey is in progress"),
        "{}",
        stderr(&refused)
    );

    let started = ok(ward(&[
        "operator",
        "rekey",
        "-init",
        "-key-shares=3",
        "-key-threshold=2",
    ]));
    assert_eq!(table_value(&started, "Started").as_deref(), Some("true"));
    assert_eq!(table_value(&started, "Progress").as_deref(), Some("0/3"));
    assert_eq!(table_value(&started, "New Shares").as_deref(), Some("3"));
    assert_eq!(table_value(&started, "New Threshold").as_deref(), Some("2"));
    let nonce = table_value(&started, "Nonce").unwrap();
    let nonce_flag = format!("-nonce={nonce}");

    let missing = ward(&["operator", "rekey", &old[0]]);
    assert_exit(&missing, 1);
    assert!(
        stderr(&missing).contains("Missing nonce value"),
        "{}",
        stderr(&missing)
    );
    let wrong = ward(&["operator", "rekey", "-nonce=wrong", &old[0]]);
    assert_exit(&wrong, 2);
    assert!(
        stderr(&wrong).contains("incorrect nonce supplied"),
        "{}",
        stderr(&wrong)
    );
    assert!(!stderr(&wrong).contains(&old[0]), "a share is never echoed");

    let one = ok(ward(&["operator", "rekey", &nonce_flag, &old[0]]));
    assert_eq!(table_value(&one, "Progress").as_deref(), Some("1/3"));
    // The share from stdin, as `bao` reads `-`.
    let two = ok(server.ward_full(
        None,
        &["operator", "rekey", &nonce_flag, "-"],
        Some(&old[3]),
    ));
    assert_eq!(table_value(&two, "Progress").as_deref(), Some("2/3"));
    let done = ok(ward(&["operator", "rekey", &nonce_flag, &old[4]]));
    assert!(
        done.contains(&format!("Operation nonce: {nonce}")),
        "{done}"
    );
    assert!(
        done.contains("rekeyed to 3 key shares and a key threshold of 2"),
        "{done}"
    );
    let new: Vec<String> = (1..=3)
        .map(|i| table_value(&done.replace(": ", "  "), &format!("Key {i}")).unwrap())
        .collect();
    assert!(new.iter().all(|k| !old.contains(k)));

    // Old shares are refused after a seal; two new ones unseal.
    ok(server.ward_full(Some(&root), &["operator", "seal"], None));
    assert_exit(&ward(&["operator", "unseal", &old[0]]), 2);
    ok(ward(&["operator", "unseal", &new[0]]));
    ok(ward(&["operator", "unseal", &new[2]]));
    assert_exit(&ward(&["status"]), 0);

    // A cancelled rekey leaves nothing under way.
    ok(ward(&[
        "operator",
        "rekey",
        "-init",
        "-key-shares=1",
        "-key-threshold=1",
    ]));
    let cancelled = ok(ward(&["operator", "rekey", "-cancel"]));
    assert!(
        cancelled.contains("Success! Canceled rekeying"),
        "{cancelled}"
    );
    let status: Value =
        serde_json::from_str(&ok(ward(&["operator", "rekey", "-status", "-format=json"]))).unwrap();
    assert_eq!(
        (status["started"].clone(), status["required"].clone()),
        (Value::Bool(false), 2.into())
    );

    // Generate a root token with the new shares, without any token.
    let status = ok(ward(&["operator", "generate-root", "-status"]));
    assert_eq!(table_value(&status, "Started").as_deref(), Some("false"));
    assert_eq!(table_value(&status, "OTP Length").as_deref(), Some("42"));
    let started = ok(ward(&["operator", "generate-root", "-init"]));
    assert!(
        started.contains("A One-Time-Password has been generated for you"),
        "{started}"
    );
    let otp = table_value(&started, "OTP").unwrap();
    let nonce = table_value(&started, "Nonce").unwrap();
    let nonce_flag = format!("-nonce={nonce}");
    assert_eq!(otp.len(), 42);
    let one = ok(ward(&["operator", "generate-root", &nonce_flag, &new[1]]));
    assert_eq!(table_value(&one, "Progress").as_deref(), Some("1/2"));
    assert_eq!(table_value(&one, "Complete").as_deref(), Some("false"));
    let done = ok(ward(&["operator", "generate-root", &nonce_flag, &new[0]]));
    assert_eq!(table_value(&done, "Complete").as_deref(), Some("true"));
    let encoded = table_value(&done, "Encoded Token").unwrap();
    let token = ok(ward(&[
        "operator",
        "generate-root",
        &format!("-decode={encoded}"),
        &format!("-otp={otp}"),
    ]));
    let token = token.trim();
    assert!(token.starts_with("wrd_"), "{token}");
    let wrong_otp = ward(&[
        "operator",
        "generate-root",
        &format!("-decode={encoded}"),
        "-otp=short",
    ]);
    assert_exit(&wrong_otp, 1);

    // The new token is root; the old one works until revoked.
    let lookup = ok(server.ward_full(Some(token), &["token", "lookup", "-format=json"], None));
    let lookup: Value = serde_json::from_str(&lookup).unwrap();
    assert_eq!(lookup["data"]["policies"], serde_json::json!(["root"]));
    ok(server.ward_full(Some(&root), &["token", "lookup"], None));
    ok(server.ward_full(Some(token), &["token", "revoke", &root], None));
    assert_exit(
        &server.ward_full(Some(&root), &["token", "lookup"], None),
        2,
    );
    ok(server.ward_full(Some(token), &["token", "lookup"], None));

    ok(ward(&["operator", "generate-root", "-init"]));
    let cancelled = ok(ward(&["operator", "generate-root", "-cancel"]));
    assert!(
        cancelled.contains("Root token generation canceled"),
        "{cancelled}"
    );
    assert!(!stdout(&ward(&["operator", "generate-root", "-status"])).contains(&nonce));

    // No share, OTP or token reaches the server's log (its warnings and errors: the test
    // servers log at `warn`, and a refused share is answered, not logged).
    let log = server.log();
    for secret in old
        .iter()
        .chain(&new)
        .chain([&otp, &encoded, &token.to_owned()])
    {
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the server log"
        );
    }
}
