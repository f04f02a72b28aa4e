//! The errors of parsing and naming policies.

use std::fmt;

/// Where in a policy a rule problem is: the `path` block's pattern and, for HCL, its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLocation {
    /// The pattern as written in the policy (the block label, or the JSON key).
    pub path: String,
    /// The 1-based line of the `path` block in HCL text; `None` for JSON.
    pub line: Option<usize>,
}

impl fmt::Display for RuleLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path {:?}", self.path)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// The syntax a policy text was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyFormat {
    /// HashiCorp Configuration Language.
    Hcl,
    /// JSON with the same structure.
    Json,
}

impl fmt::Display for PolicyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyFormat::Hcl => "HCL",
            PolicyFormat::Json => "JSON",
        })
    }
}

/// Why a policy or a policy name was rejected. Every message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy name is empty (after trimming spaces).
    #[error("policy name is empty")]
    EmptyName,
    /// The policy name is longer than [`crate::MAX_POLICY_NAME_LEN`].
    #[error("policy name is {len} bytes long; the limit is {max}")]
    NameTooLong {
        /// The length of the name given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The policy name holds a character outside the allowed set.
    #[error(
        "policy name {name:?} contains {found:?}; names may only hold letters, digits, '-', '_', '.' and '@'"
    )]
    InvalidNameChar {
        /// The normalised name.
        name: String,
        /// The first character that is not allowed.
        found: char,
    },
    /// The policy name is `.` or `..`, which would be confusing as a path segment.
    #[error("policy name {0:?} is not allowed")]
    DotName(String),
    /// The name belongs to a built-in policy that cannot be written.
    #[error("policy {0:?} is built in and cannot be created, modified or deleted")]
    ReservedName(String),
    /// The text is not valid HCL or JSON.
    #[error("policy is not valid {format}: line {line}, column {column}: {message}")]
    Syntax {
        /// Which syntax the text was read as (text starting with `{` is read as JSON).
        format: PolicyFormat,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// Something other than `path` blocks (and an optional `name`) at the top level.
    #[error("{found}; a policy holds only `path \"PATTERN\" {{ ... }}` blocks{}", line_suffix(*line))]
    UnexpectedTopLevel {
        /// What was found.
        found: String,
        /// 1-based line, for HCL.
        line: Option<usize>,
    },
    /// A `path` block whose pattern is empty (or only `/`).
    #[error("a path block has an empty pattern{}", line_suffix(*line))]
    EmptyPath {
        /// 1-based line, for HCL.
        line: Option<usize>,
    },
    /// A pattern Vault rejects (such as `+*`).
    #[error("{at}: {reason}")]
    InvalidPattern {
        /// The rule.
        at: RuleLocation,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A capability name that does not exist.
    #[error(
        "{at}: unknown capability {capability:?} (expected one of create, read, update, patch, delete, list, sudo, deny)"
    )]
    UnknownCapability {
        /// The rule.
        at: RuleLocation,
        /// The name as written.
        capability: String,
    },
    /// A key in a `path` block that neither Vault nor Ward knows.
    #[error(
        "{at}: unknown key {key:?} (expected capabilities, policy, comment, allowed_parameters, denied_parameters, required_parameters, min_wrapping_ttl, max_wrapping_ttl)"
    )]
    UnknownKey {
        /// The rule.
        at: RuleLocation,
        /// The key as written.
        key: String,
    },
    /// A key Vault knows but Ward does not implement; accepting it would grant more than
    /// the author meant.
    #[error("{at}: {key:?} is not supported by Ward; remove it from the rule")]
    UnsupportedKey {
        /// The rule.
        at: RuleLocation,
        /// The key as written.
        key: String,
    },
    /// A key given twice in the same `path` block.
    #[error("{at}: key {key:?} is given more than once")]
    DuplicateKey {
        /// The rule.
        at: RuleLocation,
        /// The key.
        key: String,
    },
    /// A value of the wrong type.
    #[error("{at}: {key:?} must be {expected}")]
    WrongType {
        /// The rule.
        at: RuleLocation,
        /// The key.
        key: String,
        /// A description of the expected type.
        expected: &'static str,
    },
    /// The legacy `policy = "..."` form with a value other than deny, read, write or sudo.
    #[error("{at}: invalid policy {value:?} (expected one of deny, read, write, sudo)")]
    InvalidLegacyPolicy {
        /// The rule.
        at: RuleLocation,
        /// The value as written.
        value: String,
    },
    /// A wrapping TTL that is not a duration.
    #[error(
        "{at}: {key:?} is not a duration: {value:?} (use seconds, or units like \"90s\", \"5m\", \"1h\")"
    )]
    InvalidDuration {
        /// The rule.
        at: RuleLocation,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// `max_wrapping_ttl` below `min_wrapping_ttl`, which Vault rejects.
    #[error("{at}: max_wrapping_ttl cannot be less than min_wrapping_ttl")]
    WrappingTtlOrder {
        /// The rule.
        at: RuleLocation,
    },
    /// An HCL expression (interpolation, function call, variable…) where a literal is needed.
    #[error("{at}: {key:?} must be a literal value, not an expression")]
    NotLiteral {
        /// The rule.
        at: RuleLocation,
        /// The key.
        key: String,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    match line {
        Some(line) => format!(" (line {line})"),
        None => String::new(),
    }
}
