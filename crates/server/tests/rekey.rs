//! Rekey and root token generation by a quorum of unseal shares (Vault's `sys/rekey/*` and
//! `sys/generate-root/*`), over HTTP, with the shapes OpenBao 2.7.2 answers with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{TestServer, assert_errors, fresh};

/// A fresh server initialised with `shares`/`threshold`, unsealed; its shares (hex).
async fn initialised(shares: u8, threshold: u8) -> (TestServer, Vec<String>) {
    let mut s = fresh().await;
    let (status, init) = s
        .call(
            "PUT",
            "sys/init",
            Some(json!({"secret_shares": shares, "secret_threshold": threshold})),
        )
        .await;
    assert_eq!(status, 200, "{init}");
    let keys: Vec<String> = serde_json::from_value(init["keys"].clone()).unwrap();
    s.root_token = init["root_token"].as_str().unwrap().to_owned();
    unseal(&s, &keys[..usize::from(threshold)]).await;
    (s, keys)
}

async fn unseal(s: &TestServer, keys: &[String]) {
    for key in keys {
        let (status, body) = s
            .call("PUT", "sys/unseal", Some(json!({ "key": key })))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, body) = s.call("GET", "sys/seal-status", None).await;
    assert_eq!(body["sealed"], false, "{body}");
}

fn error_text(body: &Value) -> String {
    assert_errors(body);
    body["errors"][0].as_str().unwrap_or_default().to_owned()
}

/// The unauthenticated routes are called without a token, as Vault's CLI would.
async fn open_call(s: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    s.call_as("", method, path, body).await
}

#[tokio::test]
async fn rekey_3_of_5_to_2_of_3_retires_the_old_shares() {
    let (s, old) = initialised(5, 3).await;
    let (status, _) = s
        .call(
            "PUT",
            "sys/policies/acl/kept",
            Some(json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})),
        )
        .await;
    assert_eq!(status, 204);

    let (status, body) = open_call(&s, "GET", "sys/rekey/init", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"nonce": "", "started": false, "t": 0, "n": 0, "progress": 0, "required": 3,
               "pgp_fingerprints": null, "backup": false, "verification_required": false})
    );
    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": old[0], "nonce": "x"})),
    )
    .await;
    assert_eq!(
        (status, error_text(&body).as_str()),
        (400, "no barrier rekey in progress")
    );

    // bao's CLI sends these fields with their defaults.
    let start = json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": null,
                       "backup": false, "require_verification": false});
    let (status, body) = open_call(&s, "PUT", "sys/rekey/init", Some(start.clone())).await;
    assert_eq!(status, 200, "{body}");
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            body["started"].clone(),
            body["t"].clone(),
            body["n"].clone(),
            body["required"].clone()
        ),
        (json!(true), json!(2), json!(3), json!(3))
    );
    let (status, body) = open_call(&s, "PUT", "sys/rekey/init", Some(start)).await;
    assert_eq!(
        (status, error_text(&body).as_str()),
        (400, "rekey already in progress")
    );

    // A wrong nonce, a share this seal never issued, and a share given twice do not count.
    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": old[0], "nonce": "wrong"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        error_text(&body),
        format!("incorrect nonce supplied; nonce for this rekey operation is \"{nonce}\"")
    );
    let foreign = hex::encode([7u8; 33]);
    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": foreign, "nonce": nonce})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": "not a key!", "nonce": nonce})),
    )
    .await;
    assert_eq!(
        (status, error_text(&body).as_str()),
        (400, "'key' must be a valid hex or base64 string")
    );
    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": old[0], "nonce": nonce})),
    )
    .await;
    assert_eq!(
        (status, body["progress"].clone(), body["nonce"].clone()),
        (200, json!(1), json!(nonce))
    );
    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": old[0], "nonce": nonce})),
    )
    .await;
    assert_eq!(
        (status, error_text(&body).as_str()),
        (
            400,
            "given key has already been provided during this generation operation"
        )
    );
    let (_, body) = open_call(&s, "GET", "sys/rekey/init", None).await;
    assert_eq!(body["progress"], 1);

    open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": old[1], "nonce": nonce})),
    )
    .await;
    let (status, done) = open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": old[4], "nonce": nonce})),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["complete"].clone(), done["nonce"].clone()),
        (json!(true), json!(nonce))
    );
    let new: Vec<String> = serde_json::from_value(done["keys"].clone()).unwrap();
    let new_b64: Vec<String> = serde_json::from_value(done["keys_base64"].clone()).unwrap();
    assert_eq!((new.len(), new_b64.len()), (3, 3));
    assert!(new.iter().all(|k| !old.contains(k)));

    let (_, body) = s.call("GET", "sys/seal-status", None).await;
    assert_eq!((body["t"].clone(), body["n"].clone()), (json!(2), json!(3)));
    let (_, body) = open_call(&s, "GET", "sys/rekey/init", None).await;
    assert_eq!(
        (body["started"].clone(), body["required"].clone()),
        (json!(false), json!(2))
    );

    // After a seal, the old shares are refused at once; two new ones unseal.
    let (status, _) = s.call("PUT", "sys/seal", None).await;
    assert_eq!(status, 204);
    for key in &old {
        let (status, body) = s
            .call("PUT", "sys/unseal", Some(json!({ "key": key })))
            .await;
        assert_eq!(status, 400, "an old share must be refused: {body}");
    }
    let (_, body) = s
        .call("PUT", "sys/unseal", Some(json!({"key": new_b64[2]})))
        .await;
    assert_eq!(
        (body["sealed"].clone(), body["progress"].clone()),
        (json!(true), json!(1))
    );
    unseal(&s, &new[..1]).await;
    let (status, body) = s.call("GET", "sys/policies/acl/kept", None).await;
    assert_eq!(
        status, 200,
        "data written before the rekey reads back: {body}"
    );
}

