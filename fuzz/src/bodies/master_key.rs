//! `master_key`: the master key as `API_KEY_MASTER_KEY` and key files give it.
//!
//! The input is the content of a key file (the CLI reads it as UTF-8 text and parses it with
//! `parse_master_key`) and, when it can be, the value of `API_KEY_MASTER_KEY` for
//! `resolve_master_key`. Checked against a reference reading of the README's rule: trimmed,
//! padded base64 of 32 bytes in the url-safe or standard alphabet (trailing bits ignored), so
//! exactly 43 alphabet characters and one `=`. Also: `to_base64` is canonical url-safe and
//! parses back to the same key; `resolve_master_key` is `Some` exactly when parsing succeeds
//! (and the value is not blank). Sets the process environment: run it on one thread.

use keyseal::{parse_master_key, resolve_master_key, MASTER_KEY_ENV};

fn sextet(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' | b'+' => 62,
        b'_' | b'/' => 63,
        _ => return None,
    })
}

/// The key the README's rule reads from `text`, if any.
pub fn reference(text: &str) -> Option<[u8; 32]> {
    let t = text.trim().as_bytes();
    if t.len() != 44 || t[43] != b'=' {
        return None;
    }
    let mut bits: u128 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(33);
    for &c in &t[..43] {
        bits = (bits << 6) | u128::from(sextet(c)?);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            #[allow(clippy::cast_possible_truncation)]
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out.truncate(32);
    out.try_into().ok()
}

fn canonical(bytes: &[u8; 32]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            s.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    while s.len() % 4 != 0 {
        s.push('=');
    }
    s
}

/// Input: the text of a key file / the environment variable.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_master_key(text);
    match (&parsed, reference(text)) {
        (Ok(key), Some(bytes)) => {
            assert_eq!(key.expose_secret(), &bytes, "wrong key bytes");
            let b64 = key.to_base64();
            assert_eq!(
                b64,
                canonical(&bytes),
                "to_base64 is not canonical url-safe"
            );
            let again = parse_master_key(&b64).expect("own output parses");
            assert_eq!(again.expose_secret(), &bytes);
        }
        (Err(e), None) => assert_eq!(e.code(), "bad_key"),
        (Ok(_), None) => panic!("accepted a master key the rule refuses"),
        (Err(e), Some(_)) => panic!("refused a valid master key: {e}"),
    }
    if text.contains('\0') {
        return; // cannot be an environment variable
    }
    std::env::set_var(MASTER_KEY_ENV, text);
    let resolved = resolve_master_key();
    std::env::remove_var(MASTER_KEY_ENV);
    match (resolved, &parsed) {
        (Some(a), Ok(b)) => assert_eq!(a.expose_secret(), b.expose_secret()),
        (None, Err(_)) => {}
        (Some(_), Err(_)) => panic!("resolve_master_key accepted what parse refuses"),
        (None, Ok(_)) => panic!("resolve_master_key ignored a valid key"),
    }
}
