//! The client library's typed transit and login calls against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Server;
use serde_json::json;
use ward_client::Client;

#[tokio::test]
async fn transit_calls_round_trip() {
    let server = Server::start();
    let (status, _) = server.call(
        "POST",
        "sys/mounts/transit",
        Some(&json!({"type": "transit"})),
    );
    assert_eq!(status, 204);
    let client = server.client();
    let transit = client.transit("transit");
    transit.create_key("app", None).await.unwrap();
    transit.create_key("signer", Some("ed25519")).await.unwrap();
    assert_eq!(transit.list_keys().await.unwrap(), ["app", "signer"]);

    let ciphertext = transit.encrypt("app", b"card 4111", None).await.unwrap();
    assert!(ciphertext.starts_with("vault:v1:"), "{ciphertext}");
    assert_eq!(
        transit
            .decrypt("app", &ciphertext, None)
            .await
            .unwrap()
            .as_slice(),
        b"card 4111"
    );
    transit.rotate_key("app").await.unwrap();
    let key = transit.read_key("app").await.unwrap().unwrap();
    assert_eq!(key["latest_version"], 2);
    let rewrapped = transit.rewrap("app", &ciphertext).await.unwrap();
    assert!(rewrapped.starts_with("vault:v2:"), "{rewrapped}");
    assert_eq!(
        transit
            .decrypt("app", &rewrapped, None)
            .await
            .unwrap()
            .as_slice(),
        b"card 4111"
    );
    assert!(transit.read_key("nothing").await.unwrap().is_none());

    let signature = transit.sign("signer", b"message", None).await.unwrap();
    assert!(
        transit
            .verify("signer", b"message", &signature, None)
            .await
            .unwrap()
    );
    assert!(
        !transit
            .verify("signer", b"other", &signature, None)
            .await
            .unwrap()
    );

    let hmac = transit.hmac("app", b"message", None).await.unwrap();
    assert!(transit.verify_hmac("app", b"message", &hmac).await.unwrap());
    assert!(!transit.verify_hmac("app", b"other", &hmac).await.unwrap());

    let datakey = transit.datakey("app", true, None).await.unwrap();
    let plaintext = datakey.plaintext.clone().unwrap();
    assert_eq!(plaintext.len(), 32);
    assert!(!format!("{datakey:?}").contains(&format!("{:?}", plaintext.as_slice())));
    let unwrapped = transit
        .decrypt("app", &datakey.ciphertext, None)
        .await
        .unwrap();
    assert_eq!(unwrapped.as_slice(), plaintext.as_slice());
    let wrapped_only = transit.datakey("app", false, Some(512)).await.unwrap();
    assert!(wrapped_only.plaintext.is_none());

    // A missing key is the server's 4xx, not retried into something else.
    let error = transit
        .decrypt("nothing", &ciphertext, None)
        .await
        .unwrap_err();
    assert!(matches!(error.status(), Some(400..=499)), "{error:?}");
}

#[tokio::test]
async fn userpass_and_approle_logins_give_working_tokens() {
    let server = Server::start();
    for (path, kind) in [
        ("sys/auth/userpass", "userpass"),
        ("sys/auth/approle", "approle"),
    ] {
        let (status, body) = server.call("POST", path, Some(&json!({"type": kind})));
        assert_eq!(status, 204, "{body}");
    }
    let (status, _) = server.call(
        "POST",
        "auth/userpass/users/alice",
        Some(&json!({"password": "correct-horse", "policies": "default"})),
    );
    assert_eq!(status, 204);
    let (status, _) = server.call(
        "POST",
        "auth/approle/role/app",
        Some(&json!({"token_policies": "default", "token_ttl": "1h"})),
    );
    assert_eq!(status, 204);
    let (_, role) = server.call("GET", "auth/approle/role/app/role-id", None);
    let (_, secret) = server.call("POST", "auth/approle/role/app/secret-id", None);
    let role_id = role["data"]["role_id"].as_str().unwrap();
    let secret_id = secret["data"]["secret_id"].as_str().unwrap();

    let client = Client::new(server.addr(), None).unwrap();
    let auth = client
        .login_userpass("userpass", "alice", "correct-horse")
        .await
        .unwrap();
    assert!(auth.policies.contains(&"default".to_owned()));
    let wrong = client
        .login_userpass("userpass", "alice", "nope")
        .await
        .unwrap_err();
    assert!(matches!(wrong.status(), Some(400..=403)), "{wrong:?}");

    let ttl = client
        .login(&ward_client::Login::AppRole {
            mount: "approle".into(),
            role_id: role_id.into(),
            secret_id: Some(secret_id.into()),
        })
        .await
        .unwrap();
    assert_eq!(ttl.as_secs(), 3600);
    let token = client.lookup_self().await.unwrap();
    assert!(
        token.path.starts_with("auth/approle/login"),
        "{}",
        token.path
    );
}