#[tokio::test]
async fn rekey_is_refused_for_what_ward_does_not_do_and_can_be_cancelled() {
    let (s, keys) = initialised(3, 2).await;
    // OpenBao answers 500 for a bad split; Ward answers 400.
    for (shares, threshold, why) in [
        (
            3,
            1,
            "threshold must be greater than one for multiple shares",
        ),
        (3, 4, "threshold cannot be larger than shares"),
        (0, 0, "shares must be at least one"),
        (300, 2, "shares must be less than 256"),
    ] {
        let (status, body) = open_call(
            &s,
            "PUT",
            "sys/rekey/init",
            Some(json!({"secret_shares": shares, "secret_threshold": threshold})),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            error_text(&body),
            format!("invalid rekey seal configuration: {why}")
        );
    }
    for (field, value) in [
        ("pgp_keys", json!(["mQENBF..."])),
        ("backup", json!(true)),
        ("require_verification", json!(true)),
    ] {
        let mut start = json!({"secret_shares": 3, "secret_threshold": 2});
        start[field] = value;
        let (status, body) = open_call(&s, "PUT", "sys/rekey/init", Some(start)).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            error_text(&body).starts_with(&format!("{field} is not supported")),
            "{body}"
        );
    }
    let (_, body) = open_call(&s, "GET", "sys/rekey/init", None).await;
    assert_eq!(body["started"], false, "a refused start starts nothing");

    let (_, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/init",
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    let (_, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": keys[0], "nonce": nonce})),
    )
    .await;
    assert_eq!(body["progress"], 1);
    let (status, _) = open_call(&s, "DELETE", "sys/rekey/init", None).await;
    assert_eq!(status, 204);
    let (_, body) = open_call(&s, "GET", "sys/rekey/init", None).await;
    assert_eq!(
        (body["started"].clone(), body["nonce"].clone()),
        (json!(false), json!(""))
    );
    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/update",
        Some(json!({"key": keys[1], "nonce": nonce})),
    )
    .await;
    assert_eq!(
        (status, error_text(&body).as_str()),
        (400, "no barrier rekey in progress")
    );
    let (_, body) = s.call("GET", "sys/seal-status", None).await;
    assert_eq!(
        (body["t"].clone(), body["n"].clone()),
        (json!(2), json!(3)),
        "a cancelled rekey changes nothing"
    );

    // Recovery keys exist only with an auto-unseal seal.
    for method in ["GET", "PUT", "DELETE"] {
        let (status, body) =
            open_call(&s, method, "sys/rekey-recovery-key/init", Some(json!({}))).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            error_text(&body).starts_with("recovery rekeying not supported"),
            "{body}"
        );
    }

    // Sealed, neither operation is served; a seal ends the attempts under way.
    open_call(
        &s,
        "PUT",
        "sys/rekey/init",
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    s.call("PUT", "sys/seal", None).await;
    for path in ["sys/rekey/init", "sys/generate-root/attempt"] {
        let (status, body) = open_call(&s, "GET", path, None).await;
        assert_eq!(
            (status, error_text(&body).as_str()),
            (503, "Vault is sealed"),
            "{path}"
        );
    }
    unseal(&s, &keys[..2]).await;
    let (_, body) = open_call(&s, "GET", "sys/rekey/init", None).await;
    assert_eq!(body["started"], false);
}

