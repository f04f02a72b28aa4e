//! Transit key management over HTTP: create, read, list, config, delete, trim, export,
//! backup and restore with Vault's rules; Ward's metadata and version lifecycle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod transit_common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use support::TestServer;
use transit_common::{b64, bad, ok, transit};

async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    s.call("GET", &format!("transit/{path}"), None).await
}

async fn encrypt(s: &TestServer, key: &str, text: &str) -> String {
    ok(
        s,
        &format!("encrypt/{key}"),
        json!({"plaintext": b64(text)}),
    )
    .await["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn create_read_list_config_delete() {
    let s = transit().await;
    let (status, _) = s.call("LIST", "transit/keys", None).await;
    assert_eq!(status, 404);
    let created = ok(&s, "keys/one", json!({})).await;
    assert_eq!(created["name"], "one");
    assert_eq!(created["type"], "aes256-gcm96");
    assert_eq!(created["deletion_allowed"], false);
    assert_eq!(created["exportable"], false);
    assert_eq!(created["min_encryption_version"], 0);
    assert_eq!(created["min_available_version"], 0);
    assert_eq!(created["auto_rotate_period"], 0);
    assert_eq!(created["supports_derivation"], true);
    ok(&s, "keys/two", json!({"type": "ed25519"})).await;
    // Creating an existing key answers with it, unchanged.
    let again = ok(&s, "keys/one", json!({"type": "ed25519"})).await;
    assert_eq!(again["type"], "aes256-gcm96");
    let (status, list) = s.call("LIST", "transit/keys", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"]["keys"], json!(["one", "two"]));
    let (status, list) = get(&s, "keys?list=true").await;
    assert_eq!(status, 200, "{list}");
    assert!(
        bad(&s, "keys/x", json!({"type": "des"}))
            .await
            .contains("unknown key type")
    );
    bad(
        &s,
        "keys/x",
        json!({"type": "ed25519", "convergent_encryption": true, "derived": true}),
    )
    .await;
    bad(&s, "keys/x", json!({"auto_rotate_period": "10m"})).await;
    let cfg = ok(
        &s,
        "keys/one/config",
        json!({"auto_rotate_period": "24h", "exportable": true}),
    )
    .await;
    assert_eq!(cfg["auto_rotate_period"], 86400);
    assert_eq!(cfg["exportable"], true);
    // exportable cannot be turned off again (Vault ignores the attempt).
    let cfg = ok(&s, "keys/one/config", json!({"exportable": false})).await;
    assert_eq!(cfg["exportable"], true);
    // Deletion only when allowed.
    let (status, body) = s.call("DELETE", "transit/keys/one", None).await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("deletion is not allowed")
    );
    ok(&s, "keys/one/config", json!({"deletion_allowed": true})).await;
    let (status, _) = s.call("DELETE", "transit/keys/one", None).await;
    assert_eq!(status, 204);
    assert_eq!(get(&s, "keys/one").await.0, 404);
    let (status, body) = s.call("DELETE", "transit/keys/one", None).await;
    assert_eq!(status, 400);
    assert!(body["errors"][0].as_str().unwrap().contains("not found"));
    let (_, list) = s.call("LIST", "transit/keys", None).await;
    assert_eq!(list["data"]["keys"], json!(["two"]));
    // Unknown routes and methods.
    assert_eq!(s.call("GET", "transit/nothing/here", None).await.0, 404);
    assert_eq!(s.call("GET", "transit/encrypt/two", None).await.0, 405);
}

#[tokio::test]
async fn keys_survive_seal_and_unseal() {
    let s = transit().await;
    ok(&s, "keys/p", json!({"type": "ecdsa-p256"})).await;
    let ct = encrypt(&s, "q", "persisted").await;
    let sig = ok(&s, "sign/p", json!({"input": b64("m")})).await["signature"].clone();
    s.core.seal().await;
    s.core.unseal(&s.unseal_key).await.unwrap();
    let back = ok(&s, "decrypt/q", json!({"ciphertext": ct})).await;
    assert_eq!(back["plaintext"], b64("persisted"));
    let v = ok(&s, "verify/p", json!({"input": b64("m"), "signature": sig})).await;
    assert_eq!(v["valid"], true);
}

#[tokio::test]
async fn trim_follows_vaults_rules() {
    let s = transit().await;
    ok(&s, "keys/t", json!({})).await;
    let v1 = encrypt(&s, "t", "old").await;
    ok(&s, "keys/t/rotate", json!({})).await;
    ok(&s, "keys/t/rotate", json!({})).await;
    let e = bad(&s, "keys/t/trim", json!({"min_available_version": 1})).await;
    assert!(e.contains("minimum encryption version is not set"), "{e}");
    ok(
        &s,
        "keys/t/config",
        json!({"min_encryption_version": 2, "min_decryption_version": 2}),
    )
    .await;
    // As OpenBao: a version below min_decryption_version is no longer listed.
    let (_, read) = get(&s, "keys/t").await;
    let listed: Vec<&String> = read["data"]["keys"].as_object().unwrap().keys().collect();
    assert_eq!(listed, ["2", "3"], "{read}");
    assert_eq!(read["data"]["version_states"]["1"], "active", "{read}");
    bad(&s, "keys/t/trim", json!({"min_available_version": 3})).await;
    let trimmed = ok(&s, "keys/t/trim", json!({"min_available_version": 2})).await;
    assert_eq!(trimmed["min_available_version"], 2);
    assert!(trimmed["keys"].get("1").is_none(), "{trimmed}");
    assert!(trimmed["keys"].get("2").is_some());
    bad(&s, "decrypt/t", json!({"ciphertext": v1})).await;
    let e = bad(&s, "keys/t/config", json!({"min_decryption_version": 1})).await;
    assert!(e.contains("min available version"), "{e}");
}

#[tokio::test]
async fn export_follows_vaults_rules() {
    let s = transit().await;
    ok(&s, "keys/closed", json!({"type": "ecdsa-p256"})).await;
    let (status, body) = get(&s, "export/signing-key/closed").await;
    assert_eq!(status, 400, "{body}");
    // The public key needs no exportable flag.
    let (status, body) = get(&s, "export/public-key/closed").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"]["keys"]["1"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    for (t, kind, prefix) in [
        ("aes256-gcm96", "encryption-key", ""),
        ("chacha20-poly1305", "encryption-key", ""),
        ("aes256-gcm96", "hmac-key", ""),
        ("hmac", "hmac-key", ""),
        ("ed25519", "signing-key", ""),
        (
            "ecdsa-p256",
            "signing-key",
            "-----BEGIN EC PRIVATE KEY-----",
        ),
        ("rsa-2048", "signing-key", "-----BEGIN RSA PRIVATE KEY-----"),
    ] {
        let name = format!("x-{t}");
        ok(
            &s,
            &format!("keys/{name}"),
            json!({"type": t, "exportable": true}),
        )
        .await;
        let (status, body) = get(&s, &format!("export/{kind}/{name}")).await;
        assert_eq!(status, 200, "{t} {kind}: {body}");
        assert_eq!(body["data"]["name"], name.as_str());
        assert_eq!(body["data"]["type"], t);
        let k = body["data"]["keys"]["1"].as_str().unwrap();
        if prefix.is_empty() {
            let len = B64.decode(k).unwrap().len();
            let want = match (t, kind) {
                ("ed25519", _) => 64,
                _ => 32,
            };
            assert_eq!(len, want, "{t} {kind}");
        } else {
            assert!(k.starts_with(prefix), "{t}: {k}");
        }
    }
    // An exported AES key decrypts what the engine encrypted (Vault's layout).
    let ct = encrypt(&s, "x-aes256-gcm96", "interop").await;
    let (_, body) = get(&s, "export/encryption-key/x-aes256-gcm96/latest").await;
    let key = B64
        .decode(body["data"]["keys"]["1"].as_str().unwrap())
        .unwrap();
    let sealed = B64.decode(ct.trim_start_matches("vault:v1:")).unwrap();
    let plain = ward_crypto::kms::Aead::Aes256Gcm
        .open(&key, &sealed, b"")
        .unwrap();
    assert_eq!(plain.expose(), b"interop");
    assert_eq!(get(&s, "export/encryption-key/x-ed25519").await.0, 400);
    assert_eq!(get(&s, "export/signing-key/x-aes256-gcm96").await.0, 400);
    assert_eq!(
        get(&s, "export/encryption-key/x-aes256-gcm96/7").await.0,
        400
    );
    assert_eq!(get(&s, "export/bogus-key/x-aes256-gcm96").await.0, 400);
}

