//! Attacks on the transit engine (issue 22): convergent nonces that ignore the associated
//! data, keys created through `encrypt` with options a caller should not choose, forged
//! backups, and crypto work that starves the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod transit_common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use support::TestServer;
use transit_common::{b64, bad, create, ok, transit};

/// The nonce (first 12 bytes) of a `vault:vN:` ciphertext.
fn nonce_of(ciphertext: &Value) -> Vec<u8> {
    let text = ciphertext.as_str().unwrap();
    let body = text.splitn(3, ':').nth(2).unwrap();
    B64.decode(body).unwrap()[..12].to_vec()
}

#[tokio::test]
async fn convergent_nonces_bind_the_associated_data() {
    let s = transit().await;
    create(
        &s,
        "conv",
        json!({"convergent_encryption": true, "derived": true}),
    )
    .await;
    let encrypt = |aad: Option<&str>| {
        let mut body = json!({"plaintext": b64("same secret"), "context": b64("tenant-1")});
        if let Some(a) = aad {
            body["associated_data"] = json!(b64(a));
        }
        let s = &s;
        async move { ok(s, "encrypt/conv", body).await["ciphertext"].clone() }
    };
    let plain = encrypt(None).await;
    let aad_a = encrypt(Some("record-a")).await;
    let aad_b = encrypt(Some("record-b")).await;
    // Same key, plaintext and context, different AAD: a shared nonce under AES-GCM would
    // give away the GHASH key. Each AAD gets its own nonce.
    assert_ne!(nonce_of(&aad_a), nonce_of(&aad_b));
    assert_ne!(nonce_of(&plain), nonce_of(&aad_a));
    // Still convergent for equal inputs, and still decryptable.
    assert_eq!(encrypt(Some("record-a")).await, aad_a);
    assert_eq!(encrypt(None).await, plain);
    for (ct, aad) in [(&aad_a, Some("record-a")), (&aad_b, Some("record-b"))] {
        let mut body = json!({"ciphertext": ct, "context": b64("tenant-1")});
        if let Some(a) = aad {
            body["associated_data"] = json!(b64(a));
        }
        assert_eq!(
            ok(&s, "decrypt/conv", body).await["plaintext"],
            b64("same secret")
        );
    }
}

