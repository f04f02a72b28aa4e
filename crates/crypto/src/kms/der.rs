//! The little DER the engine needs: reading the TLVs of PKCS#8 and ECDSA signatures.

use crate::CryptoError;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;

/// Splits one TLV off `input`: (tag, content, rest).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CryptoError> {
    let (&tag, rest) = input.split_first().ok_or(CryptoError::Malformed)?;
    let (&first, mut rest) = rest.split_first().ok_or(CryptoError::Malformed)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(CryptoError::Malformed);
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return Err(CryptoError::Malformed);
    }
    let (content, rest) = rest.split_at(len);
    Ok((tag, content, rest))
}

fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), CryptoError> {
    let (tag, content, rest) = tlv(input)?;
    if tag != want {
        return Err(CryptoError::Malformed);
    }
    Ok((content, rest))
}

/// The `RSAPrivateKey` (PKCS#1) inside a PKCS#8 `PrivateKeyInfo`.
pub(crate) fn pkcs8_inner_key(pkcs8: &[u8]) -> Result<&[u8], CryptoError> {
    let (info, _) = expect(pkcs8, SEQUENCE)?;
    let (_, rest) = expect(info, INTEGER)?;
    let (_, rest) = expect(rest, SEQUENCE)?;
    let (key, _) = expect(rest, OCTET_STRING)?;
    Ok(key)
}

/// An ASN.1 `ECDSA-Sig-Value` to the fixed `r || s` form of JWS, each `field_len` bytes.
pub(crate) fn ecdsa_der_to_fixed(der: &[u8], field_len: usize) -> Result<Vec<u8>, CryptoError> {
    let (seq, _) = expect(der, SEQUENCE)?;
    let (r, rest) = expect(seq, INTEGER)?;
    let (s, _) = expect(rest, INTEGER)?;
    let mut out = Vec::with_capacity(2 * field_len);
    for int in [r, s] {
        let int = match int.iter().position(|b| *b != 0) {
            Some(i) => &int[i..],
            None => &[][..],
        };
        if int.len() > field_len {
            return Err(CryptoError::Malformed);
        }
        out.extend(std::iter::repeat_n(0u8, field_len - int.len()));
        out.extend_from_slice(int);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_form_pads_and_strips() {
        // SEQUENCE { INTEGER 0x00ff, INTEGER 0x01 }
        let der = [0x30, 0x07, 0x02, 0x02, 0x00, 0xff, 0x02, 0x01, 0x01];
        assert_eq!(ecdsa_der_to_fixed(&der, 2).unwrap(), vec![0, 0xff, 0, 1]);
        assert!(ecdsa_der_to_fixed(&der[..5], 2).is_err());
        assert!(ecdsa_der_to_fixed(&[0x30, 0x81], 2).is_err());
    }
}