#[tokio::test]
async fn backup_and_restore_follow_vaults_rules() {
    let s = transit().await;
    ok(&s, "keys/b", json!({"allow_plaintext_backup": true})).await;
    let (status, body) = get(&s, "backup/b").await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("exporting is disallowed")
    );
    ok(&s, "keys/nb", json!({"exportable": true})).await;
    let (status, body) = get(&s, "backup/nb").await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("backup is disallowed")
    );
    ok(
        &s,
        "keys/b/config",
        json!({"exportable": true, "owner": "ops"}),
    )
    .await;
    ok(&s, "keys/b/rotate", json!({})).await;
    let ct = encrypt(&s, "b", "backed up").await;
    let (status, body) = get(&s, "backup/b").await;
    assert_eq!(status, 200, "{body}");
    let backup = body["data"]["backup"].as_str().unwrap().to_owned();
    let (_, read) = get(&s, "keys/b").await;
    assert_eq!(read["data"]["backup_info"]["version"], 2);
    // Restoring over an existing key needs force; under a new name it just works.
    let e = bad(&s, "restore", json!({"backup": backup})).await;
    assert!(e.contains("already exists"), "{e}");
    let (status, _) = s
        .call(
            "POST",
            "transit/restore/b2",
            Some(json!({"backup": backup})),
        )
        .await;
    assert_eq!(status, 204);
    let back = ok(&s, "decrypt/b2", json!({"ciphertext": ct})).await;
    assert_eq!(back["plaintext"], b64("backed up"));
    let (_, read) = get(&s, "keys/b2").await;
    assert_eq!(read["data"]["latest_version"], 2);
    assert_eq!(read["data"]["owner"], "ops");
    assert!(read["data"]["restore_info"].is_object());
    let (status, _) = s
        .call(
            "POST",
            "transit/restore/b2",
            Some(json!({"backup": backup, "force": true})),
        )
        .await;
    assert_eq!(status, 204);
    // Into another mount as well.
    s.call(
        "POST",
        "sys/mounts/transit2",
        Some(json!({"type": "transit"})),
    )
    .await;
    let (status, _) = s
        .call("POST", "transit2/restore", Some(json!({"backup": backup})))
        .await;
    assert_eq!(status, 204);
    let (status, body) = s
        .call(
            "POST",
            "transit2/decrypt/b",
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Garbage is a 400.
    assert!(
        bad(&s, "restore/z", json!({}))
            .await
            .contains("must be supplied")
    );
    bad(&s, "restore/z", json!({"backup": "!!"})).await;
    bad(&s, "restore/z", json!({"backup": b64("{}")})).await;
    bad(&s, "restore/z", json!({"backup": b64("not json")})).await;
}

