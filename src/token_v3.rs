//! `v3:` tokens: AES-256-GCM with an authenticated header naming the key version, and an
//! optional [`Context`] the token is bound to.
//!
//! # Layout
//! ```text
//! token  = "v3:" || base64url_padded(header || nonce[12] || ciphertext || tag[16])
//! header = 0x03 || key_version (u32 big-endian, at least 1)
//! aad    = header || context encoding
//! context encoding = u32 BE number of parts || for each part: u32 BE length || bytes
//! ```
//! The base64 is the URL-safe alphabet with `=` padding, as `v2:` tokens use; a reader of
//! `v3:` accepts only that canonical text (no white space, no other alphabet, no non-zero
//! trailing bits), so each token has one spelling. The smallest token (empty plaintext) is 33
//! bytes, 44 characters of base64 after the prefix.
//!
//! Decryption never tries several keys: read the version with [`token_format`], pass that
//! version's key. Version 1 of a user's data key is the key the Python module uses.
//!
//! # Errors
//! - [`Error::Malformed`]: no `v3:` prefix, not canonical base64, fewer than 33 bytes, a
//!   format byte other than `0x03`, or key version 0;
//! - [`Error::Authentication`]: wrong key (e.g. another version's), another context, or any
//!   byte altered, the header included;
//! - [`Error::NotUtf8`]: [`decrypt_v3`] of bytes that are not UTF-8;
//! - [`Error::InvalidArgument`]: key version 0 given to encrypt, a context too large, a
//!   plaintext over AES-GCM's 64 GiB, or a context given with a `v2:` token to [`decrypt_any`];
//! - [`Error::Randomness`]: no nonce could be drawn.
//!
//! # Security
//! The nonce is fresh from the operating system per call, as for `v2:`. Changing the version
//! in a token's header makes it fail authentication rather than decrypt under another key.
//!
//! # Example
//! ```
//! use keyseal::{decrypt_v3, encrypt_v3, token_format, Context, DataKey, TokenFormat};
//! let key = DataKey::generate()?;
//! let row = Context::new().part("users").part("42").part("api_token");
//! let token = encrypt_v3("sk-live-123", &key, 2, &row)?;
//! assert_eq!(token_format(&token)?, TokenFormat::V3 { key_version: 2 });
//! assert_eq!(decrypt_v3(&token, &key, &row)?, "sk-live-123");
//! let other_row = Context::new().part("users").part("43").part("api_token");
//! assert_eq!(decrypt_v3(&token, &key, &other_row).unwrap_err().code(), "authentication");
//! # Ok::<(), keyseal::Error>(())
//! ```

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use zeroize::Zeroize;

use crate::seal::{open_in_place, seal_in_place, NONCE_LEN, TAG_LEN};
use crate::token::{ENCRYPTED_PREFIX, V3_PREFIX};
use crate::{Context, DataKey, Error};

/// The first byte of every `v3:` token's header.
const FORMAT_V3: u8 = 0x03;
/// Format byte and u32 key version.
const HEADER_LEN: usize = 5;
/// Header and nonce: where the ciphertext starts.
const BODY_START: usize = HEADER_LEN + NONCE_LEN;
/// The smallest token, in bytes: header, nonce and tag around an empty plaintext.
const MIN_LEN: usize = BODY_START + TAG_LEN;
/// AAD up to this many bytes is built on the stack: every usual context fits.
const STACK_AAD: usize = 256;

/// Canonical URL-safe padded base64 only: one text per token.
const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(false),
);

const NOT_V3: Error = Error::Malformed {
    what: "not a v3 token: no \"v3:\" prefix",
};
const NOT_BASE64: Error = Error::Malformed {
    what: "v3 token is not canonical URL-safe padded base64",
};
const TOO_SHORT: Error = Error::Malformed {
    what: "v3 token too short: fewer than 33 bytes (header, nonce and tag) after base64",
};
const BAD_FORMAT: Error = Error::Malformed {
    what: "v3 token header: format byte is not 0x03",
};
const VERSION_ZERO: Error = Error::Malformed {
    what: "v3 token header: key version 0 (versions start at 1)",
};

/// Which format a token is in, read from its prefix and (for `v3:`) its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenFormat {
    /// A `v2:` token, as the Python module writes: no key version, no context.
    V2,
    /// A `v3:` token made under version `key_version` (at least 1) of a data key.
    V3 {
        /// The version of the data key that decrypts it.
        key_version: u32,
    },
}

