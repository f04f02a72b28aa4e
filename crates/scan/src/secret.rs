//! The matched secret text, kept out of `Debug` output and wiped on drop.

use zeroize::Zeroize;

/// A secret found by a scan. `Debug` shows only its redacted form; the bytes are zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps found text.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The secret in clear, for `--no-redact` reports and tests.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A redacted form safe to print: the first four characters of long secrets, then asterisks.
    /// Short secrets (under 16 characters, such as passwords) show nothing at all.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

/// Redacts `text` as [`Secret::redacted`] does.
pub(crate) fn redact(text: &str) -> String {
    if text.chars().count() >= 16 {
        let prefix: String = text.chars().take(4).collect();
        format!("{prefix}*****")
    } else {
        "*****".to_owned()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.redacted())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let secret = Secret::new("abcdefghijklmnopqrstuvwxyz".to_owned());
        let shown = format!("{secret:?}");
        assert!(!shown.contains("efgh"), "{shown}");
        assert_eq!(secret.redacted(), "abcd*****");
        assert_eq!(Secret::new("hunter22".to_owned()).redacted(), "*****");
    }
}
