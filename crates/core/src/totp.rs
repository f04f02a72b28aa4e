//! Time-based one-time passwords (RFC 6238) as the second factor of a login.
//!
//! Enrolment makes a 160-bit secret (RFC 4226's recommended length) and hands it out once,
//! as the `otpauth://` URL authenticator apps read and as a QR code of that URL. The secret is
//! kept in the user's record behind the barrier and never shown again. A passcode is six
//! digits for a 30-second step, SHA-1, as every authenticator app defaults to; the steps
//! either side of now are accepted for clock drift. A step's code works once: the last step
//! used is stored with the secret and only later steps are accepted (RFC 6238, section 5.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::{CoreError, CoreResult};

/// The issuer authenticator apps show beside the account.
const ISSUER: &str = "Ward";
const SECRET_LEN: usize = 20;
const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one.
const SKEW_STEPS: u64 = 1;
/// Pixels per QR module, and the quiet zone around the code in modules (the standard's 4).
const QR_SCALE: usize = 6;
const QR_QUIET_ZONE: usize = 4;

/// A user's enrolled TOTP secret. No `Debug`: it holds the secret.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct TotpSecret {
    /// The secret, base64.
    secret: String,
    /// The last step whose code was accepted; 0 before the first.
    last_step: u64,
}

impl TotpSecret {
    /// A fresh secret for `account`, and what enrolment answers: Vault's `url` and `barcode`
    /// (a PNG of the URL's QR code, base64), as its TOTP MFA method's `generate` does.
    pub(crate) fn enrol(account: &str) -> CoreResult<(Self, Value)> {
        let secret = Zeroizing::new(ward_crypto::random_array::<SECRET_LEN>()?);
        let url = Zeroizing::new(totp(&secret[..], account)?.get_url());
        let barcode = qr_png(&url)?;
        let enrolled = Self {
            secret: B64.encode(&secret[..]),
            last_step: 0,
        };
        Ok((
            enrolled,
            json!({ "url": *url, "barcode": B64.encode(barcode) }),
        ))
    }

    /// The step `passcode` is the code of at Unix time `now`, if it is one of the accepted
    /// steps and later than the last one used. The caller stores it as the new last step.
    pub(crate) fn accept(&self, passcode: &str, now: u64) -> CoreResult<Option<u64>> {
        let passcode = passcode.trim();
        if passcode.len() != DIGITS || !passcode.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let secret = Zeroizing::new(
            B64.decode(&self.secret)
                .map_err(|_| CoreError::corrupt("TOTP secret"))?,
        );
        let totp = totp(&secret, "")?;
        let current = now / STEP_SECONDS;
        let window = current.saturating_sub(SKEW_STEPS)..=current + SKEW_STEPS;
        // Every step of the window is computed and compared, matched or not, so the time
        // taken says nothing about which step a guess was near.
        let mut matched = None;
        for step in window {
            let code = Zeroizing::new(totp.generate(step * STEP_SECONDS));
            if bool::from(code.as_bytes().ct_eq(passcode.as_bytes())) && step > self.last_step {
                matched = Some(step);
            }
        }
        Ok(matched)
    }

    /// This secret with `step` recorded as used.
    pub(crate) fn used(self, step: u64) -> Self {
        Self {
            last_step: step,
            ..self
        }
    }
}

fn totp(secret: &[u8], account: &str) -> CoreResult<TOTP> {
    // The otpauth label is `issuer:account`; a colon inside the account would split it.
    let account = account.replace(':', "_");
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        SKEW_STEPS as u8,
        STEP_SECONDS,
        secret.to_vec(),
        Some(ISSUER.to_string()),
        account,
    )
    .map_err(|_| CoreError::Invariant("TOTP parameters are valid"))
}

/// A greyscale PNG of `text`'s QR code, black modules on white with the quiet zone.
fn qr_png(text: &str) -> CoreResult<Vec<u8>> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|_| CoreError::Invariant("an otpauth URL fits a QR code"))?;
    let modules = code.width();
    let side = (modules + 2 * QR_QUIET_ZONE) * QR_SCALE;
    let colors = code.to_colors();
    let mut pixels = Zeroizing::new(vec![0xffu8; side * side]);
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i % modules + QR_QUIET_ZONE, i / modules + QR_QUIET_ZONE);
            for y in my * QR_SCALE..(my + 1) * QR_SCALE {
                pixels[y * side + mx * QR_SCALE..y * side + (mx + 1) * QR_SCALE].fill(0);
            }
        }
    }
    let mut png = Vec::new();
    let size = u32::try_from(side).map_err(|_| CoreError::Invariant("a QR code fits a PNG"))?;
    let mut encoder = png::Encoder::new(&mut png, size, size);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let encode = |_| CoreError::Invariant("a PNG encodes into memory");
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(&pixels).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_at(secret: &TotpSecret, time: u64) -> String {
        let bytes = B64.decode(&secret.secret).unwrap();
        totp(&bytes, "").unwrap().generate(time)
    }

    #[test]
    fn the_rfc_6238_sha1_vectors_hold() {
        // RFC 6238 appendix B, SHA-1, truncated to six digits (the last six of eight).
        let secret = TotpSecret {
            secret: B64.encode(b"12345678901234567890"),
            last_step: 0,
        };
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(&secret, time), eight[2..]);
        }
    }

    #[test]
    fn a_code_is_accepted_within_one_step_and_once() {
        let (secret, _) = TotpSecret::enrol("alice").unwrap();
        let now = 1_800_000_000;
        let code = code_at(&secret, now);
        let step = secret.accept(&code, now).unwrap().unwrap();
        assert_eq!(step, now / 30);
        // Drift of one step either way is accepted; two is not.
        assert_eq!(secret.accept(&code, now + 30).unwrap(), Some(step));
        assert_eq!(secret.accept(&code, now - 30).unwrap(), Some(step));
        assert_eq!(secret.accept(&code, now + 60).unwrap(), None);
        // Once used, the code and those of earlier steps are refused.
        let used = secret.used(step);
        assert_eq!(used.accept(&code, now).unwrap(), None);
        assert_eq!(used.accept(&code_at(&used, now - 30), now).unwrap(), None);
        let next = code_at(&used, now + 30);
        assert_eq!(used.accept(&next, now).unwrap(), Some(step + 1));
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(used.accept(bad, now).unwrap(), None);
        }
    }

    #[test]
    fn enrolment_gives_the_url_and_a_qr_code_of_it() {
        let (secret, answer) = TotpSecret::enrol("bob").unwrap();
        let url = answer["url"].as_str().unwrap();
        assert!(url.starts_with("otpauth://totp/Ward:bob?secret="), "{url}");
        assert!(url.contains("issuer=Ward"));
        let b32 = url
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let raw = B64.decode(&secret.secret).unwrap();
        assert_eq!(raw.len(), 20);
        let stored = totp(&raw, "bob").unwrap().get_secret_base32();
        assert_eq!(b32, stored, "the URL carries the stored secret");
        // The barcode is a PNG whose QR code reads back as the URL.
        let png = B64.decode(answer["barcode"].as_str().unwrap()).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0].decode().unwrap().1, url);
    }
}
