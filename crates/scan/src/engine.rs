//! The compiled scanner: keyword prefilter, then the rules' regexes on the lines that need them.

use std::io::Read;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use regex::bytes::Captures;

use crate::config::Config;
use crate::entropy::shannon_entropy;
use crate::error::ScanError;
use crate::finding::{CommitInfo, Finding, fingerprint};
use crate::rule::{Candidate, CompiledAllowlist, CompiledRule};

use crate::secret::Secret;

/// Inline markers that suppress findings on their line.
const INLINE_ALLOW: [&[u8]; 2] = [b"ward:allow", b"gitleaks:allow"];
/// Bytes read per step from a stream; memory stays near this however large the input.
const CHUNK_SIZE: usize = 8 << 20;
/// Tail of each step scanned again with the next one, so multi-line secrets (PEM keys) that
/// straddle a step boundary are still seen whole.
const CHUNK_OVERLAP: usize = 64 << 10;
/// A file whose first bytes hold a NUL is treated as binary (as git and ripgrep do).
const BINARY_SNIFF_LEN: usize = 8 << 10;

/// A compiled rule set, ready to scan. Cheap to share between threads.
#[derive(Debug)]
pub struct Scanner {
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) allowlists: Vec<CompiledAllowlist>,
    keywords: Option<AhoCorasick>,
    /// For each keyword pattern, the rules it gates.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules with a regex and no keywords: they run on every input.
    unconditional_rules: Vec<usize>,
    pub(crate) max_file_size: u64,
    pub(crate) threads: usize,
}

/// A finding before line numbers are adjusted to its source, with its byte offset in the buffer.
pub(crate) struct Located {
    pub(crate) offset: usize,
    /// Index of the rule, so that when two rules find the same secret the earlier one wins.
    rule: usize,
    pub(crate) finding: Finding,
}

