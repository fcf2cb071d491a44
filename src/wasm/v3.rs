//! The `v3:` token functions of the npm package: `encryptV3`, `encryptBytesV3`, `decryptV3`,
//! `decryptBytesV3`, `tokenFormat`, and the same methods on `KeysealKey`.
//!
//! A context is an array of parts, each a string (its UTF-8 bytes) or a `Uint8Array`;
//! `undefined` or `null` is no context. The package's JavaScript writes a plain context
//! straight into wasm memory before the call ([`stage_context`]): reading it through imports
//! cost about 1 µs a call. Anything else it passes on, and wasm reads it through catching
//! imports as every other argument is (a revoked `Proxy`, a throwing getter or a part of
//! another type is `malformed`, never a JS exception through wasm), copied part by part, so a
//! getter that changes the array cannot make the context read differently from what was
//! copied.

use core::cell::RefCell;

use js_sys::{JsString, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::calls::{decrypt_call, encrypt_call, KeyArg};
use super::handle::KeysealKey;
use super::{guarded, input, token_in};
use crate::{Context, Error, TokenFormat};

/// More parts than any table/row/column context needs; keeps a hostile array-like (a `Proxy`
/// claiming 2^32 - 1 elements) from holding a call for minutes.
const MAX_PARTS: u32 = 1 << 16;

const CONTEXT_TYPE: Error = Error::Malformed {
    what: "a context must be an array of strings and Uint8Arrays (or undefined)",
};
const CONTEXT_UNREADABLE: Error = Error::Malformed {
    what: "the context array could not be read (a getter or Proxy trap threw)",
};
const CONTEXT_TOO_LONG: Error = Error::Malformed {
    what: "a context has at most 65536 parts",
};

#[wasm_bindgen]
extern "C" {
    /// `Array.isArray(v)`: throws for a revoked `Proxy`, hence `catch`.
    #[wasm_bindgen(catch, js_namespace = Array, js_name = isArray)]
    fn is_array(v: &JsValue) -> Result<bool, JsValue>;
}

/// Where the package's JavaScript writes a plain context (an array of well-formed strings and
/// `Uint8Array`s) straight into wasm memory for the call it is about to make, so that the
/// context costs no crossing into JavaScript at all: `[u32 LE mark][parts]`, each part a
/// little-endian `u32` length and its bytes. The mark is 0 when nothing is staged, else the
/// parts' byte length + 1; the JavaScript writes it last, after every part, so a write that
/// fails half-way stages nothing. Contexts are identifiers, not secrets: the buffer is kept.
std::thread_local! {
    static STAGING: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the staging buffer; `None` if it cannot be reached (`try_with` rather than
/// `with`, whose panic path costs the `.wasm` hundreds of bytes).
fn with_staging<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> Option<T> {
    STAGING
        .try_with(|s| s.try_borrow_mut().ok().map(|mut b| f(&mut b)))
        .ok()
        .flatten()
}

/// For the package's JavaScript only (not part of the API; bindings/npm/entries.mjs keeps it
/// out): the address of a staging area (see [`STAGING`]) of at least `4 + len` bytes for the
/// next v3 call's context, with nothing staged, or 0 when memory for it cannot be reserved
/// (the JavaScript then passes the array itself).
#[wasm_bindgen(js_name = keysealStageContext)]
pub fn stage_context(len: usize) -> usize {
    with_staging(|buf| {
        let need = len.saturating_add(4);
        if need > buf.len() {
            buf.try_reserve_exact(need - buf.len()).ok()?;
            buf.resize(need, 0);
        }
        buf[..4].fill(0);
        Some(buf.as_mut_ptr() as usize)
    })
    .flatten()
    .unwrap_or(0)
}

/// Takes the mark of the context the JavaScript staged for this call (0: none), leaving
/// nothing staged. Each v3 call takes it first, before reading any argument, so that a staged
/// context can only be its own: no JavaScript runs between the staging and the call, and none
/// that could stage again before [`context_in`] reads it.
#[inline(never)]
pub(super) fn take_staged() -> u32 {
    with_staging(|buf| {
        let mark = u32::from_le_bytes(*buf.first_chunk::<4>()?);
        buf[..4].fill(0);
        Some(mark)
    })
    .flatten()
    .unwrap_or(0)
}

/// Decodes the staged parts (see [`STAGING`]); a cut encoding is `malformed`, as a context of
/// the wrong type is (only a fault in the package's JavaScript could make one).
fn staged_context(mark: u32) -> Result<Context, Error> {
    with_staging(|buf| {
        let mut rest = buf
            .get(4..(mark as usize).saturating_add(3))
            .ok_or(CONTEXT_TYPE)?;
        let mut ctx = Context::none();
        let mut parts = 0u32;
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let part = tail
                .get(..u32::from_le_bytes(*len) as usize)
                .ok_or(CONTEXT_TYPE)?;
            parts += 1;
            if parts > MAX_PARTS {
                return Err(CONTEXT_TOO_LONG);
            }
            ctx.try_push(part)?;
            rest = &tail[part.len()..];
        }
        if rest.is_empty() {
            Ok(ctx)
        } else {
            Err(CONTEXT_TYPE)
        }
    })
    .unwrap_or(Err(CONTEXT_TYPE))
}

/// Reads an optional context: the one staged for this call (`staged`, from [`take_staged`]),
/// else the argument: `undefined`/`null`, or an array of parts.
pub(super) fn context_in(staged: u32, v: &JsValue) -> Result<Context, Error> {
    if staged != 0 {
        return staged_context(staged);
    }
    let mut ctx = Context::none();
    if v.is_undefined() || v.is_null() {
        return Ok(ctx);
    }
    if !is_array(v).map_err(|_| CONTEXT_UNREADABLE)? {
        return Err(CONTEXT_TYPE);
    }
    let len = Reflect::get(v, &JsValue::from_str("length"))
        .map_err(|_| CONTEXT_UNREADABLE)?
        .as_f64()
        .ok_or(CONTEXT_TYPE)?;
    if !(0.0..=f64::from(MAX_PARTS)).contains(&len) || len.fract() != 0.0 {
        return Err(CONTEXT_TOO_LONG);
    }
    // A whole number from 0 to 2^16.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let len = len as u32;
    for i in 0..len {
        let part = Reflect::get_u32(v, i).map_err(|_| CONTEXT_UNREADABLE)?;
        let bytes = if part.is_string() {
            input::text_in(&part)?
        } else {
            input::bytes_in(&part).map_err(|e| {
                if e == super::NOT_BYTES {
                    CONTEXT_TYPE
                } else {
                    e
                }
            })?
        };
        ctx.try_push(&bytes)?;
    }
    Ok(ctx)
}

/// A key version from JS: a whole number from 1 to 2^32 - 1.
pub(super) fn version_in(v: &JsValue) -> Result<u32, Error> {
    let bad = || Error::InvalidArgument {
        what: "a key version must be a whole number from 1 to 4294967295".into(),
    };
    let n = v.as_f64().ok_or_else(bad)?;
    if !(1.0..=f64::from(u32::MAX)).contains(&n) || n.fract() != 0.0 {
        return Err(bad());
    }
    // Checked just above: a whole number in range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(n as u32)
}

/// Encrypts a string into a `v3:` token under version `version` (1 to 2^32 - 1) of a key,
/// bound to an optional context (an array of strings and `Uint8Array`s, e.g. `["users",
/// "42", "api_token"]`) that must be given again to decrypt.
///
/// Throws `KeysealError` with `code` `bad_key`, `invalid_argument` (version), `malformed` (not
/// a string, a lone surrogate, a bad context, too large) or `randomness`.
#[wasm_bindgen(js_name = encryptV3)]
pub fn encrypt_v3(
    plaintext: &JsValue,
    key: &JsValue,
    version: &JsValue,
    context: &JsValue,
) -> Result<String, JsValue> {
    encrypt_call(
        plaintext,
        KeyArg::Bytes(key),
        Some((version, context)),
        true,
    )
}

/// Encrypts bytes into a `v3:` token; see `encryptV3`.
///
/// Throws `KeysealError` with `code` `bad_key`, `invalid_argument`, `malformed` or
/// `randomness`.
#[wasm_bindgen(js_name = encryptBytesV3)]
pub fn encrypt_bytes_v3(
    plaintext: &JsValue,
    key: &JsValue,
    version: &JsValue,
    context: &JsValue,
) -> Result<String, JsValue> {
    encrypt_call(
        plaintext,
        KeyArg::Bytes(key),
        Some((version, context)),
        false,
    )
}

/// Decrypts a `v3:` token into text, given the key of the version its header names (see
/// `tokenFormat`) and the context it was made with.
///
/// Throws `KeysealError` with `code` `bad_key`, `malformed` (not a `v3:` token, a bad
/// context), `authentication` (wrong key or version, other context, altered token) or
/// `not_utf8`.
#[wasm_bindgen(js_name = decryptV3)]
pub fn decrypt_v3(token: &JsValue, key: &JsValue, context: &JsValue) -> Result<JsString, JsValue> {
    decrypt_call(token, KeyArg::Bytes(key), Some(context), true).map(JsCast::unchecked_into)
}

/// Decrypts a `v3:` token into bytes; see `decryptV3`.
///
/// Throws `KeysealError` with `code` `bad_key`, `malformed` or `authentication`.
#[wasm_bindgen(js_name = decryptBytesV3)]
pub fn decrypt_bytes_v3(
    token: &JsValue,
    key: &JsValue,
    context: &JsValue,
) -> Result<Uint8Array, JsValue> {
    decrypt_call(token, KeyArg::Bytes(key), Some(context), false).map(JsCast::unchecked_into)
}

/// The format of a token: `{ format: "v2" }` or `{ format: "v3", keyVersion }`. Reads only
/// the prefix and the `v3:` header, so a token it accepts may still fail to decrypt.
///
/// Throws `KeysealError` with `code` `malformed` (not a string; neither prefix; a `v3:`
/// header cut short, not base64, of another format byte or with key version 0).
#[wasm_bindgen(js_name = tokenFormat)]
pub fn token_format(token: &JsValue) -> Result<Object, JsValue> {
    guarded(|| {
        let t = token_in(token)?;
        let out = Object::new();
        let set = |name: &str, value: JsValue| {
            // Defining properties on a fresh plain object does not fail; `Reflect` catches.
            let _ = Reflect::set(&out, &JsValue::from_str(name), &value);
        };
        match crate::token_format(&t)? {
            TokenFormat::V3 { key_version } => {
                set("format", JsValue::from_str("v3"));
                set("keyVersion", JsValue::from_f64(f64::from(key_version)));
            }
            // `V2`, and any later format, which this build cannot produce.
            _ => set("format", JsValue::from_str("v2")),
        }
        Ok(out)
    })
}

#[wasm_bindgen]
impl KeysealKey {
    /// Same as the function `encryptV3`, with this key; `bad_key` after `free()`.
    #[wasm_bindgen(js_name = encryptV3)]
    pub fn encrypt_v3(
        &self,
        plaintext: &JsValue,
        version: &JsValue,
        context: &JsValue,
    ) -> Result<String, JsValue> {
        encrypt_call(
            plaintext,
            KeyArg::Handle(self),
            Some((version, context)),
            true,
        )
    }

    /// Same as the function `encryptBytesV3`, with this key; `bad_key` after `free()`.
    #[wasm_bindgen(js_name = encryptBytesV3)]
    pub fn encrypt_bytes_v3(
        &self,
        plaintext: &JsValue,
        version: &JsValue,
        context: &JsValue,
    ) -> Result<String, JsValue> {
        encrypt_call(
            plaintext,
            KeyArg::Handle(self),
            Some((version, context)),
            false,
        )
    }

    /// Same as the function `decryptV3`, with this key; `bad_key` after `free()`.
    #[wasm_bindgen(js_name = decryptV3)]
    pub fn decrypt_v3(&self, token: &JsValue, context: &JsValue) -> Result<JsString, JsValue> {
        decrypt_call(token, KeyArg::Handle(self), Some(context), true).map(JsCast::unchecked_into)
    }

    /// Same as the function `decryptBytesV3`, with this key; `bad_key` after `free()`.
    #[wasm_bindgen(js_name = decryptBytesV3)]
    pub fn decrypt_bytes_v3(
        &self,
        token: &JsValue,
        context: &JsValue,
    ) -> Result<Uint8Array, JsValue> {
        decrypt_call(token, KeyArg::Handle(self), Some(context), false).map(JsCast::unchecked_into)
    }
}
