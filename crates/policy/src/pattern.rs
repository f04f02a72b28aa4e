//! Path patterns: how Vault classifies them and how it ranks several that match one path.

use std::cmp::Ordering;

/// How a rule pattern matches, as Vault classifies it when parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternKind<'a> {
    /// No glob and no `+` segment: matches that path only.
    Exact(&'a str),
    /// A trailing `*` and no `+` segment: matches every path starting with this prefix.
    Prefix(&'a str),
    /// At least one `+` segment (optionally with a trailing `*`).
    Segment,
}

/// Classifies a pattern (leading `/` already stripped) exactly as Vault's parser does: a
/// pattern has `+` segments when it is `+`, starts with `+/` or contains `/+`; only then is
/// a trailing `*` kept for segment matching instead of making a plain prefix.
pub(crate) fn classify(pattern: &str) -> PatternKind<'_> {
    if pattern == "+" || pattern.starts_with("+/") || pattern.contains("/+") {
        PatternKind::Segment
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        PatternKind::Prefix(prefix)
    } else {
        PatternKind::Exact(pattern)
    }
}

/// The rank of a non-exact pattern among several that match the same path; greater wins.
/// Vault's documented order, in turn:
/// 1. the later the first `+` or `*`, the higher;
/// 2. not ending in `*` beats ending in `*`;
/// 3. fewer `+` segments beat more;
/// 4. longer beats shorter;
/// 5. lexically greater beats smaller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Priority<'a> {
    /// Byte index of the first `+` (segment patterns) or of the `*` (plain prefixes).
    pub(crate) first_wildcard: usize,
    /// Whether the pattern ends in `*`.
    pub(crate) is_prefix: bool,
    /// How many segments are exactly `+`.
    pub(crate) plus_segments: usize,
    /// The pattern without its trailing `*`.
    pub(crate) path: &'a str,
}

impl<'a> Priority<'a> {
    /// The rank of a plain glob (`prefix*`, no `+` segment).
    pub(crate) fn of_prefix(prefix: &'a str) -> Priority<'a> {
        Priority {
            first_wildcard: prefix.len(),
            is_prefix: true,
            plus_segments: 0,
            path: prefix,
        }
    }
}

impl Ord for Priority<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.first_wildcard
            .cmp(&other.first_wildcard)
            .then_with(|| other.is_prefix.cmp(&self.is_prefix))
            .then_with(|| other.plus_segments.cmp(&self.plus_segments))
            .then_with(|| self.path.len().cmp(&other.path.len()))
            .then_with(|| self.path.cmp(other.path))
    }
}

impl PartialOrd for Priority<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One segment of a `+` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `+`: any single segment (even an empty one).
    Any,
    /// Must equal the path's segment (or, as the last segment of a `*` pattern, prefix it).
    Literal(Box<str>),
}

/// A pattern with `+` segments, split once so that matching allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct SegmentPattern {
    segments: Box<[Segment]>,
    first_wildcard: usize,
    is_prefix: bool,
    plus_segments: usize,
    /// The pattern without its trailing `*`.
    body: Box<str>,
}

impl SegmentPattern {
    /// Compiles a pattern that [`classify`] called [`PatternKind::Segment`].
    pub(crate) fn new(pattern: &str) -> SegmentPattern {
        let (body, is_prefix) = match pattern.strip_suffix('*') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        let segments: Box<[Segment]> = body
            .split('/')
            .map(|part| match part {
                "+" => Segment::Any,
                literal => Segment::Literal(literal.into()),
            })
            .collect();
        let plus_segments = segments.iter().filter(|s| **s == Segment::Any).count();
        SegmentPattern {
            segments,
            // Vault takes the first '+' anywhere in the pattern, even inside a segment.
            first_wildcard: pattern.find('+').unwrap_or(0),
            is_prefix,
            plus_segments,
            body: body.into(),
        }
    }

