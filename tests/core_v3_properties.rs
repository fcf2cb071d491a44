//! Property tests of `v3:` tokens: round trips for any input, version and context; any other
//! context or any edit is refused; no input makes a reader panic.
// Native only (proptest).
#![cfg(not(target_arch = "wasm32"))]

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use keyseal::{
    decrypt_bytes_any, decrypt_bytes_v3, decrypt_v3, encrypt_bytes_v3, encrypt_v3, token_format,
    Context, DataKey, Error, TokenFormat,
};
use proptest::prelude::*;

fn key(seed: u8) -> DataKey {
    DataKey::from_bytes(&[seed; 32]).unwrap()
}

fn parts() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6)
}

proptest! {
    #[test]
    fn any_bytes_version_and_context_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        version in 1u32..,
        parts in parts(),
        seed: u8,
    ) {
        let ctx: Context = parts.iter().collect();
        let token = encrypt_bytes_v3(&data, &key(seed), version, &ctx).unwrap();
        prop_assert_eq!(token_format(&token).unwrap(), TokenFormat::V3 { key_version: version });
        prop_assert_eq!(decrypt_bytes_v3(&token, &key(seed), &ctx).unwrap(), data.clone());
        prop_assert_eq!(decrypt_bytes_any(&token, &key(seed), &ctx).unwrap(), data);
    }

    #[test]
    fn any_string_round_trips(text in any::<String>(), version in 1u32.., seed: u8) {
        let ctx = Context::new().part(&text);
        let token = encrypt_v3(&text, &key(seed), version, &ctx).unwrap();
        prop_assert_eq!(decrypt_v3(&token, &key(seed), &ctx).unwrap(), text);
    }

    /// Two contexts that are different lists (however their bytes concatenate) never open
    /// each other's tokens.
    #[test]
    fn another_context_is_authentication(a in parts(), b in parts()) {
        prop_assume!(a != b);
        let (ca, cb): (Context, Context) = (a.iter().collect(), b.iter().collect());
        let token = encrypt_bytes_v3(b"s", &key(1), 1, &ca).unwrap();
        prop_assert_eq!(decrypt_bytes_v3(&token, &key(1), &cb).unwrap_err(), Error::Authentication);
    }

    /// Any byte of the decoded token changed: refused as malformed (header) or authentication,
    /// never read.
    #[test]
    fn altered_tokens_are_refused(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        at: usize,
        xor in 1u8..,
    ) {
        let token = encrypt_bytes_v3(&data, &key(3), 9, &Context::none()).unwrap();
        let mut raw = URL_SAFE.decode(&token[3..]).unwrap();
        let i = at % raw.len();
        raw[i] ^= xor;
        let edited = format!("v3:{}", URL_SAFE.encode(&raw));
        let err = decrypt_bytes_v3(&edited, &key(3), &Context::none()).unwrap_err();
        if i == 0 || (1..5).contains(&i) && raw[1..5] == [0; 4] {
            prop_assert_eq!(err.code(), "malformed");
        } else {
            prop_assert_eq!(err, Error::Authentication);
        }
    }

    #[test]
    fn readers_never_panic(text in any::<String>()) {
        let _ = token_format(&text);
        let _ = decrypt_bytes_v3(&text, &key(1), &Context::none());
        let _ = decrypt_bytes_any(&text, &key(1), &Context::none());
    }

    /// Base64-looking input: always a typed error, and token_format never accepts a header
    /// that decryption calls malformed.
    #[test]
    fn base64ish_input_is_a_typed_error(text in "v3:[A-Za-z0-9_=-]{0,120}") {
        let err = decrypt_bytes_v3(&text, &key(1), &Context::none()).unwrap_err();
        prop_assert!(matches!(err.code(), "malformed" | "authentication"), "{:?}", err);
        if err.code() == "authentication" {
            prop_assert!(token_format(&text).is_ok());
        }
    }
}
