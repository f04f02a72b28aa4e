//! Bodies captured from a real OpenBao 2.7.2 server (`curl` against `bao server -dev` and an
//! initialised in-memory server) parse into Ward's types, and Ward's serialisation keeps the
//! fields Vault clients rely on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_api::*;

const KV_READ: &str = r#"{"request_id":"44bb3983-83bc-e7c7-9f88-17d177811955","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":{"a":"1"},"metadata":{"created_time":"2026-11-23T09:12:22.073408217Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":1}},"wrap_info":null,"warnings":null,"auth":null}"#;
const KV_METADATA: &str = r#"{"request_id":"7401f5c6","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,"created_time":"2026-11-23T09:12:22.073408217Z","current_metadata_version":0,"current_version":1,"custom_metadata":null,"delete_version_after":"0s","max_versions":0,"metadata_cas_required":false,"oldest_version":0,"updated_time":"2026-11-23T09:12:22.073408217Z","versions":{"1":{"created_time":"2026-11-23T09:12:22.073408217Z","deletion_time":"","destroyed":false},"10":{"created_time":"t","deletion_time":"","destroyed":true},"2":{"created_time":"t","deletion_time":"","destroyed":false}}},"wrap_info":null,"warnings":null,"auth":null}"#;
const TOKEN_CREATE: &str = r#"{"request_id":"9ac44509","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,"warnings":null,"auth":{"client_token":"s.emvRtQRAVb1NpRw2LkdhfcvU","accessor":"hN37wu02FOzA66RgoB91POJD","policies":["default"],"token_policies":["default"],"metadata":null,"lease_duration":3600,"renewable":true,"entity_id":"","token_type":"service","orphan":false,"mfa_requirement":null,"num_uses":0}}"#;
const TOKEN_LOOKUP: &str = r#"{"request_id":"74f663f0","lease_id":"","renewable":false,"lease_duration":0,"data":{"accessor":"YcSUzb5g3AkpgYXZ20XXZBy9","creation_time":1795425181,"creation_ttl":3600,"display_name":"token","entity_id":"","expire_time":"2026-11-23T10:13:01.498732457Z","explicit_max_ttl":0,"id":"s.CXBbcmynj0FSJHbdw12vfAdb","issue_time":"2026-11-23T09:13:01.498740168Z","meta":{"x":"y"},"num_uses":0,"orphan":false,"path":"auth/token/create","policies":["default"],"renewable":true,"ttl":3599,"type":"service"},"wrap_info":null,"warnings":null,"auth":null}"#;
const SEAL_STATUS_UNSEALED: &str = r#"{"type":"shamir","initialized":true,"sealed":false,"t":1,"n":1,"progress":0,"nonce":"","recovery_seal":false,"version":"2.7.2","commit_date":"2026-10-26T20:32:27Z","migration":false,"cluster_name":"vault-cluster-59c6ee48","cluster_id":"885e5e4b-0121-378e-1f61-9b4906fa3b46","storage_type":"inmem"}"#;
const UNSEAL_PROGRESS: &str = r#"{"type":"shamir","initialized":true,"sealed":true,"t":2,"n":3,"progress":1,"nonce":"2f7340a1-7c7b-fa88-1af3-883e4cc1e3d0","recovery_seal":false,"version":"2.7.2","commit_date":"2026-10-26T20:32:27Z","migration":false,"storage_type":"inmem"}"#;
const HEALTH_SEALED: &str = r#"{"initialized":true,"sealed":true,"standby":true,"replication_performance_mode":"unknown","replication_dr_mode":"unknown","server_time_utc":1795425349,"version":"2.7.2"}"#;
const INIT: &str = r#"{"keys":["985135f1c5","91f5d5088e","2bccb36617"],"keys_base64":["mFE18cUW","kfXVCI5W","K8yzZheo"],"root_token":"s.BASy6MdmuVocaHGAz9pmhVDx"}"#;
const KEY_STATUS: &str = r#"{"term":1,"install_time":"2026-11-23T09:12:12.586089282Z","encryptions":30,"request_id":"f43584f8","lease_id":"","renewable":false,"lease_duration":0,"data":{"encryptions":30,"install_time":"2026-11-23T09:12:12.586089282Z","term":1},"wrap_info":null,"warnings":null,"auth":null}"#;
const MOUNT: &str = r#"{"accessor":"kv_f3421866","config":{"default_lease_ttl":0,"force_no_cache":false,"max_lease_ttl":0},"deprecation_status":"supported","description":"key/value secret storage","external_entropy_access":false,"local":false,"options":{"version":"2"},"plugin_version":"","running_plugin_version":"v2.7.2+builtin.bao","running_sha256":"","seal_wrap":false,"type":"kv","uuid":"066e227c-b0ba-ed12-dd64-aff593a785dc"}"#;

