//! The data arguments of `kv put` and `kv patch`, as Vault's CLI reads them:
//! `key=value`, `key=@file`, `key=-` (stdin), or one `-` / `@file.json` holding a JSON object.

use serde_json::{Map, Value};

use crate::cmd::{read_file, read_stdin};
use crate::error::CliError;

/// Parses the data arguments into the JSON object to write.
pub(crate) fn parse_data(args: &[String]) -> Result<Map<String, Value>, CliError> {
    if let [single] = args {
        if single == "-" {
            return json_object(&read_stdin("secret data")?, "stdin");
        }
        if let Some(file) = single.strip_prefix('@') {
            return json_object(&read_file(file, "secret data")?, file);
        }
    }
    if args.is_empty() {
        return Err(CliError::Usage(
            "Must supply data: key=value pairs, @file.json, or - for JSON on stdin".into(),
        ));
    }
    let mut data = Map::new();
    let mut stdin_used = false;
    for arg in args {
        let Some((key, raw)) = arg.split_once('=') else {
            // The argument is not shown: it might be a secret typed without a key.
            return Err(CliError::Usage(
                "Invalid key/value pair: expected key=value, key=@file or key=-".into(),
            ));
        };
        if key.is_empty() {
            return Err(CliError::Usage("Invalid key/value pair: empty key".into()));
        }
        let value = if raw == "-" {
            if stdin_used {
                return Err(CliError::Usage(
                    "Only one value can be read from stdin (key=-)".into(),
                ));
            }
            stdin_used = true;
            read_stdin(&format!("the value of {key}"))?
        } else if let Some(file) = raw.strip_prefix('@') {
            read_file(file, &format!("the value of {key}"))?
        } else {
            raw.to_owned()
        };
        data.insert(key.to_owned(), Value::String(value));
    }
    Ok(data)
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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_pairs_are_usage_errors_that_hide_the_argument() {
        let error = parse_data(&args(&["hunter2"])).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(!error.to_string().contains("hunter2"));
        assert!(parse_data(&args(&["=v"])).is_err());
        assert!(parse_data(&[]).is_err());
    }
}
