//! The scanner's error type.

use std::path::PathBuf;

/// Everything that can stop a scan or the loading of its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Reading a stream (standard input, git's output) failed.
    #[error("cannot read {what}")]
    Stream {
        /// What was being read.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML configuration is not valid TOML or has fields of the wrong type.
    #[error("invalid scanner configuration {path}")]
    ConfigSyntax {
        /// The configuration file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The configuration is well-formed but means nothing usable.
    #[error("invalid scanner configuration: {0}")]
    Config(String),
    /// A rule or allowlist regex does not compile.
    #[error("rule {rule_id}: invalid regex")]
    Regex {
        /// The rule (or allowlist) that holds the regex.
        rule_id: String,
        /// The compile error.
        #[source]
        source: Box<regex::Error>,
    },
    /// The keyword automaton could not be built.
    #[error("cannot build the keyword prefilter")]
    Keywords(#[source] aho_corasick::BuildError),
    /// The baseline file is not a findings report.
    #[error("invalid baseline {path}")]
    Baseline {
        /// The baseline file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// `git` could not be started or failed.
    #[error("git failed: {0}")]
    Git(String),
    /// The thread pool could not be built.
    #[error("cannot start the scanning threads")]
    Threads(#[source] rayon::ThreadPoolBuildError),
    /// A report could not be serialised or written.
    #[error("cannot write the report")]
    Report(#[source] std::io::Error),
}
