//! The data arguments of `write`, `kv put` and `kv patch`, as Vault's CLI reads them
//! (its `parseArgsData`): `key=value`, `key=@file` (the file's contents), `key=-` (all of
//! stdin), `key=\@x` (a literal `@x`), and a lone `-` or `@file.json` whose JSON object is
//! merged in. A key given twice becomes a list, as in Vault.

use serde_json::{Map, Value};

use crate::cmd::{read_file, read_stdin};
use crate::error::CliError;

/// Parses the data arguments into the JSON object to write; at least one is required.
pub(crate) fn parse_data(args: &[String]) -> Result<Map<String, Value>, CliError> {
    if args.is_empty() {
        return Err(CliError::Usage(
            "Must supply data: key=value pairs, @file.json, or - for JSON on stdin".into(),
        ));
    }
    parse_args_data(args)
}

/// Parses the data arguments (none gives an empty object). Errors never echo an argument:
/// it might be a secret typed without its key.
pub(crate) fn parse_args_data(args: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut data = Map::new();
    let mut stdin_used = false;
    for arg in args {
        if arg.is_empty() {
            continue;
        }
        let Some((key, raw)) = arg.split_once('=') else {
            if arg == "-" {
                take_stdin(&mut stdin_used)?;
                data.extend(json_object(&read_stdin("JSON data")?, "stdin")?);
                continue;
            }
            if let Some(file) = arg.strip_prefix('@') {
                data.extend(json_object(&read_file(file, "JSON data")?, file)?);
                continue;
            }
            return Err(CliError::Usage(
                "Invalid key/value pair: expected key=value, key=@file or key=-".into(),
            ));
        };
        if key.is_empty() {
            return Err(CliError::Usage("Invalid key/value pair: empty key".into()));
        }
        let value = if raw == "-" {
            take_stdin(&mut stdin_used)?;
            read_stdin(&format!("the value of {key}"))?
        } else if let Some(file) = raw.strip_prefix('@') {
            read_file(file, &format!("the value of {key}"))?
        } else if let Some(literal) = raw.strip_prefix('\\').filter(|r| r.starts_with('@')) {
            literal.to_owned()
        } else {
            raw.to_owned()
        };
        insert(&mut data, key, Value::String(value));
    }
    Ok(data)
}

/// Stdin can be read once.
fn take_stdin(used: &mut bool) -> Result<(), CliError> {
    if std::mem::replace(used, true) {
        return Err(CliError::Usage(
            "Only one argument can read stdin (- or key=-)".into(),
        ));
    }
    Ok(())
}

/// Adds `key`; a repeated key turns into a list of its values, as Vault's CLI does.
fn insert(data: &mut Map<String, Value>, key: &str, value: Value) {
    match data.get_mut(key) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            data.insert(key.to_owned(), value);
        }
    }
}

/// Parses a JSON object (the whole secret). Errors never echo the input.
fn json_object(text: &str, source: &str) -> Result<Map<String, Value>, CliError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CliError::Usage(format!(
            "The data in {source} must be a JSON object"
        ))),
        Err(e) => Err(CliError::Usage(format!(
            "Invalid JSON in {source} (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn key_value_pairs_become_strings() {
        let data = parse_data(&args(&["user=admin", "pass=a=b", "empty="])).unwrap();
        assert_eq!(data["user"], "admin");
        assert_eq!(data["pass"], "a=b");
        assert_eq!(data["empty"], "");
    }

    #[test]
    fn repeated_keys_become_lists_and_at_signs_can_be_escaped() {
        let data = parse_args_data(&args(&["y=1", "y=2", "y=3", r"at=\@home"])).unwrap();
        assert_eq!(data["y"], serde_json::json!(["1", "2", "3"]));
        assert_eq!(data["at"], "@home");
        assert!(parse_args_data(&[]).unwrap().is_empty());
    }

    #[test]
    fn values_can_come_from_files() {
        let dir = std::env::temp_dir().join(format!("ward-cli-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let value_file = dir.join("cert.pem");
        std::fs::write(&value_file, "-----BEGIN X-----\n").unwrap();
        let json_file = dir.join("secret.json");
        std::fs::write(&json_file, r#"{"n": 5, "s": "x"}"#).unwrap();
        let data = parse_data(&[format!("cert=@{}", value_file.display())]).unwrap();
        assert_eq!(data["cert"], "-----BEGIN X-----\n");
        let data = parse_data(&[format!("@{}", json_file.display())]).unwrap();
        assert_eq!(data["n"], 5);
        // A JSON file merges with pairs around it (a key in both becomes a list, as in Vault).
        let data = parse_data(&[format!("@{}", json_file.display()), "s=y".into()]).unwrap();
        assert_eq!(data["n"], 5);
        assert_eq!(data["s"], serde_json::json!(["x", "y"]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_pairs_are_usage_errors_that_hide_the_argument() {
        let error = parse_data(&args(&["hunter2"])).unwrap_err();
        assert_eq!(error.exit_code(), 1);
        assert!(!error.to_string().contains("hunter2"));
        assert!(parse_data(&args(&["=v"])).is_err());
        assert!(parse_data(&[]).is_err());
    }
}
