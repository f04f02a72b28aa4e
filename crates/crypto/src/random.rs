//! Randomness, always from the operating system's CSPRNG (through aws-lc-rs).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::CryptoError;

/// Fills `buf` with random bytes.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| CryptoError::Random)
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, CryptoError> {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf)?;
    Ok(buf)
}

/// A random fixed-size array.
pub fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut buf = [0u8; N];
    fill_random(&mut buf)?;
    Ok(buf)
}

/// A random AEAD nonce, drawn from aws-lc's CSPRNG on each call. No bytes are held in
/// advance: aws-lc reseeds after a fork and on a VM snapshot being resumed (it tracks both),
/// which a pool kept in this process would not see, so a forked child or a restored
/// snapshot could hand out the nonces the parent or the original also used.
pub fn random_nonce<const N: usize>() -> Result<[u8; N], CryptoError> {
    random_array::<N>()
}

/// The operating system's CSPRNG (through aws-lc) as a `rand` generator, for libraries
/// that draw from one (Shamir's polynomial coefficients). The traits cannot fail, so a
/// failure of the CSPRNG is recorded rather than returned: the caller must check
/// [`Self::failed`] after use and discard what it made.
#[derive(Default)]
pub(crate) struct SystemRng {
    failed: bool,
}

impl SystemRng {
    /// Whether any draw failed (the output drawn since is then worthless).
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }
}

impl rand_core::TryRng for SystemRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut buf = [0u8; 4];
        self.try_fill_bytes(&mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut buf = [0u8; 8];
        self.try_fill_bytes(&mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        if fill_random(dst).is_err() {
            self.failed = true;
            dst.fill(0);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SystemRng {}

/// A random string of `len` characters drawn from `alphabet` (ASCII, not empty), without
/// modulo bias: bytes at or past the last whole multiple of the alphabet's length are redrawn.
pub fn random_chars(alphabet: &[u8], len: usize) -> Result<String, CryptoError> {
    if alphabet.is_empty() || !alphabet.is_ascii() {
        return Err(CryptoError::Unsupported);
    }
    let unbiased = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf)?;
        for &b in &buf {
            if usize::from(b) < unbiased && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_never_repeated() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(random_nonce::<12>().unwrap()));
        }
        let other = std::thread::spawn(|| random_nonce::<12>().unwrap())
            .join()
            .unwrap();
        assert!(seen.insert(other));
    }

    #[test]
    fn the_system_rng_draws_fresh_bytes() {
        use rand_core::Rng;
        let mut rng = SystemRng::default();
        let (a, b) = (rng.next_u64(), rng.next_u64());
        assert_ne!(a, b);
        let mut buf = [0u8; 64];
        rng.fill_bytes(&mut buf);
        assert!(buf.iter().any(|&x| x != 0));
        assert!(!rng.failed());
    }

    #[test]
    fn base62_has_the_requested_length_and_alphabet() {
        let base62: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        let s = random_chars(&base62, 100).unwrap();
        assert_eq!(s.len(), 100);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, random_chars(&base62, 100).unwrap());
        assert!(random_chars(b"", 1).is_err());
        assert!(random_chars("é".as_bytes(), 1).is_err());
    }
}
