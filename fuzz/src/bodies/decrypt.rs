//! `decrypt`: token decryption over arbitrary text, with and without `v2:`, under the keys of
//! the Python vectors (whose tokens seed the corpus) or a key taken from the input.
//!
//! Promises checked: never a panic; the `v2:` prefix is optional (one is stripped, so `T` and
//! `v2:T` agree); `decrypt` is `decrypt_bytes` plus UTF-8 (`not_utf8` exactly when the bytes
//! are not UTF-8); empty associated data is the plain form; what decrypts re-encrypts to a
//! token that decrypts to the same bytes.

use std::sync::OnceLock;

use keyseal::{decrypt, decrypt_bytes, decrypt_bytes_with_aad, encrypt_bytes, DataKey, Error};

/// The keys of tests/vectors/python/python-interop.json's tokens, in order.
const VECTOR_KEYS: &[&str] = &[
    "KeG6-_avUM9lYVS6IBjWPW27OfqbZqasBzwGmQ0GxIc=",
    "Xd54OZxGzqYkcq5ss_7nsyvfKVdR6-EF2Q0rakzwKjY=",
    "55Xrh0uHCIs9sFXCPNYxn3n1zt--cmOgKhDeT9itHL0=",
    "d5bP21VHWLNoZXZBAODCdBPrNMRHQop5_LlVkkp8I4I=",
];

fn vector_keys() -> &'static [DataKey] {
    static KEYS: OnceLock<Vec<DataKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        VECTOR_KEYS
            .iter()
            .map(|k| DataKey::from_base64(k).expect("vector key"))
            .collect()
    })
}

fn outcome(r: &Result<Vec<u8>, Error>) -> Result<&[u8], &'static str> {
    r.as_ref().map(Vec::as_slice).map_err(Error::code)
}

/// Input: one byte choosing the key (high bit: the next 32 bytes are the key), then the
/// token as UTF-8 (lossy, so every input reaches the parser).
pub fn run(data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let own;
    let (key, rest) = if choice & 0x80 != 0 && rest.len() >= 32 {
        own = DataKey::from_bytes(&rest[..32]).expect("32 bytes make a key");
        (&own, &rest[32..])
    } else {
        let keys = vector_keys();
        (&keys[usize::from(choice) % keys.len()], rest)
    };
    let token = String::from_utf8_lossy(rest);
    let token = token.as_ref();

    let bytes = decrypt_bytes(token, key);
    let body = token.strip_prefix("v2:").unwrap_or(token);
    let prefixed = decrypt_bytes(&format!("v2:{body}"), key);
    assert_eq!(outcome(&bytes), outcome(&prefixed), "T and v2:T differ");
    if !body.starts_with("v2:") && body.len() != token.len() {
        assert_eq!(outcome(&bytes), outcome(&decrypt_bytes(body, key)));
    }
    if bytes.is_ok() {
        assert_eq!(
            outcome(&bytes),
            outcome(&decrypt_bytes_with_aad(token, b"", key)),
            "empty associated data is not the plain form"
        );
    }
    match (&bytes, decrypt(token, key)) {
        (Ok(b), Ok(s)) => assert_eq!(b.as_slice(), s.as_bytes()),
        (Ok(b), Err(e)) => {
            assert_eq!(e.code(), "not_utf8");
            assert!(std::str::from_utf8(b).is_err());
        }
        (Err(e1), Err(e2)) => assert_eq!(e1.code(), e2.code()),
        (Err(_), Ok(_)) => panic!("decrypt opened what decrypt_bytes refused"),
    }
    match &bytes {
        Ok(plain) => {
            let again = encrypt_bytes(plain, key).expect("encrypt");
            assert_eq!(decrypt_bytes(&again, key).expect("round trip"), *plain);
        }
        Err(e) => assert!(
            matches!(e.code(), "malformed" | "authentication"),
            "unexpected error {}",
            e.code()
        ),
    }
}
