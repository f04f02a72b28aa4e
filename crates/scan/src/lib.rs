//! Ward's secret scanner: finds credentials in files, standard input and git history.
//!
//! The shape follows ripgrep's core: a [`Config`] (built-in rules, or a gitleaks-compatible TOML
//! file) is compiled once into a [`Scanner`]; the scanner then reads sources ([`Scanner::scan_path`],
//! [`Scanner::scan_reader`], [`Scanner::scan_git`]) and returns [`Finding`]s. Each rule is gated by
//! a keyword prefilter (one Aho-Corasick automaton over every rule's keywords), so the full regexes
//! only run on the lines where one of their keywords occurs (and on what continues such a line:
//! a value left for the next line by an XML element or a YAML block, or a command continued by
//! trailing backslashes).
//!
//! ```
//! let scanner = ward_scan::Scanner::new(ward_scan::Config::builtin()).unwrap();
//! let text = format!("token = \"ghp_{}\"\n", "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5");
//! let findings = scanner.scan_bytes(text.as_bytes(), "example.txt");
//! assert_eq!(findings[0].rule_id, "github-pat");
//! ```

pub mod baseline;
pub mod cli;
mod config;
mod engine;
mod entropy;
mod error;
mod finding;
mod git;
pub mod report;
mod rule;
mod rules;
mod secret;
mod walk;

pub use config::{Config, DEFAULT_MAX_FILE_SIZE};
pub use engine::Scanner;
pub use entropy::shannon_entropy;
pub use error::ScanError;
pub use finding::{CommitInfo, Finding, ScanOutput};
pub use rule::{Allowlist, AllowlistCondition, RegexTarget, Rule, Validator};
pub use secret::Secret;
