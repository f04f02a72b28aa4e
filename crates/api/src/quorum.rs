//! Bodies of the operations a quorum of unseal-key holders authorises: Vault's `sys/rekey/*`
//! and `sys/generate-root/*`, sent without the response envelope as Vault sends them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `PUT sys/rekey/init` request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RekeyRequest {
    /// How many shares the new unseal key is split into.
    pub secret_shares: u32,
    /// How many of the new shares unseal.
    pub secret_threshold: u32,
}

/// `PUT sys/rekey/update` and `sys/generate-root/update` request: one current share, wiped
/// when the request is dropped.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QuorumShare {
    /// The share, hex or base64: a secret.
    pub key: zeroize::Zeroizing<String>,
    /// The nonce of the operation it is given to.
    pub nonce: String,
}

impl fmt::Debug for QuorumShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuorumShare")
            .field("key", &"<redacted>")
            .field("nonce", &self.nonce)
            .finish()
    }
}

/// `sys/rekey/init` (GET, PUT) and `PUT sys/rekey/update` until the quorum is reached.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RekeyStatus {
    /// Id of the rekey under way; empty when none.
    pub nonce: String,
    /// Whether a rekey is under way.
    pub started: bool,
    /// The new threshold.
    pub t: u32,
    /// The new number of shares.
    pub n: u32,
    /// Current shares given so far.
    pub progress: u32,
    /// Current shares needed (the current threshold).
    pub required: u32,
    /// Always null: Ward does not encrypt shares with PGP.
    pub pgp_fingerprints: Option<Vec<String>>,
    /// Always false: Ward keeps no backup of the shares.
    pub backup: bool,
    /// Always false: Ward does not support `require_verification`.
    pub verification_required: bool,
}

/// `PUT sys/rekey/update` once the quorum is reached: the new shares, shown once.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RekeyResult {
    /// Id of the rekey that ended.
    pub nonce: String,
    /// True: the old shares no longer unseal.
    pub complete: bool,
    /// The new shares, hex-encoded: secrets.
    pub keys: Vec<String>,
    /// The same shares, base64-encoded.
    pub keys_base64: Vec<String>,
    /// Always null (no PGP).
    pub pgp_fingerprints: Option<Vec<String>>,
    /// Always false (no backup).
    pub backup: bool,
    /// Always false (no verification step).
    pub verification_required: bool,
}

impl fmt::Debug for RekeyResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RekeyResult")
            .field("nonce", &self.nonce)
            .field("complete", &self.complete)
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .finish_non_exhaustive()
    }
}

/// What `PUT sys/rekey/update` answers: progress, or the new shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RekeyUpdate {
    /// More shares are needed.
    Progress(RekeyStatus),
    /// The rekey is done.
    Complete(RekeyResult),
}

/// `PUT sys/generate-root/attempt` request: Ward generates the OTP when `otp` is empty.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateRootRequest {
    /// A one-time password of the length `otp_length` gives, or empty.
    pub otp: String,
    /// Not supported by Ward; kept for shape (must be empty).
    pub pgp_key: String,
}

impl fmt::Debug for GenerateRootRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateRootRequest")
            .field("otp", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `sys/generate-root/attempt` and `sys/generate-root/update` response.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateRootStatus {
    /// Id of the attempt under way; empty when none.
    pub nonce: String,
    /// Whether an attempt is under way.
    pub started: bool,
    /// Shares given so far.
    pub progress: u32,
    /// Shares needed.
    pub required: u32,
    /// Whether the new root token has been generated.
    pub complete: bool,
    /// The new root token XORed with the OTP, base64 without padding: a secret once decoded.
    pub encoded_token: String,
    /// The same value, under its older name.
    pub encoded_root_token: String,
    /// Always empty (no PGP).
    pub pgp_fingerprint: String,
    /// The OTP, only in the reply that starts the attempt: a secret.
    pub otp: String,
    /// The length an OTP must have (that of a root token).
    pub otp_length: u32,
}

impl fmt::Debug for GenerateRootStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateRootStatus")
            .field("nonce", &self.nonce)
            .field("started", &self.started)
            .field("progress", &self.progress)
            .field("required", &self.required)
            .field("complete", &self.complete)
            .field("otp_length", &self.otp_length)
            .finish_non_exhaustive()
    }
}

/// Vault's encoding of a generated root token: base64 (standard alphabet, no padding) of the
/// token XORed byte by byte with the OTP, which has the token's length.
pub fn encode_root_token(token: &str, otp: &str) -> Option<String> {
    use base64::Engine as _;
    if token.len() != otp.len() {
        return None;
    }
    let xored: Vec<u8> = token.bytes().zip(otp.bytes()).map(|(t, o)| t ^ o).collect();
    Some(base64::engine::general_purpose::STANDARD_NO_PAD.encode(xored))
}

/// The inverse of [`encode_root_token`]; padding in `encoded` is accepted.
pub fn decode_root_token(encoded: &str, otp: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded.trim().trim_end_matches('='))
        .ok()?;
    if bytes.len() != otp.len() {
        return None;
    }
    let token: Vec<u8> = bytes.iter().zip(otp.bytes()).map(|(b, o)| b ^ o).collect();
    String::from_utf8(token).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_token_encoding_matches_openbao() {
        // Taken from OpenBao 2.7.2: `bao operator generate-root -decode=... -otp=...`
        // printed this token.
        let otp = "jXvBSb8uUEYbfqbPrUsTcwSFZn";
        let encoded = "GXY+MGQsdzxnPRUyLEU6Hgs4RSRXBQQVHF8";
        let token = "s.Hr7NOI2xLPJ4XNym6p4rWSF1";
        assert_eq!(decode_root_token(encoded, otp).as_deref(), Some(token));
        assert_eq!(encode_root_token(token, otp).as_deref(), Some(encoded));
        assert_eq!(decode_root_token(encoded, "short"), None);
        assert_eq!(encode_root_token(token, "short"), None);
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            QuorumShare {
                key: String::from("s3cret-share").into(),
                nonce: "n".into()
            },
            RekeyResult {
                keys: vec!["s3cret-key".into()],
                keys_base64: vec!["s3cret-b64".into()],
                ..RekeyResult::default()
            },
            GenerateRootStatus {
                otp: "s3cret-otp".into(),
                encoded_token: "s3cret-enc".into(),
                encoded_root_token: "s3cret-enc".into(),
                ..GenerateRootStatus::default()
            },
            GenerateRootRequest {
                otp: "s3cret-otp".into(),
                ..GenerateRootRequest::default()
            },
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
