//! KV v2 over real HTTP: Vault's paths, envelopes and status codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{assert_errors, dev};

/// A read's body is OpenBao 2.7.2's, field for field and in its order (recorded from
/// `bao server -dev`): no `mount_type`, the secret's own JSON under `data.data`.
#[tokio::test]
async fn a_read_has_openbaos_envelope_field_for_field() {
    let s = dev().await;
    let secret = json!({"a": "1", "nested": {"b": [1, 2.5, null, true]}, "u": "é\"\n"});
    let (status, _) = s
        .call("POST", "secret/data/shape", Some(json!({"data": secret})))
        .await;
    assert_eq!(status, 200);
    let text = s
        .http
        .get(format!("{}/v1/secret/data/shape", s.url))
        .header("X-Vault-Token", &s.root_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let fields = [
        "{\"request_id\":\"",
        "\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,\"data\":{\"data\":",
        ",\"metadata\":{\"created_time\":\"",
        "\",\"custom_metadata\":null,\"deletion_time\":\"\",\"destroyed\":false,\"version\":1}},\"wrap_info\":null,\"warnings\":null,\"auth\":null}",
    ];
    let mut at = 0;
    for field in fields {
        let found = text[at..]
            .find(field)
            .unwrap_or_else(|| panic!("{field} in {text}"));
        at += found + field.len();
    }
    assert_eq!(at, text.len(), "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["data"]["data"], secret);
}

#[tokio::test]
async fn write_read_versions_and_metadata() {
    let s = dev().await;
    let (status, body) = s
        .call(
            "POST",
            "secret/data/app/db",
            Some(json!({"data": {"password": "p1"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 1);
    assert_eq!(body["data"]["destroyed"], false);
    let (_, body) = s
        .call(
            "POST",
            "secret/data/app/db",
            Some(json!({"data": {"password": "p2"}})),
        )
        .await;
    assert_eq!(body["data"]["version"], 2);

    let (status, body) = s.call("GET", "secret/data/app/db", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["data"], json!({"password": "p2"}));
    assert_eq!(body["data"]["metadata"]["version"], 2);
    assert!(body["request_id"].is_string());
    assert_eq!(body["lease_id"], "");

    let (_, body) = s.call("GET", "secret/data/app/db?version=1", None).await;
    assert_eq!(body["data"]["data"], json!({"password": "p1"}));

    let (status, body) = s.call("GET", "secret/metadata/app/db", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["current_version"], 2);
    // OpenBao reports 0 until a version has been trimmed (issue 23).
    assert_eq!(body["data"]["oldest_version"], 0);
    assert_eq!(body["data"]["max_versions"], 0);
    assert!(body["data"]["versions"]["1"]["created_time"].is_string());

    let (status, body) = s.call("LIST", "secret/metadata/app", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["keys"], json!(["db"]));
    let (status, body) = s.call("GET", "secret/metadata/?list=true", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["keys"], json!(["app/"]));
}

#[tokio::test]
async fn missing_secret_is_404_with_vault_shape() {
    let s = dev().await;
    let (status, body) = s.call("GET", "secret/data/nope", None).await;
    assert_eq!(status, 404);
    assert_errors(&body);
    let (status, _) = s.call("LIST", "secret/metadata/nothing-here", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn cas_is_enforced() {
    let s = dev().await;
    let (status, _) = s
        .call(
            "POST",
            "secret/data/c",
            Some(json!({"data": {"a": "1"}, "options": {"cas": 0}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s
        .call(
            "POST",
            "secret/data/c",
            Some(json!({"data": {"a": "2"}, "options": {"cas": 0}})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("check-and-set")
    );
    let (status, _) = s
        .call(
            "POST",
            "secret/data/c",
            Some(json!({"data": {"a": "2"}, "options": {"cas": 1}})),
        )
        .await;
    assert_eq!(status, 200);
    // cas_required on the secret: a write without cas is refused.
    let (status, _) = s
        .call(
            "POST",
            "secret/metadata/c",
            Some(json!({"cas_required": true})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = s
        .call("POST", "secret/data/c", Some(json!({"data": {"a": "3"}})))
        .await;
    assert_eq!(status, 400);
    assert!(body["errors"][0].as_str().unwrap().contains("required"));
}

#[tokio::test]
async fn concurrent_cas_writers_exactly_one_wins() {
    let s = std::sync::Arc::new(dev().await);
    s.call(
        "POST",
        "secret/data/race",
        Some(json!({"data": {"n": "0"}})),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.call(
                "POST",
                "secret/data/race",
                Some(json!({"data": {"n": i.to_string()}, "options": {"cas": 1}})),
            )
            .await
            .0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1);
    let (_, body) = s.call("GET", "secret/metadata/race", None).await;
    assert_eq!(body["data"]["current_version"], 2);
}

#[tokio::test]
async fn patch_merges_into_the_latest_version() {
    let s = dev().await;
    s.call(
        "POST",
        "secret/data/p",
        Some(json!({"data": {"a": "1", "b": "2"}})),
    )
    .await;
    let (status, body) = s
        .call(
            "PATCH",
            "secret/data/p",
            Some(json!({"data": {"b": null, "c": "3"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 2);
    let (_, body) = s.call("GET", "secret/data/p", None).await;
    assert_eq!(body["data"]["data"], json!({"a": "1", "c": "3"}));
    let (status, _) = s
        .call(
            "PATCH",
            "secret/data/absent",
            Some(json!({"data": {"x": "1"}})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn delete_undelete_destroy() {
    let s = dev().await;
    s.call("POST", "secret/data/d", Some(json!({"data": {"v": "1"}})))
        .await;
    s.call("POST", "secret/data/d", Some(json!({"data": {"v": "2"}})))
        .await;
    let (status, _) = s.call("DELETE", "secret/data/d", None).await;
    assert_eq!(status, 204);
    let (status, body) = s.call("GET", "secret/data/d", None).await;
    assert_eq!(status, 404);
    assert!(
        body["data"]["metadata"]["deletion_time"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );
    let (status, _) = s
        .call("POST", "secret/undelete/d", Some(json!({"versions": [2]})))
        .await;
    assert_eq!(status, 204);
    let (_, body) = s.call("GET", "secret/data/d", None).await;
    assert_eq!(body["data"]["data"]["v"], "2");
    let (status, _) = s
        .call("POST", "secret/destroy/d", Some(json!({"versions": [1]})))
        .await;
    assert_eq!(status, 204);
    let (status, body) = s.call("GET", "secret/data/d?version=1", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["data"]["metadata"]["destroyed"], true);
    let (status, _) = s
        .call("POST", "secret/undelete/d", Some(json!({"versions": [1]})))
        .await;
    assert_eq!(status, 204);
    let (status, _) = s.call("GET", "secret/data/d?version=1", None).await;
    assert_eq!(status, 404, "a destroyed version stays destroyed");
    let (status, body) = s
        .call("POST", "secret/delete/d", Some(json!({"versions": "x"})))
        .await;
    assert_eq!(status, 400);
    assert_errors(&body);
    let (status, _) = s.call("DELETE", "secret/metadata/d", None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call("GET", "secret/metadata/d", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn max_versions_prunes_old_versions() {
    let s = dev().await;
    for i in 0..12 {
        s.call(
            "POST",
            "secret/data/m",
            Some(json!({"data": {"i": i.to_string()}})),
        )
        .await;
    }
    let (_, body) = s.call("GET", "secret/metadata/m", None).await;
    assert_eq!(body["data"]["current_version"], 12);
    assert_eq!(body["data"]["oldest_version"], 3);
    assert_eq!(body["data"]["versions"].as_object().unwrap().len(), 10);
    let (status, _) = s.call("GET", "secret/data/m?version=2", None).await;
    assert_eq!(status, 404);
    s.call(
        "POST",
        "secret/metadata/m",
        Some(json!({"max_versions": 2})),
    )
    .await;
    s.call("POST", "secret/data/m", Some(json!({"data": {"i": "13"}})))
        .await;
    let (_, body) = s.call("GET", "secret/metadata/m", None).await;
    assert_eq!(body["data"]["versions"].as_object().unwrap().len(), 2);
    assert_eq!(body["data"]["oldest_version"], 12);
}

#[tokio::test]
async fn custom_metadata_and_config() {
    let s = dev().await;
    let (status, _) = s
        .call(
            "POST",
            "secret/metadata/cm",
            Some(json!({"custom_metadata": {"owner": "team-a"}, "delete_version_after": "1h"})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, body) = s.call("GET", "secret/metadata/cm", None).await;
    assert_eq!(body["data"]["custom_metadata"]["owner"], "team-a");
    assert_eq!(body["data"]["delete_version_after"], "1h0m0s");
    let (status, _) = s
        .call("POST", "secret/config", Some(json!({"max_versions": 5})))
        .await;
    assert_eq!(status, 204);
    let (_, body) = s.call("GET", "secret/config", None).await;
    assert_eq!(body["data"]["max_versions"], 5);
    let (status, body) = s
        .call(
            "POST",
            "secret/metadata/cm",
            Some(json!({"custom_metadata": {"n": 1}})),
        )
        .await;
    assert_eq!(status, 400);
    assert_errors(&body);
}

/// A metadata PATCH merges `custom_metadata` (JSON merge patch: `null` removes a key), as
/// OpenBao does; patching metadata that is not there is 404; a non-string value is a 400
/// (OpenBao answers 500).
#[tokio::test]
async fn metadata_patch_merges_custom_metadata() {
    let s = dev().await;
    let body = json!({"custom_metadata": {"owner": "ops", "tier": "1"}, "max_versions": 3});
    let (status, _) = s.call("POST", "secret/metadata/mp", Some(body)).await;
    assert_eq!(status, 204);
    let patch = json!({"custom_metadata": {"team": "blue", "tier": null}});
    let (status, _) = s.call("PATCH", "secret/metadata/mp", Some(patch)).await;
    assert_eq!(status, 204);
    let (_, body) = s.call("GET", "secret/metadata/mp", None).await;
    assert_eq!(
        body["data"]["custom_metadata"],
        json!({"owner": "ops", "team": "blue"})
    );
    assert_eq!(body["data"]["max_versions"], 3);
    let patch = json!({"custom_metadata": {"owner": 5}});
    let (status, body) = s.call("PATCH", "secret/metadata/mp", Some(patch)).await;
    assert_eq!(status, 400);
    assert_errors(&body);
    let patch = json!({"custom_metadata": {"a": "b"}});
    let (status, _) = s.call("PATCH", "secret/metadata/absent", Some(patch)).await;
    assert_eq!(status, 404);
    let (_, body) = s.call("GET", "secret/metadata/mp", None).await;
    assert_eq!(body["data"]["custom_metadata"]["owner"], "ops");
}

/// OpenBao's metadata check-and-set: `current_metadata_version` counts metadata writes, and
/// once `metadata_cas_required` is set every metadata write must name that count.
#[tokio::test]
async fn metadata_check_and_set() {
    let s = dev().await;
    let write = |body: serde_json::Value| s.call("POST", "secret/metadata/mc", Some(body));
    assert_eq!(write(json!({"max_versions": 4})).await.0, 204);
    let (_, body) = s.call("GET", "secret/metadata/mc", None).await;
    assert_eq!(body["data"]["current_metadata_version"], 1);
    assert_eq!(body["data"]["metadata_cas_required"], false);
    assert_eq!(write(json!({"metadata_cas_required": true})).await.0, 204);
    let (status, body) = write(json!({"max_versions": 5})).await;
    assert_eq!(status, 400);
    assert!(
        body.to_string()
            .contains("metadata check-and-set parameter required")
    );
    let (status, body) = write(json!({"max_versions": 5, "metadata_cas": 1})).await;
    assert_eq!(status, 400);
    assert!(
        body.to_string()
            .contains("does not match the current version")
    );
    assert_eq!(
        write(json!({"max_versions": 5, "metadata_cas": 2})).await.0,
        204
    );
    let (_, body) = s.call("GET", "secret/metadata/mc", None).await;
    assert_eq!(body["data"]["current_metadata_version"], 3);
    assert_eq!(body["data"]["max_versions"], 5);
    // A data write leaves the metadata's count alone.
    let data = json!({"data": {"a": "b"}});
    assert_eq!(s.call("POST", "secret/data/mc", Some(data)).await.0, 200);
    let (_, body) = s.call("GET", "secret/metadata/mc", None).await;
    assert_eq!(body["data"]["current_metadata_version"], 3);
}