#[test]
fn kv_read_parses_data_and_version_metadata() {
    let response: Response<KvReadData> = serde_json::from_str(KV_READ).unwrap();
    let read = response.data.unwrap();
    assert_eq!(read.data.unwrap()["a"], "1");
    assert_eq!(read.metadata.version, 1);
    assert!(!read.metadata.destroyed);
    assert_eq!(read.metadata.custom_metadata, None);
}

#[test]
fn kv_metadata_versions_sort_numerically() {
    let response: Response<KvMetadata> = serde_json::from_str(KV_METADATA).unwrap();
    let metadata = response.data.unwrap();
    assert_eq!(metadata.current_version, 1);
    assert_eq!(metadata.delete_version_after, "0s");
    let order: Vec<u64> = metadata.versions.keys().copied().collect();
    assert_eq!(order, vec![1, 2, 10]);
    assert!(metadata.versions[&10].destroyed);
    // Serialised back, version keys are JSON strings as Vault sends them.
    let json = serde_json::to_value(&metadata).unwrap();
    assert!(json["versions"]["10"]["destroyed"].as_bool().unwrap());
}

#[test]
fn token_create_auth_block_parses_and_debug_hides_the_token() {
    let response: Response = serde_json::from_str(TOKEN_CREATE).unwrap();
    let auth = response.auth.unwrap();
    assert_eq!(auth.client_token, "s.emvRtQRAVb1NpRw2LkdhfcvU");
    assert_eq!(auth.lease_duration, 3600);
    assert_eq!(auth.token_type, "service");
    let debug = format!("{auth:?}");
    assert!(!debug.contains("emvRtQ"), "{debug}");
    assert!(debug.contains("hN37wu02"), "{debug}");
}

#[test]
fn token_lookup_parses_and_debug_hides_the_id() {
    let response: Response<TokenLookup> = serde_json::from_str(TOKEN_LOOKUP).unwrap();
    let lookup = response.data.unwrap();
    assert_eq!(lookup.ttl, 3599);
    assert_eq!(lookup.meta.as_ref().unwrap()["x"], "y");
    assert_eq!(
        lookup.expire_time.as_deref(),
        Some("2026-11-23T10:13:01.498732457Z")
    );
    assert!(!format!("{lookup:?}").contains("CXBbcmyn"));
}

#[test]
fn seal_status_parses_openbao_shapes() {
    let unsealed: SealStatus = serde_json::from_str(SEAL_STATUS_UNSEALED).unwrap();
    assert!(!unsealed.sealed);
    assert_eq!(unsealed.seal_type, "shamir");
    assert_eq!(
        unsealed.cluster_name.as_deref(),
        Some("vault-cluster-59c6ee48")
    );
    let progress: SealStatus = serde_json::from_str(UNSEAL_PROGRESS).unwrap();
    assert_eq!((progress.t, progress.n, progress.progress), (2, 3, 1));
    assert_eq!(progress.cluster_id, None);
    // Ward's serialisation names the type field "type" and includes build_date like Vault.
    let json = serde_json::to_value(&progress).unwrap();
    assert_eq!(json["type"], "shamir");
    assert!(json.get("build_date").is_some());
    assert!(json.get("cluster_name").is_none());
}

