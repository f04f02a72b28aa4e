//! Transit signatures, HMACs, random bytes and hashes over HTTP, for every key type, with
//! Vault's shapes and error rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod transit_common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use support::TestServer;
use transit_common::{b64, bad, create, ok, transit};

async fn sign_verify(s: &TestServer, name: &str, extra: Value) {
    let mut body = json!({"input": b64("message")});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let sig = ok(s, &format!("sign/{name}"), body.clone()).await;
    assert_eq!(sig["key_version"], 1);
    let signature = sig["signature"].as_str().unwrap().to_owned();
    assert!(signature.starts_with("vault:v1:"), "{signature}");
    let mut v = body.clone();
    v["signature"] = json!(signature);
    assert_eq!(
        ok(s, &format!("verify/{name}"), v.clone()).await["valid"],
        true,
        "{name} {extra}"
    );
    v["input"] = json!(b64("messagf"));
    assert_eq!(
        ok(s, &format!("verify/{name}"), v).await["valid"],
        false,
        "{name} {extra}"
    );
}

#[tokio::test]
async fn sign_and_verify_for_each_asymmetric_type() {
    let s = transit().await;
    for t in [
        "ed25519",
        "ecdsa-p256",
        "ecdsa-p384",
        "ecdsa-p521",
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
    ] {
        let read = create(&s, t, json!({"type": t})).await;
        assert_eq!(read["supports_signing"], true);
        let pk = read["keys"]["1"]["public_key"].as_str().unwrap();
        if t == "ed25519" {
            assert_eq!(B64.decode(pk).unwrap().len(), 32);
        } else {
            assert!(pk.starts_with("-----BEGIN PUBLIC KEY-----"), "{pk}");
        }
        sign_verify(&s, t, json!({})).await;
    }
    for hash in ["sha2-256", "sha2-384", "sha2-512"] {
        for m in ["asn1", "jws"] {
            sign_verify(
                &s,
                "ecdsa-p256",
                json!({"hash_algorithm": hash, "marshaling_algorithm": m}),
            )
            .await;
        }
        for alg in ["pss", "pkcs1v15"] {
            sign_verify(
                &s,
                "rsa-2048",
                json!({"hash_algorithm": hash, "signature_algorithm": alg}),
            )
            .await;
        }
    }
    sign_verify(&s, "rsa-2048", json!({"salt_length": "hash"})).await;
    sign_verify(&s, "ecdsa-p384", json!({"hash_algorithm": "sha2-256"})).await;
    // The hash in the path, and prehashed input.
    let sig =
        ok(&s, "sign/ecdsa-p256/sha2-512", json!({"input": b64("m")})).await["signature"].clone();
    let v = ok(
        &s,
        "verify/ecdsa-p256",
        json!({"input": b64("m"), "signature": sig, "hash_algorithm": "sha2-512"}),
    )
    .await;
    assert_eq!(v["valid"], true);
    let v = ok(
        &s,
        "verify/ecdsa-p256/sha2-256",
        json!({"input": b64("m"), "signature": sig}),
    )
    .await;
    assert_eq!(v["valid"], false);
    // JWS signatures are base64url without padding.
    let jws = ok(
        &s,
        "sign/ecdsa-p256",
        json!({"input": b64("m"), "marshaling_algorithm": "jws"}),
    )
    .await;
    let body = jws["signature"]
        .as_str()
        .unwrap()
        .trim_start_matches("vault:v1:")
        .to_owned();
    assert!(!body.contains('=') && !body.contains('+') && !body.contains('/'));
    // Errors: wrong key type, unknown options, malformed signatures.
    create(&s, "aes", json!({})).await;
    assert!(
        bad(&s, "sign/aes", json!({"input": b64("m")}))
            .await
            .contains("does not support signing")
    );
    bad(
        &s,
        "sign/ecdsa-p256",
        json!({"input": b64("m"), "hash_algorithm": "md5"}),
    )
    .await;
    bad(
        &s,
        "sign/rsa-2048",
        json!({"input": b64("m"), "signature_algorithm": "x"}),
    )
    .await;
    bad(
        &s,
        "sign/ed25519",
        json!({"input": b64("m"), "marshaling_algorithm": "jws"}),
    )
    .await;
    bad(
        &s,
        "verify/ed25519",
        json!({"input": b64("m"), "signature": "garbage"}),
    )
    .await;
    let v = ok(
        &s,
        "verify/ed25519",
        json!({"input": b64("m"), "signature": "vault:v1:AAAA"}),
    )
    .await;
    assert_eq!(v["valid"], false);
    // Batches answer 200 with per-item errors.
    let b = ok(
        &s,
        "sign/ecdsa-p256",
        json!({"batch_input": [{"input": b64("a"), "reference": "x"}, {"input": "!!"}]}),
    )
    .await;
    let r = b["batch_results"].as_array().unwrap();
    assert!(r[0]["signature"].as_str().unwrap().starts_with("vault:v1:"));
    assert_eq!(r[0]["reference"], "x");
    assert!(r[1]["error"].as_str().is_some());
    let v = ok(&s, "verify/ecdsa-p256", json!({"batch_input": [{"input": b64("a"), "signature": r[0]["signature"]}, {"input": b64("b"), "signature": r[0]["signature"]}]})).await;
    assert_eq!(v["batch_results"][0]["valid"], true);
    // Vault leaves a false `valid` out of batch items.
    assert!(v["batch_results"][1].get("valid").is_none(), "{v}");
}

