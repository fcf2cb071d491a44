//! `v2:` tokens: AES-256-GCM with a fresh random nonce, as the Python module writes them.
//!
//! A token is `"v2:" + base64url_padded(nonce[12] || ciphertext || tag[16])`. The nonce is 12
//! bytes, so in a token as encoders write it, it is exactly the first 16 base64 characters: we
//! decode it on its own and the rest straight into the buffer that is decrypted in place and
//! returned, so the payload is copied once (from base64) and never moved again. Tokens that
//! Python also reads but no encoder writes (white space or other characters inside, extra
//! padding, anything after the padding, mixed alphabets) are read as Python reads them.
//!
//! # Errors
//! - [`Error::Malformed`]: not base64 as Python's `urlsafe_b64decode` reads it (not ASCII, or
//!   the padding missing), or fewer than 28 bytes (nonce plus tag) once decoded;
//! - [`Error::Authentication`]: wrong key, or any bit of the token altered;
//! - [`Error::NotUtf8`]: [`decrypt`] of bytes that are not UTF-8 ([`decrypt_bytes`] succeeds);
//! - [`Error::Randomness`]: no nonce could be drawn.
//!
//! # Security
//! Each call draws its nonce from the operating system (no user-space generator that a `fork`
//! could duplicate). With random 96-bit nonces, NIST SP 800-38D bounds one key to 2^32
//! encryptions; per-user keys keep every key far below that.
//!
//! # Example
//! ```
//! use keyseal::{decrypt, encrypt, is_encrypted, DataKey};
//! let key = DataKey::generate()?;
//! let token = encrypt("sk-live-123", &key)?;
//! assert!(is_encrypted(&token));
//! assert_eq!(decrypt(&token, &key)?, "sk-live-123");
//! # Ok::<(), keyseal::Error>(())
//! ```

use zeroize::Zeroize;

use crate::encoding;
use crate::seal::{open_in_place, seal_in_place, NONCE_LEN, TAG_LEN};
use crate::{DataKey, Error};

/// The prefix of every `v2:` token (the format the Python module reads and writes).
pub const ENCRYPTED_PREFIX: &str = "v2:";

/// The prefix of every `v3:` token (see [`crate::encrypt_v3`]).
pub const V3_PREFIX: &str = "v3:";

/// Base64 characters that hold the nonce: 12 bytes are exactly 4 groups of 3.
const NONCE_CHARS: usize = 16;

/// Encrypts UTF-8 text into a `v2:` token.
///
/// # Errors
/// [`Error::Randomness`] when no nonce can be drawn.
pub fn encrypt(plaintext: &str, key: &DataKey) -> Result<String, Error> {
    encrypt_bytes_with_aad(plaintext.as_bytes(), b"", key)
}

/// Decrypts a `v2:` token (the prefix is optional, as in Python) into UTF-8 text.
///
/// # Errors
/// [`Error::Malformed`], [`Error::Authentication`] or [`Error::NotUtf8`]; see the module docs.
pub fn decrypt(token: &str, key: &DataKey) -> Result<String, Error> {
    let bytes = decrypt_bytes_with_aad(token, b"", key)?;
    String::from_utf8(bytes).map_err(|e| {
        e.into_bytes().zeroize();
        Error::NotUtf8
    })
}

/// Encrypts any bytes into a `v2:` token.
///
/// # Errors
/// [`Error::Randomness`] when no nonce can be drawn.
pub fn encrypt_bytes(plaintext: &[u8], key: &DataKey) -> Result<String, Error> {
    encrypt_bytes_with_aad(plaintext, b"", key)
}

/// Decrypts a `v2:` token (prefix optional) into bytes.
///
/// # Errors
/// [`Error::Malformed`] or [`Error::Authentication`]; see the module docs.
pub fn decrypt_bytes(token: &str, key: &DataKey) -> Result<Vec<u8>, Error> {
    decrypt_bytes_with_aad(token, b"", key)
}

/// Encrypts bytes into a `v2:` token bound to associated data `aad` (for example a user id or
/// a column name): the token then decrypts only with the same `aad`. Tokens with non-empty
/// `aad` are keyseal's extension; the Python module always uses none.
///
/// # Errors
/// [`Error::Randomness`] when no nonce can be drawn; [`Error::InvalidArgument`] for a
/// plaintext over AES-GCM's limit of 64 GiB.
pub fn encrypt_bytes_with_aad(
    plaintext: &[u8],
    aad: &[u8],
    key: &DataKey,
) -> Result<String, Error> {
    let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buf.extend_from_slice(plaintext);
    let nonce = seal_in_place(key.cipher(), aad, &mut buf, 0)?;

    let mut out = String::with_capacity(
        ENCRYPTED_PREFIX.len() + NONCE_CHARS + encoding::encoded_len(buf.len()),
    );
    out.push_str(ENCRYPTED_PREFIX);
    encoding::encode_into(&nonce, &mut out);
    encoding::encode_into(&buf, &mut out);
    Ok(out)
}

