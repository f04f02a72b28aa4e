//! Known-answer vectors for the transit primitives, copied from the published sources:
//! the GCM specification (McGrew & Viega, test cases 13 to 16, as in NIST's GCM
//! validation), RFC 8439 §2.8.2 (ChaCha20-Poly1305), RFC 8032 §7.1 (Ed25519) and
//! RFC 6979 §A.2.5 (ECDSA P-256). Each positive vector also has tampered twins that
//! must fail, in the manner of Wycheproof's invalid cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_crypto::kms::{
    Aead, HashAlg, Marshaling, SignOptions, SigningKey, SigningKind, verify_public,
};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

struct AeadVector {
    aead: Aead,
    key: &'static str,
    nonce: &'static str,
    aad: &'static str,
    plain: &'static str,
    cipher: &'static str,
    tag: &'static str,
}

const GCM_P: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
    1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const GCM_C: &str = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
    8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
const K15: &str = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";

const AEAD_VECTORS: &[AeadVector] = &[
    // GCM test case 13: AES-256, empty plaintext.
    AeadVector {
        aead: Aead::Aes256Gcm,
        key: "0000000000000000000000000000000000000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        plain: "",
        cipher: "",
        tag: "530f8afbc74536b9a963b4f1c4cb738b",
    },
    // Test case 14: one zero block.
    AeadVector {
        aead: Aead::Aes256Gcm,
        key: "0000000000000000000000000000000000000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        plain: "00000000000000000000000000000000",
        cipher: "cea7403d4d606b6e074ec5d3baf39d18",
        tag: "d0d1c8a799996bf0265b98b5d48ab919",
    },
    // Test case 15: 64 bytes, no AAD.
    AeadVector {
        aead: Aead::Aes256Gcm,
        key: K15,
        nonce: "cafebabefacedbaddecaf888",
        aad: "",
        plain: GCM_P,
        cipher: GCM_C,
        tag: "b094dac5d93471bdec1a502270e3cc6c",
    },
    // RFC 8439 §2.8.2.
    AeadVector {
        aead: Aead::ChaCha20Poly1305,
        key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        nonce: "070000004041424344454647",
        aad: "50515253c0c1c2c3c4c5c6c7",
        plain: "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66
            202739393a204966204920636f756c64206f6666657220796f75206f6e6c79206f6e652074
            697020666f7220746865206675747572652c2073756e73637265656e20776f756c64206265
            2069742e",
        cipher: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
            3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
            92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
            3ff4def08e4b7a9de576d26586cec64b6116",
        tag: "1ae10b594f09e26a7e902ecbd0600691",
    },
];

