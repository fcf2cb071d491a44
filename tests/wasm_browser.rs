//! The core in a real browser (Chromium, `make test-wasm`): randomness from
//! `window.crypto.getRandomValues`, the Python vectors, round trips. The shared test files
//! (`core_python_vectors.rs`, `core_wycheproof.rs`, `core_python_base64.rs`) run under Node; this one only in the browser.
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

mod common;

use common::vectors::python_vectors;
use keyseal::{api_key_hash, decrypt, decrypt_bytes, encrypt, encrypt_bytes, DataKey, Error};
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[test]
fn python_tokens_decrypt_in_the_browser() {
    for case in &python_vectors().tokens {
        let key = DataKey::from_base64(&case.key_b64).unwrap();
        assert_eq!(decrypt(&case.token, &key).unwrap(), case.plaintext);
    }
}

#[test]
fn python_rejected_tokens_fail_in_the_browser() {
    for case in &python_vectors().rejected_tokens {
        let key = DataKey::from_base64(&case.key_b64).unwrap();
        assert!(decrypt(&case.token, &key).is_err(), "{}", case.why);
    }
}

#[test]
fn lookup_hashes_in_the_browser() {
    for case in &python_vectors().api_key_hashes {
        assert_eq!(api_key_hash(&case.api_key), case.sha256_hex);
    }
}

#[test]
fn browser_randomness_keys_and_round_trips() {
    let a = DataKey::generate().unwrap();
    let b = DataKey::generate().unwrap();
    assert_ne!(a.expose_secret(), b.expose_secret());
    let t1 = encrypt("secret", &a).unwrap();
    let t2 = encrypt("secret", &a).unwrap();
    assert_ne!(t1, t2, "fresh nonce per call");
    assert_eq!(decrypt(&t1, &a).unwrap(), "secret");
    assert_eq!(decrypt(&t1, &b), Err(Error::Authentication));
    let data: Vec<u8> = (0..=255).collect();
    assert_eq!(
        decrypt_bytes(&encrypt_bytes(&data, &b).unwrap(), &b).unwrap(),
        data
    );
    // Many nonces: the wasm nonce pool refills from the host several times.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        assert!(seen.insert(encrypt("x", &a).unwrap()[..19].to_owned()));
    }
}