/// The format of a token and, for `v3:`, the key version it needs. Cheap: it decodes only the
/// prefix and the 5-byte header, not the rest (so a token it accepts may still be refused by
/// decryption).
///
/// # Errors
/// [`Error::Malformed`] when the value starts with neither `v2:` nor `v3:` (legacy plaintext,
/// or a `v2:` body without its prefix, which [`crate::decrypt`] still reads), or for a `v3:`
/// whose header is not canonical base64, is cut short, has a format byte other than `0x03` or
/// key version 0.
///
/// # Security
/// The version read here is not yet authenticated: it only chooses the key. A forged version
/// picks a key under which the token then fails as [`Error::Authentication`].
///
/// # Example
/// ```
/// use keyseal::{encrypt, encrypt_v3, token_format, Context, DataKey, TokenFormat};
/// let key = DataKey::generate()?;
/// assert_eq!(token_format(&encrypt("x", &key)?)?, TokenFormat::V2);
/// let t = encrypt_v3("x", &key, 7, &Context::none())?;
/// assert_eq!(token_format(&t)?, TokenFormat::V3 { key_version: 7 });
/// assert_eq!(token_format("plain").unwrap_err().code(), "malformed");
/// # Ok::<(), keyseal::Error>(())
/// ```
pub fn token_format(token: &str) -> Result<TokenFormat, Error> {
    if token.starts_with(ENCRYPTED_PREFIX) {
        return Ok(TokenFormat::V2);
    }
    let body = token.strip_prefix(V3_PREFIX).ok_or(NOT_V3)?;
    // 8 characters are exactly 6 bytes: the header and the nonce's first byte.
    let head = body.as_bytes().get(..8).ok_or(TOO_SHORT)?;
    let mut bytes = [0u8; 6];
    match STRICT.decode_slice(head, &mut bytes) {
        Ok(6) => {}
        // "xxxx====" style padding inside the first 8 characters: the token is too short.
        Ok(_) => return Err(TOO_SHORT),
        Err(_) => return Err(NOT_BASE64),
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&bytes[..HEADER_LEN]);
    parse_header(header).map(|key_version| TokenFormat::V3 { key_version })
}

/// The key version of a header, or why it is malformed.
fn parse_header(header: [u8; HEADER_LEN]) -> Result<u32, Error> {
    if header[0] != FORMAT_V3 {
        return Err(BAD_FORMAT);
    }
    match u32::from_be_bytes([header[1], header[2], header[3], header[4]]) {
        0 => Err(VERSION_ZERO),
        v => Ok(v),
    }
}

fn header(key_version: u32) -> Result<[u8; HEADER_LEN], Error> {
    if key_version == 0 {
        return Err(Error::InvalidArgument {
            what: "key_version must be at least 1".into(),
        });
    }
    let v = key_version.to_be_bytes();
    Ok([FORMAT_V3, v[0], v[1], v[2], v[3]])
}

/// `header || context encoding`, on the stack when it is small (it always is for the usual
/// table/row/column context), so the hot path does not allocate.
struct Aad {
    stack: [u8; STACK_AAD],
    heap: Vec<u8>,
    len: usize,
}

impl Aad {
    fn new(header: [u8; HEADER_LEN], ctx: &Context) -> Result<Aad, Error> {
        let (count, parts) = ctx.encoded_pieces()?;
        let len = HEADER_LEN + 4 + parts.len();
        let mut aad = Aad {
            stack: [0u8; STACK_AAD],
            heap: Vec::new(),
            len,
        };
        if len > STACK_AAD {
            aad.heap
                .try_reserve_exact(len)
                .map_err(|_| Error::InvalidArgument {
                    what: "context too large for memory".into(),
                })?;
            aad.heap.resize(len, 0);
        }
        let buf = aad.bytes_mut();
        buf[..HEADER_LEN].copy_from_slice(&header);
        buf[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&count);
        buf[HEADER_LEN + 4..].copy_from_slice(parts);
        Ok(aad)
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        if self.len > STACK_AAD {
            &mut self.heap
        } else {
            &mut self.stack[..self.len]
        }
    }

    fn bytes(&self) -> &[u8] {
        if self.len > STACK_AAD {
            &self.heap
        } else {
            &self.stack[..self.len]
        }
    }
}

/// Encrypts UTF-8 text into a `v3:` token under version `key_version` of a key, bound to
/// `ctx` ([`Context::none`] for none).
///
/// # Errors
/// [`Error::InvalidArgument`] for key version 0 or a context too large;
/// [`Error::Randomness`] when no nonce can be drawn.
///
/// # Security
/// `key` must be version `key_version` of the data key: the version is written in the token
/// for the reader to choose the key by, and authenticated.
///
/// # Example
/// ```
/// use keyseal::{decrypt_v3, encrypt_v3, Context, DataKey};
/// let key = DataKey::generate()?;
/// let token = encrypt_v3("secret", &key, 1, &Context::none())?;
/// assert!(token.starts_with("v3:"));
/// assert_eq!(decrypt_v3(&token, &key, &Context::none())?, "secret");
/// # Ok::<(), keyseal::Error>(())
/// ```
pub fn encrypt_v3(
    plaintext: &str,
    key: &DataKey,
    key_version: u32,
    ctx: &Context,
) -> Result<String, Error> {
    encrypt_bytes_v3(plaintext.as_bytes(), key, key_version, ctx)
}

