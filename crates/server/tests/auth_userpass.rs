//! `sys/auth` and the `userpass` auth method against a real server: enabling, listing and
//! disabling (which revokes the tokens issued), users, logins, and what never leaves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::TestServer;

const PASSWORD: &str = "correct-horse-battery";

async fn enable_userpass(s: &TestServer, path: &str) {
    let (status, body) = s
        .call(
            "POST",
            &format!("sys/auth/{path}"),
            Some(json!({"type": "userpass", "description": "people"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

async fn add_alice(s: &TestServer) {
    let (status, body) = s
        .call(
            "POST",
            "auth/userpass/users/alice",
            Some(json!({"password": PASSWORD, "policies": "app,default", "token_ttl": "1h"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

async fn login(s: &TestServer, user: &str, password: &str) -> (u16, Value) {
    let path = format!("auth/userpass/login/{user}");
    s.call_as("", "POST", &path, Some(json!({ "password": password })))
        .await
}

/// No response body holds the password (nor its hash, which holds no part of it as text).
fn assert_no_password(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains("hash"), "{text}");
}

#[tokio::test]
async fn auth_methods_are_listed_enabled_tuned_and_disabled() {
    let s = support::dev().await;
    let (status, body) = s.call("GET", "sys/auth", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["token/"]["type"], "token");
    enable_userpass(&s, "userpass").await;
    let (status, body) = s
        .call(
            "POST",
            "sys/auth/userpass",
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, body) = s.call("GET", "sys/auth", None).await;
    let entry = &body["data"]["userpass/"];
    assert_eq!(entry["type"], "userpass");
    assert_eq!(entry["description"], "people");
    assert!(
        entry["accessor"]
            .as_str()
            .unwrap()
            .starts_with("auth_userpass_")
    );
    assert_eq!(entry["config"]["token_type"], "default-service");
    assert_eq!(body["userpass/"], body["data"]["userpass/"]);
    let (status, body) = s.call("GET", "sys/auth/userpass", None).await;
    assert_eq!((status, &body["data"]["type"]), (200, &json!("userpass")));
    // Not a secrets engine: `sys/mounts` neither lists nor mounts under `auth/`.
    let (_, mounts) = s.call("GET", "sys/mounts", None).await;
    assert!(mounts["data"].get("auth/userpass/").is_none(), "{mounts}");
    let (status, _) = s
        .call("POST", "sys/mounts/auth/x", Some(json!({"type": "kv-v2"})))
        .await;
    assert_eq!(status, 400);
    let (status, _) = s.call("GET", "sys/mounts/auth/userpass", None).await;
    assert_eq!(status, 400);
    let (status, body) = s
        .call("POST", "sys/auth/other", Some(json!({"type": "nope"})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0], "plugin not found in the catalog: nope");
    let (status, body) = s.call("DELETE", "sys/auth/token", None).await;
    assert_eq!(status, 400, "{body}");

    // Tune: the mount's default lease TTL becomes the login token's TTL.
    let (status, body) = s
        .call(
            "POST",
            "sys/auth/userpass/tune",
            Some(json!({"default_lease_ttl": "30m", "description": "tuned"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = s.call("GET", "sys/auth/userpass/tune", None).await;
    assert_eq!(body["data"]["default_lease_ttl"], 1800);
    assert_eq!(body["data"]["description"], "tuned");
    let (status, _) = s
        .call(
            "POST",
            "auth/userpass/users/bob",
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = login(&s, "bob", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["lease_duration"], 1800);

    // Disabling revokes every token the mount issued, and its users go with it.
    add_alice(&s).await;
    let (_, alice) = login(&s, "alice", PASSWORD).await;
    let tokens = [
        body["auth"]["client_token"].as_str().unwrap().to_owned(),
        alice["auth"]["client_token"].as_str().unwrap().to_owned(),
    ];
    let unrelated = s
        .new_token(&s.root_token, "auth/token/create", json!({}))
        .await;
    for token in &tokens {
        let (status, _) = s
            .call_as(token, "GET", "auth/token/lookup-self", None)
            .await;
        assert_eq!(status, 200);
    }
    let (status, body) = s.call("DELETE", "sys/auth/userpass", None).await;
    assert_eq!(status, 204, "{body}");
    for token in &tokens {
        let (status, _) = s
            .call_as(token, "GET", "auth/token/lookup-self", None)
            .await;
        assert_eq!(status, 403);
    }
    let (status, _) = s
        .call_as(&unrelated, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200);
    let (_, body) = s.call("GET", "sys/auth", None).await;
    assert!(body["data"].get("userpass/").is_none(), "{body}");
    enable_userpass(&s, "userpass").await;
    let (status, _) = login(&s, "alice", PASSWORD).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn users_are_created_read_listed_changed_and_deleted() {
    let s = support::dev().await;
    enable_userpass(&s, "userpass").await;
    let (status, body) = s
        .call(
            "POST",
            "auth/userpass/users/alice",
            Some(json!({"policies": "app"})),
        )
        .await;
    assert_eq!(status, 400, "a new user needs a password: {body}");
    add_alice(&s).await;
    let (status, body) = s.call("GET", "auth/userpass/users/alice", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["token_policies"], json!(["app", "default"]));
    assert_eq!(body["data"]["policies"], json!(["app", "default"]));
    assert_eq!(body["data"]["token_ttl"], 3600);
    assert!(body["data"].get("password").is_none(), "{body}");
    assert_no_password(&body);
    // An update keeps what it does not name.
    let (status, _) = s
        .call(
            "POST",
            "auth/userpass/users/alice",
            Some(json!({"token_bound_cidrs": ["127.0.0.1/32"], "token_max_ttl": "2h"})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, body) = s.call("GET", "auth/userpass/users/alice", None).await;
    assert_eq!(body["data"]["token_ttl"], 3600);
    assert_eq!(body["data"]["token_max_ttl"], 7200);
    assert_eq!(body["data"]["token_bound_cidrs"], json!(["127.0.0.1/32"]));
    let (status, _) = login(&s, "alice", PASSWORD).await;
    assert_eq!(status, 200);

    let (status, body) = s.call("LIST", "auth/userpass/users", None).await;
    assert_eq!((status, &body["data"]["keys"]), (200, &json!(["alice"])));
    let (status, _) = s
        .call(
            "POST",
            "auth/userpass/users/alice/password",
            Some(json!({"password": "new-password"})),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(login(&s, "alice", PASSWORD).await.0, 400);
    assert_eq!(login(&s, "alice", "new-password").await.0, 200);
    let (status, _) = s
        .call(
            "POST",
            "auth/userpass/users/nobody/password",
            Some(json!({"password": "x"})),
        )
        .await;
    assert_eq!(status, 400);
    // `policies` changes only the policies (OpenBao answers 500 for an unknown user).
    let path = "auth/userpass/users/alice/policies";
    let body = Some(json!({"policies": "ops, App"}));
    assert_eq!(s.call("POST", path, body).await.0, 204);
    let (_, body) = s.call("GET", "auth/userpass/users/alice", None).await;
    assert_eq!(body["data"]["token_policies"], json!(["ops", "app"]));
    assert_eq!(body["data"]["token_ttl"], 3600);
    let path = "auth/userpass/users/nobody/policies";
    let (status, body) = s.call("POST", path, Some(json!({"policies": "a"}))).await;
    assert_eq!(
        (status, &body["errors"]),
        (400, &json!(["username does not exist"]))
    );

    let (status, _) = s.call("DELETE", "auth/userpass/users/alice", None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call("GET", "auth/userpass/users/alice", None).await;
    assert_eq!(status, 404);
    let (status, _) = s.call("LIST", "auth/userpass/users", None).await;
    assert_eq!(status, 404);
    assert_eq!(login(&s, "alice", "new-password").await.0, 400);
}

#[tokio::test]
async fn a_login_returns_vaults_auth_block_with_the_users_token_settings() {
    let s = support::dev().await;
    enable_userpass(&s, "userpass").await;
    add_alice(&s).await;
    let (status, body) = login(&s, "Alice", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_no_password(&body);
    let auth = &body["auth"];
    assert_eq!(auth["policies"], json!(["app", "default"]));
    assert_eq!(auth["token_policies"], json!(["app", "default"]));
    assert_eq!(auth["metadata"], json!({"username": "alice"}));
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["orphan"], true);
    assert!(auth["accessor"].as_str().is_some_and(|a| !a.is_empty()));
    let token = auth["client_token"].as_str().unwrap();
    let (status, body) = s
        .call_as(token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["display_name"], "userpass-alice");
    assert_eq!(body["data"]["path"], "auth/userpass/login/alice");
    assert_eq!(body["data"]["meta"], json!({"username": "alice"}));

    // A user's CIDRs bind the login and go onto the token.
    let (status, _) = s
        .call(
            "POST",
            "auth/userpass/users/near",
            Some(json!({"password": PASSWORD, "token_bound_cidrs": "127.0.0.0/8"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = login(&s, "near", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap();
    let (status, body) = s
        .call_as(token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["bound_cidrs"], json!(["127.0.0.0/8"]));
    let (status, _) = s
        .call(
            "POST",
            "auth/userpass/users/far",
            Some(json!({"password": PASSWORD, "token_bound_cidrs": "10.9.8.0/24"})),
        )
        .await;
    assert_eq!(status, 204);
    // As OpenBao: the right password from elsewhere is 403, a wrong one still 400.
    let (status, body) = login(&s, "far", PASSWORD).await;
    assert_eq!(
        (status, &body["errors"]),
        (403, &json!(["permission denied"]))
    );
    assert_eq!(login(&s, "far", "not-it").await.0, 400);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable() {
    let s = support::dev().await;
    enable_userpass(&s, "userpass").await;
    add_alice(&s).await;
    let wrong = login(&s, "alice", "not-it").await;
    let unknown = login(&s, "mallory", "not-it").await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.0, 400);
    assert_eq!(wrong.1["errors"], json!(["invalid username or password"]));
    let (status, body) = s
        .call_as("", "POST", "auth/userpass/login/alice", Some(json!({})))
        .await;
    assert_eq!(status, 400, "{body}");
}

/// The code of the authenticator whose `otpauth://` URL is `url`, `steps` steps from now.
fn totp_code(url: &str, steps: i64) -> String {
    let totp = totp_rs::TOTP::from_url(url).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now.checked_add_signed(steps * 30).unwrap())
}

#[tokio::test]
async fn a_totp_enrolled_user_logs_in_with_each_code_once() {
    let s = support::dev().await;
    enable_userpass(&s, "userpass").await;
    add_alice(&s).await;
    let (status, body) = s.call("POST", "auth/userpass/users/alice/totp", None).await;
    assert_eq!(status, 200, "{body}");
    let url = body["data"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("otpauth://totp/Ward:alice?"), "{url}");
    assert!(!body["data"]["barcode"].as_str().unwrap().is_empty());
    // The secret is shown once: not again on enrolment, nor on a read of the user.
    let (status, body) = s.call("POST", "auth/userpass/users/alice/totp", None).await;
    assert_eq!(status, 400, "{body}");
    let secret = url
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let (_, user) = s.call("GET", "auth/userpass/users/alice", None).await;
    assert!(!user.to_string().contains(secret), "{user}");

    // The password alone is not enough once enrolled; a wrong password still says only that.
    let (status, body) = login(&s, "alice", PASSWORD).await;
    assert_eq!(
        (status, &body["errors"]),
        (400, &json!(["TOTP passcode required"]))
    );
    assert_eq!(
        login(&s, "alice", "not-it").await,
        login(&s, "bob", "not-it").await
    );
    let with_code = |code: String| json!({"password": PASSWORD, "totp": code});
    let path = "auth/userpass/login/alice";
    let (status, body) = s
        .call_as("", "POST", path, Some(with_code("000000".into())))
        .await;
    let refused = json!(["invalid or already used TOTP passcode"]);
    // (One in a million: 000000 might be a current code.)
    assert_eq!((status, &body["errors"]), (400, &refused));

    let code = totp_code(&url, 0);
    let (status, body) = s
        .call_as("", "POST", path, Some(with_code(code.clone())))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["auth"]["client_token"].as_str().is_some());
    // A code works once, and an earlier step's code is refused after a later one was used.
    let (status, body) = s.call_as("", "POST", path, Some(with_code(code))).await;
    assert_eq!((status, &body["errors"]), (400, &refused));
    let (status, _) = s
        .call_as("", "POST", path, Some(with_code(totp_code(&url, -1))))
        .await;
    assert_eq!(status, 400);

    // Vault's `X-Vault-MFA` header carries the code too, with or without a method name.
    let next = totp_code(&url, 1);
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/{path}", s.url))
        .header("X-Vault-MFA", format!("totp:{next}"))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Removing the second factor lets the password alone log in again.
    let (status, _) = s
        .call("DELETE", "auth/userpass/users/alice/totp", None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(login(&s, "alice", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn concurrent_logins_with_one_totp_code_let_one_in() {
    let s = std::sync::Arc::new(support::dev().await);
    enable_userpass(&s, "userpass").await;
    add_alice(&s).await;
    let (_, body) = s.call("POST", "auth/userpass/users/alice/totp", None).await;
    let code = totp_code(body["data"]["url"].as_str().unwrap(), 0);
    let logins = (0..6).map(|_| {
        let (s, code) = (s.clone(), code.clone());
        tokio::spawn(async move {
            let body = json!({"password": PASSWORD, "totp": code});
            s.call_as("", "POST", "auth/userpass/login/alice", Some(body))
                .await
                .0
        })
    });
    let mut statuses = Vec::new();
    for login in logins.collect::<Vec<_>>() {
        statuses.push(login.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400]);
}

/// Storage whose deleting commits fail while `failing` is set: a disable cut short
/// half-way, as a crash would cut it.
struct DeletesFail {
    inner: std::sync::Arc<dyn ward_store::Storage>,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DeletesFail {
    fn check(&self, deletes: bool) -> Result<(), ward_store::StoreError> {
        if deletes && self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ward_store::StoreError::Backend("simulated crash".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ward_store::Storage for DeletesFail {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ward_store::StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), ward_store::StoreError> {
        self.inner.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), ward_store::StoreError> {
        self.check(true)?;
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ward_store::StoreError> {
        self.inner.list(prefix).await
    }
    async fn commit(&self, ops: Vec<ward_store::Op>) -> Result<(), ward_store::StoreError> {
        self.check(ops.iter().any(|op| op.action == ward_store::Action::Delete))?;
        self.inner.commit(ops).await
    }
}

#[tokio::test]
async fn a_disable_cut_short_is_finished_at_the_next_unseal() {
    let dir = tempfile::tempdir().unwrap();
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storage = std::sync::Arc::new(DeletesFail {
        inner: support::storage(dir.path()).await,
        failing: failing.clone(),
    });
    let s = support::dev_over(storage, dir).await;
    enable_userpass(&s, "userpass").await;
    add_alice(&s).await;
    let (_, body) = login(&s, "alice", PASSWORD).await;
    let token = body["auth"]["client_token"].as_str().unwrap().to_owned();

    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, _) = s.call("DELETE", "sys/auth/userpass", None).await;
    assert_eq!(status, 500);
    // Cut short after the method was marked: nobody logs in through it any more, and it
    // is listed no more, though its token could not be revoked yet.
    assert_ne!(login(&s, "alice", PASSWORD).await.0, 200);
    let (_, list) = s.call("GET", "sys/auth", None).await;
    assert!(list["data"].get("userpass/").is_none(), "{list}");
    failing.store(false, std::sync::atomic::Ordering::SeqCst);

    // The next unseal finishes the disable: the token is revoked, the path is free again.
    let s = support::restart(s, ward_core::CoreConfig::default()).await;
    let (status, _) = s
        .call_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 403);
    enable_userpass(&s, "userpass").await;
    assert_eq!(login(&s, "alice", PASSWORD).await.0, 400);
}

#[tokio::test]
async fn a_token_without_the_policy_cannot_manage_users() {
    let s = support::dev().await;
    enable_userpass(&s, "userpass").await;
    let plain = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"policies": ["default"]}),
        )
        .await;
    let (status, _) = s
        .call_as(
            &plain,
            "POST",
            "auth/userpass/users/eve",
            Some(json!({"password": PASSWORD, "policies": "root"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = s
        .call_as(
            &plain,
            "POST",
            "sys/auth/other",
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert_eq!(status, 403);
    s.put_policy(
        "people",
        r#"path "auth/userpass/users/*" { capabilities = ["create", "update"] }"#,
    )
    .await;
    let admin = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"policies": ["people"]}),
        )
        .await;
    let (status, body) = s
        .call_as(
            &admin,
            "POST",
            "auth/userpass/users/eve",
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = s
        .call_as(&admin, "GET", "auth/userpass/users/eve", None)
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_login_is_refused_while_sealed() {
    let s = support::dev().await;
    enable_userpass(&s, "userpass").await;
    add_alice(&s).await;
    let (status, _) = s.call("POST", "sys/seal", None).await;
    assert_eq!(status, 204);
    let (status, body) = login(&s, "alice", PASSWORD).await;
    assert_eq!(status, 503, "{body}");
    let (status, _) = s
        .call("PUT", "sys/unseal", Some(json!({"key": s.unseal_key})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(login(&s, "alice", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn a_login_is_audited_with_its_password_hmacd() {
    let s = support::dev().await;
    let file = s.enable_file_audit().await;
    enable_userpass(&s, "userpass").await;
    add_alice(&s).await;
    let (status, reply) = login(&s, "alice", PASSWORD).await;
    assert_eq!(status, 200);
    let token = reply["auth"]["client_token"].as_str().unwrap();
    let (status, _) = login(&s, "alice", "wrong-one").await;
    assert_eq!(status, 400);
    let log = std::fs::read_to_string(&file).unwrap();
    assert!(!log.contains(PASSWORD), "the password is in the audit log");
    assert!(
        !log.contains("wrong-one"),
        "a wrong password is in the audit log"
    );
    assert!(!log.contains(token), "the issued token is in the audit log");
    let logins: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["request"]["path"] == "auth/userpass/login/alice")
        .collect();
    // Two logins, a request and a response entry each.
    assert_eq!(logins.len(), 4, "{logins:?}");
    for entry in &logins {
        let password = entry["request"]["data"]["password"].as_str().unwrap();
        assert!(password.starts_with("hmac-sha256:"), "{entry}");
    }
    let issued = logins
        .iter()
        .find_map(|e| e["response"]["auth"]["client_token"].as_str())
        .unwrap();
    assert!(issued.starts_with("hmac-sha256:"), "{issued}");
}
