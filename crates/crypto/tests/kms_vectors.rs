//! Known-answer vectors for the transit primitives, copied from the published sources:
//! the GCM specification (McGrew & Viega, test cases 13 to 16, as in NIST's GCM
//! validation), RFC 8439 §2.8.2 (ChaCha20-Poly1305), RFC 8032 §7.1 (Ed25519) and
//! RFC 6979 §A.2.5 (ECDSA P-256), plus RSA signatures made by OpenSSL. Each positive
//! vector also has tampered twins that must fail, in the manner of Wycheproof's invalid
//! cases.

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

/// A 2048-bit RSA key made with OpenSSL 3.0 (`openssl genpkey`), as PKCS#8 DER, and its
/// signatures over "known answer" by OpenSSL: PKCS#1 v1.5 / SHA-256 (deterministic, so
/// aws-lc must produce the same bytes) and PSS / SHA-256 with the largest salt (what
/// Vault's `auto` produces, which Ward must verify).
const RSA_PKCS8: &str = concat!(
    "308204bd020100300d06092a864886f70d0101010500048204a7308204a302010002820101009199377eb1326a445456",
    "36a42d1e3f515979bdd927c996d6ea5fcfa9554f36e7d8937f2db91d421d57ab278ca1f823b34a6ba2b976b994266e1d",
    "ba16895d132ceedd554738543786809080cc164f47abdd5c5036dd3a3e2dfdec915539f1ca4a6d478e2f9ee129c12569",
    "a8c90d205d6d5191fb190666dcf8fe4f9e39d1c0da826c8c441b4c886e344f08d02ba23b38c7340b2255fa0d21aada20",
    "0757f1f8f04c9f7dc35fe46dd7e2756203b35540dc654fe73a45ac002ba43b7907b71fefd37dba952622ca7f46119345",
    "bfc3b2815494f5464df998695298c46827e0957053faca63742b3933ddfd7b6a0f98fc723019c127999b77cee1af10f8",
    "0527fb5561db0203010001028201000281889afda1c8827491274f9c17312fcd42732a11ad3e93646551c5b05a34afb8",
    "e29105d071d87978d0d15572543b0912f6d74e29e4f7cfd185617691d6b045cdb6b189104722cd85d8f6de8c63c0f00c",
    "57526a1f54a94d51598906d6807ae2dd0ea63bdb983487c685130aa2d733c475eaf54f70f4c448e4d7a9f984cab4f813",
    "10d977ace9d37a83ce0674b44333da987cd874f86a7b3f8861b20002bb56f2ca5ac312f9a5cef515e1bd60e2a3bdbc6e",
    "b382011397265a34b5d88e72cec8bb42c2d6acd7d889866f916bfe46e389e43b1c9276da9546eb79dc0ed81f99daf2b9",
    "dc2a76d0d15feb10297d26d743c0379dcce64f38973997bd5894d14f753f0102818100c11288a12a1109d04621ac0a8a",
    "7ad0eb92b252e491a7343308a079218c65a32fccbb6da695e07babedeae428981b8b48d1da2e8d754992e9c29d5af5b9",
    "ac800a0a703c5fa5a70df40a3665a6dcd9da278950ee566b24a796035f02413b5406b2040b6d2a1c98ed20bfba120c7a",
    "0444d4d2d01e1b3b0031101ee71364a1d44e8b02818100c10d953af4bc4bcd809c303814243cc87d2963e90a1c78cff5",
    "8817cfa62d3f031bf04ef998d066732952123ca9f0943fcc22ac448fa05e5249a402ee06aa0319ee4e589616ea1067ba",
    "1d118e903fcfd024f7bd456f820eb2b0cd12847886d80bc4c79d05d04e84bc08b9ad96669b6d3a7cbfdacaed4606306f",
    "451b17b66d73f1028181009c49df75eeb28a2a218b4253ea134f2952bfad603f1385aac611f8dc126577faca94f24706",
    "4e086e7d92460d224c31acc9caff221d4e687177cb9f0508bf3d8a6336c5787b84c643c53c917ec88a4510fa141c4ab2",
    "42a2b2499a501df3e3a9e3d268597edc5562a6beece58d59fc38a7badb2373d187ef2f68848f6b47a0afcf0281801bd4",
    "c176c6617eec19666aed2aba2ea918a226ed29b0011ab9e2eccbdac11b1c6fa2ad3ffe6fccd53d57bf994f468798caed",
    "14b8ad9c08fd03f0c91b578a9af7da0b216a41d36c9a0792b93d3c3e76cf2305341c167f416f315ddf1589eaa6aacbab",
    "9b4f83404e926d0f979edf1bf91b3d70cb320612da419148fd26e5fdd181028180205149eea8ad20fdfe01b1972597c8",
    "aef45ceab6e65c2800331f17d7c2a7356049ea083b0fb5150821deea1e20f42bf4f346ff6d4d8e709ebf3ef72f4357dd",
    "3a29af749e9b44e3aaf1c4a093a5775557f076208bfcf7fb65574fb0c6a3c987db9c57036aa2dc9ca7dec13d3f146a7d",
    "5254c614776e0ae2808307adc33782874e"
);
const RSA_PKCS1_SIG: &str = concat!(
    "2b4cd4ad2adcb3f22d36fb319e2151677b8cfd1305236c2de2f283fc9b8d4814750ec7cf3820fb971e43d156aff8bceb",
    "89d17a68eceace8be3846a41c8de003d9e68e805f5120a79a964bdb497cd4e383e8a9b145ba43e46a2ab4ec3bab2abc0",
    "ca3b9353145c7826fd0b2499b6015761b5e5724739697221042eb9dae6308ea8201a9e19d87e0fa7a618e484eb0e145c",
    "928d91a69c928e3f7fde85649ea9bdfca84c098b5d1e81f44bcd279255137dac7ea354257c24f3fafcdd4bec42d625d7",
    "a62c4e41094731f0595c3e126566f3d41fb71a22e0fb8a0f2704adabe02f41c021cbd1cf155af037195102f227e3519a",
    "d86c517c1202168d19a5c61229b11382"
);
const RSA_PSS_SIG: &str = concat!(
    "79c7a65ddca521cd48d2e251fd0ef0159478aa5d28577bba6071066febe0485b66cdbc7aff2f133a62d90720ca4e9c9d",
    "d413a20daab306528f04507c4c16ac72421b965859a657f6ceebfe002390f3ee81f9d1b1b3d553ec756cd30c68ecab69",
    "f5475e62218bd05238034ba685efeedf48e3b7ac0f73d8581f2f1e0af84eafb38480e416c00f9a1db47e4a1e5bfaebd0",
    "e248128258eedac1124ebab81f1ea2be87bc275bdb67b8cea4e0a9d005baf4275d4706609af650bda07fa1822564a413",
    "c078e0036d877d8647f45ff45016bb7cf0e56c1edb5d294d8bc842e577e768953ccff26b5a1b1a22e0e0e6ee7216f332",
    "c1c246865b1194e45440180f8aaa00a9"
);