impl Scanner {
    /// Compiles `config`: every regex, and one keyword automaton for all rules.
    pub fn new(config: Config) -> Result<Self, ScanError> {
        let rules: Vec<CompiledRule> = config
            .rules
            .iter()
            .map(crate::rule::Rule::compile)
            .collect::<Result<_, _>>()?;
        let allowlists = config
            .allowlists
            .iter()
            .map(|a| a.compile("allowlist"))
            .collect::<Result<_, _>>()?;
        let mut patterns: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut unconditional_rules = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule.regex.is_none() {
                continue;
            }
            if rule.keywords.is_empty() {
                unconditional_rules.push(index);
            }
            for keyword in &rule.keywords {
                match patterns.iter().position(|p| p == keyword) {
                    Some(at) => keyword_rules[at].push(index),
                    None => {
                        patterns.push(keyword.clone());
                        keyword_rules.push(vec![index]);
                    }
                }
            }
        }
        let keywords = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&patterns)
                    .map_err(ScanError::Keywords)?,
            )
        };
        Ok(Self {
            rules,
            allowlists,
            keywords,
            keyword_rules,
            unconditional_rules,
            max_file_size: config.max_file_size,
            threads: config.threads,
        })
    }

    /// Number of compiled rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Ids and descriptions of the compiled rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rules
            .iter()
            .map(|r| (r.id.as_str(), r.description.as_str()))
    }

    /// Scans one in-memory buffer named `path`.
    pub fn scan_bytes(&self, content: &[u8], path: &str) -> Vec<Finding> {
        let mut found: Vec<Finding> = self
            .find_in(content, path, None)
            .into_iter()
            .map(|l| l.finding)
            .collect();
        found.extend(self.path_findings(path, None));
        found
    }

    /// Scans a stream (standard input, a pipe) in bounded memory; `path` names it in findings.
    pub fn scan_reader<R: Read>(&self, reader: R, path: &str) -> Result<Vec<Finding>, ScanError> {
        let mut found = self
            .scan_stream(reader, path, false)
            .map_err(|source| ScanError::Stream {
                what: path.to_owned(),
                source,
            })?
            .map(|(f, _)| f)
            .unwrap_or_default();
        found.extend(self.path_findings(path, None));
        Ok(found)
    }

    /// True when a global allowlist ignores this whole path, so it need not be read.
    pub(crate) fn path_allowlisted(&self, path: &str) -> bool {
        self.allowlists
            .iter()
            .any(|a| a.target_rules.is_empty() && a.allows_whole_path(path))
    }

    /// Findings of path-only rules (a file whose name alone is the leak, such as `id_rsa`).
    pub(crate) fn path_findings(&self, path: &str, commit: Option<&CommitInfo>) -> Vec<Finding> {
        self.rules
            .iter()
            .filter(|r| r.regex.is_none())
            .filter(|r| r.path.as_ref().is_some_and(|p| p.is_match(path.as_bytes())))
            .map(|r| Finding {
                rule_id: r.id.clone(),
                description: r.description.clone(),
                file: path.to_owned(),
                line: 1,
                column: 1,
                end_line: 1,
                end_column: 1,
                secret: Secret::new(String::new()),
                matched: Secret::new(path.to_owned()),
                entropy: 0.0,
                commit: commit.cloned(),
                fingerprint: fingerprint(&r.id, path, ""),
            })
            .collect()
    }

    /// Reads `reader` in steps of [`CHUNK_SIZE`], scanning each with an overlap. Returns `None`
    /// when `skip_binary` is set and the input looks binary; otherwise the findings and byte count.
    pub(crate) fn scan_stream<R: Read>(
        &self,
        mut reader: R,
        path: &str,
        skip_binary: bool,
    ) -> std::io::Result<Option<(Vec<Finding>, u64)>> {
        let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
        let mut found = Vec::new();
        let mut base_line: u64 = 1;
        let mut total: u64 = 0;
        let mut sniffed = !skip_binary;
        loop {
            let eof = fill(&mut reader, &mut buf, CHUNK_SIZE)?;
            if !sniffed {
                sniffed = true;
                let head = &buf[..buf.len().min(BINARY_SNIFF_LEN)];
                if memchr::memchr(0, head).is_some() {
                    return Ok(None);
                }
            }
            let hits = self.find_in(&buf, path, None);
            if eof {
                total += buf.len() as u64;
                found.extend(hits.into_iter().map(|l| shift(l.finding, base_line)));
                return Ok(Some((found, total)));
            }
            let limit = buf.len().saturating_sub(CHUNK_OVERLAP);
            let commit = memchr::memrchr(b'\n', &buf[..limit]).map_or(limit, |i| i + 1);
            found.extend(
                hits.into_iter()
                    .filter(|l| l.offset < commit)
                    .map(|l| shift(l.finding, base_line)),
            );
            base_line += memchr::memchr_iter(b'\n', &buf[..commit]).count() as u64;
            total += commit as u64;
            buf.drain(..commit);
        }
    }

    /// Runs the rules over one buffer; lines are numbered from 1 at its start.
    pub(crate) fn find_in(
        &self,
        content: &[u8],
        path: &str,
        commit: Option<&CommitInfo>,
    ) -> Vec<Located> {
        let applicable = |index: usize| {
            self.rules[index]
                .path
                .as_ref()
                .is_none_or(|p| p.is_match(path.as_bytes()))
        };
        // (line start, line end, rule) for line-local rules, in order of lines so that what
        // continues a line is looked for once; whole-buffer rules separately.
        let mut windows: Vec<(usize, usize, usize)> = Vec::new();
        let mut whole: Vec<usize> = Vec::new();
        if let Some(ac) = &self.keywords {
            let mut line = (usize::MAX, 0usize);
            for hit in ac.find_overlapping_iter(content) {
                for &index in &self.keyword_rules[hit.pattern().as_usize()] {
                    if !self.rules[index].line_local {
                        whole.push(index);
                        continue;
                    }
                    if !(line.0 <= hit.start() && hit.start() < line.1) {
                        line = line_bounds(content, hit.start());
                    }
                    windows.push((line.0, line.1, index));
                }
            }
        }
        windows.sort_unstable();
        windows.dedup();
        whole.extend(self.unconditional_rules.iter().copied());
        whole.sort_unstable();
        whole.dedup();

        let mut found = Vec::new();
        let at = Place {
            content,
            path,
            commit,
        };
        // The line joined with what continues it on the next lines (see `continued`).
        let mut joined: (usize, Option<Joined>) = (usize::MAX, None);
        for &(start, end, index) in &windows {
            if !applicable(index) {
                continue;
            }
            self.run_rule(index, &at, &content[start..end], &[(0, start)], &mut found);
            if joined.0 != start {
                joined = (start, continued(content, start, end));
            }
            if let Some(next) = &joined.1 {
                self.run_rule(index, &at, &next.text, &next.pieces, &mut found);
            }
        }
        for &index in &whole {
            if applicable(index) {
                self.run_rule(index, &at, content, &[(0, 0)], &mut found);
            }
        }
        number_lines(content, &mut found);
        found
    }

    /// Runs one rule over `hay`, whose bytes `pieces` place in the content (see [`Joined`]).
    fn run_rule(
        &self,
        index: usize,
        at: &Place<'_>,
        hay: &[u8],
        pieces: &[(usize, usize)],
        found: &mut Vec<Located>,
    ) {
        let rule = &self.rules[index];
        let Some(regex) = &rule.regex else { return };
        for caps in regex.captures_iter(hay) {
            if let Some(hit) = self.consider(index, &caps, at, pieces) {
                found.push(hit);
            }
        }
    }

    /// Turns one regex match into a finding, unless entropy, validation or an allowlist rejects it.
    fn consider(
        &self,
        index: usize,
        caps: &Captures<'_>,
        at: &Place<'_>,
        pieces: &[(usize, usize)],
    ) -> Option<Located> {
        let Place {
            content,
            path,
            commit,
        } = *at;
        let rule = &self.rules[index];
        let whole = caps.get(0)?;
        let secret_match = match rule.secret_group {
            Some(group) => caps.get(group)?,
            None => (1..caps.len())
                .filter_map(|g| caps.get(g))
                .find(|m| !m.is_empty())
                .unwrap_or(whole),
        };
        if secret_match.is_empty() {
            return None;
        }
        // A secret in a joined text's synthetic part (a name put before a value) is not in the
        // content: the line holding it is scanned by itself.
        let offset = content_offset(pieces, secret_match.start())?;
        let secret = String::from_utf8_lossy(secret_match.as_bytes()).into_owned();
        let entropy = shannon_entropy(&secret);
        if rule.entropy.is_some_and(|min| entropy < min) {
            return None;
        }
        if rule.validator.is_some_and(|valid| !valid(&secret)) {
            return None;
        }
        let (line_start, line_end) = line_bounds(content, offset);
        let line = &content[line_start..line_end];
        if INLINE_ALLOW
            .iter()
            .any(|marker| memchr::memmem::find(line, marker).is_some())
        {
            return None;
        }
        let candidate = Candidate {
            path,
            commit: commit.map(|c| c.id.as_str()),
            secret: &secret,
            matched: whole.as_bytes(),
            line,
        };
        let global = self.allowlists.iter().filter(|a| a.applies_to(&rule.id));
        if global
            .chain(rule.allowlists.iter())
            .any(|a| a.allows(&candidate))
        {
            return None;
        }
        let column = char_count(&content[line_start..offset]) + 1;
        let newlines = memchr::memchr_iter(b'\n', secret_match.as_bytes()).count() as u64;
        let last_line_start = memchr::memrchr(b'\n', secret_match.as_bytes()).map_or(0, |i| i + 1);
        let tail = char_count(&secret_match.as_bytes()[last_line_start..]);
        let end_column = if newlines == 0 {
            column + tail
        } else {
            tail + 1
        };
        Some(Located {
            offset,
            rule: index,
            finding: Finding {
                rule_id: rule.id.clone(),
                description: rule.description.clone(),
                file: path.to_owned(),
                line: 0,
                column,
                end_line: newlines,
                end_column,
                fingerprint: fingerprint(&rule.id, path, &secret),
                secret: Secret::new(secret),
                matched: Secret::new(String::from_utf8_lossy(whole.as_bytes()).into_owned()),
                entropy,
                commit: commit.cloned(),
            },
        })
    }
}