type Case = (Aead, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

#[test]
fn aead_known_answers_and_tampered_twins() {
    let mut vectors: Vec<Case> = AEAD_VECTORS
        .iter()
        .map(|v| {
            let mut ct = h(v.cipher);
            ct.extend(h(v.tag));
            (v.aead, h(v.key), h(v.nonce), h(v.aad), h(v.plain), ct)
        })
        .collect();
    // Test case 16: the first 60 bytes of case 15's plaintext, with AAD.
    let mut ct16 = h(GCM_C)[..60].to_vec();
    ct16.extend(h("76fc6ece0f4e1768cddf8853bb2d551b"));
    vectors.push((
        Aead::Aes256Gcm,
        h(K15),
        h("cafebabefacedbaddecaf888"),
        h("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
        h(GCM_P)[..60].to_vec(),
        ct16,
    ));
    for (aead, key, nonce, aad, plain, ct_tag) in vectors {
        let nonce: [u8; 12] = nonce.try_into().unwrap();
        let sealed = aead.seal(&key, Some(nonce), &plain, &aad).unwrap();
        assert_eq!(&sealed[..12], &nonce);
        assert_eq!(hex::encode(&sealed[12..]), hex::encode(&ct_tag), "{aead:?}");
        assert_eq!(aead.open(&key, &sealed, &aad).unwrap().expose(), &plain[..]);
        // Wycheproof-style invalid cases: flipped tag bit, flipped ciphertext bit, other AAD.
        let mut bad_tag = sealed.clone();
        let last = bad_tag.len() - 1;
        bad_tag[last] ^= 0x80;
        assert!(aead.open(&key, &bad_tag, &aad).is_err());
        if !plain.is_empty() {
            let mut bad_ct = sealed.clone();
            bad_ct[12] ^= 1;
            assert!(aead.open(&key, &bad_ct, &aad).is_err());
        }
        assert!(aead.open(&key, &sealed, b"x").is_err());
    }
}

#[test]
fn ed25519_rfc8032_vectors() {
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ];
    let o = SignOptions::default();
    for (seed, public, msg, sig) in cases {
        let key = SigningKey::from_private(SigningKind::Ed25519, &h(seed)).unwrap();
        assert_eq!(hex::encode(key.sign(&h(msg), &o).unwrap()), sig);
        assert!(verify_public(SigningKind::Ed25519, &h(public), &h(msg), &h(sig), &o).unwrap());
        let mut bad = h(sig);
        bad[0] ^= 1;
        assert!(!verify_public(SigningKind::Ed25519, &h(public), &h(msg), &bad, &o).unwrap());
        assert!(!verify_public(SigningKind::Ed25519, &h(public), b"other", &h(sig), &o).unwrap());
    }
}

fn der_signature(fixed: &[u8]) -> Vec<u8> {
    let int = |x: &[u8]| {
        let mut v = x.to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, u8::try_from(v.len()).unwrap()];
        out.extend(v);
        out
    };
    let half = fixed.len() / 2;
    let mut body = int(&fixed[..half]);
    body.extend(int(&fixed[half..]));
    let mut der = vec![0x30, u8::try_from(body.len()).unwrap()];
    der.extend(body);
    der
}

#[test]
fn ecdsa_p256_rfc6979_vectors() {
    // The uncompressed point of the RFC's key x = C9AFA9D8...
    let public = h(
        "04 60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6
        7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299",
    );
    let cases = [
        (
            HashAlg::Sha2_256,
            "sample",
            "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
            "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
        ),
        (
            HashAlg::Sha2_256,
            "test",
            "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367",
            "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083",
        ),
        // SHA-384 over P-256: the hash is truncated to the curve's 256 bits.
        (
            HashAlg::Sha2_384,
            "sample",
            "0eafea039b20e9b42309fb1d89e213057cbf973dc0cfc8f129edddc800ef7719",
            "4861f0491e6998b9455193e34e7b0d284ddd7149a74b95b9261f13abde940954",
        ),
        // SHA-224: shorter than the curve, used as is.
        (
            HashAlg::Sha2_224,
            "sample",
            "53b2fff5d1752b2c689df257c04c40a587fababb3f6fc2702f1343af7ca9aa3f",
            "b9afb64fdc03dc1a131c7d2386d11e349f070aa432a4acc918bea988bf75c74c",
        ),
    ];
    let kind = SigningKind::EcdsaP256;
    for (hash, msg, r, s) in cases {
        let msg = msg.as_bytes();
        let fixed = h(&format!("{r}{s}"));
        let jws = SignOptions {
            hash,
            marshaling: Marshaling::Jws,
            ..SignOptions::default()
        };
        assert!(
            verify_public(kind, &public, msg, &fixed, &jws).unwrap(),
            "{hash:?}"
        );
        let mut bad = fixed.clone();
        bad[40] ^= 1;
        assert!(!verify_public(kind, &public, msg, &bad, &jws).unwrap());
        let asn1 = SignOptions {
            hash,
            ..SignOptions::default()
        };
        let der = der_signature(&fixed);
        assert!(verify_public(kind, &public, msg, &der, &asn1).unwrap());
        assert!(!verify_public(kind, &public, b"other", &der, &asn1).unwrap());
        assert!(!verify_public(kind, &public, msg, &der[..der.len() - 1], &asn1).unwrap());
    }
}
