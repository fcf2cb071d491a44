//! JavaScript bindings: the npm package `keyseal` (`wasm32-unknown-unknown` only).
//!
//! This is the only module that knows about `wasm-bindgen`. It turns JS values into the core's
//! types, and core errors into JS `Error`s with `name = "KeysealError"` and a stable `code`
//! (see [`Error::code`]). No argument and no behaviour of the host may make a call panic, trap,
//! or let a JS exception unwind through wasm (which would leak wasm-bindgen's slots and, after
//! a few hundred, break the instance):
//!
//! - arguments are taken as `JsValue`s and read through imports that catch ([`input`]): keys
//!   and bytes must be genuine `Uint8Array`s (a wrong type or length is `bad_key` for keys,
//!   `malformed` for data); text to encrypt or hash must be well-formed UTF-16 (a lone
//!   surrogate is `malformed`, as Python's `str.encode` refuses it too);
//! - before an input is copied into wasm memory, the memory it and the result will need is
//!   reserved fallibly, so that a huge input is refused with `malformed` instead of the
//!   allocator aborting (which in wasm is an `unreachable` trap);
//! - randomness comes from `crypto.getRandomValues` through imports that catch ([`host`]): a
//!   failing, missing or re-entering host is `randomness`;
//! - every copy of a secret in wasm memory is zeroized: inputs (keys, plaintext, the API key
//!   given to `hash`), outputs (decrypted plaintext, generated keys) once handed to JS, freed
//!   `KeysealKey`s, and the stack below each call that touched a secret.
//!
//! `KeysealKey` ([`handle`]) is an opaque handle that keeps a key and its expanded AES schedule inside
//! wasm memory, for callers who encrypt or decrypt many values with one key.

mod calls;
mod handle;
mod host;
mod input;
#[cfg(test)]
mod tests;
mod v3;

use js_sys::{JsString, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use zeroize::{Zeroize, Zeroizing};

use crate::{DataKey, Error, MasterKey};
use calls::{decrypt_call, encrypt_call, KeyArg};

/// The longest string V8 (Node, Chrome, Deno, workerd) can hold, in UTF-16 units.
const MAX_JS_STRING: usize = (1 << 29) - 24;
/// Below this many bytes an input is not worth a memory reservation first.
const RESERVE_THRESHOLD: usize = 1 << 16;
/// Nonce and tag: what a `v2:` token holds beyond the plaintext.
const OVERHEAD: usize = 12 + 16;
/// Header, nonce and tag: what a `v3:` token holds beyond the plaintext.
const OVERHEAD_V3: usize = 5 + 12 + 16;

const TOO_LARGE: Error = Error::Malformed {
    what: "input too large for WebAssembly memory",
};
const TOKEN_TOO_LARGE: Error = Error::Malformed {
    what: "input too large: its token would be longer than the longest JavaScript string",
};
const NOT_A_STRING: Error = Error::Malformed {
    what: "expected a string",
};
const NOT_BYTES: Error = Error::Malformed {
    what: "expected a Uint8Array",
};
const BYTES_UNREADABLE: Error = Error::Malformed {
    what: "the Uint8Array could not be read (its buffer is detached or out of bounds)",
};
const TEXT_UNREADABLE: Error = Error::Malformed {
    what: "the string could not be encoded as UTF-8 (TextEncoder failed)",
};
const LONE_SURROGATE: Error = Error::Malformed {
    what: "the string is not well-formed UTF-16 (it has a lone surrogate)",
};
const KEY_TYPE: Error = Error::BadKey {
    reason: "a key must be a Uint8Array of 32 bytes",
};
const KEY_LENGTH: Error = Error::BadKey {
    reason: "a key must be 32 bytes",
};
const KEY_UNREADABLE: Error = Error::BadKey {
    reason: "the key could not be read (its buffer is detached or out of bounds)",
};

/// A core error as a JS `Error` named `KeysealError`, with its `code`.
fn js_error(err: &Error) -> JsValue {
    let e: JsValue = js_sys::Error::new(&err.to_string()).into();
    // Setting properties on a fresh Error object does not fail; `Reflect.set` would catch it.
    let _ = Reflect::set(
        &e,
        &JsValue::from_str("name"),
        &JsValue::from_str("KeysealError"),
    );
    let _ = Reflect::set(
        &e,
        &JsValue::from_str("code"),
        &JsValue::from_str(err.code()),
    );
    e
}

/// Runs `f` one frame below, then wipes the stack it used, and turns its error into a
/// `KeysealError`. Every export that touches a secret goes through here.
fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, JsValue> {
    // Nonces come from the bindings' own catching `crypto.getRandomValues` call.
    crate::nonce::set_random_source(host::random);
    let out = below(f);
    host::scrub_stack();
    out.map_err(|e| js_error(&e))
}

/// Calls `f` in a frame of its own, so that its locals lie in the stack that `scrub_stack`
/// wipes afterwards, not in the caller's frame.
#[inline(never)]
fn below<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// Makes sure `bytes` more bytes can be allocated, so that the allocations that follow cannot
/// abort (which would trap): the memory grown for the probe stays with the allocator.
fn reserve(bytes: usize) -> Result<(), Error> {
    if bytes < RESERVE_THRESHOLD {
        return Ok(());
    }
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(bytes).map_err(|_| TOO_LARGE)
}

/// Length of the token for `n` bytes of plaintext: a 3-character prefix ("v2:" or "v3:") +
/// padded base64 of the plaintext and `overhead` bytes.
fn token_len(n: usize, overhead: usize) -> usize {
    n.saturating_add(overhead + 2) / 3 * 4 + crate::ENCRYPTED_PREFIX.len()
}

/// Refuses plaintexts whose token cannot be a JS string, and reserves what encryption needs
/// besides the plaintext already in wasm memory (ciphertext and token).
fn check_encrypt_size(n: usize, overhead: usize) -> Result<(), Error> {
    let token = token_len(n, overhead);
    if token > MAX_JS_STRING {
        return Err(TOKEN_TOO_LARGE);
    }
    reserve(n.saturating_add(overhead).saturating_add(token))
}

fn data_key(key: &JsValue) -> Result<DataKey, Error> {
    input::key_bytes(key).map(DataKey::from_array)
}

/// 32 random bytes for a new key.
fn random_key_bytes() -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    host::random(&mut bytes[..])?;
    Ok(bytes)
}

