//! History scans: stream `git log -p` and scan the lines each commit added.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use rayon::prelude::*;

use crate::engine::Scanner;
use crate::error::ScanError;
use crate::finding::{CommitInfo, Finding, ScanOutput};

/// Marks the start of a commit in the log; \x1e (record separator) never occurs in diff text
/// at the start of a line (diff lines start with '+', '-', ' ', '@', 'd', 'i', ...).
const COMMIT_MARK: &str = "\x1eWARD-COMMIT\x1f";

/// The lines one commit added to one file.
struct Patch {
    /// Position of the commit in the log (0 = newest), to sort findings.
    order: usize,
    commit: CommitInfo,
    path: String,
    /// The added lines, joined with '\n'.
    text: Vec<u8>,
    /// The file line number of each added line.
    lines: Vec<u64>,
}

impl Scanner {
    /// Scans every commit reachable from any ref of the repository at `repo` (like gitleaks:
    /// `git log -p -U0 --full-history --all`); only added lines are scanned, and each finding
    /// carries the commit id, author and date. `log_opts` replaces `--all` (for example a range
    /// such as `main..feature`).
    pub fn scan_git(&self, repo: &Path, log_opts: &[String]) -> Result<ScanOutput, ScanError> {
        let mut command = Command::new("git");
        command
            .arg("-C")
            .arg(repo)
            .args([
                "-c",
                "core.quotePath=false",
                "log",
                "-p",
                "-U0",
                "--no-color",
            ])
            .args([
                "--no-ext-diff",
                "--no-textconv",
                "--full-history",
                "--diff-filter=AMRC",
            ])
            .arg(format!("--format={COMMIT_MARK}%H%x1f%an%x1f%ae%x1f%aI"));
        if log_opts.is_empty() {
            command.arg("--all");
        } else {
            command.args(log_opts);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ScanError::Git(format!("cannot run git: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ScanError::Git("no output pipe".to_owned()))?;

        let (sender, receiver) = mpsc::sync_channel::<Patch>(256);
        let parser = std::thread::spawn(move || parse_log(BufReader::new(stdout), &sender));
        let scan = |patch: Patch| -> (usize, u64, Vec<Finding>) {
            let found = self.scan_patch(&patch);
            (patch.order, patch.text.len() as u64, found)
        };
        let run = || -> Vec<_> { receiver.into_iter().par_bridge().map(scan).collect() };
        let results = if self.threads == 0 {
            run()
        } else {
            rayon::ThreadPoolBuilder::new()
                .num_threads(self.threads)
                .build()
                .map_err(ScanError::Threads)?
                .install(run)
        };
        let parsed = parser
            .join()
            .map_err(|_| ScanError::Git("log parser panicked".to_owned()))?;
        let output = child
            .wait_with_output()
            .map_err(|e| ScanError::Git(format!("waiting for git: {e}")))?;
        parsed.map_err(|source| ScanError::Stream {
            what: "git log".to_owned(),
            source,
        })?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr);
            return Err(ScanError::Git(message.trim().to_owned()));
        }

        let mut out = ScanOutput::default();
        let mut ordered: Vec<(usize, Finding)> = Vec::new();
        for (order, bytes, found) in results {
            out.files_scanned += 1;
            out.bytes_scanned += bytes;
            ordered.extend(found.into_iter().map(|f| (order, f)));
        }
        ordered.sort_by(|(oa, a), (ob, b)| {
            (oa, &a.file, a.line, a.column, &a.rule_id)
                .cmp(&(ob, &b.file, b.line, b.column, &b.rule_id))
        });
        out.findings = ordered.into_iter().map(|(_, f)| f).collect();
        Ok(out)
    }

    fn scan_patch(&self, patch: &Patch) -> Vec<Finding> {
        if self.path_allowlisted(&patch.path) {
            return Vec::new();
        }
        let mut found: Vec<Finding> = self
            .find_in(&patch.text, &patch.path, Some(&patch.commit))
            .into_iter()
            .map(|located| {
                let mut finding = located.finding;
                let map = |line: u64| {
                    usize::try_from(line.saturating_sub(1))
                        .ok()
                        .and_then(|i| patch.lines.get(i).copied())
                        .unwrap_or(line)
                };
                finding.line = map(finding.line);
                finding.end_line = map(finding.end_line);
                finding
            })
            .collect();
        found.extend(self.path_findings(&patch.path, Some(&patch.commit)));
        found
    }
}

/// Reads `git log -p -U0` output and sends one [`Patch`] per commit and file.
fn parse_log<R: BufRead>(mut reader: R, sender: &mpsc::SyncSender<Patch>) -> std::io::Result<()> {
    let mut raw = Vec::new();
    let mut order = 0usize;
    let mut commit: Option<CommitInfo> = None;
    let mut current: Option<Patch> = None;
    let mut in_hunk = false;
    let mut next_line = 0u64;
    let send = |patch: Option<Patch>| {
        if let Some(patch) = patch.filter(|p| !p.lines.is_empty()) {
            // The receiver only goes away if scanning stopped; nothing more to do then.
            let _ = sender.send(patch);
        }
    };
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        if raw.last() == Some(&b'\n') {
            raw.pop();
        }
        if let Some(header) = raw.strip_prefix(COMMIT_MARK.as_bytes()) {
            send(current.take());
            let header = String::from_utf8_lossy(header);
            let mut fields = header.split('\x1f');
            let mut next = || fields.next().unwrap_or_default().to_owned();
            commit = Some(CommitInfo {
                id: next(),
                author: next(),
                email: next(),
                date: next(),
            });
            order += 1;
            in_hunk = false;
            continue;
        }
        if raw.starts_with(b"diff --git ") {
            send(current.take());
            in_hunk = false;
            continue;
        }
        if !in_hunk && let Some(path) = raw.strip_prefix(b"+++ ") {
            let path = String::from_utf8_lossy(path);
            let path = unquote(&path);
            current = match (path.strip_prefix("b/"), &commit) {
                (Some(path), Some(commit)) => Some(Patch {
                    order,
                    commit: commit.clone(),
                    path: path.to_owned(),
                    text: Vec::new(),
                    lines: Vec::new(),
                }),
                _ => None,
            };
            continue;
        }
        if raw.starts_with(b"@@ ") {
            in_hunk = true;
            next_line = hunk_new_start(&raw).unwrap_or(1);
            continue;
        }
        if !in_hunk {
            continue;
        }
        if let (Some(added), Some(patch)) = (raw.strip_prefix(b"+"), current.as_mut()) {
            if !patch.lines.is_empty() {
                patch.text.push(b'\n');
            }
            patch.text.extend_from_slice(added);
            patch.lines.push(next_line);
            next_line += 1;
        } else if raw.starts_with(b" ") {
            next_line += 1;
        }
    }
    send(current.take());
    Ok(())
}

