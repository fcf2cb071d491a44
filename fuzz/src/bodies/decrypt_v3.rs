//! `decrypt_v3`: `v3:` token decryption over arbitrary text, with a context and a key taken
//! from the input (the seeds are the v3 vectors, each with its key and context).
//!
//! Promises checked: never a panic; only `malformed` or `authentication`; `token_format`
//! accepts every token that decrypts, with the version of its header, and refuses only what
//! decryption calls malformed; `decrypt_v3` is `decrypt_bytes_v3` plus UTF-8; `decrypt_bytes_any`
//! agrees on `v3:` tokens; what decrypts re-encrypts under the same version and context, and
//! fails as `authentication` under another version, or with one more context part.

use keyseal::{
    decrypt_bytes_any, decrypt_bytes_v3, decrypt_v3, encrypt_bytes_v3, token_format, Context,
    DataKey, Error, TokenFormat,
};

fn outcome(r: &Result<Vec<u8>, Error>) -> Result<&[u8], &'static str> {
    r.as_ref().map(Vec::as_slice).map_err(Error::code)
}

/// Input: byte 0 = number of context parts (low 3 bits); byte 1.. = the 32 key bytes; then per
/// part one length byte and that many bytes (cut short at the end of the input); the rest is
/// the token as UTF-8 (lossy, so every input reaches the parser).
pub fn run(data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let Some((key_bytes, mut rest)) = rest.split_at_checked(32) else {
        return;
    };
    let key = DataKey::from_bytes(key_bytes).expect("32 bytes make a key");
    let mut ctx = Context::new();
    for _ in 0..(choice & 7) {
        let Some((&len, tail)) = rest.split_first() else {
            break;
        };
        let (part, tail) = tail.split_at(usize::from(len).min(tail.len()));
        ctx.push(part);
        rest = tail;
    }
    let token = String::from_utf8_lossy(rest);
    let token = token.as_ref();

    let bytes = decrypt_bytes_v3(token, &key, &ctx);
    let format = token_format(token);
    match (&bytes, &format) {
        (Ok(_), Ok(TokenFormat::V3 { key_version })) => assert_ne!(*key_version, 0),
        (Ok(_), other) => panic!("decrypted, but token_format says {other:?}"),
        (Err(e), Err(_)) => assert_eq!(e.code(), "malformed", "token_format refused it"),
        (Err(_), Ok(_)) => {}
    }
    if token.starts_with("v3:") {
        assert_eq!(
            outcome(&bytes),
            outcome(&decrypt_bytes_any(token, &key, &ctx)),
            "decrypt_bytes_any differs on a v3 token"
        );
    }
    match (&bytes, decrypt_v3(token, &key, &ctx)) {
        (Ok(b), Ok(s)) => assert_eq!(b.as_slice(), s.as_bytes()),
        (Ok(b), Err(e)) => {
            assert_eq!(e.code(), "not_utf8");
            assert!(std::str::from_utf8(b).is_err());
        }
        (Err(e1), Err(e2)) => assert_eq!(e1.code(), e2.code()),
        (Err(_), Ok(_)) => panic!("decrypt_v3 opened what decrypt_bytes_v3 refused"),
    }
    match &bytes {
        Ok(plain) => {
            let Ok(TokenFormat::V3 { key_version }) = format else {
                unreachable!("checked above");
            };
            let again = encrypt_bytes_v3(plain, &key, key_version, &ctx).expect("encrypt");
            assert_eq!(
                token_format(&again).expect("format"),
                format.expect("format")
            );
            assert_eq!(
                decrypt_bytes_v3(&again, &key, &ctx).expect("round trip"),
                *plain
            );
            let other = if key_version == 1 { 2 } else { key_version - 1 };
            let moved = encrypt_bytes_v3(plain, &key, other, &ctx).expect("encrypt");
            let swapped = format!("{}{}", &again[..11], &moved[11..]);
            assert_eq!(
                decrypt_bytes_v3(&swapped, &key, &ctx).expect_err("header swap"),
                Error::Authentication
            );
            let longer = ctx.clone().part(b"");
            assert_eq!(
                decrypt_bytes_v3(token, &key, &longer).expect_err("one more part"),
                Error::Authentication
            );
        }
        Err(e) => assert!(
            matches!(e.code(), "malformed" | "authentication"),
            "unexpected error {}",
            e.code()
        ),
    }
}
