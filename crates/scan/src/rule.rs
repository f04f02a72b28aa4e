//! Rules and allowlists as written (in code or in TOML), and their compiled forms.

use regex::bytes::Regex;
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::error::ScanError;

/// A check run on a candidate secret after its regex matched, such as a token's checksum.
pub type Validator = fn(&str) -> bool;

/// One detection rule, as in a gitleaks `[[rules]]` table.
#[derive(Clone, Debug, Default)]
pub struct Rule {
    /// Stable identifier, such as `aws-access-token`.
    pub id: String,
    /// What the rule finds, for people.
    pub description: String,
    /// The pattern; `None` for a path-only rule (the file's name is the finding).
    pub regex: Option<String>,
    /// Which capture group holds the secret; `None` means the first non-empty group, or the whole match.
    pub secret_group: Option<usize>,
    /// Minimum Shannon entropy of the secret, in bits per character.
    pub entropy: Option<f64>,
    /// Case-insensitive words of which one must occur on the line for the regex to run.
    /// A rule without keywords runs on every line.
    pub keywords: Vec<String>,
    /// The rule only applies to files whose path matches this regex.
    pub path: Option<String>,
    /// Exceptions for this rule alone.
    pub allowlists: Vec<Allowlist>,
    /// A final check on the secret (for example a checksum); built-in rules only.
    pub validator: Option<Validator>,
}

/// How an allowlist's checks combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AllowlistCondition {
    /// Any one check suppresses the finding (gitleaks' default).
    #[default]
    Or,
    /// Every check that is present must agree.
    And,
}

/// What an allowlist's regexes are matched against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegexTarget {
    /// The secret alone (the default).
    #[default]
    Secret,
    /// The whole regex match.
    Match,
    /// The whole line that holds the match.
    Line,
}

/// Exceptions: a finding that an allowlist matches is dropped.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    /// Why these exceptions exist.
    pub description: String,
    /// How the checks combine.
    pub condition: AllowlistCondition,
    /// Commit ids whose findings are ignored.
    pub commits: Vec<String>,
    /// Regexes over the file path.
    pub paths: Vec<String>,
    /// Regexes over the secret, match or line (see `regex_target`).
    pub regexes: Vec<String>,
    /// What `regexes` are matched against.
    pub regex_target: RegexTarget,
    /// Words that, contained in the secret (case-insensitively), mark it as a placeholder.
    pub stopwords: Vec<String>,
    /// For a global allowlist: the rules it is limited to (empty: all rules).
    pub target_rules: Vec<String>,
}

/// A rule ready to run.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) regex: Option<Regex>,
    pub(crate) secret_group: Option<usize>,
    pub(crate) entropy: Option<f64>,
    pub(crate) keywords: Vec<String>,
    pub(crate) path: Option<Regex>,
    pub(crate) allowlists: Vec<CompiledAllowlist>,
    pub(crate) validator: Option<Validator>,
    /// True when no match can cross a line break, so the regex may run on single lines.
    pub(crate) line_local: bool,
}

/// An allowlist ready to run.
#[derive(Debug)]
pub(crate) struct CompiledAllowlist {
    pub(crate) condition: AllowlistCondition,
    pub(crate) commits: Vec<String>,
    pub(crate) paths: Vec<Regex>,
    pub(crate) regexes: Vec<Regex>,
    pub(crate) regex_target: RegexTarget,
    pub(crate) stopwords: Vec<String>,
    pub(crate) target_rules: Vec<String>,
}

/// What an allowlist looks at for one candidate finding.
pub(crate) struct Candidate<'a> {
    pub(crate) path: &'a str,
    pub(crate) commit: Option<&'a str>,
    pub(crate) secret: &'a str,
    pub(crate) matched: &'a [u8],
    pub(crate) line: &'a [u8],
}

fn compile_regex(owner: &str, pattern: &str) -> Result<Regex, ScanError> {
    regex::bytes::RegexBuilder::new(pattern)
        .size_limit(64 << 20)
        .build()
        .map_err(|source| ScanError::Regex {
            rule_id: owner.to_owned(),
            source: Box::new(source),
        })
}

impl Rule {
    pub(crate) fn compile(&self) -> Result<CompiledRule, ScanError> {
        let regex = self
            .regex
            .as_deref()
            .map(|p| compile_regex(&self.id, p))
            .transpose()?;
        let line_local = match &self.regex {
            Some(pattern) => regex_syntax::parse(pattern)
                .map(|hir| !can_match_newline(&hir))
                .unwrap_or(false),
            None => true,
        };
        if self.regex.is_none() && self.path.is_none() {
            return Err(ScanError::Config(format!(
                "rule {} has neither a regex nor a path",
                self.id
            )));
        }
        Ok(CompiledRule {
            id: self.id.clone(),
            description: self.description.clone(),
            regex,
            secret_group: self.secret_group,
            entropy: self.entropy,
            keywords: self.keywords.iter().map(|k| k.to_lowercase()).collect(),
            path: self
                .path
                .as_deref()
                .map(|p| compile_regex(&self.id, p))
                .transpose()?,
            allowlists: self
                .allowlists
                .iter()
                .map(|a| a.compile(&self.id))
                .collect::<Result<_, _>>()?,
            validator: self.validator,
            line_local,
        })
    }
}