#[tokio::test]
async fn concurrent_rekey_updates_complete_exactly_once() {
    let (s, keys) = initialised(5, 3).await;
    let (_, body) = open_call(
        &s,
        "PUT",
        "sys/rekey/init",
        Some(json!({"secret_shares": 3, "secret_threshold": 2})),
    )
    .await;
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    let update = |i: usize| {
        open_call(
            &s,
            "PUT",
            "sys/rekey/update",
            Some(json!({"key": keys[i], "nonce": nonce})),
        )
    };
    let (a, b, c, d, e) = tokio::join!(update(0), update(1), update(2), update(3), update(4));
    let replies = [a, b, c, d, e];
    let done: Vec<&Value> = replies
        .iter()
        .filter(|(_, b)| b["complete"] == true)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(done.len(), 1, "{replies:?}");
    for (status, body) in &replies {
        let text = body["errors"][0].as_str().unwrap_or_default();
        assert!(
            *status == 200 || text == "no barrier rekey in progress",
            "{status} {body}"
        );
    }
    let new: Vec<String> = serde_json::from_value(done[0]["keys"].clone()).unwrap();
    s.call("PUT", "sys/seal", None).await;
    unseal(&s, &new[1..]).await;
}

#[tokio::test]
async fn generate_root_makes_a_working_root_token_and_the_old_one_lives_until_revoked() {
    let (s, keys) = initialised(3, 2).await;
    let (status, body) = open_call(&s, "GET", "sys/generate-root/attempt", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"nonce": "", "started": false, "progress": 0, "required": 2, "complete": false,
               "encoded_token": "", "encoded_root_token": "", "pgp_fingerprint": "",
               "otp": "", "otp_length": 42})
    );
    for (start, why) in [
        (json!({"otp": "abc"}), "OTP string has incorrect length"),
        (json!({"pgp_key": "mQENBF..."}), "pgp_key is not supported"),
    ] {
        let (status, body) = open_call(&s, "PUT", "sys/generate-root/attempt", Some(start)).await;
        assert_eq!(status, 400, "{body}");
        assert!(error_text(&body).starts_with(why), "{body}");
    }
    // bao's CLI starts with empty `otp` and `pgp_key`; the server makes the OTP.
    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/generate-root/attempt",
        Some(json!({"otp": "", "pgp_key": ""})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let otp = body["otp"].as_str().unwrap().to_owned();
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            otp.len(),
            body["otp_length"].clone(),
            body["started"].clone()
        ),
        (42, json!(42), json!(true))
    );
    let (status, body) = open_call(&s, "PUT", "sys/generate-root/attempt", Some(json!({}))).await;
    assert_eq!(
        (status, error_text(&body).as_str()),
        (400, "root generation already in progress")
    );
    let (_, body) = open_call(&s, "GET", "sys/generate-root/attempt", None).await;
    assert_eq!(
        (body["otp"].clone(), body["nonce"].clone()),
        (json!(""), json!(nonce)),
        "the OTP is shown once"
    );

    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/generate-root/update",
        Some(json!({"key": keys[2], "nonce": "wrong"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        error_text(&body),
        format!(
            "incorrect nonce supplied; nonce for this root generation operation is \"{nonce}\""
        )
    );
    let (_, body) = open_call(
        &s,
        "PUT",
        "sys/generate-root/update",
        Some(json!({"key": keys[2], "nonce": nonce})),
    )
    .await;
    assert_eq!(
        (body["progress"].clone(), body["complete"].clone()),
        (json!(1), json!(false))
    );
    let (status, done) = open_call(
        &s,
        "PUT",
        "sys/generate-root/update",
        Some(json!({"key": keys[0], "nonce": nonce})),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["complete"], true);
    assert_eq!(done["encoded_token"], done["encoded_root_token"]);
    let encoded = done["encoded_token"].as_str().unwrap();
    let token = ward_api::decode_root_token(encoded, &otp).unwrap();
    assert!(ward_api::token_format::looks_like_token(&token), "{token}");
    assert_ne!(token, s.root_token);
    let (_, body) = open_call(&s, "GET", "sys/generate-root/attempt", None).await;
    assert_eq!(body["started"], false);

    let (status, body) = s
        .call_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["policies"], json!(["root"]));
    let (status, _) = s.call_as(&token, "GET", "sys/key-status", None).await;
    assert_eq!(status, 200, "the new token is root: sudo paths too");
    let (status, _) = s.call("GET", "auth/token/lookup-self", None).await;
    assert_eq!(status, 200, "the old root token still works");
    let (status, _) = s.call("PUT", "auth/token/revoke-self", None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call("GET", "auth/token/lookup-self", None).await;
    assert_eq!(status, 403, "the old root token is gone once revoked");
    let (status, _) = s
        .call_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200, "the new one is not its child");

    // An OTP of the right length may come from the client (`bao operator generate-root
    // -generate-otp`); it is not sent back.
    let own_otp = "0123456789abcdefghijABCDEFGHIJ0123456789ab";
    let (status, body) = open_call(
        &s,
        "PUT",
        "sys/generate-root/attempt",
        Some(json!({"otp": own_otp})),
    )
    .await;
    assert_eq!((status, body["otp"].clone()), (200, json!("")), "{body}");
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    open_call(
        &s,
        "PUT",
        "sys/generate-root/update",
        Some(json!({"key": keys[0], "nonce": nonce})),
    )
    .await;
    let (_, done) = open_call(
        &s,
        "PUT",
        "sys/generate-root/update",
        Some(json!({"key": keys[1], "nonce": nonce})),
    )
    .await;
    let second =
        ward_api::decode_root_token(done["encoded_token"].as_str().unwrap(), own_otp).unwrap();
    assert_ne!(second, token);
    let (status, body) = s
        .call_as(&second, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(
        (status, body["data"]["policies"].clone()),
        (200, json!(["root"])),
        "{body}"
    );

    // Cancel ends an attempt.
    open_call(&s, "PUT", "sys/generate-root/attempt", Some(json!({}))).await;
    let (status, _) = open_call(&s, "DELETE", "sys/generate-root/attempt", None).await;
    assert_eq!(status, 204);
    let (_, body) = open_call(&s, "GET", "sys/generate-root/attempt", None).await;
    assert_eq!(body["started"], false);
}

/// OpenBao's authenticated `sys/generate-root-token/*` (what `bao operator generate-root`
/// calls): a token with `sudo` on it, replies in the envelope, every secret HMAC'd in audit.
#[tokio::test]
async fn generate_root_token_is_authenticated_and_audited_without_secrets() {
    let (s, keys) = initialised(3, 2).await;
    let log = s.enable_file_audit().await;
    let (status, _) = open_call(&s, "GET", "sys/generate-root-token/attempt", None).await;
    assert_eq!(status, 403);
    let (status, body) = s
        .call(
            "PUT",
            "sys/generate-root-token/attempt",
            Some(json!({"otp": "", "pgp_key": ""})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let otp = body["data"]["otp"].as_str().unwrap().to_owned();
    let nonce = body["data"]["nonce"].as_str().unwrap().to_owned();
    s.call(
        "PUT",
        "sys/generate-root-token/update",
        Some(json!({"key": keys[0], "nonce": nonce})),
    )
    .await;
    let (status, done) = s
        .call(
            "PUT",
            "sys/generate-root-token/update",
            Some(json!({"key": keys[1], "nonce": nonce})),
        )
        .await;
    assert_eq!(
        (status, done["data"]["complete"].clone()),
        (200, json!(true)),
        "{done}"
    );
    let encoded = done["data"]["encoded_token"].as_str().unwrap();
    let token = ward_api::decode_root_token(encoded, &otp).unwrap();
    let (status, _) = s.call_as(&token, "GET", "sys/mounts", None).await;
    assert_eq!(status, 200);

    let audit = std::fs::read_to_string(log).unwrap();
    assert!(
        audit.contains("sys/generate-root-token/update"),
        "the updates are audited"
    );
    for secret in [&keys[0], &keys[1], &otp, &encoded.to_owned(), &token] {
        assert!(
            !audit.contains(secret.as_str()),
            "a secret reached the audit log"
        );
    }
}

/// OpenBao's authenticated rekey, `sys/rotate/root/*` (what `bao operator rotate-keys`
/// calls): a token with `sudo` on it, replies in the envelope, shares HMAC'd in audit.
#[tokio::test]
async fn rotate_root_is_the_authenticated_rekey() {
    let (s, keys) = initialised(3, 2).await;
    let log = s.enable_file_audit().await;
    let (status, _) = open_call(&s, "GET", "sys/rotate/root/init", None).await;
    assert_eq!(status, 403);
    let (status, body) = s
        .call(
            "POST",
            "sys/rotate/root/init",
            Some(json!({"secret_shares": 2, "secret_threshold": 2})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["data"]["started"].clone(), body["data"]["n"].clone()),
        (json!(true), json!(2))
    );
    let nonce = body["data"]["nonce"].as_str().unwrap().to_owned();
    let (_, body) = s.call("GET", "sys/rotate/root/init", None).await;
    assert_eq!(body["data"]["nonce"], nonce);
    let (_, body) = s
        .call(
            "POST",
            "sys/rotate/root/update",
            Some(json!({"key": keys[2], "nonce": nonce})),
        )
        .await;
    assert_eq!(body["data"]["progress"], 1, "{body}");
    let (status, done) = s
        .call(
            "POST",
            "sys/rotate/root/update",
            Some(json!({"key": keys[0], "nonce": nonce})),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["data"]["complete"], true);
    let new: Vec<String> = serde_json::from_value(done["data"]["keys"].clone()).unwrap();
    assert_eq!(new.len(), 2);
    let (status, body) = s.call("GET", "sys/rotate/recovery/init", None).await;
    assert_eq!(status, 400, "{body}");

    s.call("PUT", "sys/seal", None).await;
    let (status, _) = s
        .call("PUT", "sys/unseal", Some(json!({"key": keys[1]})))
        .await;
    assert_eq!(status, 400, "an old share is refused");
    unseal(&s, &new).await;
    let audit = std::fs::read_to_string(log).unwrap();
    assert!(
        audit.contains("sys/rotate/root/update"),
        "the updates are audited"
    );
    for secret in keys.iter().chain(&new) {
        assert!(
            !audit.contains(secret.as_str()),
            "a share reached the audit log"
        );
    }
}
