//! Key rules and `list` folding shared by every backend, so that they all accept the same
//! keys and answer `list` the same way.

use crate::backend::StoreError;

/// The longest key, in bytes, that a backend accepts. Keys reach the backends already
/// encrypted by the barrier, which turns each path segment into at least a 16-byte tag in
/// base64: the barrier's worst case (a 2048-byte logical key of one-byte segments) comes to
/// about 25 KiB, well inside this bound, which still stops absurd keys early.
pub const MAX_BACKEND_KEY_LEN: usize = 64 * 1024;

/// Checks that `key` can name an entry: non-empty, no NUL byte, no trailing `/` (that
/// spelling is reserved for folders in [`list`](crate::Storage::list) answers), and at most
/// [`MAX_BACKEND_KEY_LEN`] bytes.
pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_BACKEND_KEY_LEN || key.contains('\0') || key.ends_with('/')
    {
        return Err(StoreError::InvalidKey);
    }
    Ok(())
}

/// Checks that `prefix` is a folder a `list` can be asked about: empty (the root) or ending
/// in `/`, with no NUL byte and at most [`MAX_BACKEND_KEY_LEN`] bytes.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.len() > MAX_BACKEND_KEY_LEN
        || prefix.contains('\0')
        || !(prefix.is_empty() || prefix.ends_with('/'))
    {
        return Err(StoreError::InvalidKey);
    }
    Ok(())
}

/// The smallest string greater than every string that starts with `folder`, where `folder`
/// ends in `/`: the same string with that `/` replaced by `0`, the next byte up.
///
/// `key >= folder && key < folder_end(folder)` then selects exactly the keys inside `folder`,
/// because keys compare as bytes (Rust `str` order, SQLite `BINARY` collation, PostgreSQL
/// `COLLATE "C"`).
pub(crate) fn folder_end(folder: &str) -> Option<String> {
    let stem = folder.strip_suffix('/')?;
    let mut end = String::with_capacity(folder.len());
    end.push_str(stem);
    end.push('0');
    Some(end)
}

/// The immediate child of `prefix` that `key` lies in: the leaf name itself, or the
/// sub-folder's name with its trailing `/`. `None` when `key` is not under `prefix`.
pub(crate) fn child_of<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    let rest = key.strip_prefix(prefix)?;
    if rest.is_empty() {
        return None;
    }
    Some(match rest.find('/') {
        Some(slash) => &rest[..=slash],
        None => rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert!(validate_key("a").is_ok());
        assert!(validate_key("a/b").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("a\0b").is_err());
        assert!(validate_key("a/").is_err());
        assert!(validate_key(&"k".repeat(MAX_BACKEND_KEY_LEN)).is_ok());
        assert!(validate_key(&"k".repeat(MAX_BACKEND_KEY_LEN + 1)).is_err());
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("a/").is_ok());
        assert!(validate_prefix("a").is_err());
        assert!(validate_prefix("a\0/").is_err());
    }

    #[test]
    fn folder_end_bounds_the_folder() {
        assert_eq!(folder_end("a/").as_deref(), Some("a0"));
        assert_eq!(folder_end("a"), None);
        let end = folder_end("a/").unwrap_or_default();
        assert!("a/zzz" < end.as_str());
        assert!("a0" >= end.as_str());
        assert!("a." < "a/");
    }

    #[test]
    fn child_names() {
        assert_eq!(child_of("", "a"), Some("a"));
        assert_eq!(child_of("", "a/b/c"), Some("a/"));
        assert_eq!(child_of("a/", "a/b/c"), Some("b/"));
        assert_eq!(child_of("a/", "a/b"), Some("b"));
        assert_eq!(child_of("a/", "b/c"), None);
    }
}