/// Encrypts bytes into a `v3:` token; see [`encrypt_v3`].
///
/// # Errors
/// [`Error::InvalidArgument`] for key version 0, a context too large or a plaintext over
/// AES-GCM's 64 GiB; [`Error::Randomness`] when no nonce can be drawn.
///
/// # Security
/// The plaintext is copied once, into the buffer encrypted in place; on failure that buffer is
/// wiped.
///
/// # Example
/// ```
/// use keyseal::{decrypt_bytes_v3, encrypt_bytes_v3, Context, DataKey};
/// let key = DataKey::generate()?;
/// let ctx = Context::from_parts(&[b"sessions".as_slice(), &[0xff, 0x00]]);
/// let token = encrypt_bytes_v3(&[0, 159, 146, 150], &key, 3, &ctx)?;
/// assert_eq!(decrypt_bytes_v3(&token, &key, &ctx)?, [0, 159, 146, 150]);
/// # Ok::<(), keyseal::Error>(())
/// ```
pub fn encrypt_bytes_v3(
    plaintext: &[u8],
    key: &DataKey,
    key_version: u32,
    ctx: &Context,
) -> Result<String, Error> {
    let header = header(key_version)?;
    let aad = Aad::new(header, ctx)?;
    let mut buf = Vec::with_capacity(BODY_START + plaintext.len() + TAG_LEN);
    buf.extend_from_slice(&header);
    buf.extend_from_slice(&[0u8; NONCE_LEN]);
    buf.extend_from_slice(plaintext);
    // On failure `seal_in_place` wipes the buffer: no plaintext is left behind.
    let nonce = seal_in_place(key.cipher(), aad.bytes(), &mut buf, BODY_START)?;
    buf[HEADER_LEN..BODY_START].copy_from_slice(&nonce);

    let mut out = String::with_capacity(V3_PREFIX.len() + buf.len().div_ceil(3) * 4);
    out.push_str(V3_PREFIX);
    STRICT.encode_string(&buf, &mut out);
    Ok(out)
}

/// Decrypts a `v3:` token into UTF-8 text, given the key of the version its header names (see
/// [`token_format`]) and the context it was made with.
///
/// # Errors
/// [`Error::Malformed`] (not a well-formed `v3:` token), [`Error::Authentication`] (wrong key
/// or version, other context, altered token), [`Error::NotUtf8`] (use [`decrypt_bytes_v3`]),
/// [`Error::InvalidArgument`] (context too large).
///
/// # Security
/// Nothing is returned unless the whole token, header included, authenticates under `key` and
/// `ctx`; bytes that are not UTF-8 are wiped before the error returns.
///
/// # Example
/// ```
/// use keyseal::{decrypt_v3, encrypt_v3, Context, DataKey};
/// let key = DataKey::generate()?;
/// let token = encrypt_v3("s", &key, 1, &Context::new().part("a:b").part("c"))?;
/// let moved = Context::new().part("a").part("b:c");
/// assert_eq!(decrypt_v3(&token, &key, &moved).unwrap_err().code(), "authentication");
/// # Ok::<(), keyseal::Error>(())
/// ```
pub fn decrypt_v3(token: &str, key: &DataKey, ctx: &Context) -> Result<String, Error> {
    let bytes = decrypt_bytes_v3(token, key, ctx)?;
    String::from_utf8(bytes).map_err(|e| {
        e.into_bytes().zeroize();
        Error::NotUtf8
    })
}

/// Decrypts a `v3:` token into bytes; see [`decrypt_v3`].
///
/// # Errors
/// [`Error::Malformed`], [`Error::Authentication`] or [`Error::InvalidArgument`], as for
/// [`decrypt_v3`].
///
/// # Security
/// The ciphertext is moved into place before it is decrypted, so no plaintext is left in the
/// buffer's spare capacity.
///
/// # Example
/// ```
/// use keyseal::{decrypt_bytes_v3, encrypt_bytes_v3, Context, DataKey};
/// let (v1, v2) = (DataKey::generate()?, DataKey::generate()?);
/// let token = encrypt_bytes_v3(b"k", &v2, 2, &Context::none())?;
/// assert_eq!(decrypt_bytes_v3(&token, &v2, &Context::none())?, b"k");
/// assert_eq!(
///     decrypt_bytes_v3(&token, &v1, &Context::none()).unwrap_err().code(),
///     "authentication"
/// );
/// # Ok::<(), keyseal::Error>(())
/// ```
pub fn decrypt_bytes_v3(token: &str, key: &DataKey, ctx: &Context) -> Result<Vec<u8>, Error> {
    let body = token.strip_prefix(V3_PREFIX).ok_or(NOT_V3)?;
    let mut buf = Vec::with_capacity(body.len() / 4 * 3);
    STRICT.decode_vec(body, &mut buf).map_err(|_| NOT_BASE64)?;
    if buf.len() < MIN_LEN {
        return Err(TOO_SHORT);
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&buf[..HEADER_LEN]);
    parse_header(header)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&buf[HEADER_LEN..BODY_START]);
    let tag_start = buf.len() - TAG_LEN;
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&buf[tag_start..]);
    // Ciphertext to the front first: what the truncation leaves behind is ciphertext and tag.
    buf.copy_within(BODY_START..tag_start, 0);
    buf.truncate(tag_start - BODY_START);
    let aad = Aad::new(header, ctx)?;
    if !open_in_place(key.cipher(), &nonce, aad.bytes(), &mut buf, &tag) {
        return Err(Error::Authentication);
    }
    Ok(buf)
}

