//! What reaches the disk: after secrets are written, neither the SQLite database nor its
//! write-ahead log, nor a `pg_dump` of the PostgreSQL tables, contains a secret value, a path
//! segment or the root token, in any encoding we can think of.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use serde_json::json;

fn encodings(s: &str) -> Vec<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = vec![
        b.to_vec(),
        hex::encode(b).into_bytes(),
        hex::encode_upper(b).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(b)
            .into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(b)
            .into_bytes(),
    ];
    // UTF-16LE, and base64 of every alignment: a marker inside a longer base64 string
    // shows up as the base64 of the marker shifted by 0, 1 or 2 bytes (minus the edges).
    out.push(b.iter().flat_map(|c| [*c, 0]).collect());
    for pad in 1..3 {
        let mut shifted = vec![b'x'; pad];
        shifted.extend_from_slice(b);
        let enc = base64::engine::general_purpose::STANDARD.encode(&shifted);
        let skip = (pad * 4).div_ceil(3) + 1;
        out.push(enc.as_bytes()[skip..enc.len() - 4].to_vec());
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() >= 6 && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Writes a secret, metadata, a token and a policy, each with a name or value found nowhere
/// else; returns those needles.
async fn write_needles(s: &support::TestServer) -> Vec<String> {
    let marker = "MARKER-9f3a7c41-unique-secret-value";
    let segment = "zebrafinch-ledger-7731";
    let (status, _) = s
        .call(
            "POST",
            &format!("secret/data/apps/{segment}"),
            Some(json!({"data": {"password": marker}})),
        )
        .await;
    assert_eq!(status, 200);
    s.call(
        "POST",
        &format!("secret/metadata/apps/{segment}"),
        Some(json!({"custom_metadata": {"owner": "team-x"}})),
    )
    .await;
    let (_, body) = s
        .call(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["default"]})),
        )
        .await;
    let child_token = body["auth"]["client_token"].as_str().unwrap().to_owned();
    s.call(
        "PUT",
        "sys/policies/acl/quokka-policy",
        Some(json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    // Reading back proves the data is there, just not in clear.
    let (_, body) = s
        .call("GET", &format!("secret/data/apps/{segment}"), None)
        .await;
    assert_eq!(body["data"]["data"]["password"], marker);
    [
        marker,
        segment,
        s.root_token.as_str(),
        child_token.as_str(),
        "team-x",
        "quokka-policy",
        "apps",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn assert_no_needle(needles: &[String], files: &[(String, Vec<u8>)]) {
    for needle in needles {
        for (enc_index, enc) in encodings(needle).iter().enumerate() {
            for (path, bytes) in files {
                assert!(
                    !contains(bytes, enc),
                    "{path} contains {needle:?} (encoding #{enc_index})"
                );
            }
        }
    }
}

#[tokio::test]
async fn database_files_hold_no_plaintext() {
    let s = support::dev().await;
    let needles = write_needles(&s).await;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    assert!(
        files.iter().any(|(p, _)| p.ends_with("ward.db-wal")),
        "WAL mode must be on: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(
        files.iter().map(|(_, b)| b.len()).sum::<usize>() > 4096,
        "the files hold data"
    );
    assert_no_needle(&needles, &files);
}

#[tokio::test]
async fn a_postgres_dump_holds_no_plaintext() {
    let (storage, table) = support::postgres_storage().await;
    let s = support::dev_over(storage, tempfile::tempdir().unwrap()).await;
    let needles = write_needles(&s).await;
    let dump = ward_test_postgres::shared().dump("postgres");
    let rows = String::from_utf8_lossy(&dump)
        .matches(&format!("INSERT INTO public.{table}_entries"))
        .count();
    assert!(rows > 10, "the dump holds Ward's entries ({rows} rows)");
    assert_no_needle(&needles, &[("pg_dump".to_owned(), dump)]);
}

/// The detector above must be able to fail: it finds the marker inside longer plaintext,
/// base64 at every alignment, and hex.
#[test]
fn detector_finds_embedded_encodings() {
    let marker = "MARKER-9f3a7c41-unique-secret-value";
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    for prefix in ["", "a", "ab", "abc"] {
        let doc = format!("{prefix}{{\"password\":\"{marker}\"}}");
        for blob in [doc.clone(), b64(&doc), hex::encode(&doc)] {
            assert!(
                encodings(marker)
                    .iter()
                    .any(|e| contains(blob.as_bytes(), e)),
                "missed the marker in {blob}"
            );
        }
    }
}
