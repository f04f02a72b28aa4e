//! Directory scans: walk the tree as ripgrep does (honouring .gitignore), scan files in parallel.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::engine::Scanner;
use crate::error::ScanError;
use crate::finding::ScanOutput;

impl Scanner {
    /// Scans a file, or every file under a directory. `.gitignore`, `.ignore` and
    /// `.git/info/exclude` are honoured (even outside a git checkout); hidden files such as `.env`
    /// are scanned, `.git` itself is not. Binary files and files over the size limit are skipped.
    /// Unreadable files are reported in [`ScanOutput::errors`] and the scan goes on.
    pub fn scan_path(&self, root: &Path) -> Result<ScanOutput, ScanError> {
        let metadata = std::fs::metadata(root).map_err(|source| ScanError::Io {
            path: root.to_owned(),
            source,
        })?;
        let mut out = ScanOutput::default();
        let files: Vec<PathBuf> = if metadata.is_file() {
            vec![root.to_owned()]
        } else {
            let walker = ignore::WalkBuilder::new(root)
                .hidden(false)
                .require_git(false)
                .git_global(false)
                .filter_entry(|entry| entry.file_name() != ".git")
                .build();
            let mut files = Vec::new();
            for entry in walker {
                match entry {
                    Ok(entry) if entry.file_type().is_some_and(|t| t.is_file()) => {
                        files.push(entry.into_path());
                    }
                    Ok(_) => {}
                    Err(err) => out.errors.push(ScanError::Io {
                        path: root.to_owned(),
                        source: std::io::Error::other(err.to_string()),
                    }),
                }
            }
            files
        };

        let bytes = AtomicU64::new(0);
        let scanned = AtomicU64::new(0);
        let skipped = AtomicU64::new(0);
        let errors = Mutex::new(Vec::new());
        let scan_one = |file: &PathBuf| {
            let name = display_path(file);
            match self.scan_file(file, &name) {
                Ok(Some((found, read))) => {
                    scanned.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(read, Ordering::Relaxed);
                    found
                }
                Ok(None) => {
                    skipped.fetch_add(1, Ordering::Relaxed);
                    Vec::new()
                }
                Err(err) => {
                    if let Ok(mut list) = errors.lock() {
                        list.push(err);
                    }
                    Vec::new()
                }
            }
        };
        let run = || -> Vec<_> { files.par_iter().flat_map_iter(scan_one).collect() };
        let mut findings = if self.threads == 0 {
            run()
        } else {
            rayon::ThreadPoolBuilder::new()
                .num_threads(self.threads)
                .build()
                .map_err(ScanError::Threads)?
                .install(run)
        };
        findings.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.rule_id).cmp(&(&b.file, b.line, b.column, &b.rule_id))
        });
        out.findings = findings;
        out.files_scanned = scanned.into_inner();
        out.files_skipped = skipped.into_inner();
        out.bytes_scanned = bytes.into_inner();
        out.errors
            .extend(errors.into_inner().unwrap_or_else(|e| e.into_inner()));
        Ok(out)
    }

    /// Scans one file; `None` when it is skipped (allowlisted, too large or binary).
    fn scan_file(
        &self,
        file: &Path,
        name: &str,
    ) -> Result<Option<(Vec<crate::Finding>, u64)>, ScanError> {
        if self.path_allowlisted(name) {
            return Ok(None);
        }
        let io_err = |source| ScanError::Io {
            path: file.to_owned(),
            source,
        };
        let handle = std::fs::File::open(file).map_err(io_err)?;
        let size = handle.metadata().map_err(io_err)?.len();
        if self.max_file_size > 0 && size > self.max_file_size {
            return Ok(None);
        }
        let by_path = self.path_findings(name, None);
        let Some((mut found, read)) = self.scan_stream(handle, name, true).map_err(io_err)? else {
            // A binary file's contents are not read, but its name may be the leak (`.p12`).
            return Ok((!by_path.is_empty()).then_some((by_path, 0)));
        };
        found.extend(by_path);
        Ok(Some((found, read)))
    }
}

/// The path as reported: without a leading `./`, with `/` separators.
fn display_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let text = text.strip_prefix("./").unwrap_or(&text);
    text.replace('\\', "/")
}
