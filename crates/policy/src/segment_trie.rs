//! An index of `+` patterns: a trie over path segments, so a check follows at most the
//! literal child and the `+` child at each level instead of trying every pattern.

use crate::acl::PathMap;
use crate::pattern::SegmentPattern;

/// The `+` patterns of an ACL, each known by its rank (0 = highest priority).
#[derive(Debug, Clone, Default)]
pub(crate) struct SegmentTrie {
    root: Node,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Children for a literal segment.
    literal: PathMap<Node>,
    /// The child for a `+` segment.
    any: Option<Box<Node>>,
    /// The pattern without trailing `*` whose segments all lie on the way here: it matches a
    /// path that ends here.
    end: Option<usize>,
    /// Patterns ending in `*` whose last segment (a literal, since `+*` is forbidden) hangs
    /// here: they match when the path's next segment starts with that literal, whatever
    /// follows.
    tails: Vec<(Box<str>, usize)>,
}

impl SegmentTrie {
    /// Adds `pattern` with its `rank`.
    pub(crate) fn insert(&mut self, pattern: &SegmentPattern, rank: usize) {
        let segments: Vec<Option<&str>> = pattern.segments().collect();
        let (walk, tail) = match (pattern.is_prefix(), segments.split_last()) {
            (true, Some((Some(last), init))) => (init, Some(*last)),
            _ => (segments.as_slice(), None),
        };
        let mut node = &mut self.root;
        for segment in walk {
            node = match segment {
                None => node.any.get_or_insert_with(Box::default),
                Some(literal) => node.literal.entry((*literal).into()).or_default(),
            };
        }
        match tail {
            Some(literal) => node.tails.push((literal.into(), rank)),
            None => node.end = Some(node.end.map_or(rank, |old| old.min(rank))),
        }
    }

    /// The rank of the highest-priority pattern matching `path`, if any.
    pub(crate) fn best_match(&self, path: &str) -> Option<usize> {
        let mut best = None;
        walk(&self.root, Some(path), &mut best);
        best
    }
}

/// Visits every pattern matching the rest of the path; `rest` is `None` once every segment
/// has been consumed (so `"a/"` has two segments, the second empty, as in Vault's split).
fn walk(node: &Node, rest: Option<&str>, best: &mut Option<usize>) {
    let mut consider = |rank: usize| {
        if best.is_none_or(|current| rank < current) {
            *best = Some(rank);
        }
    };
    let Some(rest) = rest else {
        if let Some(rank) = node.end {
            consider(rank);
        }
        return;
    };
    let (segment, after) = match rest.split_once('/') {
        Some((segment, after)) => (segment, Some(after)),
        None => (rest, None),
    };
    for (literal, rank) in &node.tails {
        if segment.starts_with(&**literal) {
            consider(*rank);
        }
    }
    if let Some(child) = node.literal.get(segment) {
        walk(child, after, best);
    }
    if let Some(child) = &node.any {
        walk(child, after, best);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trie must agree with Vault's loop (`SegmentPattern::matches` on each pattern,
    /// best priority wins) on every path, here on all short paths over a small alphabet.
    #[test]
    fn trie_agrees_with_the_linear_scan() {
        let patterns = [
            "+", "+/a", "a/+", "+/+", "a/+/b", "a/+/b*", "+/+/*", "a/+/*", "+/ab*", "a/+/", "+//",
            "b/+/a/+", "+/a/+", "+/+/a", "a+b/+/c", "+/b/*",
        ];
        let mut compiled: Vec<SegmentPattern> =
            patterns.iter().map(|p| SegmentPattern::new(p)).collect();
        compiled.sort_by(|a, b| b.priority().cmp(&a.priority()));
        let mut trie = SegmentTrie::default();
        for (rank, pattern) in compiled.iter().enumerate() {
            trie.insert(pattern, rank);
        }
        let pieces = ["a", "b", "ab", "", "a+b", "c"];
        let mut paths = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for prefix in &frontier {
                for piece in pieces {
                    let path = if prefix.is_empty() && next.len() < pieces.len() {
                        piece.to_owned()
                    } else {
                        format!("{prefix}/{piece}")
                    };
                    next.push(path);
                }
            }
            paths.extend(next.iter().cloned());
            frontier = next;
        }
        for path in &paths {
            let segments = path.split('/').count();
            let linear = compiled.iter().position(|p| p.matches(path, segments));
            assert_eq!(trie.best_match(path), linear, "{path:?}");
        }
        assert!(paths.len() > 1000);
    }
}
