//! `ward scan`: the command-line surface of the scanner, for the `ward` binary to mount.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::baseline::Baseline;
use crate::config::{Config, DEFAULT_MAX_FILE_SIZE};
use crate::engine::Scanner;
use crate::error::ScanError;
use crate::finding::ScanOutput;
use crate::report::{Format, ReportOptions, write_report};

/// Exit status when the scan found nothing (after allowlists and baseline).
pub const EXIT_CLEAN: i32 = 0;
/// Exit status when findings remain.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit status when the scan could not run.
pub const EXIT_ERROR: i32 = 2;

/// Find secrets in files, standard input or git history.
#[derive(Clone, Debug, clap::Args)]
pub struct ScanArgs {
    /// What to scan: a directory or file, `-` for standard input, or a repository with --git.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Scan every commit of the repository's history (added lines only) instead of the files.
    #[arg(long)]
    pub git: bool,
    /// Options for `git log` replacing `--all` with --git, such as a range `main..HEAD`.
    #[arg(
        long,
        requires = "git",
        allow_hyphen_values = true,
        value_delimiter = ' '
    )]
    pub log_opts: Vec<String>,
    /// A gitleaks-compatible TOML file of rules and allowlists.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// A previous JSON report: findings in it are not reported again.
    #[arg(long, short = 'b')]
    pub baseline: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'r')]
    pub report: Option<PathBuf>,
    /// Skip files larger than this (bytes, or with a K, M or G suffix); 0 means no limit.
    #[arg(long, default_value = "20M", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Show secrets in clear in the report (they are redacted by default).
    #[arg(long)]
    pub no_redact: bool,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print no summary line on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl Default for ScanArgs {
    fn default() -> Self {
        Self {
            path: PathBuf::from("."),
            git: false,
            log_opts: Vec::new(),
            config: None,
            baseline: None,
            format: Format::Text,
            report: None,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            no_redact: false,
            threads: 0,
            quiet: false,
        }
    }
}

/// Parses `1048576`, `512K`, `20M`, `1G` (powers of 1024; a trailing `B` or `iB` is accepted).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let trimmed = upper.trim_end_matches('B').trim_end_matches('I');
    let (digits, shift) = match trimmed.chars().last() {
        Some('K') => (&trimmed[..trimmed.len() - 1], 10),
        Some('M') => (&trimmed[..trimmed.len() - 1], 20),
        Some('G') => (&trimmed[..trimmed.len() - 1], 30),
        _ => (trimmed, 0),
    };
    let number: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("not a size: {text:?} (use e.g. 500K, 20M)"))?;
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size too large: {text:?}"))
}

/// Runs `ward scan` on the process's standard streams; returns the exit status.
pub fn run(args: &ScanArgs) -> i32 {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(
        args,
        &mut stdin.lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

/// Runs `ward scan` on the given streams; returns the exit status (0 clean, 1 findings, 2 error).
pub fn run_with(
    args: &ScanArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    match execute(args, stdin, stdout, stderr) {
        Ok(0) => EXIT_CLEAN,
        Ok(_) => EXIT_FINDINGS,
        Err(err) => {
            let _ = writeln!(stderr, "ward scan: error: {}", error_chain(&err));
            EXIT_ERROR
        }
    }
}

/// The error and its sources, on one line (none of them holds secret text).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Scans and reports; returns the number of findings reported.
fn execute(
    args: &ScanArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<usize, ScanError> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::builtin(),
    };
    config.max_file_size = args.max_file_size;
    config.threads = args.threads;
    let scanner = Scanner::new(config)?;
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;

    let started = std::time::Instant::now();
    let mut output = if args.path == Path::new("-") {
        let mut counted = CountingReader {
            inner: stdin,
            bytes: 0,
        };
        let findings = scanner.scan_reader(&mut counted, "-")?;
        ScanOutput {
            findings,
            files_scanned: 1,
            bytes_scanned: counted.bytes,
            ..ScanOutput::default()
        }
    } else if args.git {
        scanner.scan_git(&args.path, &args.log_opts)?
    } else {
        scanner.scan_path(&args.path)?
    };
    for err in &output.errors {
        let _ = writeln!(stderr, "ward scan: warning: {}", error_chain(err));
    }
    let before_baseline = output.findings.len();
    if let Some(baseline) = &baseline {
        baseline.retain_new(&mut output.findings);
    }

    let rules: Vec<(String, String)> = scanner
        .rules()
        .map(|(id, description)| (id.to_owned(), description.to_owned()))
        .collect();
    let options = ReportOptions {
        redact: !args.no_redact,
        rules: &rules,
    };
    match &args.report {
        Some(path) => {
            let mut file = std::fs::File::create(path).map_err(|source| ScanError::Io {
                path: path.clone(),
                source,
            })?;
            write_report(&mut file, &output.findings, args.format, &options)
                .and_then(|()| file.flush())
                .map_err(ScanError::Report)?;
        }
        None => write_report(stdout, &output.findings, args.format, &options)
            .and_then(|()| stdout.flush())
            .map_err(ScanError::Report)?,
    }
    if !args.quiet {
        let _ = writeln!(
            stderr,
            "ward scan: {} finding(s) in {} {} ({} bytes, {} skipped, {} in baseline) in {:.2?}",
            output.findings.len(),
            output.files_scanned,
            if args.git { "file changes" } else { "files" },
            output.bytes_scanned,
            output.files_skipped,
            before_baseline - output.findings.len(),
            started.elapsed(),
        );
    }
    Ok(output.findings.len())
}

/// Counts what standard input gave, for the summary line.
struct CountingReader<'a> {
    inner: &'a mut dyn Read,
    bytes: u64,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("20M"), Ok(20 << 20));
        assert_eq!(parse_size("512kb"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
    }
}