/// A string result handed to JS, with the copy in wasm memory zeroized.
fn secret_string_out(mut s: String) -> JsString {
    let out = JsString::from(s.as_str());
    s.zeroize();
    out
}

/// A byte result handed to JS, with the copy in wasm memory zeroized.
fn secret_bytes_out(mut v: Vec<u8>) -> Uint8Array {
    let out = Uint8Array::from(v.as_slice());
    v.zeroize();
    out
}

/// Copies a token in, reserving what decryption will need (raw bytes and plaintext).
fn token_in(token: &JsValue) -> Result<String, Error> {
    let t = input::token_in(token)?;
    reserve(t.len().saturating_mul(2))?;
    Ok(t)
}

/// Encrypts a string with a 32-byte key into a `v2:` token (AES-256-GCM, fresh random nonce).
///
/// Throws `KeysealError` with `code` `bad_key` (key not a 32-byte `Uint8Array`), `malformed`
/// (not a string, a lone surrogate, or too large) or `randomness`.
#[wasm_bindgen]
pub fn encrypt(plaintext: &JsValue, key: &JsValue) -> Result<String, JsValue> {
    encrypt_call(plaintext, KeyArg::Bytes(key), None, true)
}

/// Decrypts a token (with or without the `v2:` prefix) made by `encrypt` or by the Python module.
///
/// Throws `KeysealError` with `code` `bad_key`, `malformed` (not a token), `authentication`
/// (wrong key or altered token) or `not_utf8` (the plaintext is bytes: use `decryptBytes`).
#[wasm_bindgen]
pub fn decrypt(token: &JsValue, key: &JsValue) -> Result<JsString, JsValue> {
    decrypt_call(token, KeyArg::Bytes(key), None, true).map(JsCast::unchecked_into)
}

/// Encrypts bytes into a `v2:` token.
///
/// Throws `KeysealError` with `code` `bad_key`, `malformed` (not a readable `Uint8Array`, or
/// too large) or `randomness`.
#[wasm_bindgen(js_name = encryptBytes)]
pub fn encrypt_bytes(plaintext: &JsValue, key: &JsValue) -> Result<String, JsValue> {
    encrypt_call(plaintext, KeyArg::Bytes(key), None, false)
}

/// Decrypts a token into bytes.
///
/// Throws `KeysealError` with `code` `bad_key`, `malformed` or `authentication`.
#[wasm_bindgen(js_name = decryptBytes)]
pub fn decrypt_bytes(token: &JsValue, key: &JsValue) -> Result<Uint8Array, JsValue> {
    decrypt_call(token, KeyArg::Bytes(key), None, false).map(JsCast::unchecked_into)
}

/// The lookup hash of an API key: lowercase hex SHA-256 of its UTF-8 bytes.
///
/// Throws `KeysealError` with `code` `malformed` (not a string, or a lone surrogate).
#[wasm_bindgen]
pub fn hash(api_key: &JsValue) -> Result<JsString, JsValue> {
    guarded(|| {
        let bytes = input::text_in(api_key)?;
        // TextEncoder's output is UTF-8; checked anyway rather than trusted.
        let text = core::str::from_utf8(&bytes).map_err(|_| TEXT_UNREADABLE)?;
        // The lookup hash is what a database stores to find the key: not left behind either.
        Ok(secret_string_out(crate::api_key_hash(text)))
    })
}

/// Whether a value looks like a keyseal token (starts with `v2:` or `v3:`). Never throws.
#[wasm_bindgen(js_name = isEncrypted)]
pub fn is_encrypted(value: &JsValue) -> bool {
    value
        .dyn_ref::<JsString>()
        .and_then(|s| {
            // Only the start matters: look at a short prefix, not the whole string.
            let head: JsString = s.slice(0, 64);
            head.as_string()
        })
        .is_some_and(|s| crate::is_encrypted(&s))
}

/// The pool key: PBKDF2-HMAC-SHA256 of the 32-byte master key (100 000 iterations).
///
/// Throws `KeysealError` with `code` `bad_key` (not a 32-byte `Uint8Array`).
#[wasm_bindgen(js_name = derivePoolKey)]
pub fn derive_pool_key(master_key: &JsValue) -> Result<Uint8Array, JsValue> {
    guarded(|| {
        let master = MasterKey::from_array(input::key_bytes(master_key)?);
        let pool = crate::derive_pool_key(&master);
        Ok(Uint8Array::from(&pool.expose_secret()[..]))
    })
}

/// A new random 32-byte key, from `crypto.getRandomValues`.
///
/// Throws `KeysealError` with `code` `randomness` when the host has none to give.
#[wasm_bindgen(js_name = generateKey)]
pub fn generate_key() -> Result<Uint8Array, JsValue> {
    guarded(|| random_key_bytes().map(|bytes| Uint8Array::from(&bytes[..])))
}

/// The token prefix, `"v2:"` (the package exports it as the constant `ENCRYPTED_PREFIX`).
#[wasm_bindgen(js_name = encryptedPrefix)]
pub fn encrypted_prefix() -> String {
    crate::ENCRYPTED_PREFIX.to_owned()
}