#[tokio::test]
async fn encrypt_creates_keys_with_only_what_vault_accepts_there() {
    let s = transit().await;
    // Options only key creation may set are ignored, as Vault ignores unknown fields.
    ok(
        &s,
        "encrypt/sneaky",
        json!({
            "plaintext": b64("x"),
            "exportable": true,
            "allow_plaintext_backup": true,
            "auto_rotate_period": "1s",
            "deletion_allowed": true,
        }),
    )
    .await;
    let (status, read) = s.call("GET", "transit/keys/sneaky", None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["data"]["exportable"], false);
    assert_eq!(read["data"]["allow_plaintext_backup"], false);
    assert_eq!(read["data"]["auto_rotate_period"], 0);
    assert_eq!(read["data"]["deletion_allowed"], false);
    assert_eq!(read["data"]["type"], "aes256-gcm96");
    let (status, _) = s.call("GET", "transit/backup/sneaky", None).await;
    assert_eq!(status, 400);
    // Only the encryption types, with OpenBao's messages.
    for t in ["rsa-4096", "ed25519", "hmac", "des"] {
        let e = bad(
            &s,
            &format!("encrypt/t-{t}"),
            json!({"plaintext": b64("x"), "type": t}),
        )
        .await;
        assert_eq!(e, format!("unknown key type {t}"));
    }
    let e = bad(
        &s,
        "encrypt/t-ecdsa",
        json!({"plaintext": b64("x"), "type": "ecdsa-p256"}),
    )
    .await;
    assert_eq!(e, "key type ecdsa-p256 not supported for this operation");
    for t in ["rsa-4096", "ed25519", "hmac", "des", "ecdsa"] {
        let (status, _) = s.call("GET", &format!("transit/keys/t-{t}"), None).await;
        assert_eq!(status, 404, "{t}");
    }
    let created = ok(
        &s,
        "encrypt/cha",
        json!({"plaintext": b64("x"), "type": "chacha20-poly1305"}),
    )
    .await;
    assert!(
        created["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    // Convergent needs a context, which makes the key derived.
    let e = bad(
        &s,
        "encrypt/conv",
        json!({"plaintext": b64("x"), "convergent_encryption": true}),
    )
    .await;
    assert!(e.contains("context is required"), "{e}");
    ok(
        &s,
        "encrypt/conv",
        json!({"plaintext": b64("x"), "convergent_encryption": true, "context": b64("c")}),
    )
    .await;
    let (_, read) = s.call("GET", "transit/keys/conv", None).await;
    assert_eq!(read["data"]["derived"], true);
    assert_eq!(read["data"]["convergent_encryption"], true);
}

/// A real backup of a fresh key `name`, decoded: (document, material map).
async fn backup_doc(s: &TestServer, name: &str, body: Value) -> (Value, Value) {
    let mut body = body;
    body["exportable"] = json!(true);
    body["allow_plaintext_backup"] = json!(true);
    create(s, name, body).await;
    let (status, reply) = s.call("GET", &format!("transit/backup/{name}"), None).await;
    assert_eq!(status, 200, "{reply}");
    let doc: Value = serde_json::from_slice(
        &B64.decode(reply["data"]["backup"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let material: Value =
        serde_json::from_slice(&B64.decode(doc["material"].as_str().unwrap()).unwrap()).unwrap();
    (doc, material)
}

fn encode_backup(doc: &Value, material: &Value) -> String {
    let mut doc = doc.clone();
    doc["material"] = json!(B64.encode(serde_json::to_vec(material).unwrap()));
    B64.encode(serde_json::to_vec(&doc).unwrap())
}

/// Moves version 1 of a one-version backup to `version`.
fn renumber(doc: &mut Value, material: &mut Value, version: u32) {
    let info = doc["policy"]["versions"]["1"].clone();
    doc["policy"]["versions"] = json!({ version.to_string(): info });
    let m = material["1"].clone();
    *material = json!({ version.to_string(): m });
    doc["policy"]["latest_version"] = json!(version);
}

#[tokio::test]
async fn restore_refuses_forged_backups() {
    let s = transit().await;
    let (doc, material) = backup_doc(&s, "src", json!({})).await;
    let (hmac_doc, hmac_material) = backup_doc(&s, "hsrc", json!({"type": "hmac"})).await;
    let (ed_doc, ed_material) = backup_doc(&s, "esrc", json!({"type": "ed25519"})).await;
    // The genuine one restores.
    let (status, body) = s
        .call(
            "POST",
            "transit/restore/good",
            Some(json!({"backup": encode_backup(&doc, &material)})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // So does a trimmed key whose min_encryption_version was set back to 0 (config allows it).
    let mut trimmed = doc.clone();
    trimmed["policy"]["min_available_version"] = json!(1);
    trimmed["policy"]["min_encryption_version"] = json!(0);
    let (status, body) = s
        .call(
            "POST",
            "transit/restore/trimmed",
            Some(json!({"backup": encode_backup(&trimmed, &material)})),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    type Forge = fn(&mut Value, &mut Value);
    let forgeries: Vec<(&str, &Value, &Value, Forge)> = vec![
        ("latest at u32::MAX", &doc, &material, |d, m| {
            renumber(d, m, u32::MAX)
        }),
        ("min_decryption above latest", &doc, &material, |d, _| {
            d["policy"]["min_decryption_version"] = json!(5)
        }),
        ("min_encryption above latest", &doc, &material, |d, _| {
            d["policy"]["min_encryption_version"] = json!(5)
        }),
        ("min_decryption zero", &doc, &material, |d, _| {
            d["policy"]["min_decryption_version"] = json!(0)
        }),
        ("min_available above latest", &doc, &material, |d, _| {
            d["policy"]["min_available_version"] = json!(3)
        }),
        ("empty hmac key", &doc, &material, |_, m| {
            m["1"]["hmac_key"] = json!("")
        }),
        ("short hmac key", &doc, &material, |_, m| {
            m["1"]["hmac_key"] = json!(B64.encode([7u8; 4]))
        }),
        ("empty aes key", &doc, &material, |_, m| {
            m["1"]["key"] = json!("")
        }),
        ("aes-128 key in an aes-256 key", &doc, &material, |_, m| {
            m["1"]["key"] = json!(B64.encode([7u8; 16]))
        }),
        ("a gap in the versions", &doc, &material, |d, m| {
            let info = d["policy"]["versions"]["1"].clone();
            d["policy"]["versions"]["3"] = info;
            m["3"] = m["1"].clone();
            d["policy"]["latest_version"] = json!(3);
        }),
        ("latest missing from versions", &doc, &material, |d, _| {
            d["policy"]["latest_version"] = json!(2)
        }),
        ("convergent without derived", &doc, &material, |d, _| {
            d["policy"]["convergent_encryption"] = json!(true)
        }),
        ("auto rotation every second", &doc, &material, |d, _| {
            d["policy"]["auto_rotate_period"] = json!(1)
        }),
        (
            "hmac key shorter than its key_size",
            &hmac_doc,
            &hmac_material,
            |_, m| m["1"]["key"] = json!(B64.encode([7u8; 8])),
        ),
        (
            "hmac key_size out of range",
            &hmac_doc,
            &hmac_material,
            |d, _| d["policy"]["key_size"] = json!(4096),
        ),
        (
            "public key that is not the key's",
            &ed_doc,
            &ed_material,
            |d, _| d["policy"]["versions"]["1"]["public_key"] = json!(B64.encode([1u8; 32])),
        ),
        ("oversized owner", &doc, &material, |d, _| {
            d["policy"]["metadata"]["owner"] = json!("o".repeat(300))
        }),
    ];
    for (what, doc, material, forge) in forgeries {
        let (mut d, mut m) = (doc.clone(), material.clone());
        forge(&mut d, &mut m);
        let (status, body) = s
            .call(
                "POST",
                "transit/restore/forged",
                Some(json!({"backup": encode_backup(&d, &m)})),
            )
            .await;
        assert_eq!(status, 400, "{what}: {body}");
        support::assert_errors(&body);
        let (status, _) = s.call("GET", "transit/keys/forged", None).await;
        assert_eq!(status, 404, "{what} was restored");
    }
}

#[tokio::test]
async fn rotation_never_wraps_the_version_number() {
    let s = transit().await;
    let (mut doc, mut material) = backup_doc(&s, "src", json!({})).await;
    let top = u32::MAX - 1;
    renumber(&mut doc, &mut material, top);
    for field in [
        "min_decryption_version",
        "min_encryption_version",
        "min_available_version",
    ] {
        doc["policy"][field] = json!(top);
    }
    let (status, body) = s
        .call(
            "POST",
            "transit/restore/high",
            Some(json!({"backup": encode_backup(&doc, &material)})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let ct = ok(&s, "encrypt/high", json!({"plaintext": b64("kept")})).await["ciphertext"].clone();
    let rotated = ok(&s, "keys/high/rotate", json!({})).await;
    assert_eq!(rotated["latest_version"], u32::MAX);
    let e = bad(&s, "keys/high/rotate", json!({})).await;
    assert!(e.contains("maximum"), "{e}");
    let e = bad(&s, "keys/high/compromised", json!({"versions": [u32::MAX]})).await;
    assert!(e.contains("maximum"), "{e}");
    let (_, read) = s.call("GET", "transit/keys/high", None).await;
    assert_eq!(read["data"]["latest_version"], u32::MAX);
    assert_eq!(read["data"]["keys"].as_object().unwrap().len(), 2);
    assert_eq!(
        ok(&s, "decrypt/high", json!({"ciphertext": ct})).await["plaintext"],
        b64("kept")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_batches_do_not_stall_health_or_seal_status() {
    let s = std::sync::Arc::new(transit().await);
    create(&s, "rsa", json!({"type": "rsa-4096"})).await;
    let items = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"input": b64(&format!("m{i}"))}))
            .collect()
    };
    // Several of the largest RSA batches at once.
    let mut batches = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let body = json!({"batch_input": items(128)});
        batches.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (status, reply) = s.call("POST", "transit/sign/rsa", Some(body)).await;
            assert_eq!(status, 200, "{reply}");
            assert_eq!(
                reply["data"]["batch_results"].as_array().unwrap().len(),
                128
            );
            started.elapsed()
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut slowest = std::time::Duration::ZERO;
    for _ in 0..10 {
        for path in ["sys/health", "sys/seal-status"] {
            let started = std::time::Instant::now();
            let (status, _) = s.call("GET", path, None).await;
            assert_eq!(status, 200, "{path}");
            slowest = slowest.max(started.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut longest_batch = std::time::Duration::ZERO;
    for b in batches {
        longest_batch = longest_batch.max(b.await.unwrap());
    }
    // The batches took seconds; health and seal status answered throughout.
    assert!(
        slowest < std::time::Duration::from_millis(300),
        "health took {slowest:?} while batches took up to {longest_batch:?}"
    );
    assert!(
        longest_batch > std::time::Duration::from_millis(800),
        "{longest_batch:?}"
    );
    // Over-large batches are refused before any work.
    let e = bad(&s, "sign/rsa", json!({"batch_input": items(129)})).await;
    assert!(e.contains("at most 128"), "{e}");
    create(&s, "aes", json!({})).await;
    let plain: Vec<Value> = (0..1001).map(|_| json!({"plaintext": b64("x")})).collect();
    let e = bad(&s, "encrypt/aes", json!({"batch_input": plain})).await;
    assert!(e.contains("at most 1000"), "{e}");
}
