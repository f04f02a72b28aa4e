//! The `vaultrs` crate's transit API against Ward: its strict response types must all
//! deserialise, and the round trips must hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use vaultrs::api::transit::requests::{
    CreateKeyRequest, DataKeyType, ExportKeyType, ExportVersion, RandomBytesSource,
    RestoreKeyRequest, UpdateKeyConfigurationRequest,
};
use vaultrs::api::transit::responses::ReadKeyData;
use vaultrs::api::transit::{KeyType, OutputFormat};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::transit::{data, generate, key};

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
async fn transit_with_vaultrs() {
    let s = support::dev().await;
    let (status, _) = s
        .call(
            "POST",
            "sys/mounts/transit",
            Some(json!({"type": "transit"})),
        )
        .await;
    assert_eq!(status, 204);
    let c = client(&s.url, &s.root_token);
    let m = "transit";

    // Keys: create (default and typed), read, list, config, rotate.
    key::create(&c, m, "app", None).await.unwrap();
    key::create(
        &c,
        m,
        "signer",
        Some(CreateKeyRequest::builder().key_type(KeyType::EcdsaP256)),
    )
    .await
    .unwrap();
    key::create(
        &c,
        m,
        "ed",
        Some(CreateKeyRequest::builder().key_type(KeyType::Ed25519)),
    )
    .await
    .unwrap();
    let read = key::read(&c, m, "app").await.unwrap();
    assert_eq!(read.name, "app");
    assert!(matches!(read.key_type, KeyType::Aes256Gcm96));
    assert!(read.supports_encryption && !read.supports_signing);
    match read.keys {
        ReadKeyData::Symmetric(k) => assert!(k.contains_key("1")),
        ReadKeyData::Asymmetric(_) => panic!("symmetric key read as asymmetric"),
    }
    let read = key::read(&c, m, "signer").await.unwrap();
    match read.keys {
        ReadKeyData::Asymmetric(k) => {
            assert_eq!(k["1"].name, "P-256");
            assert!(k["1"].public_key.starts_with("-----BEGIN PUBLIC KEY-----"));
        }
        ReadKeyData::Symmetric(_) => panic!("asymmetric key read as symmetric"),
    }
    let keys = key::list(&c, m).await.unwrap();
    assert_eq!(keys.keys, vec!["app", "ed", "signer"]);
    key::update(
        &c,
        m,
        "app",
        Some(
            UpdateKeyConfigurationRequest::builder()
                .exportable(true)
                .allow_plaintext_backup(true)
                .deletion_allowed(true),
        ),
    )
    .await
    .unwrap();

    // Data: encrypt, decrypt, rotate, rewrap.
    let plain = B64.encode("vaultrs says hello");
    let ct = data::encrypt(&c, m, "app", &plain, None).await.unwrap();
    assert!(ct.ciphertext.starts_with("vault:v1:"));
    let back = data::decrypt(&c, m, "app", &ct.ciphertext, None)
        .await
        .unwrap();
    assert_eq!(back.plaintext, plain);
    key::rotate(&c, m, "app").await.unwrap();
    let rw = data::rewrap(&c, m, "app", &ct.ciphertext, None)
        .await
        .unwrap();
    assert!(rw.ciphertext.starts_with("vault:v2:"));
    let back = data::decrypt(&c, m, "app", &rw.ciphertext, None)
        .await
        .unwrap();
    assert_eq!(back.plaintext, plain);

    // Signatures.
    for name in ["signer", "ed"] {
        let sig = data::sign(&c, m, name, &plain, None).await.unwrap();
        assert!(sig.signature.starts_with("vault:v1:"));
        let ok = data::verify(
            &c,
            m,
            name,
            &plain,
            Some(
                vaultrs::api::transit::requests::VerifySignedDataRequest::builder()
                    .signature(sig.signature.clone()),
            ),
        )
        .await
        .unwrap();
        assert!(ok.valid, "{name}");
        let bad = data::verify(
            &c,
            m,
            name,
            &B64.encode("tampered"),
            Some(
                vaultrs::api::transit::requests::VerifySignedDataRequest::builder()
                    .signature(sig.signature),
            ),
        )
        .await
        .unwrap();
        assert!(!bad.valid, "{name}");
    }

    // Generate: data keys, random bytes, hash, HMAC.
    let dk = generate::data_key(&c, m, "app", DataKeyType::Plaintext, None)
        .await
        .unwrap();
    let dk_plain = dk.plaintext.unwrap();
    assert_eq!(B64.decode(&dk_plain).unwrap().len(), 32);
    let back = data::decrypt(&c, m, "app", &dk.ciphertext, None)
        .await
        .unwrap();
    assert_eq!(back.plaintext, dk_plain);
    let wrapped = generate::data_key(&c, m, "app", DataKeyType::Wrapped, None)
        .await
        .unwrap();
    assert!(wrapped.plaintext.is_none());
    let random =
        generate::random_bytes(&c, m, OutputFormat::Hex, RandomBytesSource::Platform, None)
            .await
            .unwrap();
    assert_eq!(random.random_bytes.len(), 64);
    let sum = generate::hash(&c, m, &B64.encode("hello"), None)
        .await
        .unwrap();
    assert_eq!(
        sum.sum,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    let mac = generate::hmac(&c, m, "app", &plain, None).await.unwrap();
    assert!(mac.hmac.starts_with("vault:v2:"));

    // Export, backup, restore, trim, delete.
    let exported = key::export(
        &c,
        m,
        "app",
        ExportKeyType::EncryptionKey,
        ExportVersion::All,
    )
    .await
    .unwrap();
    assert_eq!(exported.name, "app");
    assert_eq!(exported.keys.len(), 2);
    let latest = key::export(&c, m, "app", ExportKeyType::HmacKey, ExportVersion::Latest)
        .await
        .unwrap();
    assert!(latest.keys.contains_key("2"));
    let public = key::export(
        &c,
        m,
        "ed",
        ExportKeyType::PublicKey,
        ExportVersion::Version(1),
    )
    .await
    .unwrap();
    assert_eq!(B64.decode(&public.keys["1"]).unwrap().len(), 32);
    let backup = key::backup(&c, m, "app").await.unwrap();
    key::restore(
        &c,
        m,
        &backup.backup,
        Some(RestoreKeyRequest::builder().name("app-copy")),
    )
    .await
    .unwrap();
    let back = data::decrypt(&c, m, "app-copy", &rw.ciphertext, None)
        .await
        .unwrap();
    assert_eq!(back.plaintext, plain);
    key::update(
        &c,
        m,
        "app",
        Some(
            UpdateKeyConfigurationRequest::builder()
                .min_decryption_version(2u64)
                .min_encryption_version(2u64),
        ),
    )
    .await
    .unwrap();
    key::trim(&c, m, "app", 2).await.unwrap();
    assert!(
        data::decrypt(&c, m, "app", &ct.ciphertext, None)
            .await
            .is_err()
    );
    key::delete(&c, m, "app").await.unwrap();
    assert!(key::read(&c, m, "app").await.is_err());
}