#[test]
fn health_parses_without_performance_standby_but_always_serialises_it() {
    let health: HealthResponse = serde_json::from_str(HEALTH_SEALED).unwrap();
    assert!(health.sealed && health.standby);
    let json = serde_json::to_value(&health).unwrap();
    for field in [
        "initialized",
        "sealed",
        "standby",
        "performance_standby",
        "replication_performance_mode",
        "replication_dr_mode",
        "server_time_utc",
        "version",
    ] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
}

#[test]
fn init_response_parses_and_debug_hides_keys_and_token() {
    let init: InitResponse = serde_json::from_str(INIT).unwrap();
    assert_eq!(init.keys.len(), 3);
    assert_eq!(init.keys_base64[1], "kfXVCI5W");
    let debug = format!("{init:?}");
    for secret in ["985135", "mFE18", "BASy6"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    let json = serde_json::to_value(&init).unwrap();
    assert!(json.get("recovery_keys").is_none());
}

#[test]
fn init_and_unseal_requests_have_vault_field_names() {
    let request = InitRequest {
        secret_shares: 5,
        secret_threshold: 3,
        ..InitRequest::default()
    };
    assert_eq!(
        serde_json::to_string(&request).unwrap(),
        r#"{"secret_shares":5,"secret_threshold":3}"#
    );
    let unseal = UnsealRequest {
        key: Some("abcdef".into()),
        ..UnsealRequest::default()
    };
    assert_eq!(
        serde_json::to_string(&unseal).unwrap(),
        r#"{"key":"abcdef"}"#
    );
    assert!(!format!("{unseal:?}").contains("abcdef"));
    let reset: UnsealRequest = serde_json::from_str(r#"{"reset":true}"#).unwrap();
    assert!(reset.reset && reset.key.is_none());
}

#[test]
fn key_status_reads_from_top_level_or_data() {
    let top: KeyStatus = serde_json::from_str(KEY_STATUS).unwrap();
    let enveloped: Response<KeyStatus> = serde_json::from_str(KEY_STATUS).unwrap();
    assert_eq!(top.term, 1);
    assert_eq!(enveloped.data.unwrap(), top);
}

#[test]
fn mount_info_and_enable_request_accept_numeric_options() {
    let mount: MountInfo = serde_json::from_str(MOUNT).unwrap();
    assert_eq!(mount.engine_type, "kv");
    assert_eq!(mount.options.unwrap()["version"], "2");
    let enable: MountEnableRequest =
        serde_json::from_str(r#"{"type":"kv","options":{"version":2}}"#).unwrap();
    assert_eq!(enable.options.unwrap()["version"], "2");
    let minimal = MountEnableRequest {
        engine_type: "transit".into(),
        ..MountEnableRequest::default()
    };
    assert_eq!(
        serde_json::to_string(&minimal).unwrap(),
        r#"{"type":"transit"}"#
    );
}

#[test]
fn envelope_serialises_nulls_like_vault() {
    let response = Response::with_data(serde_json::json!({"k": "v"}));
    let json = serde_json::to_value(&response).unwrap();
    for field in ["wrap_info", "warnings", "auth"] {
        assert!(json[field].is_null(), "{field} should be null");
        assert!(json.get(field).is_some(), "{field} should be present");
    }
    assert!(json.get("mount_type").is_none());
    let errors: ErrorResponse = serde_json::from_str(r#"{"errors":[]}"#).unwrap();
    assert!(errors.errors.is_empty());
}

#[test]
fn kv_write_request_debug_hides_values() {
    let request: KvWriteRequest =
        serde_json::from_str(r#"{"data":{"password":"hunter2"},"options":{"cas":0}}"#).unwrap();
    assert_eq!(request.options.unwrap().cas, Some(0));
    let debug = format!("{request:?}");
    assert!(
        debug.contains("password") && !debug.contains("hunter2"),
        "{debug}"
    );
}

#[test]
fn policy_accepts_legacy_rules_field() {
    let legacy: AclPolicy =
        serde_json::from_str(r#"{"name":"p","rules":"path \"x\" {}"}"#).unwrap();
    assert_eq!(legacy.policy, "path \"x\" {}");
}
