//! Shamir's secret sharing over GF(256), through the maintained `blahaj` crate.
//!
//! A share's bytes are `x || y`: one byte of x coordinate, then one byte per secret byte.

use blahaj::{Share, Sharks};

use crate::random::SystemRng;
use crate::{CryptoError, SecretBytes};

/// Splits `secret` into `shares` shares, any `threshold` of which recover it.
///
/// Follows Vault's rules: 1 ≤ threshold ≤ shares ≤ 255, and a threshold of 1 only with a
/// single share (otherwise every share alone would be the whole secret).
pub fn split_secret(
    secret: &[u8],
    shares: u8,
    threshold: u8,
) -> Result<Vec<SecretBytes>, CryptoError> {
    if shares == 0 || threshold == 0 {
        return Err(CryptoError::SharingParameters(
            "shares and threshold must be at least 1",
        ));
    }
    if threshold > shares {
        return Err(CryptoError::SharingParameters(
            "threshold cannot exceed the number of shares",
        ));
    }
    if threshold == 1 && shares > 1 {
        return Err(CryptoError::SharingParameters(
            "threshold must be at least 2 when there is more than one share",
        ));
    }
    if shares == 1 {
        // One share is the secret itself, tagged with x = 1 so every share has one format.
        let mut only = Vec::with_capacity(secret.len() + 1);
        only.push(1);
        only.extend_from_slice(secret);
        return Ok(vec![SecretBytes::new(only)]);
    }
    // The polynomials' coefficients come from the OS CSPRNG (blahaj's `dealer` would use
    // `rand`'s thread-local generator); they are drawn before `dealer_rng` returns.
    let mut rng = SystemRng::default();
    let dealt: Vec<SecretBytes> = Sharks(threshold)
        .dealer_rng(secret, &mut rng)
        .take(usize::from(shares))
        .map(|share| SecretBytes::new(Vec::from(&share)))
        .collect();
    if rng.failed() {
        return Err(CryptoError::Random);
    }
    Ok(dealt)
}

/// Recovers the secret from at least `threshold` distinct shares. Shares from different
/// splits combine into garbage, not an error: callers must authenticate the result (Ward
/// does, by decrypting the root key with it).
pub fn combine_shares(shares: &[SecretBytes], threshold: u8) -> Result<SecretBytes, CryptoError> {
    if threshold == 1 {
        let first = shares
            .first()
            .ok_or(CryptoError::Shares("no shares given"))?;
        let bytes = first.expose();
        if bytes.len() < 2 {
            return Err(CryptoError::Malformed);
        }
        return Ok(SecretBytes::new(bytes[1..].to_vec()));
    }
    let parsed = shares
        .iter()
        .map(|s| Share::try_from(s.expose()).map_err(|_| CryptoError::Malformed))
        .collect::<Result<Vec<_>, _>>()?;
    Sharks(threshold)
        .recover(parsed.iter())
        .map(SecretBytes::new)
        .map_err(|_| CryptoError::Shares("too few distinct shares or mixed lengths"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_subset_recovers_and_fewer_do_not() {
        let secret = [42u8; 32];
        let shares = split_secret(&secret, 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        for combo in [[0, 1, 2], [0, 3, 4], [4, 2, 1]] {
            let picked: Vec<_> = combo.iter().map(|&i| shares[i].duplicate()).collect();
            assert_eq!(combine_shares(&picked, 3).unwrap().expose(), &secret);
        }
        assert!(combine_shares(&shares[..2], 3).is_err());
        let dup = vec![
            shares[0].duplicate(),
            shares[0].duplicate(),
            shares[1].duplicate(),
        ];
        assert!(combine_shares(&dup, 3).is_err());
    }

    #[test]
    fn single_share_round_trips() {
        let shares = split_secret(b"k", 1, 1).unwrap();
        assert_eq!(combine_shares(&shares, 1).unwrap().expose(), b"k");
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(split_secret(b"k", 3, 4).is_err());
        assert!(split_secret(b"k", 3, 1).is_err());
        assert!(split_secret(b"k", 0, 0).is_err());
    }

    #[test]
    fn mixed_splits_do_not_recover_the_secret() {
        let a = split_secret(&[1u8; 32], 3, 2).unwrap();
        let b = split_secret(&[1u8; 32], 3, 2).unwrap();
        let mixed = vec![a[0].duplicate(), b[1].duplicate()];
        if let Ok(out) = combine_shares(&mixed, 2) {
            assert_ne!(out.expose(), &[1u8; 32]);
        }
    }
}
