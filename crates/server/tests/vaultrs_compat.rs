//! `vaultrs`, an independent Vault client with strict response types, against Ward.
//! If vaultrs cannot talk to Ward, Ward is not Vault-compatible.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;

use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::{kv2, sys, token};

fn client(url: &str, token: &str) -> VaultClient {
    VaultClient::new(
        VaultClientSettingsBuilder::default()
            .address(url)
            .token(token)
            .build()
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn kv_v2_round_trip_with_vaultrs() {
    let s = support::dev().await;
    let c = client(&s.url, &s.root_token);
    let secret = HashMap::from([
        ("user".to_owned(), "admin".to_owned()),
        ("pass".to_owned(), "s3cr3t".to_owned()),
    ]);
    let meta = kv2::set(&c, "secret", "app/config", &secret).await.unwrap();
    assert_eq!(meta.version, 1);
    let back: HashMap<String, String> = kv2::read(&c, "secret", "app/config").await.unwrap();
    assert_eq!(back, secret);
    kv2::set(
        &c,
        "secret",
        "app/config",
        &HashMap::from([("user", "other")]),
    )
    .await
    .unwrap();
    let v1: HashMap<String, String> = kv2::read_version(&c, "secret", "app/config", 1)
        .await
        .unwrap();
    assert_eq!(v1, secret);
    let keys = kv2::list(&c, "secret", "app").await.unwrap();
    assert_eq!(keys, vec!["config".to_owned()]);
    let metadata = kv2::read_metadata(&c, "secret", "app/config")
        .await
        .unwrap();
    assert_eq!(metadata.current_version, 2);
    kv2::delete_versions(&c, "secret", "app/config", vec![2])
        .await
        .unwrap();
    assert!(
        kv2::read::<HashMap<String, String>>(&c, "secret", "app/config")
            .await
            .is_err()
    );
    kv2::undelete_versions(&c, "secret", "app/config", vec![2])
        .await
        .unwrap();
    let back: HashMap<String, String> = kv2::read(&c, "secret", "app/config").await.unwrap();
    assert_eq!(back["user"], "other");
    kv2::destroy_versions(&c, "secret", "app/config", vec![1])
        .await
        .unwrap();
    kv2::delete_metadata(&c, "secret", "app/config")
        .await
        .unwrap();
    assert!(
        kv2::read_metadata(&c, "secret", "app/config")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn tokens_and_policies_with_vaultrs() {
    let s = support::dev().await;
    let root = client(&s.url, &s.root_token);
    sys::policy::set(
        &root,
        "reader",
        r#"path "secret/data/shared/*" { capabilities = ["read"] }"#,
    )
    .await
    .unwrap();
    let policies = sys::policy::list(&root).await.unwrap();
    assert!(policies.policies.contains(&"reader".to_owned()));
    let read = sys::policy::read(&root, "reader").await.unwrap();
    assert!(read.rules.contains("secret/data/shared/*"));

    kv2::set(&root, "secret", "shared/db", &HashMap::from([("k", "v")]))
        .await
        .unwrap();
    let auth = token::new(
        &root,
        Some(
            vaultrs::api::token::requests::CreateTokenRequest::builder()
                .policies(vec!["reader".into()])
                .ttl("1h"),
        ),
    )
    .await
    .unwrap();
    assert!(auth.client_token.starts_with("wrd_"));
    let reader = client(&s.url, &auth.client_token);
    let me = token::lookup_self(&reader).await.unwrap();
    assert_eq!(me.policies, vec!["default".to_owned(), "reader".to_owned()]);
    let got: HashMap<String, String> = kv2::read(&reader, "secret", "shared/db").await.unwrap();
    assert_eq!(got["k"], "v");
    assert!(
        kv2::set(&reader, "secret", "shared/db", &HashMap::from([("k", "w")]))
            .await
            .is_err()
    );
    token::renew_self(&reader, Some("30m")).await.unwrap();
    token::revoke_self(&reader).await.unwrap();
    assert!(token::lookup_self(&reader).await.is_err());
    sys::policy::delete(&root, "reader").await.unwrap();
}

#[tokio::test]
async fn sys_health_status_and_mounts_with_vaultrs() {
    let s = support::dev().await;
    let c = client(&s.url, &s.root_token);
    let health = sys::health(&c).await.unwrap();
    assert!(health.initialized && !health.sealed);
    let status = sys::status(&c).await.unwrap();
    assert!(matches!(status, sys::ServerStatus::OK));
    sys::mount::enable(&c, "team", "kv-v2", None).await.unwrap();
    let mounts = sys::mount::list(&c).await.unwrap();
    assert!(mounts.contains_key("team/"));
    kv2::set(&c, "team", "x", &HashMap::from([("a", "b")]))
        .await
        .unwrap();
    sys::mount::disable(&c, "team").await.unwrap();
}

#[tokio::test]
async fn approle_with_vaultrs() {
    use vaultrs::api::auth::approle::requests::{GenerateNewSecretIDRequest, SetAppRoleRequest};
    use vaultrs::auth::approle;
    let s = support::dev().await;
    let c = client(&s.url, &s.root_token);
    sys::auth::enable(&c, "machines", "approle", None)
        .await
        .unwrap();
    assert!(sys::auth::list(&c).await.unwrap().contains_key("machines/"));
    approle::role::set(
        &c,
        "machines",
        "web",
        Some(
            &mut SetAppRoleRequest::builder()
                .token_policies(vec!["web".into()])
                .token_ttl("1h")
                .secret_id_num_uses(10u64),
        ),
    )
    .await
    .unwrap();
    let role = approle::role::read(&c, "machines", "web").await.unwrap();
    assert!(role.bind_secret_id);
    assert_eq!((role.token_ttl, role.secret_id_num_uses), (3600, 10));
    assert_eq!(role.token_policies, vec!["web".to_owned()]);
    assert_eq!(
        approle::role::list(&c, "machines").await.unwrap().keys,
        vec!["web".to_owned()]
    );
    approle::role::update_id(&c, "machines", "web", "web-role-id")
        .await
        .unwrap();
    let role_id = approle::role::read_id(&c, "machines", "web").await.unwrap();
    assert_eq!(role_id.role_id, "web-role-id");

    let generated = approle::role::secret::generate(
        &c,
        "machines",
        "web",
        Some(&mut GenerateNewSecretIDRequest::builder().metadata(r#"{"host":"w1"}"#)),
    )
    .await
    .unwrap();
    let listed = approle::role::secret::list(&c, "machines", "web")
        .await
        .unwrap();
    assert_eq!(listed.keys, vec![generated.secret_id_accessor.clone()]);
    let auth = approle::login(&c, "machines", "web-role-id", &generated.secret_id)
        .await
        .unwrap();
    assert!(auth.policies.contains(&"web".to_owned()));
    assert_eq!(auth.metadata.unwrap()["role_name"], "web");
    let me = token::lookup_self(&client(&s.url, &auth.client_token))
        .await
        .unwrap();
    // As OpenBao: an AppRole token is named after its mount alone.
    assert_eq!(me.display_name, "machines");
    let read = approle::role::secret::read(&c, "machines", "web", &generated.secret_id)
        .await
        .unwrap();
    assert_eq!(read.secret_id_num_uses, 9);
    let by_accessor =
        approle::role::secret::read_accessor(&c, "machines", "web", &generated.secret_id_accessor)
            .await
            .unwrap();
    assert_eq!(by_accessor.metadata.unwrap()["host"], "w1");
    approle::role::secret::delete_accessor(&c, "machines", "web", &generated.secret_id_accessor)
        .await
        .unwrap();
    assert!(
        approle::login(&c, "machines", "web-role-id", &generated.secret_id)
            .await
            .is_err()
    );
    let custom = approle::role::secret::custom(&c, "machines", "web", "custom-secret", None)
        .await
        .unwrap();
    assert_eq!(custom.secret_id, "custom-secret");
    approle::role::secret::delete(&c, "machines", "web", "custom-secret")
        .await
        .unwrap();
    assert!(
        approle::login(&c, "machines", "web-role-id", "custom-secret")
            .await
            .is_err()
    );
    approle::tidy(&c, "machines").await.unwrap();
    approle::role::delete(&c, "machines", "web").await.unwrap();
    sys::auth::disable(&c, "machines").await.unwrap();
}

#[tokio::test]
async fn userpass_with_vaultrs() {
    use vaultrs::auth::userpass;
    let s = support::dev().await;
    let c = client(&s.url, &s.root_token);
    sys::auth::enable(&c, "people", "userpass", None)
        .await
        .unwrap();
    userpass::user::set(
        &c,
        "people",
        "alice",
        "correct-horse-battery",
        Some(
            &mut vaultrs::api::auth::userpass::requests::CreateUserRequest::builder()
                .token_policies(vec!["app".into()])
                .token_ttl("1h"),
        ),
    )
    .await
    .unwrap();
    let user = userpass::user::read(&c, "people", "alice").await.unwrap();
    assert_eq!(user.token_policies, vec!["app".to_owned()]);
    assert_eq!(user.token_ttl, 3600);
    assert_eq!(
        userpass::user::list(&c, "people").await.unwrap().keys,
        vec!["alice".to_owned()]
    );
    let auth = userpass::login(&c, "people", "alice", "correct-horse-battery")
        .await
        .unwrap();
    assert_eq!(auth.lease_duration, 3600);
    assert!(auth.policies.contains(&"app".to_owned()));
    assert!(
        userpass::login(&c, "people", "alice", "wrong")
            .await
            .is_err()
    );
    userpass::user::update_password(&c, "people", "alice", "new-password")
        .await
        .unwrap();
    userpass::login(&c, "people", "alice", "new-password")
        .await
        .unwrap();
    userpass::user::update_policies(&c, "people", "alice", "app,ops")
        .await
        .unwrap();
    let user = userpass::user::read(&c, "people", "alice").await.unwrap();
    assert_eq!(
        user.token_policies,
        vec!["app".to_owned(), "ops".to_owned()]
    );
    userpass::user::delete(&c, "people", "alice").await.unwrap();
    sys::auth::disable(&c, "people").await.unwrap();
}
