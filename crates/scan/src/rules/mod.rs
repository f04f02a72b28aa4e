//! Ward's built-in rules. Rule ids follow gitleaks' where the secret is the same, so a gitleaks
//! config's `disabledRules` and allowlists keep meaning the same thing.
//!
//! Every rule here has a true positive and a near miss in `tests/common/corpus.rs`, generated
//! from the documented key format at test time (rules on file names alone in `PATH_FIXTURES`);
//! each true positive filled with `x`, `X`, `a`, `1` or `0` is a placeholder no rule may report.
//! `tests/common/accuracy.rs` puts every format in the assignment forms of many languages and
//! measures recall and false positives over them.

mod cloud;
mod generic;
mod saas;
mod vcs;

use crate::rule::{Allowlist, Rule};

/// What may stand between a name and its value: quotes (escaped too, as in JSON inside a
/// string), then an assignment operator of some language (`=`, `:=`, Makefile's `::=` and
/// `:::=`, `?=`, `+=`, `.=`, `=>`, `:`, `>` closing an XML tag), a comma (CSV, `setProperty("NAME",
/// "value")`) or an opening parenthesis, then quotes again.
pub(crate) const ASSIGN: &str =
    r#"[ \t'"\\]{0,5}(?:=|>|:{1,3}=|\|\|:|<=|=>|:|[?+.]=|,|\()[ \t'"\x60=\\]{0,5}"#;
/// [`ASSIGN`] for names that are ordinary words in code (`token`, `secret`): after a comma or
/// parenthesis the value must be quoted, since `f(token, other)` passes a variable.
pub(crate) const ASSIGN_QUOTED_ARGS: &str = r#"[ \t'"\\]{0,5}(?:(?:=|>|:{1,3}=|\|\|:|<=|=>|:|[?+.]=)[ \t'"\x60=\\]{0,5}|[,(][ \t]{0,5}\\?['"\x60])"#;
/// What may follow a value: a quote, space, separator, closing bracket, a backslash (an escaped
/// quote or newline) or the end.
pub(crate) const VALUE_END: &str = r#"(?:[\x60'" \t;,)\]}<\\]|(?m:$))"#;
/// A UUID, a common shape for SaaS keys.
pub(crate) const UUID: &str =
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

/// All built-in rules, specific ones first: when two rules find the same secret, the first wins.
pub(crate) fn builtin_rules() -> Vec<Rule> {
    let mut rules = Vec::with_capacity(200);
    rules.extend(cloud::rules());
    rules.extend(vcs::rules());
    rules.extend(saas::rules());
    rules.extend(generic::rules());
    for rule in &mut rules {
        rule.validator.get_or_insert(not_placeholder);
    }
    rules
}

/// False for what people write in place of a key: a value mostly made of one character
/// (`ghp_xxxx…`, `AKIAXXXX…`, `0000…`), of a handful (`xXxX…`), or holding a long run of one
/// (`FLWSECK_TESTaaaaaaaaaaaa`, `…/services/Txxxxxxxx/Bxxxxxxxx/xxxxxxxxxxxxxxxxxxxxxxxx`).
/// Random keys of the documented formats never are. Runs of `A` are zero bytes in base64 and
/// part of real formats (Twitter's bearer tokens start with 22), so only a majority of them
/// counts.
fn not_placeholder(secret: &str) -> bool {
    let bytes = secret.as_bytes();
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let len = bytes.len();
    let most = counts.iter().copied().max().unwrap_or(0);
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    let long_run = bytes.chunk_by(|a, b| a == b).any(|run| {
        (run.len() >= 8 && run.len() * 5 >= len * 2) || (run.len() >= 16 && run[0] != b'A')
    });
    most * 5 < len * 3 && distinct >= (len / 4).min(8) && !long_run
}

/// Example keys that ship in public SDKs and guides (Firebase's Android SDK samples), so they
/// are in countless repositories and grant nothing.
const DOCUMENTATION_KEYS: &[&str] = &[
    "AIzaSyabcdefghijklmnopqrstuvwxyz1234567",
    "AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs",
    "AIzaSyCkEhVjf3pduRDt6d1yKOMitrUEke8agEM",
    "AIzaSyDMAScliyLx7F0NPDEJi1QmyCgHIAODrlU",
    "AIzaSyD3asb-2pEZVqMkmL6M9N6nHZRR_znhrh0",
    "AIzayDNSXIbFmlXbIE6mCzDLQAqITYefhixbX4A",
    "AIzaSyAdOS2zB6NCsk1pCdZ4-P6GBdi_UUPwX7c",
    "AIzaSyASWm6HmTMdYWpgMnjRBjxcQ9CKctWmLd4",
    "AIzaSyANUvH9H9BsUccjsu2pCmEkOPjjaXeDQgY",
    "AIzaSyA5_iVawFQ8ABuTZNUdcwERLJv_a_p4wtM",
    "AIzaSyA4UrcGxgwQFTfaI3no3t7Lt1sjmdnP5sQ",
    "AIzaSyDSb51JiIcB6OJpwwMicseKRhhrOq1cS7g",
    "AIzaSyBF2RrAIm4a0mO64EShQfqfd2AFnzAvvuU",
    "AIzaSyBcE-OOIbhjyR83gm4r2MFCu4MJmprNXsw",
    "AIzaSyB8qGxt4ec15vitgn44duC5ucxaOi4FmqE",
    "AIzaSyA8vmApnrHNFE0bApF4hoZ11srVL_n0nvY",
];

