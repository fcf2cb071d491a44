//! `v3:` tokens: round trips, the header and the context authenticated, malformed input typed,
//! and `decrypt_any` / `token_format` / `is_encrypted` on both formats.

// Under wasm32 the same tests run through wasm-bindgen-test (`make test-wasm`).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use keyseal::{
    decrypt, decrypt_any, decrypt_bytes_any, decrypt_bytes_v3, decrypt_v3, encrypt,
    encrypt_bytes_v3, encrypt_v3, is_encrypted, token_format, Context, DataKey, Error, TokenFormat,
};

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;

fn key(seed: u8) -> DataKey {
    DataKey::from_bytes(&[seed; 32]).unwrap()
}

fn raw(token: &str) -> Vec<u8> {
    URL_SAFE.decode(token.strip_prefix("v3:").unwrap()).unwrap()
}

fn text(bytes: &[u8]) -> String {
    format!("v3:{}", URL_SAFE.encode(bytes))
}

fn row(table: &str, id: &str, column: &str) -> Context {
    Context::new().part(table).part(id).part(column)
}

#[test]
fn round_trips_text_and_bytes_with_and_without_context() {
    let ctx = row("users", "42", "api_token");
    for (version, ctx) in [(1, Context::none()), (2, ctx.clone()), (u32::MAX, ctx)] {
        for plain in ["", "x", "sk-live-\u{1F511}", &"a".repeat(5000)] {
            let t = encrypt_v3(plain, &key(1), version, &ctx).unwrap();
            assert!(t.starts_with("v3:"));
            assert_eq!(decrypt_v3(&t, &key(1), &ctx).unwrap(), plain);
            assert_eq!(decrypt_any(&t, &key(1), &ctx).unwrap(), plain);
            assert_eq!(
                token_format(&t).unwrap(),
                TokenFormat::V3 {
                    key_version: version
                }
            );
        }
        let bytes = [0u8, 0xff, 0xfe, 7];
        let t = encrypt_bytes_v3(&bytes, &key(2), version, &ctx).unwrap();
        assert_eq!(decrypt_bytes_v3(&t, &key(2), &ctx).unwrap(), bytes);
        assert_eq!(decrypt_bytes_any(&t, &key(2), &ctx).unwrap(), bytes);
        assert_eq!(decrypt_v3(&t, &key(2), &ctx).unwrap_err(), Error::NotUtf8);
    }
}

#[test]
fn nonces_are_fresh() {
    let a = encrypt_v3("same", &key(1), 1, &Context::none()).unwrap();
    let b = encrypt_v3("same", &key(1), 1, &Context::none()).unwrap();
    assert_ne!(a, b);
}

#[test]
fn every_header_edit_is_authentication() {
    let t = encrypt_v3("secret", &key(1), 5, &Context::none()).unwrap();
    let bytes = raw(&t);
    // Any other version (still a valid header) picks no other key: authentication fails.
    for version in [1u32, 4, 6, 0x0100_0005, u32::MAX] {
        let mut edited = bytes.clone();
        edited[1..5].copy_from_slice(&version.to_be_bytes());
        let forged = text(&edited);
        assert_eq!(
            token_format(&forged).unwrap(),
            TokenFormat::V3 {
                key_version: version
            }
        );
        assert_eq!(
            decrypt_v3(&forged, &key(1), &Context::none()).unwrap_err(),
            Error::Authentication,
            "version {version}"
        );
    }
    // Every single-bit flip anywhere in the token is refused, never accepted.
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut edited = bytes.clone();
            edited[i] ^= 1 << bit;
            let err = decrypt_v3(&text(&edited), &key(1), &Context::none()).unwrap_err();
            assert!(
                matches!(err, Error::Authentication | Error::Malformed { .. }),
                "byte {i} bit {bit}: {err:?}"
            );
        }
    }
}

#[test]
fn version_zero_bad_format_truncated_and_wrong_prefix_are_malformed() {
    // 8 bytes of plaintext: 41 bytes, so the text ends in one '='.
    let t = encrypt_v3("secret!!", &key(1), 1, &Context::none()).unwrap();
    assert!(t.ends_with('='));
    let bytes = raw(&t);
    let mut zero = bytes.clone();
    zero[1..5].fill(0);
    let mut format2 = bytes.clone();
    format2[0] = 0x02;
    let cases = [
        text(&zero),
        text(&format2),
        text(&bytes[..32]),
        text(&bytes[..5]),
        "v3:".to_owned(),
        "v3:AwAAAAE".to_owned(),
        t.replacen("v3:", "v4:", 1),
        t.replacen("v3:", "", 1),
        t.replacen("v3:", "V3:", 1),
        format!("{t}\n"),
        format!(" {t}"),
        t.replace('-', "+").replace('_', "/"),
        t.trim_end_matches('=').to_owned(),
        format!("{}é", &t[..t.len() - 1]),
    ];
    for bad in &cases {
        // The base64-alphabet swap only changes the text when the token holds '-' or '_'.
        if bad == &t {
            continue;
        }
        let err = decrypt_v3(bad, &key(1), &Context::none()).unwrap_err();
        assert_eq!(err.code(), "malformed", "{bad:?}: {err:?}");
    }
    assert_eq!(token_format(&text(&zero)).unwrap_err().code(), "malformed");
    assert_eq!(
        token_format(&text(&format2)).unwrap_err().code(),
        "malformed"
    );
    assert_eq!(token_format("v3:AwAA").unwrap_err().code(), "malformed");
    assert_eq!(token_format("v3:AwAAAA==").unwrap_err().code(), "malformed");
    assert_eq!(token_format("v3:AwAAAAE%").unwrap_err().code(), "malformed");
    assert_eq!(token_format("v3:é_______").unwrap_err().code(), "malformed");
    assert_eq!(token_format("hunter2").unwrap_err().code(), "malformed");
    assert_eq!(
        encrypt_v3("x", &key(1), 0, &Context::none())
            .unwrap_err()
            .code(),
        "invalid_argument"
    );
}