#[tokio::test]
async fn lifecycle_compromised_deactivated_destroyed() {
    let s = transit().await;
    ok(&s, "keys/lc", json!({})).await;
    let v1 = encrypt(&s, "lc", "one").await;
    // Marking v1 compromised rotates at once: new data goes to v2.
    let read = ok(&s, "keys/lc/compromised", json!({"versions": [1]})).await;
    assert_eq!(read["latest_version"], 2);
    assert_eq!(read["version_states"]["1"], "compromised");
    assert_eq!(read["version_states"]["2"], "active");
    let v2 = encrypt(&s, "lc", "two").await;
    assert!(v2.starts_with("vault:v2:"));
    // The compromised version refuses encryption, and decryption unless recovery is allowed.
    let e = bad(
        &s,
        "encrypt/lc",
        json!({"plaintext": b64("x"), "key_version": 1}),
    )
    .await;
    assert!(e.contains("compromised"), "{e}");
    let e = bad(&s, "decrypt/lc", json!({"ciphertext": v1})).await;
    assert!(e.contains("compromised"), "{e}");
    bad(&s, "datakey/plaintext/lc", json!({"key_version": 1})).await;
    let cfg = ok(
        &s,
        "keys/lc/config",
        json!({"allow_compromised_decrypt": true}),
    )
    .await;
    assert_eq!(cfg["allow_compromised_decrypt"], true);
    assert_eq!(
        ok(&s, "decrypt/lc", json!({"ciphertext": v1})).await["plaintext"],
        b64("one")
    );
    // Recovery: rewrap moves the data off the compromised version.
    let moved = ok(&s, "rewrap/lc", json!({"ciphertext": v1})).await;
    assert_eq!(moved["key_version"], 2);
    ok(
        &s,
        "keys/lc/config",
        json!({"allow_compromised_decrypt": false}),
    )
    .await;
    bad(&s, "decrypt/lc", json!({"ciphertext": v1})).await;
    bad(&s, "keys/lc/activate", json!({"versions": [1]})).await;
    // Deactivated: decrypt-only. The latest version cannot be deactivated.
    ok(&s, "keys/lc/rotate", json!({})).await;
    let e = bad(&s, "keys/lc/deactivate", json!({"versions": [3]})).await;
    assert!(e.contains("latest"), "{e}");
    let read = ok(&s, "keys/lc/deactivate", json!({"versions": [2]})).await;
    assert_eq!(read["version_states"]["2"], "deactivated");
    let e = bad(
        &s,
        "encrypt/lc",
        json!({"plaintext": b64("x"), "key_version": 2}),
    )
    .await;
    assert!(e.contains("deactivated"), "{e}");
    assert_eq!(
        ok(&s, "decrypt/lc", json!({"ciphertext": v2})).await["plaintext"],
        b64("two")
    );
    ok(&s, "keys/lc/activate", json!({"versions": [2]})).await;
    ok(
        &s,
        "encrypt/lc",
        json!({"plaintext": b64("x"), "key_version": 2}),
    )
    .await;
    // Destroyed: the material is gone, nothing works with that version.
    let read = ok(&s, "keys/lc/destroy", json!({"versions": "2"})).await;
    assert_eq!(read["version_states"]["2"], "destroyed");
    let e = bad(&s, "decrypt/lc", json!({"ciphertext": v2})).await;
    assert!(e.contains("destroyed"), "{e}");
    bad(&s, "keys/lc/compromised", json!({"versions": [2]})).await;
    bad(&s, "keys/lc/destroy", json!({"versions": []})).await;
    bad(&s, "keys/lc/destroy", json!({"versions": [99]})).await;
    // Signing keys: a compromised version no longer signs.
    ok(&s, "keys/sig", json!({"type": "ed25519"})).await;
    let sig = ok(&s, "sign/sig", json!({"input": b64("m")})).await["signature"].clone();
    ok(&s, "keys/sig/compromised", json!({"versions": [1]})).await;
    bad(&s, "sign/sig", json!({"input": b64("m"), "key_version": 1})).await;
    bad(
        &s,
        "verify/sig",
        json!({"input": b64("m"), "signature": sig}),
    )
    .await;
    let fresh = ok(&s, "sign/sig", json!({"input": b64("m")})).await;
    assert_eq!(fresh["key_version"], 2);
}