/// Where a buffer being scanned came from.
#[derive(Clone, Copy)]
struct Place<'a> {
    content: &'a [u8],
    path: &'a str,
    commit: Option<&'a CommitInfo>,
}

/// Text scanned in place of a line: the line joined with what continues it on the next lines.
struct Joined {
    text: Vec<u8>,
    /// (offset in `text`, offset in the content) where each piece copied from the content
    /// starts, in order; text before the first piece was made up (a name for a value).
    pieces: Vec<(usize, usize)>,
}

/// The content offset of offset `at` in a text made of `pieces` (see [`Joined`]), unless it
/// is made up.
fn content_offset(pieces: &[(usize, usize)], at: usize) -> Option<usize> {
    let piece = pieces.partition_point(|&(from, _)| from <= at);
    let (from, content) = *pieces.get(piece.checked_sub(1)?)?;
    Some(content + (at - from))
}

/// Start and end of the line after the one ending at `end`, if any.
fn next_line(content: &[u8], end: usize) -> Option<(usize, usize)> {
    let start = end + 1;
    (start < content.len()).then(|| {
        let end = memchr::memchr(b'\n', &content[start..]).map_or(content.len(), |i| start + i);
        (start, end)
    })
}

/// Lines a command may continue over (`curl -X POST \` then flags on the next lines).
const MAX_CONTINUED_LINES: usize = 8;

