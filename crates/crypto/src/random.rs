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

/// Random bytes drawn from aws-lc per refill of the nonce pool.
const NONCE_POOL_BYTES: usize = 1024;

thread_local! {
    /// Random bytes not yet handed out, per thread.
    static NONCE_POOL: std::cell::RefCell<NoncePool> =
        const { std::cell::RefCell::new(NoncePool { bytes: [0; NONCE_POOL_BYTES], used: NONCE_POOL_BYTES }) };
}

struct NoncePool {
    bytes: [u8; NONCE_POOL_BYTES],
    used: usize,
}

/// A random AEAD nonce. The bytes come from the same CSPRNG as [`fill_random`], drawn a
/// kilobyte at a time: aws-lc mixes an RDRAND read into every call, which costs several
/// times the AES-GCM seal of a kilobyte, and a nonce is public (it is sent with the
/// ciphertext), so holding a few dozen of them in advance exposes nothing.
pub fn random_nonce<const N: usize>() -> Result<[u8; N], CryptoError> {
    const { assert!(N <= NONCE_POOL_BYTES) };
    NONCE_POOL.with_borrow_mut(|pool| {
        if pool.used + N > NONCE_POOL_BYTES {
            fill_random(&mut pool.bytes)?;
            pool.used = 0;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&pool.bytes[pool.used..pool.used + N]);
        // Each byte is handed out once: `used` only moves forward until the next refill.
        pool.used += N;
        Ok(out)
    })
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random string of `len` characters from `[0-9A-Za-z]`, without modulo bias
/// (bytes ≥ 248 are rejected and redrawn).
pub fn random_base62(len: usize) -> Result<String, CryptoError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf)?;
        for &b in &buf {
            if b < 248 && out.len() < len {
                out.push(char::from(BASE62[usize::from(b % 62)]));
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
        // Several refills of the pool.
        for _ in 0..(4 * NONCE_POOL_BYTES / 12) {
            assert!(seen.insert(random_nonce::<12>().unwrap()));
        }
        let other = std::thread::spawn(|| random_nonce::<12>().unwrap())
            .join()
            .unwrap();
        assert!(seen.insert(other));
    }

    #[test]
    fn base62_has_the_requested_length_and_alphabet() {
        let s = random_base62(100).unwrap();
        assert_eq!(s.len(), 100);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, random_base62(100).unwrap());
    }
}
