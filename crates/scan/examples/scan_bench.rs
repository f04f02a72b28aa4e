//! Throughput and recall of `ward scan` on a generated corpus, side by side with detect-secrets.
//!
//! ```text
//! cargo run --release -p ward-scan --example scan_bench -- --size-mb 200
//! ```
//!
//! Writes a corpus of mixed source files (Python, JavaScript, Go, Rust, Java, YAML, JSON, shell,
//! Markdown, .env) with secrets planted from every built-in rule's documented format, scans it
//! with Ward (all cores, then one thread), then runs `detect-secrets scan --all-files` (PyPI) on
//! the same directory, and prints MB/s (10^6 bytes), findings, recall on the planted secrets and
//! findings outside planted lines for each.

#[path = "../tests/common/corpus.rs"]
mod corpus;

use std::collections::HashSet;
use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use corpus::{FIXTURES, Gen};
use ward_scan::{Config, Scanner};

struct Options {
    size_mb: u64,
    dir: PathBuf,
    detect_secrets: bool,
    keep: bool,
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut opts = Options {
        size_mb: 200,
        dir: std::env::temp_dir().join("ward-scan-bench"),
        detect_secrets: true,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--size-mb" => opts.size_mb = args.next().ok_or("--size-mb N")?.parse()?,
            "--dir" => opts.dir = PathBuf::from(args.next().ok_or("--dir PATH")?),
            "--skip-detect-secrets" => opts.detect_secrets = false,
            "--keep" => opts.keep = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(opts)
}

/// (file relative to the corpus root, 1-based line) of each planted secret.
type Planted = HashSet<(String, u64)>;

const EXTENSIONS: &[&str] = &[
    "py", "js", "go", "rs", "java", "yaml", "json", "sh", "md", "env",
];

/// Ordinary lines, many using the words secret scanners key on (token, password, key, secret,
/// auth) without holding a secret, plus hashes and ids that look random but are not credentials.
const LINES: &[&str] = &[
    "def {x:8}_{x:5}(self, {x:6}, {x:4}=None):",
    "    return self.{x:7}.get(\"{x:6}_token\", default)",
    "    token = request.headers.get(\"Authorization\")",
    "    password_field = form.fields[\"{x:8}\"]",
    "    if not user.check_password({x:6}):",
    "    logger.info(\"refreshing auth token for %s\", {x:7})",
    "function {x:9}({x:5}, {x:4}) {",
    "  const {x:6} = await fetch(`${baseUrl}/api/v1/{x:7}`, { headers });",
    "  return {x:5}.map(({x:3}) => {x:3}.{x:6} * {d:3});",
    "}",
    "func ({x:1} *{X:1}{x:7}) {X:1}{x:8}(ctx context.Context, key string) error {",
    "\tif err := {x:1}.store.Put(ctx, key, value); err != nil {",
    "\t\treturn fmt.Errorf(\"put %s: %w\", key, err)",
    "pub fn {x:8}(&self, secret_name: &str) -> Result<{X:1}{x:6}, Error> {",
    "    let {x:6} = self.{x:5}.iter().filter(|k| k.len() > {d:2}).count();",
    "    public static final String {X:10}_KEY = \"{x:8}.{x:6}\";",
    "    private final {X:1}{x:7}Service {x:7}Service;",
    "  {x:8}:",
    "    image: registry.example.com/{x:6}/{x:8}:1.{d:2}.{d:1}",
    "    secretKeyRef: { name: {x:8}-credentials, key: password }",
    "  \"{x:7}\": \"{x:9} {x:5} {x:6}\",",
    "  \"integrity\": \"sha512-{b:86}==\",",
    "  \"commit\": \"{h:40}\",",
    "export PATH=\"$HOME/.local/bin:$PATH\"",
    "echo \"deploying {x:6} to $ENVIRONMENT\"",
    "## {X:1}{x:8} the {x:6} {x:5}",
    "Rotate the API key every 90 days; never commit the secret to the repository.",
    "LOG_LEVEL=info",
    "FEATURE_{X:8}=true",
    "    // checksum of the {x:6} file: {h:64}",
    "    uuid = \"{h:8}-{h:4}-4{h:3}-a{h:3}-{h:12}\"",
    "",
];

/// Writes the corpus; returns the planted secrets and the bytes written.
fn generate(root: &Path, size: u64) -> Result<(Planted, u64), Box<dyn Error>> {
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    let mut generator = Gen::new(2026);
    let mut planted = Planted::new();
    let mut written = 0u64;
    let mut file_index = 0u64;
    // About one planted secret per 100 KB, cycling through every rule's true positive.
    let plant_every = 100_000u64;
    let mut next_plant = plant_every / 2;
    let mut fixture = 0usize;
    while written < size {
        let ext = EXTENSIONS[generator.below(EXTENSIONS.len())];
        let dir = format!("pkg{:03}/mod{:02}", file_index % 97, file_index % 13);
        let name = format!("{dir}/file{file_index:05}.{ext}");
        file_index += 1;
        std::fs::create_dir_all(root.join(&dir))?;
        let target = 4_000 + generator.below(120_000) as u64;
        let mut text = String::with_capacity(target as usize + 1024);
        let mut line = 1u64;
        while (text.len() as u64) < target {
            if written + text.len() as u64 >= next_plant {
                let (_, positive, _) = FIXTURES[fixture % FIXTURES.len()];
                fixture += 1;
                planted.insert((name.clone(), line));
                let secret = generator.expand(positive);
                line += secret.matches('\n').count() as u64 + 1;
                text.push_str(&secret);
                text.push('\n');
                next_plant += plant_every;
                continue;
            }
            let template = LINES[generator.below(LINES.len())];
            text.push_str(&generator.expand(template));
            text.push('\n');
            line += 1;
        }
        written += text.len() as u64;
        std::fs::write(root.join(&name), text)?;
    }
    Ok((planted, written))
}

struct Outcome {
    tool: String,
    threads: String,
    seconds: f64,
    found: Planted,
}

fn score(outcome: &Outcome, planted: &Planted, bytes: u64) -> String {
    let recalled = planted.intersection(&outcome.found).count();
    let extra = outcome.found.difference(planted).count();
    format!(
        "| {} | {} | {:.2} | {:.1} | {} | {}/{} = {:.2}% | {} |",
        outcome.tool,
        outcome.threads,
        outcome.seconds,
        bytes as f64 / 1e6 / outcome.seconds,
        outcome.found.len(),
        recalled,
        planted.len(),
        100.0 * recalled as f64 / planted.len().max(1) as f64,
        extra,
    )
}

fn run_ward(root: &Path, threads: usize) -> Result<Outcome, Box<dyn Error>> {
    let mut config = Config::builtin();
    config.threads = threads;
    let scanner = Scanner::new(config)?;
    let started = Instant::now();
    let out = scanner.scan_path(root)?;
    let seconds = started.elapsed().as_secs_f64();
    let found = out
        .findings
        .iter()
        .map(|f| {
            let relative = Path::new(&f.file)
                .strip_prefix(root)
                .map_or_else(|_| f.file.clone(), |p| p.to_string_lossy().into_owned());
            (relative, f.line)
        })
        .collect();
    Ok(Outcome {
        tool: format!("ward ({} rules)", scanner.rule_count()),
        threads: if threads == 0 {
            "all".into()
        } else {
            threads.to_string()
        },
        seconds,
        found,
    })
}

fn run_detect_secrets(root: &Path) -> Result<Outcome, Box<dyn Error>> {
    let version = Command::new("detect-secrets").arg("--version").output()?;
    let started = Instant::now();
    let output = Command::new("detect-secrets")
        .args(["scan", "--all-files", "."])
        .current_dir(root)
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(format!(
            "detect-secrets failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mut found = Planted::new();
    if let Some(results) = report["results"].as_object() {
        for (file, secrets) in results {
            for secret in secrets.as_array().into_iter().flatten() {
                if let Some(line) = secret["line_number"].as_u64() {
                    found.insert((file.trim_start_matches("./").to_owned(), line));
                }
            }
        }
    }
    Ok(Outcome {
        tool: format!(
            "detect-secrets {}",
            String::from_utf8_lossy(&version.stdout).trim()
        ),
        threads: "all (multiprocessing)".into(),
        seconds,
        found,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let opts = options()?;
    let started = Instant::now();
    let (planted, bytes) = generate(&opts.dir, opts.size_mb * 1_000_000)?;
    let files = walk_count(&opts.dir);
    eprintln!(
        "generated {bytes} bytes in {files} files in {:.1?}",
        started.elapsed()
    );

    let mut rows = Vec::new();
    // A first pass warms the page cache so both tools read from memory.
    run_ward(&opts.dir, 0)?;
    rows.push(run_ward(&opts.dir, 0)?);
    rows.push(run_ward(&opts.dir, 1)?);
    if opts.detect_secrets {
        eprintln!("running detect-secrets (slow)...");
        rows.push(run_detect_secrets(&opts.dir)?);
    }

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "corpus: {:.1} MB in {files} files, {} planted secrets from {} rule formats, {} cores",
        bytes as f64 / 1e6,
        planted.len(),
        FIXTURES.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )?;
    writeln!(
        out,
        "| tool | threads | seconds | MB/s | findings (lines) | recall | findings outside planted lines |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for row in &rows {
        writeln!(out, "{}", score(row, &planted, bytes))?;
        let mut extra: Vec<_> = row.found.difference(&planted).collect();
        extra.sort();
        for (file, line) in extra.iter().take(5) {
            eprintln!("  {} outside planted lines: {file}:{line}", row.tool);
        }
    }
    if let (Some(ward), Some(ds)) = (rows.first(), rows.get(2)) {
        writeln!(
            out,
            "ward (all cores) is {:.0}x detect-secrets' throughput",
            ds.seconds / ward.seconds
        )?;
    }
    if !opts.keep {
        std::fs::remove_dir_all(&opts.dir)?;
    }
    Ok(())
}

fn walk_count(root: &Path) -> usize {
    ignore::WalkBuilder::new(root)
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .count()
}