#[tokio::test]
async fn metadata_on_create_config_and_read_and_expiry() {
    let s = transit().await;
    let created = ok(
        &s,
        "keys/meta",
        json!({
            "owner": "payments-team",
            "purpose": "card data encryption",
            "security_level": "L3",
            "expires_at": "2099-01-01T00:00:00Z",
            "labels": {"env": "prod", "app": "checkout"},
        }),
    )
    .await;
    assert_eq!(created["owner"], "payments-team");
    assert_eq!(created["security_level"], "L3");
    assert_eq!(created["labels"]["env"], "prod");
    let cfg = ok(
        &s,
        "keys/meta/config",
        json!({"purpose": "tokenisation", "labels": {"env": "staging"}}),
    )
    .await;
    assert_eq!(cfg["purpose"], "tokenisation");
    assert_eq!(cfg["owner"], "payments-team");
    assert_eq!(cfg["labels"], json!({"env": "staging"}));
    let (_, read) = get(&s, "keys/meta").await;
    assert_eq!(read["data"]["expires_at"], "2099-01-01T00:00:00Z");
    bad(
        &s,
        "keys/meta/config",
        json!({"expires_at": "next tuesday"}),
    )
    .await;
    bad(&s, "keys/meta/config", json!({"labels": {"n": 1}})).await;
    bad(&s, "keys/meta/config", json!({"owner": "x".repeat(300)})).await;
    // After expiry a key decrypts but no longer encrypts.
    let ct = encrypt(&s, "meta", "before").await;
    ok(
        &s,
        "keys/meta/config",
        json!({"expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await;
    let e = bad(&s, "encrypt/meta", json!({"plaintext": b64("after")})).await;
    assert!(e.contains("expired"), "{e}");
    assert_eq!(
        ok(&s, "decrypt/meta", json!({"ciphertext": ct})).await["plaintext"],
        b64("before")
    );
}

#[tokio::test]
async fn encrypt_creates_keys_only_with_the_create_capability() {
    let s = transit().await;
    ok(&s, "keys/existing", json!({})).await;
    let policy = r#"
path "transit/encrypt/*" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["update"] }
path "transit/keys/*" { capabilities = ["read"] }
"#;
    let (status, body) = s
        .call(
            "PUT",
            "sys/policies/acl/app",
            Some(json!({"policy": policy})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = s
        .call(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["app"]})),
        )
        .await;
    let token = body["auth"]["client_token"].as_str().unwrap().to_owned();
    let body = json!({"plaintext": b64("x")});
    let (status, resp) = s
        .call_as(
            &token,
            "POST",
            "transit/encrypt/existing",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let ct = resp["data"]["ciphertext"].clone();
    let (status, _) = s
        .call_as(
            &token,
            "POST",
            "transit/decrypt/existing",
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(status, 200);
    // Update alone does not create a key by encrypting with it.
    let (status, _) = s
        .call_as(&token, "POST", "transit/encrypt/new-one", Some(body))
        .await;
    assert_eq!(status, 403);
    assert_eq!(get(&s, "keys/new-one").await.0, 404);
    // Nor may it change keys or read them out.
    let (status, _) = s
        .call_as(
            &token,
            "POST",
            "transit/keys/existing/rotate",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = s
        .call_as(&token, "GET", "transit/keys/existing", None)
        .await;
    assert_eq!(status, 200);
}