impl Allowlist {
    pub(crate) fn compile(&self, owner: &str) -> Result<CompiledAllowlist, ScanError> {
        let compile_all = |patterns: &[String]| -> Result<Vec<Regex>, ScanError> {
            patterns.iter().map(|p| compile_regex(owner, p)).collect()
        };
        Ok(CompiledAllowlist {
            condition: self.condition,
            commits: self.commits.clone(),
            paths: compile_all(&self.paths)?,
            regexes: compile_all(&self.regexes)?,
            regex_target: self.regex_target,
            stopwords: self.stopwords.iter().map(|s| s.to_lowercase()).collect(),
            target_rules: self.target_rules.clone(),
        })
    }
}

impl CompiledAllowlist {
    /// True when this allowlist ignores every finding in `path`, whatever the secret.
    pub(crate) fn allows_whole_path(&self, path: &str) -> bool {
        let path_hit =
            !self.paths.is_empty() && self.paths.iter().any(|r| r.is_match(path.as_bytes()));
        match self.condition {
            AllowlistCondition::Or => path_hit,
            AllowlistCondition::And => {
                path_hit
                    && self.commits.is_empty()
                    && self.regexes.is_empty()
                    && self.stopwords.is_empty()
            }
        }
    }

    pub(crate) fn applies_to(&self, rule_id: &str) -> bool {
        self.target_rules.is_empty() || self.target_rules.iter().any(|r| r == rule_id)
    }

    /// True when this allowlist suppresses the candidate.
    pub(crate) fn allows(&self, c: &Candidate<'_>) -> bool {
        let mut checks: Vec<bool> = Vec::with_capacity(4);
        if !self.commits.is_empty() {
            checks.push(
                c.commit
                    .is_some_and(|id| self.commits.iter().any(|x| x == id)),
            );
        }
        if !self.paths.is_empty() {
            checks.push(self.paths.iter().any(|r| r.is_match(c.path.as_bytes())));
        }
        if !self.regexes.is_empty() {
            let target = match self.regex_target {
                RegexTarget::Secret => c.secret.as_bytes(),
                RegexTarget::Match => c.matched,
                RegexTarget::Line => c.line,
            };
            checks.push(self.regexes.iter().any(|r| r.is_match(target)));
        }
        if !self.stopwords.is_empty() {
            let secret = c.secret.to_lowercase();
            checks.push(self.stopwords.iter().any(|w| secret.contains(w.as_str())));
        }
        match self.condition {
            AllowlistCondition::Or => checks.iter().any(|&x| x),
            AllowlistCondition::And => !checks.is_empty() && checks.iter().all(|&x| x),
        }
    }
}

/// Whether any string the pattern matches can contain a line feed.
fn can_match_newline(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(lit) => lit.0.contains(&b'\n'),
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .any(|r| r.start() <= '\n' && '\n' <= r.end()),
        HirKind::Class(Class::Bytes(class)) => class
            .ranges()
            .iter()
            .any(|r| r.start() <= b'\n' && b'\n' <= r.end()),
        HirKind::Repetition(rep) => can_match_newline(&rep.sub),
        HirKind::Capture(cap) => can_match_newline(&cap.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(can_match_newline),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(p: &str) -> bool {
        let rule = Rule {
            id: "t".into(),
            regex: Some(p.into()),
            ..Rule::default()
        };
        rule.compile().unwrap().line_local
    }

    #[test]
    fn detects_patterns_that_cross_lines() {
        assert!(local(r"AKIA[A-Z2-7]{16}"));
        assert!(local(r"(?i)key[ \t'\x22]{0,3}=([^ \t\n]+)"));
        assert!(!local(r"(?i)key[ \t'\x22]{0,3}=([^ \t]+)"));
        assert!(!local(r"key\s*=\s*(\w+)"));
        assert!(!local(r"(?s)BEGIN.*END"));
        assert!(!local(r"[^a]"));
        assert!(local(r"(?m)[^a\n]$"));
    }

    #[test]
    fn and_condition_needs_every_check() {
        let list = Allowlist {
            condition: AllowlistCondition::And,
            paths: vec![r"\.md$".into()],
            stopwords: vec!["example".into()],
            ..Allowlist::default()
        }
        .compile("t")
        .unwrap();
        let cand = |path, secret| Candidate {
            path,
            commit: None,
            secret,
            matched: b"",
            line: b"",
        };
        assert!(list.allows(&cand("a.md", "myEXAMPLEkey")));
        assert!(!list.allows(&cand("a.rs", "myEXAMPLEkey")));
        assert!(!list.allows(&cand("a.md", "realkey")));
    }
}