/// Decrypts a token made by [`encrypt_bytes_with_aad`] with the same `aad`.
///
/// # Errors
/// [`Error::Malformed`] or [`Error::Authentication`] (also for a different `aad`).
pub fn decrypt_bytes_with_aad(token: &str, aad: &[u8], key: &DataKey) -> Result<Vec<u8>, Error> {
    let body = token.strip_prefix(ENCRYPTED_PREFIX).unwrap_or(token);
    let too_short = Error::Malformed {
        what: "token too short: fewer than 28 bytes (nonce and tag) after base64",
    };
    let not_base64 = Error::Malformed {
        what: "token is not base64 (as Python's urlsafe_b64decode reads it)",
    };
    // Fast path, for every token an encoder wrote: the nonce is the first 16 characters, and
    // the rest is decoded straight into the buffer that is decrypted in place.
    let mut buf = Vec::with_capacity(body.len() / 4 * 3);
    let fast = body
        .split_at_checked(NONCE_CHARS)
        .and_then(|(nonce_text, rest)| {
            let nonce = encoding::decode_12(nonce_text)?;
            encoding::decode_canonical_into(rest, &mut buf).then_some(nonce)
        });
    let nonce = if let Some(nonce) = fast {
        nonce
    } else {
        // Anything else Python accepts (junk, extra padding, data after the padding): decode
        // the whole body, then move the ciphertext down over the nonce (before decryption, so
        // no plaintext is left behind in the spare capacity).
        buf.clear();
        if !encoding::decode_into(body, &mut buf) {
            return Err(not_base64);
        }
        if buf.len() < NONCE_LEN + TAG_LEN {
            return Err(too_short);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&buf[..NONCE_LEN]);
        buf.copy_within(NONCE_LEN.., 0);
        buf.truncate(buf.len() - NONCE_LEN);
        nonce
    };
    if buf.len() < TAG_LEN {
        return Err(too_short);
    }
    let tag_start = buf.len() - TAG_LEN;
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&buf[tag_start..]);
    buf.truncate(tag_start);
    if !open_in_place(key.cipher(), &nonce, aad, &mut buf, &tag) {
        return Err(Error::Authentication);
    }
    Ok(buf)
}

/// Whether `value` carries the `v2:` or `v3:` prefix, i.e. is a token rather than legacy
/// plaintext. A cheap prefix test, as in Python (which knows only `v2:`): it does not check
/// the rest.
#[must_use]
pub fn is_encrypted(value: &str) -> bool {
    value.starts_with(ENCRYPTED_PREFIX) || value.starts_with(V3_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes(&[42u8; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_prefix_optional() {
        let token = encrypt("hello", &key()).unwrap();
        assert!(token.starts_with("v2:"));
        assert_eq!(decrypt(&token, &key()).unwrap(), "hello");
        assert_eq!(decrypt(&token[3..], &key()).unwrap(), "hello");
    }

    #[test]
    fn nonces_are_fresh() {
        let a = encrypt("same", &key()).unwrap();
        let b = encrypt("same", &key()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn aad_binds() {
        let token = encrypt_bytes_with_aad(b"x", b"user-1", &key()).unwrap();
        assert_eq!(
            decrypt_bytes_with_aad(&token, b"user-1", &key()).unwrap(),
            b"x"
        );
        assert_eq!(
            decrypt_bytes_with_aad(&token, b"user-2", &key()).unwrap_err(),
            Error::Authentication
        );
        assert_eq!(
            decrypt_bytes(&token, &key()).unwrap_err(),
            Error::Authentication
        );
    }

    #[test]
    fn short_and_garbage() {
        for bad in [
            "",
            "v2:",
            "v2:AAAA",
            "v2:AAAAAAAAAAAAAAAAAAAA",
            "v2:é",
            "v2:AAAAAAAAAAAAAAAé",
        ] {
            assert_eq!(
                decrypt(bad, &key()).unwrap_err().code(),
                "malformed",
                "{bad:?}"
            );
        }
    }
}