    /// This pattern's rank among matching patterns.
    pub(crate) fn priority(&self) -> Priority<'_> {
        Priority {
            first_wildcard: self.first_wildcard,
            is_prefix: self.is_prefix,
            plus_segments: self.plus_segments,
            path: &self.body,
        }
    }

    /// Whether the pattern matches `mount` (which ends in `/`) or some path below it.
    pub(crate) fn may_match_under(&self, mount: &str) -> bool {
        let last = self.segments.len().saturating_sub(1);
        for (i, part) in mount.trim_end_matches('/').split('/').enumerate() {
            match self.segments.get(i) {
                None => return false,
                Some(Segment::Any) => {}
                Some(Segment::Literal(literal)) if i == last && self.is_prefix => {
                    return part.starts_with(&**literal);
                }
                Some(Segment::Literal(literal)) if **literal == *part => {}
                Some(Segment::Literal(_)) => return false,
            }
        }
        true
    }

    /// The segments: `None` for `+`, `Some(literal)` otherwise.
    pub(crate) fn segments(&self) -> impl Iterator<Item = Option<&str>> {
        self.segments.iter().map(|segment| match segment {
            Segment::Any => None,
            Segment::Literal(literal) => Some(&**literal),
        })
    }

    /// Whether the pattern ends in `*`.
    pub(crate) fn is_prefix(&self) -> bool {
        self.is_prefix
    }

    /// Whether `path`, which has `path_segments` segments, matches, transcribing Vault's
    /// loop: a `+` takes one whole segment; with a trailing `*` the last pattern segment need
    /// only prefix the path's segment and further path segments are allowed. The ACL uses
    /// [`crate::segment_trie::SegmentTrie`]; this is the reference it is tested against.
    #[cfg(test)]
    pub(crate) fn matches(&self, path: &str, path_segments: usize) -> bool {
        let wanted = self.segments.len();
        let is_prefix = self.is_prefix;
        if path_segments < wanted || (!is_prefix && path_segments != wanted) {
            return false;
        }
        let last = wanted - 1;
        self.segments
            .iter()
            .zip(path.split('/'))
            .enumerate()
            .all(|(index, (segment, part))| match segment {
                Segment::Any => true,
                Segment::Literal(literal) => {
                    &**literal == part
                        || (is_prefix && index == last && part.starts_with(&**literal))
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether pattern `a` outranks pattern `b`.
    fn outranks(a: &str, b: &str) -> bool {
        let (a, b) = (compile(a), compile(b));
        rank(&a) > rank(&b)
    }

    enum Compiled<'a> {
        Segment(SegmentPattern),
        Prefix(&'a str),
    }

    fn compile(pattern: &str) -> Compiled<'_> {
        match classify(pattern) {
            PatternKind::Segment => Compiled::Segment(SegmentPattern::new(pattern)),
            PatternKind::Prefix(prefix) => Compiled::Prefix(prefix),
            PatternKind::Exact(_) => panic!("exact patterns have no priority"),
        }
    }

    fn rank<'a>(compiled: &'a Compiled<'a>) -> Priority<'a> {
        match compiled {
            Compiled::Segment(pattern) => pattern.priority(),
            Compiled::Prefix(prefix) => Priority::of_prefix(prefix),
        }
    }

    #[test]
    fn classification_follows_vault() {
        assert_eq!(classify("secret/foo"), PatternKind::Exact("secret/foo"));
        assert_eq!(classify("secret/*"), PatternKind::Prefix("secret/"));
        assert_eq!(classify("*"), PatternKind::Prefix(""));
        assert_eq!(classify("secret/+/x"), PatternKind::Segment);
        assert_eq!(classify("+"), PatternKind::Segment);
        assert_eq!(classify("+/x*"), PatternKind::Segment);
        // A '+' inside a segment is not a wildcard: these are plain patterns.
        assert_eq!(classify("a+b/c"), PatternKind::Exact("a+b/c"));
        assert_eq!(classify("a+b/*"), PatternKind::Prefix("a+b/"));
    }

    #[test]
    fn documented_priority_examples() {
        // Rule 1: foo/a* over foo/+; foo/bar/+/baz over foo/+/bar/baz.
        assert!(outranks("foo/a*", "foo/+"));
        assert!(outranks("foo/bar/+/baz", "foo/+/bar/baz"));
        // Rule 2: foo/+/bar over foo/+/ba*; foo/+ over foo/*.
        assert!(outranks("foo/+/bar", "foo/+/ba*"));
        assert!(outranks("foo/+", "foo/*"));
        // Rule 3: secret/* over secret/+/+/foo/*.
        assert!(outranks("secret/*", "secret/+/+/foo/*"));
        // Rule 4: foo/+/bar/ba* over foo/+/bar/b*.
        assert!(outranks("foo/+/bar/ba*", "foo/+/bar/b*"));
        // Rule 5: lexically greater wins when all else is equal.
        assert!(outranks("foo/+/b", "foo/+/a"));
    }

    #[test]
    fn segment_matching() {
        let p = SegmentPattern::new("secret/+/teamb");
        assert!(p.matches("secret/x/teamb", 3));
        assert!(p.matches("secret//teamb", 3));
        assert!(!p.matches("secret/x/y/teamb", 4));
        assert!(!p.matches("secret/x/teambb", 3));
        let p = SegmentPattern::new("secret/+/team*");
        assert!(p.matches("secret/x/teamb", 3));
        assert!(p.matches("secret/x/team/deep/er", 5));
        assert!(!p.matches("secret/x", 2));
        assert!(!p.matches("secret/x/tea", 3));
    }
}
