//! The `ward-client` library (what the CLI is built on) against a real dev server: typed
//! `sys/` helpers, KV v2, tokens, policies, error mapping and the token's secrecy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Server;
use serde_json::{Map, Value, json};
use ward_api::{KvMetadataWriteRequest, MountEnableRequest, TokenCreateRequest};
use ward_client::{Client, ClientError};

fn data(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn sys_status_health_mounts_and_rotation() {
    let server = Server::start();
    let client = server.client();

    let status = client.seal_status().await.unwrap();
    assert!(status.initialized && !status.sealed);
    assert_eq!(status.seal_type, "shamir");
    let (code, health) = client.health().await.unwrap();
    assert_eq!(code, 200);
    assert!(health.initialized && !health.sealed && !health.standby);
    assert!(client.init_status().await.unwrap().initialized);

    let mounts = client.mounts().await.unwrap();
    assert_eq!(mounts["secret/"].engine_type, "kv");
    assert_eq!(mounts["secret/"].options.as_ref().unwrap()["version"], "2");

    let request = MountEnableRequest {
        engine_type: "kv".into(),
        description: "typed".into(),
        options: Some([("version".to_owned(), "2".to_owned())].into()),
        ..MountEnableRequest::default()
    };
    client.enable_mount("typed", &request).await.unwrap();
    assert_eq!(
        client.mounts().await.unwrap()["typed/"].description,
        "typed"
    );
    client.disable_mount("typed/").await.unwrap();
    assert!(!client.mounts().await.unwrap().contains_key("typed/"));

    let term = client.key_status().await.unwrap().term;
    client.rotate().await.unwrap();
    assert_eq!(client.key_status().await.unwrap().term, term + 1);
}

#[tokio::test]
async fn kv2_round_trip_with_versions() {
    let server = Server::start();
    let client = server.client();
    let info = client.kv_mount_for("secret/app/db").await.unwrap();
    assert_eq!((info.mount.as_str(), info.version), ("secret", 2));
    assert_eq!(info.relative("secret/app/db"), "app/db");

    let kv = client.kv2("secret");
    assert!(kv.read("app/db", None).await.unwrap().is_none());
    let v1 = kv
        .write("app/db", data(json!({"user": "a", "pass": "1"})), Some(0))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    // cas=0 again: the server's 400 arrives as a typed API error with its message.
    let conflict = kv
        .write("app/db", data(json!({"pass": "x"})), Some(0))
        .await
        .unwrap_err();
    match &conflict {
        ClientError::Api { status, errors } => {
            assert_eq!(*status, 400);
            assert!(!errors.is_empty());
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    let v2 = kv
        .patch("app/db", data(json!({"pass": "2"})), None)
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let read = kv.read("app/db", None).await.unwrap().unwrap();
    assert_eq!(read.data.unwrap(), data(json!({"user": "a", "pass": "2"})));

    let v3 = kv.rollback("app/db", 1).await.unwrap();
    assert_eq!(v3.version, 3);
    let read = kv.read("app/db", None).await.unwrap().unwrap();
    assert_eq!(read.data.unwrap()["pass"], "1");

    // A deleted version comes back with its metadata and no data (Vault's 404 with a body).
    kv.delete_latest("app/db").await.unwrap();
    let deleted = kv.read("app/db", None).await.unwrap().unwrap();
    assert!(deleted.data.is_none());
    assert!(!deleted.metadata.deletion_time.is_empty());
    kv.undelete("app/db", &[3]).await.unwrap();
    kv.destroy("app/db", &[2]).await.unwrap();

    kv.write_metadata(
        "app/db",
        &KvMetadataWriteRequest {
            max_versions: Some(7),
            custom_metadata: Some([("owner".to_owned(), "me".to_owned())].into()),
            ..KvMetadataWriteRequest::default()
        },
    )
    .await
    .unwrap();
    let metadata = kv.read_metadata("app/db").await.unwrap().unwrap();
    assert_eq!(metadata.max_versions, 7);
    assert_eq!(metadata.current_version, 3);
    assert!(metadata.versions[&2].destroyed);
    assert_eq!(metadata.custom_metadata.unwrap()["owner"], "me");

    assert_eq!(
        kv.list("app").await.unwrap().unwrap(),
        vec!["db".to_owned()]
    );
    assert!(kv.list("nothing").await.unwrap().is_none());
    kv.delete_metadata("app/db").await.unwrap();
    assert!(kv.read_metadata("app/db").await.unwrap().is_none());
}

#[tokio::test]
async fn tokens_and_policies() {
    let server = Server::start();
    let client = server.client();
    client
        .write_policy(
            "reader",
            "path \"secret/data/*\" {\n  capabilities = [\"read\"]\n}\n",
        )
        .await
        .unwrap();
    assert!(
        client
            .list_policies()
            .await
            .unwrap()
            .contains(&"reader".to_owned())
    );
    assert!(
        client
            .read_policy("reader")
            .await
            .unwrap()
            .unwrap()
            .policy
            .contains("secret/data/*")
    );

    let auth = client
        .create_token(&TokenCreateRequest {
            policies: Some(vec!["reader".into()]),
            ttl: Some("1h".into()),
            ..TokenCreateRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(auth.lease_duration, 3600);
    assert!(!format!("{auth:?}").contains(&auth.client_token));

    let mut reader = Client::new(server.addr(), Some(&auth.client_token)).unwrap();
    assert!(!format!("{reader:?}").contains(&auth.client_token));
    let me = reader.lookup_self().await.unwrap();
    assert_eq!(me.accessor, auth.accessor);
    assert!(me.policies.contains(&"reader".to_owned()));
    assert_eq!(
        client
            .lookup_accessor(&auth.accessor)
            .await
            .unwrap()
            .accessor,
        auth.accessor
    );
    let renewed = reader.renew_self(Some("2h".into())).await.unwrap();
    assert_eq!(renewed.lease_duration, 7200);

    // Denied writes are 403s whose message never contains the token.
    let denied = reader
        .kv2("secret")
        .write("x", data(json!({"k": "v"})), None)
        .await
        .unwrap_err();
    assert_eq!(denied.status(), Some(403));
    assert!(!denied.to_string().contains(&auth.client_token));

    client.revoke_accessor(&auth.accessor).await.unwrap();
    assert_eq!(reader.lookup_self().await.unwrap_err().status(), Some(403));
    reader.set_token(None).unwrap();
    assert!(!reader.has_token());

    client.delete_policy("reader").await.unwrap();
    assert!(client.read_policy("reader").await.unwrap().is_none());
}

#[tokio::test]
async fn transport_errors_are_typed() {
    let client = Client::new(
        &format!("http://127.0.0.1:{}", common::free_port()),
        Some("t"),
    )
    .unwrap();
    let error = client.seal_status().await.unwrap_err();
    assert!(matches!(error, ClientError::Transport(_)), "{error:?}");
    assert_eq!(error.status(), None);
}