#[test]
fn non_canonical_trailing_bits_are_malformed() {
    // 33 bytes encode to 44 characters with no padding and no spare bits; 34 bytes end in
    // "xx=" with 4 spare bits: setting one must not give a second spelling of the token.
    let t = encrypt_v3("a", &key(1), 1, &Context::none()).unwrap();
    assert!(t.ends_with('='), "{t}");
    let body = t.trim_end_matches('=');
    let last = body.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let tweaked = alphabet.chars().nth(idx ^ 1).unwrap();
    let bad = format!("{}{}{}", &body[..body.len() - 1], tweaked, &t[body.len()..]);
    assert_eq!(
        decrypt_v3(&bad, &key(1), &Context::none())
            .unwrap_err()
            .code(),
        "malformed"
    );
}

#[test]
fn context_split_points_differ() {
    let ab_c = Context::from_parts(&["a:b", "c"]);
    let a_bc = Context::from_parts(&["a", "b:c"]);
    let t = encrypt_v3("s", &key(1), 1, &ab_c).unwrap();
    assert_eq!(decrypt_v3(&t, &key(1), &ab_c).unwrap(), "s");
    assert_eq!(
        decrypt_v3(&t, &key(1), &a_bc).unwrap_err(),
        Error::Authentication
    );
    // No context is not one empty part, nor one part holding the other's encoding.
    let none = encrypt_v3("s", &key(1), 1, &Context::none()).unwrap();
    assert_eq!(
        decrypt_v3(&none, &key(1), &Context::from_parts(&[b""])).unwrap_err(),
        Error::Authentication
    );
    let empty_part = encrypt_v3("s", &key(1), 1, &Context::from_parts(&[b""])).unwrap();
    assert_eq!(
        decrypt_v3(&empty_part, &key(1), &Context::none()).unwrap_err(),
        Error::Authentication
    );
}

#[test]
fn a_token_moved_to_another_row_or_column_fails() {
    let t = encrypt_v3("sk-1", &key(1), 1, &row("users", "42", "api_token")).unwrap();
    for other in [
        row("users", "43", "api_token"),
        row("users", "42", "refresh_token"),
        row("admins", "42", "api_token"),
        row("users", "4", "2api_token"),
        Context::none(),
    ] {
        assert_eq!(
            decrypt_v3(&t, &key(1), &other).unwrap_err(),
            Error::Authentication
        );
        assert_eq!(
            decrypt_any(&t, &key(1), &other).unwrap_err(),
            Error::Authentication
        );
    }
    // And a token under another user's key fails even with the right row.
    assert_eq!(
        decrypt_v3(&t, &key(2), &row("users", "42", "api_token")).unwrap_err(),
        Error::Authentication
    );
}

#[test]
fn decrypt_any_reads_v2_only_without_context() {
    let v2 = encrypt("old", &key(1)).unwrap();
    assert_eq!(token_format(&v2).unwrap(), TokenFormat::V2);
    assert_eq!(decrypt_any(&v2, &key(1), &Context::none()).unwrap(), "old");
    let err = decrypt_any(&v2, &key(1), &Context::new().part("x")).unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    // An unprefixed v2 body is for `decrypt` (which Python also reads), not for decrypt_any.
    assert_eq!(decrypt(&v2[3..], &key(1)).unwrap(), "old");
    assert_eq!(
        decrypt_any(&v2[3..], &key(1), &Context::none())
            .unwrap_err()
            .code(),
        "malformed"
    );
    // v2 readers refuse v3 tokens instead of misreading them.
    let v3 = encrypt_v3("new", &key(1), 1, &Context::none()).unwrap();
    assert!(decrypt(&v3, &key(1)).is_err());
}

#[test]
fn is_encrypted_recognises_both_formats() {
    let v3 = encrypt_v3("x", &key(1), 1, &Context::none()).unwrap();
    assert!(is_encrypted(&v3));
    assert!(is_encrypted(&encrypt("x", &key(1)).unwrap()));
    assert!(!is_encrypted("v4:abc"));
    assert!(!is_encrypted("plain"));
}