/// Placeholders and generated files that are never real secrets.
pub(crate) fn builtin_allowlist() -> Allowlist {
    Allowlist {
        description: "placeholders, templating and lock files".to_owned(),
        regexes: vec![
            // Keys published in documentation (AWS's `AKIAIOSFODNN7EXAMPLE`,
            // `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY` and their kin).
            r"(?i)example".to_owned(),
            format!("^(?:{})$", DOCUMENTATION_KEYS.join("|")),
            r"(?i)^(?:x{5,}|\*{3,}|\.{3,}|<[^\n>]*>|\$\{[^\n}]*\}|\$\([^\n)]*\)|\{\{[^\n}]*\}\}|%\([^\n)]*\)s|\$[A-Z_][A-Z0-9_]*|your[_-][a-z_-]*|changeme|change_me|placeholder|redacted|dummy|null|none|undefined)$".to_owned(),
            r"\$\{[^\n}]*\}|\{\{[^\n}]*\}\}".to_owned(),
        ],
        paths: vec![
            r"(?:(?m:^)|/)(?:go\.sum|package-lock\.json|yarn\.lock|pnpm-lock\.yaml|Cargo\.lock|poetry\.lock|composer\.lock|Gemfile\.lock)$".to_owned(),
        ],
        ..Allowlist::default()
    }
}

/// A token recognised by its prefix and shape alone; the whole token is the secret.
pub(crate) fn token(id: &str, description: &str, pattern: &str, keywords: &[&str]) -> Rule {
    raw(
        id,
        description,
        &format!(r"(?-u:\b)({pattern})(?:[^\n0-9A-Za-z_-]|(?m:$))"),
        keywords,
    )
}

/// A rule whose regex is written out in full.
pub(crate) fn raw(id: &str, description: &str, regex: &str, keywords: &[&str]) -> Rule {
    Rule {
        id: id.to_owned(),
        description: description.to_owned(),
        regex: Some(regex.to_owned()),
        keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        ..Rule::default()
    }
}

/// A secret with no distinctive shape, recognised by being assigned to a name that says what it
/// is (`twilio_token = "..."`); gated by entropy so words do not match. The provider's
/// name must start a word or a camel-case part (see [`name_start`]).
pub(crate) fn assigned(id: &str, description: &str, names: &str, value: &str) -> Rule {
    let keywords: Vec<&str> = names.split('|').collect();
    let mut rule = raw(
        id,
        description,
        &format!(
            "{}(?:[0-9A-Za-z_. \\t-]{{0,30}}){ASSIGN}({value}){VALUE_END}",
            name_start(names)
        ),
        &keywords,
    );
    // Random values under 20 characters fall below 3 bits a character now and then.
    let shortest = regex_syntax::parse(value)
        .ok()
        .and_then(|hir| hir.properties().minimum_len())
        .unwrap_or(0);
    rule.entropy = Some(if shortest < 20 { 2.5 } else { 3.0 });
    rule
}

/// One of `names` (`a|b`) where a name starts: after the start of the line or a non-letter in any
/// case (`db_password`, `TWILIO_`), after a lowercase letter when capitalised (`dbPassword`), or
/// after a capital when in capitals (`PGPASSWORD`). So `rookTable` holds no `okta` and
/// `SetSysctl` no `etsy`.
pub(crate) fn name_start(names: &str) -> String {
    let capitalised: Vec<String> = names.split('|').map(capitalise).collect();
    format!(
        "(?:(?:(?m:^)|[^A-Za-z\\n])(?i:{names})|[a-z](?:{})|[A-Z](?:{}))",
        capitalised.join("|"),
        names.to_uppercase()
    )
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// One rule for several shapes of the same secret (a prefixed token, or a bare value assigned to
/// the provider's name): the shapes' regexes as alternatives, each with its own secret group
/// (the first non-empty group is the secret), and all their keywords.
pub(crate) fn one_of(id: &str, description: &str, shapes: &[Rule]) -> Rule {
    let regex: Vec<&str> = shapes.iter().filter_map(|s| s.regex.as_deref()).collect();
    let mut keywords: Vec<&str> = Vec::new();
    for keyword in shapes.iter().flat_map(|s| &s.keywords) {
        if !keywords.contains(&keyword.as_str()) {
            keywords.push(keyword);
        }
    }
    raw(id, description, &regex.join("|"), &keywords)
}

/// Sets a rule's minimum entropy.
pub(crate) fn with_entropy(mut rule: Rule, bits: f64) -> Rule {
    rule.entropy = Some(bits);
    rule
}

/// Adds an allowlist of secret regexes to a rule.
pub(crate) fn allowing(mut rule: Rule, regexes: &[&str]) -> Rule {
    rule.allowlists.push(Allowlist {
        regexes: regexes.iter().map(|r| (*r).to_owned()).collect(),
        ..Allowlist::default()
    });
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_are_many_unique_and_compile() {
        let rules = builtin_rules();
        assert!(rules.len() >= 150, "only {} rules", rules.len());
        let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate rule ids");
        for rule in &rules {
            let compiled = rule.compile().unwrap();
            assert!(!rule.description.is_empty(), "{}", rule.id);
            // Every built-in regex except the legacy Vault token's is keyword-gated (path-only
            // rules run no regex), and all but the private-key rules run line by line: that is
            // what keeps scans fast.
            if rule.regex.is_some()
                && rule.id != "vault-legacy-token"
                && rule.id != "twilio-api-key"
            {
                assert!(!rule.keywords.is_empty(), "{} has no keywords", rule.id);
            }
            if !rule.id.ends_with("private-key") {
                assert!(compiled.line_local, "{} can cross lines", rule.id);
            }
        }
    }
}
