//! Scanner configuration: the built-in rules, or a gitleaks-compatible TOML file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ScanError;
use crate::rule::{Allowlist, AllowlistCondition, RegexTarget, Rule};

/// Files larger than this are skipped unless the caller says otherwise (gitleaks has no limit;
/// generated bundles over 20 MB are rarely where people paste keys, and they dominate scan time).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 20 * 1024 * 1024;

/// What a [`crate::Scanner`] looks for and how it reads.
#[derive(Clone, Debug)]
pub struct Config {
    /// Detection rules.
    pub rules: Vec<Rule>,
    /// Global allowlists: a finding any of them matches is dropped.
    pub allowlists: Vec<Allowlist>,
    /// Files larger than this many bytes are skipped by [`crate::Scanner::scan_path`]; 0 means no limit.
    pub max_file_size: u64,
    /// Worker threads for directory and history scans; 0 means one per core.
    pub threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Config {
    /// Ward's built-in rule set and allowlist.
    pub fn builtin() -> Self {
        Self {
            rules: crate::rules::builtin_rules(),
            allowlists: vec![crate::rules::builtin_allowlist()],
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            threads: 0,
        }
    }

    /// Loads a gitleaks-compatible TOML file. As in gitleaks, a file replaces the built-in rules
    /// unless it says `[extend] useDefault = true` (or extends another file with `path`).
    pub fn load(path: &Path) -> Result<Self, ScanError> {
        load_with_depth(path, 0)
    }

    /// Parses gitleaks-compatible TOML text; `base_dir` resolves `[extend] path`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, ScanError> {
        from_toml_with_depth(text, base_dir, Path::new("<config>"), 0)
    }
}

/// How deep `[extend] path` chains may go (gitleaks stops at 2 as well).
const MAX_EXTEND_DEPTH: usize = 2;

fn load_with_depth(path: &Path, depth: usize) -> Result<Config, ScanError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScanError::Io {
        path: path.to_owned(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    from_toml_with_depth(&text, base, path, depth)
}

fn from_toml_with_depth(
    text: &str,
    base_dir: &Path,
    path: &Path,
    depth: usize,
) -> Result<Config, ScanError> {
    let file: TomlConfig = toml::from_str(text).map_err(|source| ScanError::ConfigSyntax {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    let mut config = match &file.extend {
        Some(extend) if depth < MAX_EXTEND_DEPTH => {
            let mut base = if let Some(other) = &extend.path {
                let other = PathBuf::from(other);
                let other = if other.is_absolute() {
                    other
                } else {
                    base_dir.join(other)
                };
                load_with_depth(&other, depth + 1)?
            } else if extend.use_default {
                Config::builtin()
            } else {
                empty()
            };
            base.rules
                .retain(|r| !extend.disabled_rules.contains(&r.id));
            base
        }
        _ => empty(),
    };
    for raw in file.rules {
        let rule = raw.into_rule()?;
        config.rules.retain(|r| r.id != rule.id);
        config.rules.push(rule);
    }
    config.allowlists.extend(
        file.allowlist
            .into_iter()
            .chain(file.allowlists)
            .map(TomlAllowlist::into_allowlist),
    );
    Ok(config)
}

fn empty() -> Config {
    Config {
        rules: Vec::new(),
        allowlists: Vec::new(),
        max_file_size: DEFAULT_MAX_FILE_SIZE,
        threads: 0,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TomlConfig {
    extend: Option<TomlExtend>,
    #[serde(default)]
    rules: Vec<TomlRule>,
    allowlist: Option<TomlAllowlist>,
    #[serde(default)]
    allowlists: Vec<TomlAllowlist>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TomlExtend {
    #[serde(default)]
    use_default: bool,
    path: Option<String>,
    #[serde(default)]
    disabled_rules: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TomlRule {
    id: String,
    #[serde(default)]
    description: String,
    regex: Option<String>,
    secret_group: Option<usize>,
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    path: Option<String>,
    allowlist: Option<TomlAllowlist>,
    #[serde(default)]
    allowlists: Vec<TomlAllowlist>,
}

impl TomlRule {
    fn into_rule(self) -> Result<Rule, ScanError> {
        if self.regex.is_none() && self.path.is_none() {
            return Err(ScanError::Config(format!(
                "rule {} needs a regex or a path",
                self.id
            )));
        }
        Ok(Rule {
            // Reports need a description; gitleaks leaves it optional.
            description: if self.description.is_empty() {
                self.id.clone()
            } else {
                self.description
            },
            id: self.id,
            regex: self.regex,
            // gitleaks writes secretGroup = 0 for "not set".
            secret_group: self.secret_group.filter(|&g| g > 0),
            entropy: self.entropy.filter(|&e| e > 0.0),
            keywords: self.keywords,
            path: self.path,
            allowlists: self
                .allowlist
                .into_iter()
                .chain(self.allowlists)
                .map(TomlAllowlist::into_allowlist)
                .collect(),
            validator: None,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TomlAllowlist {
    #[serde(default)]
    description: String,
    condition: Option<String>,
    #[serde(default)]
    commits: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    regex_target: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    target_rules: Vec<String>,
}

impl TomlAllowlist {
    fn into_allowlist(self) -> Allowlist {
        Allowlist {
            description: self.description,
            condition: match self
                .condition
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("AND") => AllowlistCondition::And,
                _ => AllowlistCondition::Or,
            },
            commits: self.commits,
            paths: self.paths,
            regexes: self.regexes,
            regex_target: match self.regex_target.as_deref() {
                Some("match") => RegexTarget::Match,
                Some("line") => RegexTarget::Line,
                _ => RegexTarget::Secret,
            },
            stopwords: self.stopwords,
            target_rules: self.target_rules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitleaks_style_file_replaces_builtins() {
        let text = r#"
title = "custom"
[[rules]]
id = "internal-token"
description = "Internal token"
regex = '''itk_([0-9a-f]{32})'''
secretGroup = 1
keywords = ["itk_"]
[rules.allowlist]
stopwords = ["deadbeef"]
[allowlist]
paths = ['''^vendor/''']
"#;
        let config = Config::from_toml(text, Path::new(".")).unwrap();
        assert_eq!(config.rules.len(), 1);
        assert_eq!(config.rules[0].secret_group, Some(1));
        assert_eq!(config.rules[0].allowlists[0].stopwords, vec!["deadbeef"]);
        assert_eq!(config.allowlists[0].paths, vec!["^vendor/"]);
    }

    #[test]
    fn extend_use_default_keeps_builtins_minus_disabled() {
        let text = r#"
[extend]
useDefault = true
disabledRules = ["github-pat"]
[[rules]]
id = "internal-token"
regex = '''itk_[0-9a-f]{32}'''
"#;
        let config = Config::from_toml(text, Path::new(".")).unwrap();
        let builtin = Config::builtin().rules.len();
        assert_eq!(config.rules.len(), builtin);
        assert!(!config.rules.iter().any(|r| r.id == "github-pat"));
        assert!(config.rules.iter().any(|r| r.id == "internal-token"));
    }

    #[test]
    fn rule_without_regex_or_path_is_an_error() {
        let text = "[[rules]]\nid = \"x\"\n";
        assert!(matches!(
            Config::from_toml(text, Path::new(".")),
            Err(ScanError::Config(_))
        ));
    }
}
