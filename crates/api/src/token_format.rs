//! The shape of a Ward token: [`PREFIX`], [`RANDOM_LEN`] random base62 characters, then
//! [`CHECKSUM_LEN`] base62 digits (most significant first) of the CRC-32 of the random part.
//! The prefix lets scanners find leaked tokens; the checksum lets them tell a real token from a
//! look-alike without asking a server. The server mints tokens and the scanner recognises them
//! by this one definition.

/// The base62 digits, in order of value.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What every Ward token starts with.
pub const PREFIX: &str = "wrd_";

/// Random base62 characters after the prefix.
pub const RANDOM_LEN: usize = 32;

/// Base62 digits of the checksum, after the random part.
pub const CHECKSUM_LEN: usize = 6;

/// Characters in a whole token.
pub const LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;

/// The token whose random part is `random` (which should be [`RANDOM_LEN`] base62 characters).
pub fn token_from_random(random: &str) -> String {
    let checksum = checksum(random);
    let mut token = String::with_capacity(LEN);
    token.push_str(PREFIX);
    token.push_str(random);
    token.extend(checksum.iter().map(|&digit| char::from(digit)));
    token
}

/// The checksum digits of a random part.
pub fn checksum(random: &str) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(random.as_bytes());
    let mut digits = [BASE62[0]; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits
}

/// True when `text` is a Ward token: the prefix, the length, base62 after the prefix and a right
/// checksum.
pub fn looks_like_token(text: &str) -> bool {
    let Some(body) = text.strip_prefix(PREFIX) else {
        return false;
    };
    if body.len() != RANDOM_LEN + CHECKSUM_LEN || !body.bytes().all(|b| BASE62.contains(&b)) {
        return false;
    }
    let (random, check) = body.split_at(RANDOM_LEN);
    check.as_bytes() == checksum(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_crc32_in_base62_most_significant_first() {
        // Known answers: the CRC-32 of this random part, 0x1a7baede, is 0U4IBi in base62.
        let random = "0123456789abcdefghijABCDEFGHIJkl";
        assert_eq!(&checksum(random), b"0U4IBi");
        assert_eq!(&checksum(&"A".repeat(RANDOM_LEN)), b"3Ae0o2");
        let token = token_from_random(random);
        assert_eq!(token, format!("wrd_{random}0U4IBi"));
        assert_eq!(token.len(), LEN);
    }

    /// Moved from ward-scan, which recognises tokens with [`looks_like_token`].
    #[test]
    fn ward_checksum() {
        let random = "0123456789abcdefghijABCDEFGHIJkl";
        assert!(looks_like_token(&format!("wrd_{random}0U4IBi")));
        assert!(!looks_like_token(&format!("wrd_{random}000000")));
        assert!(!looks_like_token("wrd_short"));
        assert!(!looks_like_token(&format!("wrd_{random}0U4IB")));
        assert!(!looks_like_token(&format!("hvs_{random}0U4IBi")));
    }
}