/// The new-file start line of a hunk header `@@ -a,b +c,d @@`.
fn hunk_new_start(header: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(header).ok()?;
    let plus = text.split(' ').find(|part| part.starts_with('+'))?;
    plus[1..].split(',').next()?.parse().ok()
}

/// Removes git's C-style quoting from a path (`"b/a\tb"`), for the common escapes.
fn unquote(path: &str) -> String {
    let Some(inner) = path.strip_prefix('"').and_then(|p| p.strip_suffix('"')) else {
        return path.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_added_lines_with_their_numbers() {
        let log = format!(
            "{COMMIT_MARK}abc\x1fAda\x1fada@example.org\x1f2026-01-02T03:04:05+00:00\n\
             \n\
             diff --git a/x.txt b/x.txt\n\
             --- a/x.txt\n\
             +++ b/x.txt\n\
             @@ -1,0 +2,2 @@\n\
             +first\n\
             ++++ second\n\
             @@ -9 +10 @@\n\
             -gone\n\
             +tenth\n\
             diff --git a/old b/old\n\
             --- a/old\n\
             +++ /dev/null\n\
             @@ -1 +0,0 @@\n\
             -removed\n"
        );
        let (sender, receiver) = mpsc::sync_channel(8);
        parse_log(log.as_bytes(), &sender).unwrap();
        drop(sender);
        let patches: Vec<Patch> = receiver.into_iter().collect();
        assert_eq!(patches.len(), 1);
        assert_eq!(patches[0].path, "x.txt");
        assert_eq!(patches[0].commit.author, "Ada");
        assert_eq!(patches[0].lines, vec![2, 3, 10]);
        assert_eq!(patches[0].text, b"first\n+++ second\ntenth");
    }

    #[test]
    fn unquotes_paths() {
        assert_eq!(unquote("\"b/a\\tb\""), "b/a\tb");
        assert_eq!(unquote("b/plain"), "b/plain");
    }
}
