//! Transit encryption over HTTP: encrypt, decrypt, rewrap and data keys for every AEAD key
//! type, batches, derived and convergent keys, with Vault's shapes and error rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod transit_common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use transit_common::{b64, bad, create, ok, transit};

#[tokio::test]
async fn encrypt_decrypt_round_trip_for_each_aead_type() {
    let s = transit().await;
    for t in ["aes256-gcm96", "aes128-gcm96", "chacha20-poly1305"] {
        create(&s, t, json!({"type": t})).await;
        let enc = ok(
            &s,
            &format!("encrypt/{t}"),
            json!({"plaintext": b64("hello world")}),
        )
        .await;
        let ct = enc["ciphertext"].as_str().unwrap();
        assert!(ct.starts_with("vault:v1:"), "{ct}");
        assert_eq!(enc["key_version"], 1);
        // 12-byte nonce + 11 bytes + 16-byte tag.
        assert_eq!(B64.decode(&ct[9..]).unwrap().len(), 12 + 11 + 16);
        let dec = ok(&s, &format!("decrypt/{t}"), json!({"ciphertext": ct})).await;
        assert_eq!(dec["plaintext"], b64("hello world"));
        // Associated data binds the ciphertext.
        let enc = ok(
            &s,
            &format!("encrypt/{t}"),
            json!({"plaintext": b64("x"), "associated_data": b64("ctx-1")}),
        )
        .await;
        let ct = enc["ciphertext"].as_str().unwrap();
        let dec = ok(
            &s,
            &format!("decrypt/{t}"),
            json!({"ciphertext": ct, "associated_data": b64("ctx-1")}),
        )
        .await;
        assert_eq!(dec["plaintext"], b64("x"));
        let e = bad(
            &s,
            &format!("decrypt/{t}"),
            json!({"ciphertext": ct, "associated_data": b64("ctx-2")}),
        )
        .await;
        assert!(e.contains("authentication failed"), "{e}");
    }
    // The read shows Vault's fields.
    let (status, read) = s.call("GET", "transit/keys/aes256-gcm96", None).await;
    assert_eq!(status, 200);
    let d = &read["data"];
    assert_eq!(d["type"], "aes256-gcm96");
    assert_eq!(d["latest_version"], 1);
    assert_eq!(d["min_decryption_version"], 1);
    assert_eq!(d["supports_encryption"], true);
    assert_eq!(d["supports_signing"], false);
    assert!(d["keys"]["1"].is_u64(), "{d}");
}