/// The line `start..end` joined with what continues it, when something does: the value an XML
/// element (`<apiToken>`) or a YAML block scalar (`api_token: |` or `>`) leaves for the next
/// line, given as an assignment to the element's or key's name; or the lines a trailing
/// backslash continues a command over. So rules written for one line see the whole of it.
fn continued(content: &[u8], start: usize, end: usize) -> Option<Joined> {
    // Most lines end otherwise: decided by their last byte.
    let last = content[start..end].trim_ascii_end().last()?;
    if !b">|-+\\".contains(last) {
        return None;
    }
    let line = content[start..end].trim_ascii();
    if line.ends_with(b"\\") {
        return continued_command(content, start, end);
    }
    let name: &[u8] = match line.split_last()? {
        (b'>', head) if head.first() == Some(&b'<') => {
            let tag = &head[1..];
            let stop = tag
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || b"_.:-".contains(b)))
                .unwrap_or(tag.len());
            let (name, rest) = tag.split_at(stop);
            if name.is_empty() || rest.iter().any(|&b| b == b'<' || b == b'>' || b == b'/') {
                return None;
            }
            name
        }
        _ => {
            let body = line
                .strip_suffix(b"-")
                .or(line.strip_suffix(b"+"))
                .unwrap_or(line);
            let key = body
                .strip_suffix(b"|")
                .or(body.strip_suffix(b">"))?
                .trim_ascii_end()
                .strip_suffix(b":")?;
            if key.is_empty() {
                return None;
            }
            key
        }
    };
    let (next_start, next_end) = next_line(content, end)?;
    let next = &content[next_start..next_end];
    let lead = next.len() - next.trim_ascii_start().len();
    let mut text = Vec::with_capacity(name.len() + 3 + next.len());
    text.extend_from_slice(name);
    text.extend_from_slice(b" = ");
    let pieces = vec![(text.len(), next_start + lead)];
    text.extend_from_slice(&next[lead..]);
    Some(Joined { text, pieces })
}

/// A command continued by trailing backslashes, as one line (each backslash a space).
fn continued_command(content: &[u8], start: usize, end: usize) -> Option<Joined> {
    let mut joined = Joined {
        text: Vec::new(),
        pieces: Vec::new(),
    };
    let mut line = Some((start, end));
    while let Some((from, to)) = line.take() {
        let body = content[from..to].trim_ascii_end();
        let (body, more) = match body.strip_suffix(b"\\") {
            Some(body) => (body, true),
            None => (body, false),
        };
        joined.pieces.push((joined.text.len(), from));
        joined.text.extend_from_slice(body);
        joined.text.push(b' ');
        if more && joined.pieces.len() < MAX_CONTINUED_LINES {
            line = next_line(content, to);
        }
    }
    (joined.pieces.len() > 1).then_some(joined)
}

/// Reads until `buf` holds at least `want` bytes or the input ends; true at end of input.
fn fill<R: Read>(reader: &mut R, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    while buf.len() < want {
        let before = buf.len();
        let read = reader
            .by_ref()
            .take((want - before) as u64)
            .read_to_end(buf)?;
        if read == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Moves a finding numbered from line 1 of a step to the step's place in the whole input.
fn shift(mut finding: Finding, base_line: u64) -> Finding {
    finding.line += base_line - 1;
    finding.end_line += base_line - 1;
    finding
}

/// Keeps one finding per secret position (the earliest rule's), then sets 1-based line numbers
/// from byte offsets (turning `end_line` from a count of line feeds into a line).
fn number_lines(content: &[u8], found: &mut Vec<Located>) {
    found.sort_by_key(|l| (l.offset, l.rule));
    found.dedup_by_key(|l| l.offset);
    let mut at = 0usize;
    let mut line = 1u64;
    for hit in found.iter_mut() {
        line += memchr::memchr_iter(b'\n', &content[at..hit.offset]).count() as u64;
        at = hit.offset;
        hit.finding.end_line += line;
        hit.finding.line = line;
    }
}

/// Start and end (exclusive, before the line feed) of the line holding `offset`.
fn line_bounds(content: &[u8], offset: usize) -> (usize, usize) {
    let start = memchr::memrchr(b'\n', &content[..offset]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &content[offset..]).map_or(content.len(), |i| offset + i);
    (start, end)
}

/// Characters in UTF-8 text: bytes that do not continue a multi-byte sequence.
fn char_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count() as u64
}
