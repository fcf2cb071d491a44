//! Property tests: round trips for any input, and no input makes a parser panic.
// Native only (proptest).
#![cfg(not(target_arch = "wasm32"))]

use keyseal::{decrypt, decrypt_bytes, encrypt, encrypt_bytes, DataKey, MasterKey};
use proptest::prelude::*;

fn key(seed: u8) -> DataKey {
    DataKey::from_bytes(&[seed; 32]).unwrap()
}

proptest! {
    #[test]
    fn any_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2048), seed: u8) {
        let token = encrypt_bytes(&data, &key(seed)).unwrap();
        prop_assert!(token.starts_with("v2:"));
        prop_assert_eq!(decrypt_bytes(&token, &key(seed)).unwrap(), data);
    }

    #[test]
    fn any_string_round_trips(text in any::<String>(), seed: u8) {
        let token = encrypt(&text, &key(seed)).unwrap();
        prop_assert_eq!(decrypt(&token, &key(seed)).unwrap(), text);
    }

    #[test]
    fn decrypt_never_panics(text in any::<String>()) {
        let _ = decrypt(&text, &key(1));
        let _ = decrypt_bytes(&text, &key(1));
    }

    #[test]
    fn decrypt_never_panics_on_base64ish(text in "(v2:)?[A-Za-z0-9_+/=-]{0,200}") {
        let err = decrypt_bytes(&text, &key(1)).unwrap_err();
        prop_assert!(matches!(err.code(), "malformed" | "authentication"));
    }

    #[test]
    fn altered_tokens_are_refused(data in proptest::collection::vec(any::<u8>(), 0..256), at: usize) {
        let token = encrypt_bytes(&data, &key(3)).unwrap();
        let mut chars: Vec<char> = token.chars().collect();
        let i = 3 + at % (chars.len() - 3);
        let replacement = if chars[i] == 'A' { 'B' } else { 'A' };
        chars[i] = replacement;
        let altered: String = chars.into_iter().collect();
        // Trailing bits before padding may not change the bytes; anything else must fail.
        if let Ok(bytes) = decrypt_bytes(&altered, &key(3)) {
            prop_assert_eq!(bytes, data);
        }
    }

    #[test]
    fn key_parsers_never_panic(text in any::<String>(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = DataKey::from_base64(&text);
        let _ = MasterKey::from_base64(&text);
        let _ = keyseal::parse_master_key(&text);
        prop_assert_eq!(DataKey::from_bytes(&bytes).is_ok(), bytes.len() == 32);
    }

    #[test]
    fn key_base64_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
        let k = MasterKey::from_bytes(&bytes).unwrap();
        let again = MasterKey::from_base64(&k.to_base64()).unwrap();
        prop_assert_eq!(again.expose_secret(), &bytes);
    }
}
