//! Rendering KV replies as Vault's CLI does.

use std::io::IsTerminal;

use serde_json::Value;

use crate::output::{display_value, key_value_table, object_rows, path_block, titled_table};

/// Key/Value rows of a version's metadata (an empty deletion time shows as `n/a`).
pub(crate) fn metadata_rows(metadata: &Value) -> Vec<(String, String)> {
    object_rows(metadata, &[])
}

/// `= Secret Path =` block plus the version metadata table: what `kv put` prints.
pub(crate) fn written(api_path: &str, metadata: &Value) -> String {
    format!(
        "{}{}",
        path_block("Secret Path", api_path),
        titled_table("Metadata", &metadata_rows(metadata))
    )
}

/// What `kv get` prints for a KV v2 read: path, metadata, and the data when there is any.
pub(crate) fn read_v2(api_path: &str, read: &Value) -> String {
    let mut out = path_block("Secret Path", api_path);
    if let Some(metadata) = read.get("metadata").filter(|m| m.is_object()) {
        out.push_str(&titled_table("Metadata", &metadata_rows(metadata)));
    }
    out.push('\n');
    if let Some(data) = read.get("data").filter(|d| d.is_object()) {
        out.push_str(&titled_table("Data", &object_rows(data, &[])));
    }
    out
}

/// What `kv get` prints for a KV v1 read: the data table.
pub(crate) fn read_v1(data: &Value) -> String {
    key_value_table(&object_rows(data, &[]))
}

/// What `kv metadata get` prints: path, metadata (without the versions), one table per version.
pub(crate) fn metadata(api_path: &str, metadata: &Value) -> String {
    let mut out = path_block("Metadata Path", api_path);
    let mut fields = metadata.clone();
    let versions = fields
        .as_object_mut()
        .and_then(|map| map.remove("versions"))
        .unwrap_or(Value::Null);
    out.push_str(&titled_table("Metadata", &object_rows(&fields, &[])));
    if let Value::Object(versions) = versions {
        let mut numbered: Vec<(u64, &Value)> = versions
            .iter()
            .filter_map(|(k, v)| k.parse().ok().map(|n| (n, v)))
            .collect();
        numbered.sort_by_key(|(n, _)| *n);
        for (number, version) in numbered {
            out.push('\n');
            out.push_str(&titled_table(
                &format!("Version {number}"),
                &metadata_rows(version),
            ));
        }
    }
    out
}

/// A single field's value for `-field`: strings raw, other values as JSON. As Vault does, no
/// newline is added when stdout is not a terminal, so `$(ward kv get -field=...)` is exact.
pub(crate) fn raw_field(value: &Value) -> String {
    let mut text = match value {
        Value::String(s) => s.clone(),
        Value::Null => display_value(value),
        other => other.to_string(),
    };
    if std::io::stdout().is_terminal() {
        text.push('\n');
    }
    text
}
