//! Vault's flag spelling: Go's flag package takes long flags with one dash (`-format=json`,
//! `-key-shares 5`). clap wants two, so single-dash long flags are rewritten before parsing.

use std::ffi::OsString;

/// Rewrites `-long-flag[=value]` to `--long-flag[=value]` in `args` (program name first).
///
/// Left alone: the program name, `--`-prefixed flags, one-letter short flags (`-h`), a lone
/// `-` (stdin), values that start with a digit or `.` (negative numbers), everything after a
/// `--` separator, and arguments that are not UTF-8.
pub(crate) fn normalise_flags<I>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = OsString>,
{
    let mut rewritten = Vec::new();
    let mut after_separator = false;
    for (index, arg) in args.into_iter().enumerate() {
        if index == 0 || after_separator {
            rewritten.push(arg);
            continue;
        }
        match arg.to_str() {
            Some("--") => {
                after_separator = true;
                rewritten.push(arg);
            }
            Some(text) if is_single_dash_long_flag(text) => {
                rewritten.push(OsString::from(format!("-{text}")));
            }
            _ => rewritten.push(arg),
        }
    }
    rewritten
}

/// `-name...` where name starts with a letter and is longer than one character before any `=`.
fn is_single_dash_long_flag(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('-') else {
        return false;
    };
    if rest.starts_with('-') {
        return false;
    }
    let name = rest.split_once('=').map_or(rest, |(name, _)| name);
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() > 1
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(args: &[&str]) -> Vec<String> {
        normalise_flags(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_get_a_second_dash() {
        assert_eq!(
            rewrite(&[
                "ward",
                "operator",
                "init",
                "-key-shares",
                "5",
                "-format=json"
            ]),
            [
                "ward",
                "operator",
                "init",
                "--key-shares",
                "5",
                "--format=json"
            ]
        );
        assert_eq!(
            rewrite(&["ward", "secrets", "enable", "-path=kv2", "-version=2", "kv"]),
            [
                "ward",
                "secrets",
                "enable",
                "--path=kv2",
                "--version=2",
                "kv"
            ]
        );
    }

    #[test]
    fn leaves_short_flags_values_and_separator_alone() {
        assert_eq!(
            rewrite(&[
                "ward", "-h", "kv", "put", "secret/a", "-", "--cas", "-1", "-5s"
            ]),
            [
                "ward", "-h", "kv", "put", "secret/a", "-", "--cas", "-1", "-5s"
            ]
        );
        assert_eq!(
            rewrite(&["ward", "scan", "--", "-not-a-flag"]),
            ["ward", "scan", "--", "-not-a-flag"]
        );
        assert_eq!(rewrite(&["-program-name"]), ["-program-name"]);
        // A value with spaces (`--log-opts "-n 5"`) is not a flag.
        assert_eq!(
            rewrite(&["ward", "scan", "--log-opts", "-n 5"]),
            ["ward", "scan", "--log-opts", "-n 5"]
        );
    }
}
