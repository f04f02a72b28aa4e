//! The `approle` auth method against a real server: roles, role and secret IDs, logins
//! (spent uses, expiry, CIDR bounds, concurrent logins), accessors, tidy, and the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::TestServer;

async fn enable_approle(s: &TestServer) {
    let (status, body) = s
        .call("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
        .await;
    assert_eq!(status, 204, "{body}");
}

async fn write(s: &TestServer, path: &str, body: Value) -> Value {
    let (status, reply) = s
        .call("POST", &format!("auth/approle/{path}"), Some(body))
        .await;
    assert!(status == 200 || status == 204, "{path}: {status} {reply}");
    reply
}

async fn role_id(s: &TestServer, role: &str) -> String {
    let (status, body) = s
        .call("GET", &format!("auth/approle/role/{role}/role-id"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["role_id"].as_str().unwrap().to_owned()
}

/// A new secret ID of `role` with the settings `body` gives: (secret_id, accessor).
async fn secret_id(s: &TestServer, role: &str, body: Value) -> (String, String) {
    let reply = write(s, &format!("role/{role}/secret-id"), body).await;
    let data = &reply["data"];
    (
        data["secret_id"].as_str().unwrap().to_owned(),
        data["secret_id_accessor"].as_str().unwrap().to_owned(),
    )
}

async fn login(s: &TestServer, role_id: &str, secret_id: &str) -> (u16, Value) {
    login_with(&s.http, s, role_id, secret_id).await
}

/// A login sent through `http` (whose socket may be bound to another local address).
async fn login_with(
    http: &reqwest::Client,
    s: &TestServer,
    role_id: &str,
    secret_id: &str,
) -> (u16, Value) {
    login_at(http, &s.url, role_id, secret_id).await
}

async fn login_at(
    http: &reqwest::Client,
    url: &str,
    role_id: &str,
    secret_id: &str,
) -> (u16, Value) {
    let resp = http
        .post(format!("{url}/v1/auth/approle/login"))
        .json(&json!({"role_id": role_id, "secret_id": secret_id}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A client whose connections come from 127.0.0.2.
fn client_from_127_0_0_2() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().ok())
        .build()
        .unwrap()
}

#[tokio::test]
async fn roles_have_openbaos_shapes_and_rules() {
    let s = support::dev().await;
    enable_approle(&s).await;
    write(
        &s,
        "role/app",
        json!({"token_policies": "a,b", "token_ttl": "1h"}),
    )
    .await;
    let (status, body) = s.call("GET", "auth/approle/role/app", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({
            "bind_secret_id": true,
            "local_secret_ids": false,
            "secret_id_bound_cidrs": null,
            "secret_id_num_uses": 0,
            "secret_id_ttl": 0,
            "token_bound_cidrs": [],
            "token_explicit_max_ttl": 0,
            "token_max_ttl": 0,
            "token_no_default_policy": false,
            "token_num_uses": 0,
            "token_period": 0,
            "token_policies": ["a", "b"],
            "token_strictly_bind_ip": false,
            "token_ttl": 3600,
            "token_type": "default",
        })
    );
    // An update keeps what it does not name; `policies` is the older name.
    write(
        &s,
        "role/app",
        json!({"policies": ["c"], "secret_id_bound_cidrs": "127.0.0.0/8", "secret_id_ttl": "10m"}),
    )
    .await;
    let (_, body) = s.call("GET", "auth/approle/role/app", None).await;
    assert_eq!(body["data"]["token_policies"], json!(["c"]));
    assert_eq!(
        body["data"]["secret_id_bound_cidrs"],
        json!(["127.0.0.0/8"])
    );
    assert_eq!(body["data"]["secret_id_ttl"], 600);
    assert_eq!(body["data"]["token_ttl"], 3600);
    let (status, body) = s.call("LIST", "auth/approle/role", None).await;
    assert_eq!((status, &body["data"]["keys"]), (200, &json!(["app"])));

    // A role must be bound somehow.
    let (status, body) = s
        .call(
            "POST",
            "auth/approle/role/loose",
            Some(json!({"bind_secret_id": false})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"],
        json!(["at least one constraint should be enabled on the role"])
    );
    let (status, body) = s
        .call(
            "POST",
            "auth/approle/role/loose",
            Some(json!({"token_ttl": "2h", "token_max_ttl": "1h"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"],
        json!(["'token_ttl' cannot be greater than 'token_max_ttl'"])
    );
    let (status, body) = s
        .call(
            "POST",
            "auth/approle/role/loose",
            Some(json!({"secret_id_num_uses": -1})),
        )
        .await;
    assert_eq!(
        (status, &body["errors"]),
        (400, &json!(["secret_id_num_uses cannot be negative"]))
    );

    // Role IDs: generated, readable, settable, never shared by two roles.
    let generated = role_id(&s, "app").await;
    assert_eq!(
        uuid::Uuid::parse_str(&generated).unwrap().get_version_num(),
        4
    );
    write(&s, "role/app/role-id", json!({"role_id": "app-id"})).await;
    assert_eq!(role_id(&s, "app").await, "app-id");
    write(&s, "role/other", json!({})).await;
    let (status, body) = s
        .call(
            "POST",
            "auth/approle/role/other/role-id",
            Some(json!({"role_id": "app-id"})),
        )
        .await;
    assert_eq!(
        (status, &body["errors"]),
        (400, &json!(["role_id already in use"]))
    );
    let (status, _) = s.call("GET", "auth/approle/role/nope/role-id", None).await;
    assert_eq!(status, 404);
    let (status, body) = s
        .call("POST", "auth/approle/role/nope/secret-id", None)
        .await;
    assert_eq!(
        (status, &body["errors"]),
        (404, &json!(["role \"nope\" does not exist"]))
    );

    // Deleting a role takes its role ID and secret IDs with it.
    let (secret, _) = secret_id(&s, "app", json!({})).await;
    assert_eq!(login(&s, "app-id", &secret).await.0, 200);
    let (status, _) = s.call("DELETE", "auth/approle/role/app", None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call("GET", "auth/approle/role/app", None).await;
    assert_eq!(status, 404);
    assert_eq!(login(&s, "app-id", &secret).await.0, 400);
    write(&s, "role/app", json!({"role_id": "app-id"})).await;
    assert_eq!(login(&s, "app-id", &secret).await.0, 400);
}

#[tokio::test]
async fn a_login_gives_the_roles_token_with_the_secret_ids_metadata() {
    let s = support::dev().await;
    enable_approle(&s).await;
    write(
        &s,
        "role/app",
        json!({"token_policies": "app", "token_ttl": "1h", "token_bound_cidrs": "127.0.0.0/8"}),
    )
    .await;
    let id = role_id(&s, "app").await;
    let reply = write(
        &s,
        "role/app/secret-id",
        json!({"metadata": "{\"team\":\"ops\"}", "ttl": "1h", "num_uses": 5}),
    )
    .await;
    let data = &reply["data"];
    assert_eq!(data["secret_id_num_uses"], 5);
    assert_eq!(data["secret_id_ttl"], 3600);
    let secret = data["secret_id"].as_str().unwrap();
    let (status, body) = login(&s, &id, secret).await;
    assert_eq!(status, 200, "{body}");
    let auth = &body["auth"];
    assert_eq!(auth["policies"], json!(["app", "default"]));
    assert_eq!(auth["metadata"], json!({"role_name": "app", "team": "ops"}));
    assert_eq!(auth["lease_duration"], 3600);
    let token = auth["client_token"].as_str().unwrap().to_owned();
    let (status, body) = s
        .call_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["display_name"], "approle");
    assert_eq!(body["data"]["path"], "auth/approle/login");
    assert_eq!(body["data"]["bound_cidrs"], json!(["127.0.0.0/8"]));

    // One use spent.
    let (status, body) = s
        .call(
            "POST",
            "auth/approle/role/app/secret-id/lookup",
            Some(json!({"secret_id": secret})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["secret_id_num_uses"], 4);
    assert!(!body.to_string().contains(secret), "{body}");

    // A custom secret ID; missing fields are Vault's errors.
    write(
        &s,
        "role/app/custom-secret-id",
        json!({"secret_id": "my-own-secret"}),
    )
    .await;
    assert_eq!(login(&s, &id, "my-own-secret").await.0, 200);
    let (status, body) = s
        .call(
            "POST",
            "auth/approle/role/app/custom-secret-id",
            Some(json!({"secret_id": "my-own-secret"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = s
        .call_as(
            "",
            "POST",
            "auth/approle/login",
            Some(json!({"role_id": id})),
        )
        .await;
    assert_eq!(
        (status, &body["errors"]),
        (400, &json!(["missing secret_id"]))
    );
    let (status, body) = s
        .call_as("", "POST", "auth/approle/login", Some(json!({})))
        .await;
    assert_eq!(
        (status, &body["errors"]),
        (400, &json!(["missing role_id"]))
    );

    // A role that binds no secret ID but a CIDR list.
    write(
        &s,
        "role/open",
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.1/32", "role_id": "open-id"}),
    )
    .await;
    let (status, body) = s
        .call_as(
            "",
            "POST",
            "auth/approle/login",
            Some(json!({"role_id": "open-id"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let far = client_from_127_0_0_2();
    let (status, body) = login_with(&far, &s, "open-id", "").await;
    assert_eq!(status, 400, "{body}");

    // Disabling the method revokes the tokens its logins issued.
    let (status, _) = s.call("DELETE", "sys/auth/approle", None).await;
    assert_eq!(status, 204);
    let (status, _) = s
        .call_as(&token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_wrong_secret_and_an_unknown_role_get_the_same_answer() {
    let s = support::dev().await;
    enable_approle(&s).await;
    write(&s, "role/app", json!({})).await;
    let id = role_id(&s, "app").await;
    secret_id(&s, "app", json!({})).await;
    let wrong = login(&s, &id, "not-the-secret").await;
    let unknown = login(&s, "no-such-role-id", "not-the-secret").await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.0, 400);
    assert_eq!(wrong.1["errors"], json!(["invalid role or secret ID"]));
    // Another role's secret ID is as wrong.
    write(&s, "role/other", json!({})).await;
    let (other_secret, _) = secret_id(&s, "other", json!({})).await;
    assert_eq!(login(&s, &id, &other_secret).await, wrong);
}

#[tokio::test]
async fn a_single_use_secret_id_logs_in_once_even_concurrently() {
    let s = support::dev().await;
    enable_approle(&s).await;
    write(&s, "role/app", json!({})).await;
    let id = role_id(&s, "app").await;
    let (secret, _) = secret_id(&s, "app", json!({"num_uses": 1})).await;
    assert_eq!(login(&s, &id, &secret).await.0, 200);
    assert_eq!(login(&s, &id, &secret).await.0, 400);

    for uses in [1, 1, 1, 2] {
        let (secret, _) = secret_id(&s, "app", json!({ "num_uses": uses })).await;
        let statuses = concurrent_logins(&s, &id, &secret, 8).await;
        let successes = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(successes, uses, "{statuses:?}");
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 400),
            "{statuses:?}"
        );
    }
}

/// The statuses of `n` logins sent at once, each on its own connection.
async fn concurrent_logins(s: &TestServer, role_id: &str, secret_id: &str, n: usize) -> Vec<u16> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (url, start) = (s.url.clone(), start.clone());
        let (role_id, secret_id) = (role_id.to_owned(), secret_id.to_owned());
        logins.spawn(async move {
            let http = reqwest::Client::new();
            start.wait().await;
            login_at(&http, &url, &role_id, &secret_id).await.0
        });
    }
    logins.join_all().await
}

#[tokio::test]
async fn an_expired_secret_id_is_refused_and_tidied() {
    let s = support::dev().await;
    enable_approle(&s).await;
    write(&s, "role/app", json!({})).await;
    let id = role_id(&s, "app").await;
    let (short, short_accessor) = secret_id(&s, "app", json!({"ttl": "1s"})).await;
    let (_, lasting) = secret_id(&s, "app", json!({})).await;
    let (status, body) = s
        .call("LIST", "auth/approle/role/app/secret-id", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let mut expected = vec![short_accessor.clone(), lasting.clone()];
    expected.sort();
    assert_eq!(body["data"]["keys"], json!(expected));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        login(&s, &id, &short).await,
        login(&s, &id, "never-issued").await
    );

    let (short2, short2_accessor) = secret_id(&s, "app", json!({"ttl": "1s"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = s.call("POST", "auth/approle/tidy/secret-id", None).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("Tidy operation")
    );
    let (_, body) = s
        .call("LIST", "auth/approle/role/app/secret-id", None)
        .await;
    assert_eq!(body["data"]["keys"], json!([lasting]));
    assert!(!body.to_string().contains(&short2_accessor));
    assert_eq!(login(&s, &id, &short2).await.0, 400);
}

#[tokio::test]
async fn accessors_look_up_and_destroy_without_the_secret_id() {
    let s = support::dev().await;
    enable_approle(&s).await;
    write(
        &s,
        "role/app",
        json!({"secret_id_bound_cidrs": "127.0.0.0/8"}),
    )
    .await;
    let id = role_id(&s, "app").await;
    let (secret, accessor) = secret_id(
        &s,
        "app",
        json!({"cidr_list": "127.0.0.1/32", "metadata": "{\"k\":\"v\"}", "num_uses": 3}),
    )
    .await;
    let (status, body) = s
        .call(
            "POST",
            "auth/approle/role/app/secret-id-accessor/lookup",
            Some(json!({"secret_id_accessor": accessor})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_object().unwrap();
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "cidr_list",
            "creation_time",
            "expiration_time",
            "last_updated_time",
            "metadata",
            "secret_id_accessor",
            "secret_id_num_uses",
            "secret_id_ttl",
            "token_bound_cidrs"
        ]
    );
    assert_eq!(data["cidr_list"], json!(["127.0.0.1/32"]));
    assert_eq!(data["metadata"], json!({"k": "v"}));
    assert_eq!(data["secret_id_num_uses"], 3);
    assert!(!body.to_string().contains(&secret));

    // A secret ID's CIDRs must lie within the role's.
    let (status, _) = s
        .call(
            "POST",
            "auth/approle/role/app/secret-id",
            Some(json!({"cidr_list": "10.0.0.0/8"})),
        )
        .await;
    assert_eq!(status, 400);

    // Bound to 127.0.0.1: refused from 127.0.0.2 (spending no use), accepted from 127.0.0.1.
    let far = client_from_127_0_0_2();
    let (status, body) = login_with(&far, &s, &id, &secret).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"],
        json!([
            "source address \"127.0.0.2\" unauthorized through CIDR restrictions on the secret ID"
        ])
    );
    assert_eq!(login(&s, &id, &secret).await.0, 200);
    let (_, body) = s
        .call(
            "POST",
            "auth/approle/role/app/secret-id-accessor/lookup",
            Some(json!({"secret_id_accessor": accessor})),
        )
        .await;
    assert_eq!(body["data"]["secret_id_num_uses"], 2);

    let (status, _) = s
        .call(
            "POST",
            "auth/approle/role/app/secret-id-accessor/destroy",
            Some(json!({"secret_id_accessor": accessor})),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(login(&s, &id, &secret).await.0, 400);
    let (status, body) = s
        .call(
            "POST",
            "auth/approle/role/app/secret-id-accessor/lookup",
            Some(json!({"secret_id_accessor": accessor})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = s
        .call("LIST", "auth/approle/role/app/secret-id", None)
        .await;
    assert_eq!(status, 404);

    // By secret ID: lookup of an unknown one is empty, destroy works.
    let (secret, _) = secret_id(&s, "app", json!({})).await;
    let (status, _) = s
        .call(
            "POST",
            "auth/approle/role/app/secret-id/lookup",
            Some(json!({"secret_id": "never-issued"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = s
        .call(
            "POST",
            "auth/approle/role/app/secret-id/destroy",
            Some(json!({"secret_id": secret})),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(login(&s, &id, &secret).await.0, 400);
    // From 127.0.0.2 the role's own CIDRs refuse.
    let (secret, _) = secret_id(&s, "app", json!({})).await;
    write(
        &s,
        "role/app",
        json!({"secret_id_bound_cidrs": "127.0.0.1/32"}),
    )
    .await;
    let (status, body) = login_with(&far, &s, &id, &secret).await;
    assert_eq!(
        (status, &body["errors"]),
        (
            400,
            &json!(["source address \"127.0.0.2\" unauthorized by CIDR restrictions on the role"])
        )
    );
    assert_eq!(login(&s, &id, &secret).await.0, 200);
}

#[tokio::test]
async fn secret_ids_never_reach_the_audit_log_or_the_store_in_clear() {
    let s = support::dev().await;
    let file = s.enable_file_audit().await;
    enable_approle(&s).await;
    write(&s, "role/app", json!({})).await;
    let id = role_id(&s, "app").await;
    let (secret, _) = secret_id(&s, "app", json!({})).await;
    let (status, reply) = login(&s, &id, &secret).await;
    assert_eq!(status, 200);
    assert_eq!(login(&s, &id, "wrong-secret-id").await.0, 400);
    let token = reply["auth"]["client_token"].as_str().unwrap();
    let log = std::fs::read_to_string(&file).unwrap();
    for (what, value) in [
        ("secret_id", secret.as_str()),
        ("role_id", id.as_str()),
        ("wrong secret_id", "wrong-secret-id"),
        ("token", token),
    ] {
        assert!(!log.contains(value), "the {what} is in the audit log");
    }
    let logins: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["request"]["path"] == "auth/approle/login")
        .collect();
    assert_eq!(logins.len(), 4, "{logins:?}");
    for entry in &logins {
        let logged = entry["request"]["data"]["secret_id"].as_str().unwrap();
        assert!(logged.starts_with("hmac-sha256:"), "{entry}");
    }
    // Nor the database: it holds the secret ID's keyed hash only (and encrypted at that).
    for file in ["ward.db", "ward.db-wal"] {
        let bytes = std::fs::read(s.dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{file}"
        );
    }
}

#[tokio::test]
async fn creating_a_role_needs_create_and_changing_one_needs_update() {
    let s = support::dev().await;
    enable_approle(&s).await;
    write(&s, "role/existing", json!({})).await;
    s.put_policy(
        "role-updater",
        r#"path "auth/approle/role/*" { capabilities = ["update"] }"#,
    )
    .await;
    let updater = s
        .new_token(
            &s.root_token,
            "auth/token/create",
            json!({"policies": ["role-updater"]}),
        )
        .await;
    let (status, body) = s
        .call_as(
            &updater,
            "POST",
            "auth/approle/role/existing",
            Some(json!({"token_ttl": "5m"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = s
        .call_as(&updater, "POST", "auth/approle/role/new", Some(json!({})))
        .await;
    assert_eq!(status, 403);
    // The login needs no token at all.
    let id = role_id(&s, "existing").await;
    let (secret, _) = secret_id(&s, "existing", json!({})).await;
    assert_eq!(login(&s, &id, &secret).await.0, 200);
}

#[tokio::test]
async fn a_roles_token_num_uses_and_explicit_max_ttl_bind_its_tokens() {
    let s = support::dev().await;
    enable_approle(&s).await;
    let settings = json!({"token_num_uses": 2, "token_explicit_max_ttl": "2h", "token_ttl": "1h"});
    write(&s, "role/limited", settings).await;
    let (_, role) = s.call("GET", "auth/approle/role/limited", None).await;
    assert_eq!(role["data"]["token_num_uses"], 2);
    assert_eq!(role["data"]["token_explicit_max_ttl"], 7200);
    let id = role_id(&s, "limited").await;
    let (secret, _) = secret_id(&s, "limited", json!({})).await;
    let (status, body) = login(&s, &id, &secret).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["num_uses"], 2);
    let token = body["auth"]["client_token"].as_str().unwrap();
    // Two uses, then the token is spent.
    let (status, body) = s
        .call_as(token, "GET", "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["explicit_max_ttl"], 7200);
    assert_eq!(
        s.call_as(token, "GET", "auth/token/lookup-self", None)
            .await
            .0,
        200
    );
    assert_eq!(
        s.call_as(token, "GET", "auth/token/lookup-self", None)
            .await
            .0,
        403
    );

    // Periodic and batch tokens are not built: refused, not silently ignored.
    for (key, value) in [
        ("token_period", json!("1h")),
        ("period", json!(60)),
        ("token_type", json!("batch")),
    ] {
        let (status, body) = s
            .call(
                "POST",
                "auth/approle/role/other",
                Some(json!({ key: value })),
            )
            .await;
        assert_eq!(status, 400, "{key}: {body}");
        assert!(
            body["errors"][0]
                .as_str()
                .unwrap()
                .contains("not supported"),
            "{body}"
        );
    }
}