#[test]
fn rsa_signatures_agree_with_openssl() {
    use ward_crypto::kms::RsaPadding;
    let key = SigningKey::from_private(SigningKind::Rsa2048, &h(RSA_PKCS8)).unwrap();
    let pkcs1 = SignOptions {
        padding: RsaPadding::Pkcs1v15,
        ..SignOptions::default()
    };
    assert_eq!(key.sign(b"known answer", &pkcs1).unwrap(), h(RSA_PKCS1_SIG));
    assert!(
        key.verify(b"known answer", &h(RSA_PKCS1_SIG), &pkcs1)
            .unwrap()
    );
    let pss = SignOptions::default();
    assert!(key.verify(b"known answer", &h(RSA_PSS_SIG), &pss).unwrap());
    assert!(!key.verify(b"known answef", &h(RSA_PSS_SIG), &pss).unwrap());
    let mut bad = h(RSA_PSS_SIG);
    bad[100] ^= 1;
    assert!(!key.verify(b"known answer", &bad, &pss).unwrap());
    assert!(
        !key.verify(b"known answer", &h(RSA_PKCS1_SIG), &pss)
            .unwrap()
    );
}

/// "known answer" encrypted under the key above by OpenSSL 3.0 with RSA-OAEP, SHA-256 for
/// the hash and MGF1, no label (`openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:oaep
/// -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256`): Vault's transit RSA padding.
const RSA_OAEP_CIPHERTEXT: &str = concat!(
    "20f96acd9a666199560fefbcb5900c048e78a237bd117a2991f783593fbd5080481011cd8ed61f6713efd8545a150148",
    "2fed1454e41764bc850dc1c7924557871a5126ee73b196e8fa4cba0c9a911a7e486981388715756b330c2ac6d982d298",
    "a86d908b4e68be93f9e51e5a193c8a5be963639a1e0737b7a068b017ad9730608a855d0ba8adcab13c5d08ec7b72befc",
    "6ff64b665fa7b2f5c4c0ab1fcca8790cacbaac72f84a542d7e867576372d19fd66d4133c48d9e5b58854916cdbc4888d",
    "8a29bcdebdca2231c42b56e6f00dcf11bf22df2c7cdabc98510cd9ca447016a56ffc2e68f4fe33720a657b16f6399dc8",
    "6d42eb0bf2757fc06a0771e449c76def",
);

#[test]
fn rsa_oaep_agrees_with_openssl() {
    let key = SigningKey::from_private(SigningKind::Rsa2048, &h(RSA_PKCS8)).unwrap();
    let opened = key.oaep_decrypt(&h(RSA_OAEP_CIPHERTEXT)).unwrap();
    assert_eq!(opened.expose(), b"known answer");
    // A changed bit or a cut ciphertext fails; it never yields other bytes.
    let mut bad = h(RSA_OAEP_CIPHERTEXT);
    bad[7] ^= 1;
    assert!(key.oaep_decrypt(&bad).is_err());
    assert!(key.oaep_decrypt(&bad[..255]).is_err());
    // Randomised padding: two encryptions differ, both open to the message.
    let (a, b) = (
        key.oaep_encrypt(b"known answer").unwrap(),
        key.oaep_encrypt(b"known answer").unwrap(),
    );
    assert_ne!(a, b);
    assert_eq!(a.len(), 256);
    assert_eq!(key.oaep_decrypt(&b).unwrap().expose(), b"known answer");
    // 2048 bits less OAEP-SHA-256's 66 bytes of padding.
    assert_eq!(key.oaep_encrypt(&[7; 190]).unwrap().len(), 256);
    assert_eq!(
        key.oaep_encrypt(&[7; 191]),
        Err(ward_crypto::CryptoError::MessageTooLong(190))
    );
    let ed = SigningKey::generate(SigningKind::Ed25519).unwrap().0;
    assert!(ed.oaep_encrypt(b"x").is_err());
}
