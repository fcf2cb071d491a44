//! Every case of the Python module's vectors (tests/vectors/python/python-interop.json).

mod common;

// Under wasm32 the same tests run through wasm-bindgen-test (`make test-wasm`).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use common::vectors::python_vectors;
use keyseal::{api_key_hash, decrypt, decrypt_bytes, derive_pool_key, DataKey, Error, MasterKey};

#[test]
fn python_tokens_decrypt_with_and_without_prefix() {
    let vectors = python_vectors();
    assert_eq!(vectors.tokens.len(), 40);
    for case in &vectors.tokens {
        let key = DataKey::from_base64(&case.key_b64).unwrap();
        assert_eq!(decrypt(&case.token, &key).unwrap(), case.plaintext);
        // Some vectors come without the prefix; try each token both ways.
        let bare = case.token.strip_prefix("v2:").unwrap_or(&case.token);
        assert_eq!(decrypt(bare, &key).unwrap(), case.plaintext);
        assert_eq!(
            decrypt(&format!("v2:{bare}"), &key).unwrap(),
            case.plaintext
        );
        assert_eq!(
            decrypt_bytes(&case.token, &key).unwrap(),
            case.plaintext.as_bytes()
        );
    }
}

#[test]
fn python_rejected_tokens_fail_with_the_right_kind() {
    let vectors = python_vectors();
    assert_eq!(vectors.rejected_tokens.len(), 9);
    for case in &vectors.rejected_tokens {
        let key = DataKey::from_base64(&case.key_b64).unwrap();
        let err = decrypt(&case.token, &key).unwrap_err();
        let expected = match case.why.as_str() {
            "tag altered" | "nonce altered" | "ciphertext altered" | "wrong key" => {
                Error::Authentication.code()
            }
            "27 bytes: shorter than nonce plus tag"
            | "empty"
            | "not base64"
            | "truncated base64" => "malformed",
            why if why.starts_with("plaintext is not UTF-8") => {
                let bytes = decrypt_bytes(&case.token, &key).unwrap();
                assert_eq!(bytes, url_safe_b64(case.bytes_b64.as_deref().unwrap()));
                Error::NotUtf8.code()
            }
            other => panic!("unknown rejection case {other:?}"),
        };
        assert_eq!(err.code(), expected, "case {:?}", case.why);
        // The error never carries the token or key.
        let message = err.to_string();
        assert!(!message.contains(&case.key_b64));
        assert!(!message.contains(case.token.trim_start_matches("v2:")) || case.token == "v2:");
    }
}

/// Url-safe base64 decoded independently of the crate under test.
fn url_safe_b64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let value = u32::try_from(ALPHABET.iter().position(|&a| a == c).unwrap()).unwrap();
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).unwrap());
        }
    }
    out
}

#[test]
fn python_pool_keys() {
    let vectors = python_vectors();
    assert!(!vectors.pool_keys.is_empty());
    for case in &vectors.pool_keys {
        let master = MasterKey::from_base64(&case.master_key_b64).unwrap();
        assert_eq!(derive_pool_key(&master).to_base64(), case.pool_key_b64);
    }
}

#[test]
fn python_lookup_hashes() {
    let vectors = python_vectors();
    assert!(!vectors.api_key_hashes.is_empty());
    for case in &vectors.api_key_hashes {
        assert_eq!(api_key_hash(&case.api_key), case.sha256_hex);
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn python_master_key_strings() {
    let vectors = python_vectors();
    assert_eq!(vectors.master_key_env.len(), 8);
    for case in &vectors.master_key_env {
        let parsed = keyseal::parse_master_key(&case.value).ok();
        assert_eq!(
            parsed.map(|k| k.to_base64()),
            case.resolves_to_b64,
            "case {:?}",
            case.why
        );
    }
}
