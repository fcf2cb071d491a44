//! Google's Wycheproof vectors (tests/vectors/wycheproof/, source in SOURCE) through the
//! primitives keyseal uses: AES-256-GCM through the token path, HMAC-SHA256 and
//! PBKDF2-HMAC-SHA256 through the `hmac` and `pbkdf2` crates that `derive_pool_key` calls.

mod common;

// Under wasm32 the same tests run through wasm-bindgen-test (`make test-wasm`).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use common::hex;
use common::vectors::{
    wycheproof_groups, WYCHEPROOF_AES_GCM, WYCHEPROOF_HMAC_SHA256, WYCHEPROOF_PBKDF2_HMAC_SHA256,
};
use hmac::{Hmac, Mac};
use keyseal::{decrypt_bytes_with_aad, DataKey, Error};
use serde::Deserialize;
use sha2::Sha256;

#[derive(Deserialize)]
struct AeadGroup {
    #[serde(rename = "keySize")]
    key_size: u32,
    #[serde(rename = "ivSize")]
    iv_size: u32,
    #[serde(rename = "tagSize")]
    tag_size: u32,
    tests: Vec<AeadCase>,
}

#[derive(Deserialize)]
struct AeadCase {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
}

fn url_safe_b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn wycheproof_aes_256_gcm_through_tokens() {
    let groups: Vec<AeadGroup> = wycheproof_groups(WYCHEPROOF_AES_GCM);
    let (mut valid, mut invalid, mut skipped_shape) = (0, 0, 0);
    for group in &groups {
        if (group.key_size, group.iv_size, group.tag_size) != (256, 96, 128) {
            skipped_shape += group.tests.len();
            continue;
        }
        for case in &group.tests {
            let key = DataKey::from_bytes(&hex(&case.key)).unwrap();
            let mut raw = hex(&case.iv);
            raw.extend(hex(&case.ct));
            raw.extend(hex(&case.tag));
            let token = format!("v2:{}", url_safe_b64(&raw));
            let aad = hex(&case.aad);
            let got = decrypt_bytes_with_aad(&token, &aad, &key);
            if aad.is_empty() {
                // The plain token path must agree with the AAD-aware one.
                assert_eq!(keyseal::decrypt_bytes(&token, &key), got, "tc {}", case.id);
            }
            match case.result.as_str() {
                "valid" | "acceptable" => {
                    assert_eq!(got.unwrap(), hex(&case.msg), "tc {}", case.id);
                    valid += 1;
                }
                _ => {
                    assert_eq!(got.unwrap_err(), Error::Authentication, "tc {}", case.id);
                    invalid += 1;
                }
            }
        }
    }
    // The counts pin the file: a silently emptied vector file cannot pass.
    assert_eq!((valid, invalid), (39, 27), "valid/invalid 256-bit cases");
    assert!(
        skipped_shape > 0,
        "other key, IV and tag sizes are counted as skipped"
    );
    eprintln!("AES-GCM: {valid} valid, {invalid} invalid, {skipped_shape} other shapes skipped");
}

#[derive(Deserialize)]
struct MacGroup {
    #[serde(rename = "tagSize")]
    tag_size: usize,
    tests: Vec<MacCase>,
}

#[derive(Deserialize)]
struct MacCase {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    msg: String,
    tag: String,
    result: String,
}

#[test]
fn wycheproof_hmac_sha256() {
    let groups: Vec<MacGroup> = wycheproof_groups(WYCHEPROOF_HMAC_SHA256);
    let mut count = 0;
    for group in &groups {
        for case in &group.tests {
            let mut mac = Hmac::<Sha256>::new_from_slice(&hex(&case.key)).unwrap();
            mac.update(&hex(&case.msg));
            let tag = hex(&case.tag);
            let ok = tag.len() * 8 == group.tag_size && mac.verify_truncated_left(&tag).is_ok();
            assert_eq!(ok, case.result == "valid", "tc {}", case.id);
            count += 1;
        }
    }
    assert_eq!(count, 174);
}

#[derive(Deserialize)]
struct PbkdfGroup {
    tests: Vec<PbkdfCase>,
}

#[derive(Deserialize)]
struct PbkdfCase {
    #[serde(rename = "tcId")]
    id: u32,
    password: String,
    salt: String,
    #[serde(rename = "iterationCount")]
    iterations: u32,
    dk: String,
    result: String,
}

#[test]
fn wycheproof_pbkdf2_hmac_sha256() {
    let groups: Vec<PbkdfGroup> = wycheproof_groups(WYCHEPROOF_PBKDF2_HMAC_SHA256);
    let mut count = 0;
    for group in &groups {
        for case in &group.tests {
            assert_eq!(case.result, "valid");
            let want = hex(&case.dk);
            let mut out = vec![0u8; want.len()];
            pbkdf2::pbkdf2_hmac::<Sha256>(
                &hex(&case.password),
                &hex(&case.salt),
                case.iterations,
                &mut out,
            );
            assert_eq!(out, want, "tc {}", case.id);
            count += 1;
        }
    }
    assert_eq!(count, 60);
}