/// Decrypts a `v2:` or `v3:` token into UTF-8 text: `key` must be the key its format names
/// (for `v3:`, the version [`token_format`] reads), `ctx` the context it was made with. A
/// `v2:` token has no context, so `ctx` must then be empty.
///
/// # Errors
/// As [`token_format`], then as [`crate::decrypt`] for `v2:` or [`decrypt_v3`] for `v3:`;
/// [`Error::InvalidArgument`] for a `v2:` token given a non-empty `ctx` (it cannot be bound to
/// one, so accepting it would silently drop the binding the caller asked for).
///
/// # Security
/// No key is tried but the one given; the prefix decides the format.
///
/// # Example
/// ```
/// use keyseal::{decrypt_any, encrypt, encrypt_v3, Context, DataKey};
/// let key = DataKey::generate()?;
/// let none = Context::none();
/// assert_eq!(decrypt_any(&encrypt("a", &key)?, &key, &none)?, "a");
/// assert_eq!(decrypt_any(&encrypt_v3("b", &key, 1, &none)?, &key, &none)?, "b");
/// let row = Context::new().part("7");
/// assert_eq!(decrypt_any(&encrypt("a", &key)?, &key, &row).unwrap_err().code(), "invalid_argument");
/// # Ok::<(), keyseal::Error>(())
/// ```
pub fn decrypt_any(token: &str, key: &DataKey, ctx: &Context) -> Result<String, Error> {
    let bytes = decrypt_bytes_any(token, key, ctx)?;
    String::from_utf8(bytes).map_err(|e| {
        e.into_bytes().zeroize();
        Error::NotUtf8
    })
}

/// Decrypts a `v2:` or `v3:` token into bytes; see [`decrypt_any`].
///
/// # Errors
/// As [`decrypt_any`], without [`Error::NotUtf8`].
///
/// # Security
/// As [`decrypt_any`].
///
/// # Example
/// ```
/// use keyseal::{decrypt_bytes_any, encrypt_bytes_v3, Context, DataKey};
/// let key = DataKey::generate()?;
/// let ctx = Context::new().part("t");
/// let token = encrypt_bytes_v3(&[1, 2], &key, 1, &ctx)?;
/// assert_eq!(decrypt_bytes_any(&token, &key, &ctx)?, [1, 2]);
/// # Ok::<(), keyseal::Error>(())
/// ```
pub fn decrypt_bytes_any(token: &str, key: &DataKey, ctx: &Context) -> Result<Vec<u8>, Error> {
    match token_format(token)? {
        TokenFormat::V2 if ctx.is_empty() => crate::decrypt_bytes(token, key),
        TokenFormat::V2 => Err(Error::InvalidArgument {
            what: "a v2 token has no context: pass an empty context".into(),
        }),
        TokenFormat::V3 { .. } => decrypt_bytes_v3(token, key, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes(&[42u8; 32]).unwrap()
    }

    #[test]
    fn layout_header_then_nonce() {
        let t = encrypt_bytes_v3(b"", &key(), 0x0102_0304, &Context::none()).unwrap();
        let raw = STRICT.decode(&t[3..]).unwrap();
        assert_eq!(raw.len(), MIN_LEN);
        assert_eq!(&raw[..HEADER_LEN], &[3, 1, 2, 3, 4]);
        assert_eq!(t.len(), 3 + 44);
    }

    #[test]
    fn large_context_uses_the_heap_path() {
        let big = Context::new().part(vec![9u8; 1000]);
        let t = encrypt_v3("x", &key(), 1, &big).unwrap();
        assert_eq!(decrypt_v3(&t, &key(), &big).unwrap(), "x");
        let other = Context::new().part(vec![8u8; 1000]);
        assert_eq!(
            decrypt_v3(&t, &key(), &other).unwrap_err(),
            Error::Authentication
        );
    }
}
