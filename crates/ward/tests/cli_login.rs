//! `ward login` and `ward auth` end to end against a `--dev-tls` server (TLS 1.3, its CA
//! trusted through WARD_CACERT): the stored token and its file mode, userpass with and
//! without a TOTP code, a replayed code refused, wrong password and unknown user alike,
//! AppRole (a one-use secret ID, one bound to 127.0.0.1 refused from 127.0.0.2, an expired
//! one), and auth methods enabled, listed, tuned and disabled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, assert_exit, ok, stderr, table_value};
use serde_json::Value;

const PASSWORD: &str = "correct-horse-battery";

/// `ward ARGS` with no token given: the stored one, if any, is used.
fn ward(server: &Server, args: &[&str]) -> std::process::Output {
    server.ward_full(None, args, None)
}

fn lookup_self_id(server: &Server) -> Option<String> {
    let out = ward(server, &["token", "lookup", "-format=json"]);
    if !out.status.success() {
        return None;
    }
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json["data"]["id"].as_str().map(str::to_owned)
}

#[test]
fn a_token_login_is_stored_for_the_owner_only_and_used_by_later_commands() {
    let server = Server::start_dev_tls();
    assert!(lookup_self_id(&server).is_none(), "no token before login");
    let root = server.root_token().to_owned();
    let out = ok(ward(&server, &["login", &root]));
    assert!(
        out.starts_with("Success! You are now authenticated."),
        "{out}"
    );
    assert_eq!(table_value(&out, "policies").as_deref(), Some("[\"root\"]"));
    let file = server.home().join(".ward-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), root);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(lookup_self_id(&server).as_deref(), Some(root.as_str()));

    // A bad token is refused and does not replace the stored one.
    let out = ward(&server, &["login", "wrd_not-a-real-token"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), root);

    // Read from stdin with `-`; and Vault's ~/.vault-token serves when Ward's is absent.
    let out = server.ward_full(
        None,
        &["login", "-no-print", "-"],
        Some(&format!("{root}\n")),
    );
    assert_eq!(ok(out), "");
    std::fs::remove_file(&file).unwrap();
    assert!(lookup_self_id(&server).is_none());
    std::fs::write(server.home().join(".vault-token"), format!("{root}\n")).unwrap();
    assert_eq!(lookup_self_id(&server).as_deref(), Some(root.as_str()));
}

#[test]
fn userpass_logins_with_a_totp_code_each_code_once() {
    let server = Server::start_dev_tls();
    ok(server.ward(&["auth", "enable", "userpass"]));
    ok(server.ward(&[
        "write",
        "auth/userpass/users/alice",
        &format!("password={PASSWORD}"),
        "policies=default",
    ]));
    // Flags first, then the method's key=value settings, as Vault's CLI takes them. The
    // password comes on stdin when not given, as from a script or a pipe.
    let login = |args: &[&str], stdin: Option<&str>| {
        let mut full = vec!["login", "-method=userpass"];
        full.extend_from_slice(args);
        full.push("username=alice");
        server.ward_full(None, &full, stdin)
    };
    let out = ok(login(&["-token-only"], Some(&format!("{PASSWORD}\n"))));
    let token = out.trim();
    assert!(token.starts_with("wrd_"), "{out}");
    assert_eq!(lookup_self_id(&server).as_deref(), Some(token));

    // Wrong password and unknown user: the same error.
    let wrong = login(&["password=not-it"], None);
    let unknown = server.ward_full(
        None,
        &[
            "login",
            "-method=userpass",
            "username=mallory",
            "password=not-it",
        ],
        None,
    );
    assert_exit(&wrong, 2);
    assert_eq!(stderr(&wrong), stderr(&unknown));
    assert!(stderr(&wrong).contains("invalid username or password"));

    // Enrol a TOTP second factor; the password alone no longer logs in.
    let enrolled = ok(server.ward(&[
        "write",
        "-format=json",
        "-f",
        "auth/userpass/users/alice/totp",
    ]));
    let enrolled: Value = serde_json::from_str(&enrolled).unwrap();
    let url = enrolled["data"]["url"].as_str().unwrap();
    let password = format!("password={PASSWORD}");
    let out = login(&[&password], None);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("TOTP passcode required"),
        "{}",
        stderr(&out)
    );

    let code = totp_rs::TOTP::from_url(url)
        .unwrap()
        .generate_current()
        .unwrap();
    let totp = format!("totp={code}");
    let out = ok(login(&["-format=json", &password, &totp], None));
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["auth"]["metadata"]["username"], "alice");
    // The same code again is refused.
    let out = login(&[&password, &totp], None);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("invalid or already used TOTP passcode"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn auth_methods_are_enabled_listed_tuned_and_disabled_with_their_tokens() {
    let server = Server::start_dev_tls();
    let out = ok(server.ward(&[
        "auth",
        "enable",
        "-path=people",
        "-description=staff",
        "-default-lease-ttl=1h",
        "userpass",
    ]));
    assert_eq!(out, "Success! Enabled userpass auth method at: people/\n");
    let out = server.ward(&["auth", "enable", "-path=people", "userpass"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("path is already in use"),
        "{}",
        stderr(&out)
    );
    let out = ok(server.ward(&["auth", "list"]));
    let row = out.lines().find(|l| l.starts_with("people/")).unwrap();
    assert!(row.contains("userpass") && row.ends_with("staff"), "{out}");
    let out = ok(server.ward(&["auth", "tune", "-max-lease-ttl=2h", "people"]));
    assert_eq!(out, "Success! Tuned the auth method at: people/\n");
    let list = ok(server.ward(&["auth", "list", "-format=json"]));
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["people/"]["config"]["default_lease_ttl"], 3600);
    assert_eq!(list["people/"]["config"]["max_lease_ttl"], 7200);

    ok(server.ward(&["write", "auth/people/users/bob", "password=pw"]));
    let token = ok(server.ward_full(
        None,
        &[
            "login",
            "-no-store",
            "-token-only",
            "-method=userpass",
            "-path=people",
            "username=bob",
            "password=pw",
        ],
        None,
    ));
    let token = token.trim();
    assert!(
        !server.home().join(".ward-token").exists(),
        "-no-store stored the token"
    );
    assert_exit(
        &server.ward_full(Some(token), &["token", "lookup"], None),
        0,
    );
    let out = ok(server.ward(&["auth", "disable", "people"]));
    assert_eq!(
        out,
        "Success! Disabled the auth method (if it existed) at: people/\n"
    );
    // Its tokens went with it.
    let out = server.ward_full(Some(token), &["token", "lookup"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    let out = ok(server.ward(&["auth", "list"]));
    assert!(!out.contains("people/"), "{out}");
}

#[test]
fn approle_logins_over_tls_bound_to_addresses_and_uses() {
    let server = Server::start_dev_tls();
    ok(server.ward(&["auth", "enable", "approle"]));
    ok(server.ward(&[
        "write",
        "auth/approle/role/deploy",
        "token_policies=default",
        "secret_id_num_uses=1",
        "secret_id_bound_cidrs=127.0.0.1/32",
    ]));
    let role_id = ok(server.ward(&["read", "-field=role_id", "auth/approle/role/deploy/role-id"]));
    let secret_id = |extra: &[&str]| {
        let mut args = vec![
            "write",
            "-field=secret_id",
            "-f",
            "auth/approle/role/deploy/secret-id",
        ];
        args.extend_from_slice(extra);
        ok(server.ward(&args)).trim().to_owned()
    };
    let login = |secret: &str| {
        server.ward_full(
            None,
            &[
                "login",
                "-method=approle",
                "-token-only",
                "-no-store",
                &format!("role_id={}", role_id.trim()),
                &format!("secret_id={secret}"),
            ],
            None,
        )
    };
    // A secret ID with one use logs in once.
    let once = secret_id(&[]);
    let token = ok(login(&once));
    assert!(token.trim().starts_with("wrd_"), "{token}");
    let again = login(&once);
    assert_exit(&again, 2);

    // From 127.0.0.2, outside the role's bound CIDRs, a fresh secret ID is refused.
    let fresh = secret_id(&[]);
    let ca = std::fs::read(server.ca_cert().unwrap()).unwrap();
    let from_elsewhere = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let answer = from_elsewhere
        .post(server.url("auth/approle/login"))
        .json(&serde_json::json!({"role_id": role_id.trim(), "secret_id": fresh}))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 400);
    // The same secret ID from 127.0.0.1 works: the refusal did not spend its use.
    ok(login(&fresh));

    // An expired secret ID is refused.
    let short = secret_id(&["ttl=1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_exit(&login(&short), 2);
}