#[tokio::test]
async fn encrypt_creates_a_missing_key_and_errors_are_400() {
    let s = transit().await;
    let e = bad(&s, "encrypt/auto", json!({})).await;
    assert_eq!(e, "missing plaintext to encrypt");
    let enc = ok(&s, "encrypt/auto", json!({"plaintext": b64("a")})).await;
    assert_eq!(enc["key_version"], 1);
    let (status, read) = s.call("GET", "transit/keys/auto", None).await;
    assert_eq!(status, 200);
    assert_eq!(read["data"]["type"], "aes256-gcm96");
    assert!(
        bad(&s, "encrypt/auto", json!({"plaintext": "!!not base64"}))
            .await
            .contains("base64")
    );
    assert!(
        bad(&s, "decrypt/auto", json!({"ciphertext": "nope"}))
            .await
            .contains("no prefix")
    );
    assert!(
        bad(&s, "decrypt/auto", json!({"ciphertext": "vault:v9:AAAA"}))
            .await
            .contains("too new")
    );
    assert!(
        bad(&s, "decrypt/auto", json!({"ciphertext": "vault:vx:AAAA"}))
            .await
            .contains("version")
    );
    assert!(
        bad(&s, "decrypt/auto", json!({"ciphertext": "vault:v1:%%%"}))
            .await
            .contains("base64")
    );
    assert!(
        bad(&s, "decrypt/auto", json!({"ciphertext": "vault:v1:AAAA"}))
            .await
            .contains("invalid ciphertext length")
    );
    let (status, _) = s
        .call(
            "POST",
            "transit/decrypt/missing",
            Some(json!({"ciphertext": "vault:v1:AAAA"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = s.call("GET", "transit/keys/missing", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn tampered_ciphertexts_are_400_never_500() {
    let s = transit().await;
    let enc = ok(
        &s,
        "encrypt/k",
        json!({"plaintext": b64("secret data here")}),
    )
    .await;
    let ct = enc["ciphertext"].as_str().unwrap();
    let raw = B64.decode(&ct[9..]).unwrap();
    for i in [0, 5, 12, 20, raw.len() - 1] {
        let mut t = raw.clone();
        t[i] ^= 0x01;
        let e = bad(
            &s,
            "decrypt/k",
            json!({"ciphertext": format!("vault:v1:{}", B64.encode(&t))}),
        )
        .await;
        assert!(e.contains("authentication"), "{e}");
    }
    for cut in [0, 5, 27] {
        let t = &raw[..cut];
        bad(
            &s,
            "decrypt/k",
            json!({"ciphertext": format!("vault:v1:{}", B64.encode(t))}),
        )
        .await;
    }
    bad(&s, "decrypt/k", json!({"ciphertext": 42})).await;
    bad(&s, "decrypt/k", json!({"ciphertext": [1, 2]})).await;
    let (status, _) = s
        .raw("POST", "/v1/transit/decrypt/k", b"{not json".to_vec())
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn batches_report_per_item_errors() {
    let s = transit().await;
    create(&s, "b", json!({})).await;
    let enc = ok(
        &s,
        "encrypt/b",
        json!({"batch_input": [
            {"plaintext": b64("one"), "reference": "r1"},
            {"plaintext": b64("two"), "reference": "r2"},
        ]}),
    )
    .await;
    let results = enc["batch_results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["reference"], "r1");
    assert_eq!(results[1]["key_version"], 1);
    // One bad item: the others still succeed; the status is 400 as in Vault.
    let (status, body) = s
        .call(
            "POST",
            "transit/encrypt/b",
            Some(json!({"batch_input": [{"plaintext": b64("ok")}, {"plaintext": "!!"}]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let r = body["data"]["batch_results"].as_array().unwrap();
    assert!(
        r[0]["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    assert!(r[0].get("error").is_none());
    assert!(r[1]["error"].as_str().unwrap().contains("base64"));
    // partial_failure_response_code turns that into the chosen status.
    let (status, _) = s
        .call(
            "POST",
            "transit/encrypt/b",
            Some(json!({"partial_failure_response_code": 207,
                        "batch_input": [{"plaintext": b64("ok")}, {"plaintext": "!!"}]})),
        )
        .await;
    assert_eq!(status, 207);
    // Decrypt: good, tampered, malformed.
    let good = results[0]["ciphertext"].as_str().unwrap();
    let (status, body) = s
        .call(
            "POST",
            "transit/decrypt/b",
            Some(json!({"batch_input": [
                {"ciphertext": good, "reference": "a"},
                {"ciphertext": "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "reference": "b"},
                {"ciphertext": "junk", "reference": "c"},
            ]})),
        )
        .await;
    assert_eq!(status, 400);
    let r = body["data"]["batch_results"].as_array().unwrap();
    assert_eq!(r[0]["plaintext"], b64("one"));
    assert_eq!(r[0]["reference"], "a");
    assert!(r[1]["error"].as_str().unwrap().contains("authentication"));
    assert_eq!(r[1]["plaintext"], "");
    assert!(r[2]["error"].as_str().unwrap().contains("no prefix"));
    assert_eq!(r[2]["reference"], "c");
    // All good: 200.
    let dec = ok(
        &s,
        "decrypt/b",
        json!({"batch_input": [{"ciphertext": good}]}),
    )
    .await;
    assert_eq!(dec["batch_results"][0]["plaintext"], b64("one"));
}

#[tokio::test]
async fn rotation_rewrap_and_min_decryption_version() {
    let s = transit().await;
    create(&s, "r", json!({})).await;
    let v1 = ok(&s, "encrypt/r", json!({"plaintext": b64("data")})).await["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = ok(&s, "keys/r/rotate", json!({})).await;
    assert_eq!(rotated["latest_version"], 2);
    let v2 = ok(&s, "encrypt/r", json!({"plaintext": b64("data")})).await;
    assert!(v2["ciphertext"].as_str().unwrap().starts_with("vault:v2:"));
    // Encrypting with an explicit older version is still possible.
    let old = ok(
        &s,
        "encrypt/r",
        json!({"plaintext": b64("d"), "key_version": 1}),
    )
    .await;
    assert_eq!(old["key_version"], 1);
    assert!(
        bad(
            &s,
            "encrypt/r",
            json!({"plaintext": b64("d"), "key_version": 7})
        )
        .await
        .contains("higher")
    );
    // Rewrap moves a v1 ciphertext to the latest version, keeping the plaintext.
    let rw = ok(&s, "rewrap/r", json!({"ciphertext": v1})).await;
    let v1_rewrapped = rw["ciphertext"].as_str().unwrap();
    assert!(v1_rewrapped.starts_with("vault:v2:"), "{v1_rewrapped}");
    assert_eq!(rw["key_version"], 2);
    assert_eq!(
        ok(&s, "decrypt/r", json!({"ciphertext": v1_rewrapped})).await["plaintext"],
        b64("data")
    );
    // Rewrap batches answer 200 with per-item errors, as Vault's do.
    let batch = ok(
        &s,
        "rewrap/r",
        json!({"batch_input": [{"ciphertext": v1}, {"ciphertext": "junk"}]}),
    )
    .await;
    assert!(
        batch["batch_results"][1]["error"]
            .as_str()
            .unwrap()
            .contains("no prefix")
    );
    assert!(
        batch["batch_results"][0]["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v2:")
    );
    // min_decryption_version refuses v1 with 400, still decrypts v2.
    let cfg = ok(&s, "keys/r/config", json!({"min_decryption_version": 2})).await;
    assert_eq!(cfg["min_decryption_version"], 2);
    let e = bad(&s, "decrypt/r", json!({"ciphertext": v1})).await;
    assert!(e.contains("disallowed by policy"), "{e}");
    bad(&s, "rewrap/r", json!({"ciphertext": v1})).await;
    assert_eq!(
        ok(&s, "decrypt/r", json!({"ciphertext": v1_rewrapped})).await["plaintext"],
        b64("data")
    );
    assert!(
        bad(&s, "keys/r/config", json!({"min_decryption_version": 5}))
            .await
            .contains("latest key version is 2")
    );
}

#[tokio::test]
async fn derived_and_convergent_keys_need_and_use_context() {
    let s = transit().await;
    create(&s, "d", json!({"derived": true})).await;
    let e = bad(&s, "encrypt/d", json!({"plaintext": b64("p")})).await;
    assert!(e.contains("context"), "{e}");
    let ct = ok(
        &s,
        "encrypt/d",
        json!({"plaintext": b64("p"), "context": b64("user-1")}),
    )
    .await["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ok(
            &s,
            "decrypt/d",
            json!({"ciphertext": ct, "context": b64("user-1")})
        )
        .await["plaintext"],
        b64("p")
    );
    bad(
        &s,
        "decrypt/d",
        json!({"ciphertext": ct, "context": b64("user-2")}),
    )
    .await;
    // Convergent: same context and plaintext give the same ciphertext.
    assert!(
        bad(&s, "keys/c", json!({"convergent_encryption": true}))
            .await
            .contains("derivation")
    );
    let read = create(
        &s,
        "c",
        json!({"convergent_encryption": true, "derived": true}),
    )
    .await;
    assert_eq!(read["kdf"], "hkdf_sha256");
    assert_eq!(read["convergent_encryption"], true);
    let body = json!({"plaintext": b64("same"), "context": b64("ctx")});
    let a = ok(&s, "encrypt/c", body.clone()).await["ciphertext"].clone();
    let b = ok(&s, "encrypt/c", body).await["ciphertext"].clone();
    assert_eq!(a, b);
    let c = ok(
        &s,
        "encrypt/c",
        json!({"plaintext": b64("same"), "context": b64("other")}),
    )
    .await["ciphertext"]
        .clone();
    assert_ne!(a, c);
    // Non-convergent keys never repeat.
    let x = ok(
        &s,
        "encrypt/d",
        json!({"plaintext": b64("p"), "context": b64("user-1")}),
    )
    .await["ciphertext"]
        .clone();
    assert_ne!(x, json!(ct));
}

#[tokio::test]
async fn data_keys_plaintext_and_wrapped() {
    let s = transit().await;
    create(&s, "dk", json!({})).await;
    for bits in [128, 256, 512] {
        let d = ok(&s, "datakey/plaintext/dk", json!({"bits": bits})).await;
        let plain = d["plaintext"].as_str().unwrap();
        assert_eq!(B64.decode(plain).unwrap().len(), bits / 8);
        let back = ok(&s, "decrypt/dk", json!({"ciphertext": d["ciphertext"]})).await;
        assert_eq!(back["plaintext"], plain);
    }
    let w = ok(&s, "datakey/wrapped/dk", json!({})).await;
    assert!(w.get("plaintext").is_none(), "{w}");
    let back = ok(&s, "decrypt/dk", json!({"ciphertext": w["ciphertext"]})).await;
    assert_eq!(
        B64.decode(back["plaintext"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        bad(&s, "datakey/wrapped/dk", json!({"bits": 100})).await,
        "invalid bit length"
    );
    bad(&s, "datakey/other/dk", json!({})).await;
}

/// RSA keys encrypt and decrypt with RSA-OAEP (SHA-256), as OpenBao's do: both flags true,
/// batches, rewrap after a rotation; a tampered or cut ciphertext, a plaintext too long for
/// the modulus and associated data are 400 (OpenBao answers 500 for the first two).
#[tokio::test]
async fn rsa_keys_encrypt_with_oaep() {
    let s = transit().await;
    for t in ["rsa-2048", "rsa-3072", "rsa-4096"] {
        let read = create(&s, t, json!({"type": t})).await;
        assert_eq!(read["supports_encryption"], true, "{t}");
        assert_eq!(read["supports_decryption"], true, "{t}");
        let enc = ok(
            &s,
            &format!("encrypt/{t}"),
            json!({"plaintext": b64("hello")}),
        )
        .await;
        let ct = enc["ciphertext"].as_str().unwrap().to_owned();
        let bits: usize = t[4..].parse().unwrap();
        assert_eq!(B64.decode(&ct[9..]).unwrap().len(), bits / 8, "{t}");
        let dec = ok(&s, &format!("decrypt/{t}"), json!({"ciphertext": ct})).await;
        assert_eq!(dec["plaintext"], b64("hello"));
    }
    let ct = ok(&s, "encrypt/rsa-2048", json!({"plaintext": b64("hello")})).await["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut raw = B64.decode(&ct[9..]).unwrap();
    raw[10] ^= 1;
    let tampered = format!("vault:v1:{}", B64.encode(&raw));
    let e = bad(&s, "decrypt/rsa-2048", json!({"ciphertext": tampered})).await;
    assert!(e.contains("RSA decrypt"), "{e}");
    let cut = format!("vault:v1:{}", B64.encode(&raw[..100]));
    bad(&s, "decrypt/rsa-2048", json!({"ciphertext": cut})).await;
    let long = B64.encode([b'x'; 191]);
    let e = bad(&s, "encrypt/rsa-2048", json!({"plaintext": long})).await;
    assert!(e.contains("at most 190 bytes"), "{e}");
    let e = bad(
        &s,
        "encrypt/rsa-2048",
        json!({"plaintext": b64("x"), "associated_data": b64("a")}),
    )
    .await;
    assert!(e.contains("non-AEAD"), "{e}");

    let batch = json!({"batch_input": [{"plaintext": b64("one")}, {"plaintext": b64("two")}]});
    let sealed = ok(&s, "encrypt/rsa-2048", batch).await;
    let items = sealed["batch_results"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    ok(&s, "keys/rsa-2048/rotate", json!({})).await;
    let rewrapped = ok(&s, "rewrap/rsa-2048", json!({"ciphertext": ct})).await;
    let new_ct = rewrapped["ciphertext"].as_str().unwrap();
    assert!(new_ct.starts_with("vault:v2:"), "{new_ct}");
    let dec = ok(&s, "decrypt/rsa-2048", json!({"ciphertext": new_ct})).await;
    assert_eq!(dec["plaintext"], b64("hello"));
    let inputs: Vec<_> = items
        .iter()
        .map(|i| json!({"ciphertext": i["ciphertext"]}))
        .collect();
    let opened = ok(&s, "decrypt/rsa-2048", json!({"batch_input": inputs})).await;
    assert_eq!(opened["batch_results"][1]["plaintext"], b64("two"));
}
