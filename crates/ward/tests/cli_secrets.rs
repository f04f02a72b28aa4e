//! `ward secrets enable|list|disable` end to end against a dev server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, assert_exit, ok, stderr};
use serde_json::Value;

#[test]
fn enable_list_use_and_disable_a_kv_mount() {
    let server = Server::start();
    let enabled = ok(server.ward(&[
        "secrets",
        "enable",
        "-path=team",
        "-description=Team secrets",
        "-version=2",
        "kv",
    ]));
    assert_eq!(
        enabled.trim(),
        "Success! Enabled the kv secrets engine at: team/"
    );
    let kv_v2 = ok(server.ward(&["secrets", "enable", "kv-v2"]));
    assert_eq!(
        kv_v2.trim(),
        "Success! Enabled the kv-v2 secrets engine at: kv-v2/"
    );

    // The table lists both, with type, accessor and description.
    let table = ok(server.ward(&["secrets", "list"]));
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("Path "), "{table}");
    assert!(lines.next().unwrap().starts_with("---- "), "{table}");
    let team = table.lines().find(|l| l.starts_with("team/")).unwrap();
    let columns: Vec<&str> = team.split_whitespace().collect();
    assert_eq!(columns[1], "kv");
    assert!(columns[2].starts_with("kv_"), "{team}");
    assert!(team.ends_with("Team secrets"), "{team}");
    assert!(table.lines().any(|l| l.starts_with("secret/")), "{table}");

    // JSON: keyed by path, with options.version = "2" for both kv-v2 spellings.
    let mounts: Value =
        serde_json::from_str(&ok(server.ward(&["secrets", "list", "-format=json"]))).unwrap();
    assert_eq!(mounts["team/"]["type"], "kv");
    assert_eq!(mounts["team/"]["options"]["version"], "2");
    assert_eq!(mounts["kv-v2/"]["options"]["version"], "2");
    let detailed = ok(server.ward(&["secrets", "list", "-detailed"]));
    assert!(detailed.contains("map[version:2]"), "{detailed}");

    // The new mount serves KV v2 through the CLI's path rewriting.
    ok(server.ward(&["kv", "put", "team/db", "password=p"]));
    assert_eq!(
        ok(server.ward(&["kv", "get", "-field=password", "team/db"])),
        "p"
    );

    let disabled = ok(server.ward(&["secrets", "disable", "team/"]));
    assert_eq!(
        disabled.trim(),
        "Success! Disabled the secrets engine (if it existed) at: team/"
    );
    let table = ok(server.ward(&["secrets", "list"]));
    assert!(!table.lines().any(|l| l.starts_with("team/")), "{table}");
    // Its data went with it: re-enabling gives an empty mount.
    ok(server.ward(&["secrets", "enable", "-path=team", "kv-v2"]));
    assert_exit(&server.ward(&["kv", "get", "team/db"]), 2);
}

#[test]
fn enable_errors_come_from_the_server() {
    let server = Server::start();
    let unknown = server.ward(&["secrets", "enable", "-path=x", "no-such-engine"]);
    assert_exit(&unknown, 2);
    assert!(
        stderr(&unknown).contains("Error enabling secrets engine at x/"),
        "{}",
        stderr(&unknown)
    );
    // Enabling over an existing mount is refused.
    let taken = server.ward(&["secrets", "enable", "-path=secret", "kv-v2"]);
    assert_exit(&taken, 2);
    // Without a token: denied.
    let anonymous = server.ward_full(None, &["secrets", "list"], None);
    assert_exit(&anonymous, 2);
    assert!(
        stderr(&anonymous).contains("Code: 403"),
        "{}",
        stderr(&anonymous)
    );
}
