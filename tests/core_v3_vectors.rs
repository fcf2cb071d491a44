//! The `v3:` vectors (`tests/vectors/v3/v3-vectors.json`, made by
//! `tests/python/make_v3_vectors.py` with pyca/cryptography from the documented layout): keyseal reads every token and refuses
//! every edited one with the right code; and Python reads tokens keyseal makes.

mod common;

// Under wasm32 the same tests run through wasm-bindgen-test (`make test-wasm`).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use common::hex;
use keyseal::{
    decrypt_any, decrypt_bytes_any, decrypt_bytes_v3, decrypt_v3, token_format, Context, DataKey,
    TokenFormat,
};
use serde::Deserialize;

const V3_VECTORS: &str = include_str!("vectors/v3/v3-vectors.json");

#[derive(Deserialize)]
struct Vectors {
    tokens: Vec<TokenCase>,
    rejected: Vec<RejectedCase>,
}

#[derive(Deserialize)]
struct TokenCase {
    key_b64: String,
    key_version: u32,
    context_hex: Vec<String>,
    plaintext: Option<String>,
    plaintext_hex: String,
    aad_hex: String,
    token: String,
}

#[derive(Deserialize)]
struct RejectedCase {
    why: String,
    code: String,
    key_b64: String,
    context_hex: Vec<String>,
    token: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(V3_VECTORS).expect("v3-vectors.json parses")
}

fn context(parts: &[String]) -> Context {
    parts.iter().map(|p| hex(p)).collect()
}

#[test]
fn every_vector_decrypts_under_its_version_and_context() {
    let v = vectors();
    assert_eq!(v.tokens.len(), 25);
    for case in &v.tokens {
        let key = DataKey::from_base64(&case.key_b64).unwrap();
        let ctx = context(&case.context_hex);
        // The documented AAD is the header the token starts with, then the context encoding.
        let aad = hex(&case.aad_hex);
        assert_eq!(aad[5..], ctx.encode().unwrap()[..], "{}", case.token);
        assert_eq!(
            token_format(&case.token).unwrap(),
            TokenFormat::V3 {
                key_version: case.key_version
            }
        );
        let want = hex(&case.plaintext_hex);
        assert_eq!(decrypt_bytes_v3(&case.token, &key, &ctx).unwrap(), want);
        assert_eq!(decrypt_bytes_any(&case.token, &key, &ctx).unwrap(), want);
        match &case.plaintext {
            Some(text) => {
                assert_eq!(&decrypt_v3(&case.token, &key, &ctx).unwrap(), text);
                assert_eq!(&decrypt_any(&case.token, &key, &ctx).unwrap(), text);
            }
            None => assert_eq!(
                decrypt_v3(&case.token, &key, &ctx).unwrap_err().code(),
                "not_utf8"
            ),
        }
    }
}

#[test]
fn every_rejected_vector_is_refused_with_its_code() {
    let v = vectors();
    assert_eq!(v.rejected.len(), 23);
    for case in &v.rejected {
        let key = DataKey::from_base64(&case.key_b64).unwrap();
        let ctx = context(&case.context_hex);
        let err = decrypt_bytes_v3(&case.token, &key, &ctx).unwrap_err();
        assert_eq!(err.code(), case.code, "{}", case.why);
        // token_format reads the header alone: it accepts every well-formed token (a wrong key
        // or context is for decryption to find) and refuses a bad header as decryption does.
        let format = token_format(&case.token);
        if case.code == "authentication" {
            assert!(format.is_ok(), "{}", case.why);
        }
        if case.why.starts_with("key version 0") || case.why.starts_with("format byte") {
            assert_eq!(format.unwrap_err().code(), "malformed", "{}", case.why);
        }
    }
}

/// The other direction: tokens keyseal makes, read by Python from the layout alone.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn python_reads_keyseal_v3_tokens() {
    use common::process::python_ready;
    use common::to_hex;
    use keyseal::{encrypt_bytes_v3, encrypt_v3};
    use serde_json::json;
    use std::process::Command;

    if !python_ready() {
        return;
    }
    let mut tokens = Vec::new();
    let contexts: Vec<Vec<Vec<u8>>> = vec![
        vec![],
        vec![vec![]],
        vec![b"a:b".to_vec(), b"c".to_vec()],
        vec![b"users".to_vec(), b"42".to_vec(), b"api_token".to_vec()],
        vec![vec![0xffu8; 300]],
    ];
    for (i, parts) in contexts.iter().enumerate() {
        for (j, plain) in [&b""[..], b"x", &[0u8, 0xff, 0x80], &[b'k'; 64], &[7u8; 999]]
            .into_iter()
            .enumerate()
        {
            let key = DataKey::generate().unwrap();
            let version = [1u32, 2, 256, 70_000, u32::MAX][(i + j) % 5];
            let ctx: Context = parts.iter().collect();
            let token = if let Ok(text) = std::str::from_utf8(plain) {
                encrypt_v3(text, &key, version, &ctx).unwrap()
            } else {
                encrypt_bytes_v3(plain, &key, version, &ctx).unwrap()
            };
            tokens.push(json!({
                "key_b64": key.to_base64(),
                "key_version": version,
                "context_hex": parts.iter().map(|p| to_hex(p)).collect::<Vec<_>>(),
                "plaintext_hex": to_hex(plain),
                "token": token,
            }));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("keyseal-v3.json");
    std::fs::write(&export, json!({ "tokens": tokens }).to_string()).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg(root.join("tests/python/check_v3.py"))
        .arg(root.join("tests/vectors/v3/v3-vectors.json"))
        .arg(&export)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "check_v3.py: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
