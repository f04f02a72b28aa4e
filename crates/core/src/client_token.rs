//! The client token a request carries.

use zeroize::Zeroizing;

/// A client token as sent with a request. The text is wiped when the token is dropped and
/// `Debug` shows none of it. Not `Clone`: a second copy is made with [`Token::duplicate`],
/// so every copy of a credential is visible in the code. No `PartialEq`: tokens are found
/// by their hash in the token store, never compared with each other.
pub struct Token(Zeroizing<String>);

impl Token {
    /// The token `text` (taken as sent; the transport trims it).
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    /// The token's text, for hashing or for the response that hands it back.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A second owned copy, wiped on drop like the first.
    pub fn duplicate(&self) -> Self {
        Self::new(self.expose())
    }
}

impl From<String> for Token {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Token {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn debug_shows_no_token_text() {
        let token = Token::new("wrd_s3cretTokenText");
        let shown = format!("{token:?} {:?} {:#?}", Some(&token), token.duplicate());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(token.duplicate().expose(), "wrd_s3cretTokenText");
    }
}