#[tokio::test]
async fn derived_ed25519_signs_per_context() {
    let s = transit().await;
    create(&s, "de", json!({"type": "ed25519", "derived": true})).await;
    bad(&s, "sign/de", json!({"input": b64("m")})).await;
    let sig = ok(
        &s,
        "sign/de",
        json!({"input": b64("m"), "context": b64("a")}),
    )
    .await["signature"]
        .clone();
    let v = ok(
        &s,
        "verify/de",
        json!({"input": b64("m"), "context": b64("a"), "signature": sig}),
    )
    .await;
    assert_eq!(v["valid"], true);
    let v = ok(
        &s,
        "verify/de",
        json!({"input": b64("m"), "context": b64("b"), "signature": sig}),
    )
    .await;
    assert_eq!(v["valid"], false);
}

#[tokio::test]
async fn hmac_and_verify_for_hmac_and_other_keys() {
    let s = transit().await;
    let read = create(&s, "h", json!({"type": "hmac", "key_size": 64})).await;
    assert_eq!(read["key_size"], 64);
    bad(&s, "keys/h2", json!({"type": "hmac", "key_size": 16})).await;
    create(&s, "a", json!({})).await;
    for key in ["h", "a"] {
        for alg in ["sha2-224", "sha2-256", "sha2-384", "sha2-512"] {
            let mac = ok(
                &s,
                &format!("hmac/{key}/{alg}"),
                json!({"input": b64("data")}),
            )
            .await["hmac"]
                .clone();
            let m = mac.as_str().unwrap();
            assert!(m.starts_with("vault:v1:"));
            let v = ok(
                &s,
                &format!("verify/{key}/{alg}"),
                json!({"input": b64("data"), "hmac": mac}),
            )
            .await;
            assert_eq!(v["valid"], true, "{key} {alg}");
            let v = ok(
                &s,
                &format!("verify/{key}"),
                json!({"input": b64("datb"), "hmac": mac, "algorithm": alg}),
            )
            .await;
            assert_eq!(v["valid"], false);
        }
    }
    // Deterministic per key version; differs after rotation.
    let m1 = ok(&s, "hmac/h", json!({"input": b64("x")})).await["hmac"].clone();
    assert_eq!(
        m1,
        ok(&s, "hmac/h", json!({"input": b64("x")})).await["hmac"]
    );
    ok(&s, "keys/h/rotate", json!({})).await;
    let m2 = ok(&s, "hmac/h", json!({"input": b64("x")})).await["hmac"].clone();
    assert!(m2.as_str().unwrap().starts_with("vault:v2:"));
    let v = ok(&s, "verify/h", json!({"input": b64("x"), "hmac": m1})).await;
    assert_eq!(v["valid"], true);
    let b = ok(
        &s,
        "hmac/h",
        json!({"batch_input": [{"input": b64("x")}, {"input": "!!"}]}),
    )
    .await;
    assert_eq!(b["batch_results"][0]["hmac"], m2);
    assert!(b["batch_results"][1]["error"].is_string());
    bad(&s, "hmac/h/sha3-256", json!({"input": b64("x")})).await;
    bad(&s, "verify/h", json!({"input": b64("x"), "hmac": "nope"})).await;
}

#[tokio::test]
async fn random_and_hash() {
    let s = transit().await;
    let r = ok(&s, "random/16", json!({})).await;
    assert_eq!(
        B64.decode(r["random_bytes"].as_str().unwrap())
            .unwrap()
            .len(),
        16
    );
    let r = ok(&s, "random", json!({"bytes": 8, "format": "hex"})).await;
    assert_eq!(r["random_bytes"].as_str().unwrap().len(), 16);
    let r = ok(&s, "random/platform/4", json!({})).await;
    assert_eq!(
        B64.decode(r["random_bytes"].as_str().unwrap())
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        B64.decode(
            ok(&s, "random", json!({})).await["random_bytes"]
                .as_str()
                .unwrap()
        )
        .unwrap()
        .len(),
        32
    );
    bad(&s, "random/hex/8", json!({})).await;
    bad(&s, "random/0", json!({})).await;
    bad(&s, "random/99999999", json!({})).await;
    bad(&s, "random", json!({"format": "base32"})).await;
    let h = ok(&s, "hash", json!({"input": b64("hello")})).await;
    assert_eq!(
        h["sum"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    let h = ok(
        &s,
        "hash/sha2-512",
        json!({"input": b64("hello"), "format": "base64"}),
    )
    .await;
    assert_eq!(
        h["sum"],
        "m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw=="
    );
    let h = ok(
        &s,
        "hash",
        json!({"input": b64("abc"), "algorithm": "sha3-256"}),
    )
    .await;
    assert_eq!(
        h["sum"],
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
    );
    bad(&s, "hash/md5", json!({"input": b64("x")})).await;
    bad(&s, "hash", json!({})).await;
}
