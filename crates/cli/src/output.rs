//! Vault-like output: Key/Value tables, `=== Section ===` headers, JSON, durations.

use serde::Serialize;
use serde_json::Value;

use crate::error::CliError;

/// Output format of a command (`-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Format {
    /// Human-readable tables.
    #[default]
    Table,
    /// The server's JSON, pretty-printed.
    Json,
}

/// Gap between table columns (Vault's columnize uses four spaces).
const COLUMN_GAP: usize = 4;

/// A table with a header row, a dashes row and `rows`, columns padded to align.
pub(crate) fn columns(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let dashes: Vec<String> = headers.iter().map(|h| "-".repeat(h.len())).collect();
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in [&header_row, &dashes].into_iter().chain(rows.iter()) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0) + COLUMN_GAP;
                line.push_str(&format!("{cell:<width$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A Key/Value table.
pub(crate) fn key_value_table(rows: &[(String, String)]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    columns(&["Key", "Value"], &rows)
}

/// `header` padded with `=` on both sides to about `total_len` bytes, exactly as Vault's
/// CLI does (at least two signs a side, always the same number on both).
pub(crate) fn pad_equal_signs(header: &str, total_len: usize) -> String {
    let mut signs = total_len.saturating_sub(header.len() + 2);
    if signs == 0 {
        signs = 4;
    }
    if !signs.is_multiple_of(2) {
        signs += 1;
    }
    let side = "=".repeat(signs / 2);
    format!("{side} {header} {side}")
}

/// The section header Vault puts over a Key/Value table of `keys`: as wide as the table's
/// header row (longest key, four spaces, `Value`).
pub(crate) fn table_header<'k>(header: &str, keys: impl IntoIterator<Item = &'k str>) -> String {
    let longest = keys.into_iter().map(str::len).max().unwrap_or(0);
    pad_equal_signs(header, longest + COLUMN_GAP + 5)
}

/// A titled Key/Value table: header line, then the table.
pub(crate) fn titled_table(title: &str, rows: &[(String, String)]) -> String {
    format!(
        "{}\n{}",
        table_header(title, rows.iter().map(|(k, _)| k.as_str())),
        key_value_table(rows)
    )
}

/// The `= Secret Path =` block: a header as wide as the path, the path, a blank line.
pub(crate) fn path_block(title: &str, path: &str) -> String {
    format!("{}\n{path}\n\n", pad_equal_signs(title, path.len()))
}

/// A JSON value as Vault's CLI shows it in a table cell (Go's `%v`): strings bare, `null` as
/// `<nil>`, lists as `[a b]`, maps as `map[k:v]`.
pub(crate) fn display_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(display_value).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", display_value(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Key/Value rows for every field of a JSON object, sorted by key (serde_json keeps maps
/// sorted). Fields named in `durations` holding seconds are shown as durations; empty
/// strings as `n/a`.
pub(crate) fn object_rows(value: &Value, durations: &[&str]) -> Vec<(String, String)> {
    let Value::Object(map) = value else {
        return Vec::new();
    };
    map.iter()
        .map(|(key, field)| {
            let shown = match field.as_u64() {
                Some(seconds) if durations.contains(&key.as_str()) => human_duration(seconds),
                // Vault shows empty strings as n/a so that a blank cell is never ambiguous.
                _ if field.as_str() == Some("") => "n/a".to_owned(),
                _ => display_value(field),
            };
            (key.clone(), shown)
        })
        .collect()
}

/// Seconds as Vault's CLI prints durations: Go's `Duration.String()` without trailing zero
/// units (`2764800` → `768h`, `5400` → `1h30m`, `90` → `1m30s`, `0` → `0s`).
pub(crate) fn human_duration(seconds: u64) -> String {
    let mut text = ward_api::format_duration(seconds);
    for zero_unit in ["m0s", "h0m"] {
        if text.ends_with(zero_unit) {
            text.truncate(text.len() - 2);
        }
    }
    text
}

/// Pretty JSON with a trailing newline, as `-format=json` prints.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|mut text| {
            text.push('\n');
            text
        })
        .map_err(|e| CliError::Failed(format!("Error encoding JSON output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_table_aligns_like_vault() {
        let table = key_value_table(&[
            ("version".into(), "1".into()),
            ("destroyed".into(), "false".into()),
        ]);
        assert_eq!(
            table,
            "Key          Value\n---          -----\nversion      1\ndestroyed    false\n"
        );
    }

    #[test]
    fn headers_are_padded_like_vaults() {
        assert_eq!(
            path_block("Secret Path", "secret/data/app"),
            "= Secret Path =\nsecret/data/app\n\n"
        );
        assert_eq!(
            path_block("Metadata Path", "secret/metadata/app"),
            "== Metadata Path ==\nsecret/metadata/app\n\n"
        );
        assert_eq!(table_header("Data", ["a", "b"]), "== Data ==");
        assert_eq!(
            table_header("Metadata", ["custom_metadata", "version"]),
            "======= Metadata ======="
        );
        assert_eq!(
            table_header("Metadata", ["current_metadata_version"]),
            "============ Metadata ============"
        );
        assert_eq!(
            table_header("Version 1", ["created_time", "deletion_time"]),
            "====== Version 1 ======"
        );
    }

    #[test]
    fn values_and_durations_render_like_go() {
        assert_eq!(display_value(&serde_json::json!(null)), "<nil>");
        assert_eq!(display_value(&serde_json::json!(["a", "b"])), "[a b]");
        assert_eq!(display_value(&serde_json::json!({"k": "v"})), "map[k:v]");
        assert_eq!(human_duration(2_764_800), "768h");
        assert_eq!(human_duration(5400), "1h30m");
        assert_eq!(human_duration(3601), "1h0m1s");
        assert_eq!(human_duration(90), "1m30s");
        assert_eq!(human_duration(0), "0s");
    }
}
