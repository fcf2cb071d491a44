//! JavaScript bindings: the npm package `keyseal` (`wasm32-unknown-unknown` only).
//!
//! This is the only module that knows about `wasm-bindgen`. It turns JS values into the core's
//! types, and core errors into JS `Error`s with `name = "KeysealError"` and a stable `code`
//! (see [`Error::code`]). Nothing here may panic or trap on any input:
//!
//! - keys arrive as `Uint8Array`s and are checked (type and length) before use, then copied into
//!   a stack buffer that is zeroized; a wrong length or type is `bad_key`;
//! - strings arrive as JS string handles; text to encrypt or hash must be well-formed UTF-16
//!   (a lone surrogate is `malformed`, as Python's `str.encode` refuses it too, rather than being
//!   silently replaced by U+FFFD);
//! - before an input is copied into wasm memory, the memory it and the result will need is
//!   reserved fallibly, so that a huge input is refused with `malformed` instead of the
//!   allocator aborting (which in wasm is an `unreachable` trap);
//! - plaintext copies inside wasm memory are zeroized before they are freed.
//!
//! [`KeysealKey`] is an opaque handle that keeps a key and its expanded AES schedule inside
//! wasm memory, for callers who encrypt or decrypt many values with one key.

use js_sys::{ArrayBuffer, JsString, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use zeroize::Zeroize;

use crate::{DataKey, Error, MasterKey};

/// The longest string V8 (Node, Chrome, Deno, workerd) can hold, in UTF-16 units.
const MAX_JS_STRING: usize = (1 << 29) - 24;
/// Below this many bytes an input is not worth a memory reservation first.
const RESERVE_THRESHOLD: usize = 1 << 16;
/// Nonce and tag: what a token holds beyond the plaintext.
const OVERHEAD: usize = 12 + 16;

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
const LONE_SURROGATE: Error = Error::Malformed {
    what: "the string is not well-formed UTF-16 (it has a lone surrogate)",
};
const KEY_TYPE: Error = Error::BadKey {
    reason: "a key must be a Uint8Array of 32 bytes",
};
const KEY_LENGTH: Error = Error::BadKey {
    reason: "a key must be 32 bytes",
};

#[wasm_bindgen]
extern "C" {
    /// A JS string, seen through the one method below.
    #[wasm_bindgen(extends = JsString)]
    type CheckedString;
    /// `String.prototype.isWellFormed` (ES2024: Node 20, Chrome 111, Firefox 119, Safari 16.4);
    /// `catch` turns its absence on an older engine into an `Err`.
    #[wasm_bindgen(method, catch, js_name = isWellFormed)]
    fn is_well_formed(this: &CheckedString) -> Result<bool, JsValue>;
}

/// A core error as a JS `Error` named `KeysealError`, with its `code`.
fn js_error(err: &Error) -> JsValue {
    let e = js_sys::Error::new(&err.to_string());
    e.set_name("KeysealError");
    // Setting a property on a fresh Error object cannot fail.
    let _ = Reflect::set(
        &e,
        &JsValue::from_str("code"),
        &JsValue::from_str(err.code()),
    );
    e.into()
}

fn js<T>(r: Result<T, Error>) -> Result<T, JsValue> {
    r.map_err(|e| js_error(&e))
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

/// Length of the token for `n` bytes of plaintext: "v2:" + padded base64 of nonce‖ct‖tag.
fn token_len(n: usize) -> usize {
    n.saturating_add(OVERHEAD + 2) / 3 * 4 + crate::ENCRYPTED_PREFIX.len()
}

/// Refuses plaintexts whose token cannot be a JS string, and reserves what encryption needs
/// besides the plaintext already in wasm memory (ciphertext and token).
fn check_encrypt_size(n: usize) -> Result<(), Error> {
    let token = token_len(n);
    if token > MAX_JS_STRING {
        return Err(TOKEN_TOO_LARGE);
    }
    reserve(n.saturating_add(OVERHEAD).saturating_add(token))
}

fn is_uint8array(v: &JsValue) -> bool {
    v.is_instance_of::<Uint8Array>()
        // A Uint8Array from another realm (an iframe, a vm context) fails `instanceof`.
        || (ArrayBuffer::is_view(v)
            && Reflect::get(v, &js_sys::Symbol::to_string_tag())
                .ok()
                .and_then(|t| t.as_string())
                .is_some_and(|t| t == "Uint8Array"))
}

fn as_bytes(v: &JsValue) -> Option<&Uint8Array> {
    if is_uint8array(v) {
        Some(v.unchecked_ref::<Uint8Array>())
    } else {
        None
    }
}

/// Reads a 32-byte key from a `Uint8Array` into a zeroized-after-use stack buffer.
fn with_key_bytes<T>(
    key: &JsValue,
    f: impl FnOnce(&[u8; 32]) -> Result<T, Error>,
) -> Result<T, Error> {
    let arr = as_bytes(key).ok_or(KEY_TYPE)?;
    if arr.length() != 32 {
        return Err(KEY_LENGTH);
    }
    let mut buf = [0u8; 32];
    arr.copy_to(&mut buf);
    let out = f(&buf);
    buf.zeroize();
    out
}

fn data_key(key: &JsValue) -> Result<DataKey, Error> {
    with_key_bytes(key, |b| DataKey::from_bytes(b))
}

/// Copies a JS string into wasm memory as UTF-8. With `strict`, a lone surrogate is refused.
fn string_in(s: &JsValue, strict: bool) -> Result<String, Error> {
    let js = s.dyn_ref::<JsString>().ok_or(NOT_A_STRING)?;
    let units = js.length() as usize;
    if strict {
        let ok = match js.unchecked_ref::<CheckedString>().is_well_formed() {
            Ok(ok) => ok,
            // An engine without isWellFormed: check unit by unit (slow, but only there).
            Err(_) => js.is_valid_utf16(),
        };
        if !ok {
            return Err(LONE_SURROGATE);
        }
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    reserve(units.saturating_mul(3))?;
    js.as_string().ok_or(NOT_A_STRING)
}

/// Copies a `Uint8Array` into wasm memory.
fn bytes_in(v: &JsValue) -> Result<Vec<u8>, Error> {
    let arr = as_bytes(v).ok_or(NOT_BYTES)?;
    let n = arr.length() as usize;
    let mut buf = Vec::new();
    buf.try_reserve_exact(n).map_err(|_| TOO_LARGE)?;
    buf.resize(n, 0);
    arr.copy_to(&mut buf);
    Ok(buf)
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

fn encrypt_str(plaintext: &JsValue, key: &DataKey) -> Result<String, Error> {
    if let Some(s) = plaintext.dyn_ref::<JsString>() {
        // Every UTF-16 unit takes at least one UTF-8 byte: refuse before copying what cannot fit.
        if token_len(s.length() as usize) > MAX_JS_STRING {
            return Err(TOKEN_TOO_LARGE);
        }
    }
    let mut text = string_in(plaintext, true)?;
    let out = check_encrypt_size(text.len()).and_then(|()| crate::encrypt(&text, key));
    text.zeroize();
    out
}

fn encrypt_u8(plaintext: &JsValue, key: &DataKey) -> Result<String, Error> {
    let n = as_bytes(plaintext).ok_or(NOT_BYTES)?.length() as usize;
    check_encrypt_size(n)?;
    let mut data = bytes_in(plaintext)?;
    let out = crate::encrypt_bytes(&data, key);
    data.zeroize();
    out
}

/// Copies a token in, reserving what decryption will need (raw bytes and plaintext).
fn token_in(token: &JsValue) -> Result<String, Error> {
    let t = string_in(token, false)?;
    reserve(t.len().saturating_mul(2))?;
    Ok(t)
}

fn decrypt_str(token: &JsValue, key: &DataKey) -> Result<JsString, Error> {
    let t = token_in(token)?;
    crate::decrypt(&t, key).map(secret_string_out)
}

fn decrypt_u8(token: &JsValue, key: &DataKey) -> Result<Uint8Array, Error> {
    let t = token_in(token)?;
    crate::decrypt_bytes(&t, key).map(secret_bytes_out)
}

/// Encrypts a string with a 32-byte key into a `v2:` token (AES-256-GCM, fresh random nonce).
///
/// Throws `KeysealError` with `code` `bad_key` (key not a 32-byte `Uint8Array`), `malformed`
/// (not a string, a lone surrogate, or too large) or `randomness`.
#[wasm_bindgen]
pub fn encrypt(plaintext: &JsValue, key: &JsValue) -> Result<String, JsValue> {
    js(data_key(key).and_then(|k| encrypt_str(plaintext, &k)))
}

/// Decrypts a token (with or without the `v2:` prefix) made by `encrypt` or by the Python module.
///
/// Throws `KeysealError` with `code` `bad_key`, `malformed` (not a token), `authentication`
/// (wrong key or altered token) or `not_utf8` (the plaintext is bytes: use `decryptBytes`).
#[wasm_bindgen]
pub fn decrypt(token: &JsValue, key: &JsValue) -> Result<JsString, JsValue> {
    js(data_key(key).and_then(|k| decrypt_str(token, &k)))
}

/// Encrypts bytes into a `v2:` token.
#[wasm_bindgen(js_name = encryptBytes)]
pub fn encrypt_bytes(plaintext: &JsValue, key: &JsValue) -> Result<String, JsValue> {
    js(data_key(key).and_then(|k| encrypt_u8(plaintext, &k)))
}

/// Decrypts a token into bytes.
#[wasm_bindgen(js_name = decryptBytes)]
pub fn decrypt_bytes(token: &JsValue, key: &JsValue) -> Result<Uint8Array, JsValue> {
    js(data_key(key).and_then(|k| decrypt_u8(token, &k)))
}

/// The lookup hash of an API key: lowercase hex SHA-256 of its UTF-8 bytes.
#[wasm_bindgen]
pub fn hash(api_key: &JsValue) -> Result<String, JsValue> {
    js(string_in(api_key, true).map(|k| crate::api_key_hash(&k)))
}

/// Whether a value looks like a keyseal token (starts with `v2:`). Never throws.
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
#[wasm_bindgen(js_name = derivePoolKey)]
pub fn derive_pool_key(master_key: &JsValue) -> Result<Uint8Array, JsValue> {
    js(with_key_bytes(master_key, |b| {
        let master = MasterKey::from_bytes(b)?;
        let pool = crate::derive_pool_key(&master);
        Ok(Uint8Array::from(&pool.expose_secret()[..]))
    }))
}

/// A new random 32-byte key, from `crypto.getRandomValues`.
#[wasm_bindgen(js_name = generateKey)]
pub fn generate_key() -> Result<Uint8Array, JsValue> {
    js(DataKey::generate().map(|k| Uint8Array::from(&k.expose_secret()[..])))
}

/// The token prefix, `"v2:"` (the package exports it as the constant `ENCRYPTED_PREFIX`).
#[wasm_bindgen(js_name = encryptedPrefix)]
pub fn encrypted_prefix() -> String {
    crate::ENCRYPTED_PREFIX.to_owned()
}

/// A 32-byte key kept inside wasm memory with its expanded AES schedule: the fast way to use
/// one key many times. Call `free()` when done; the key is zeroized then.
#[wasm_bindgen]
pub struct KeysealKey {
    key: DataKey,
}

#[wasm_bindgen]
impl KeysealKey {
    /// Takes a copy of a 32-byte key; `bad_key` otherwise.
    #[wasm_bindgen(constructor)]
    pub fn new(key: &JsValue) -> Result<KeysealKey, JsValue> {
        js(data_key(key).map(|key| KeysealKey { key }))
    }

    /// A new random key, generated inside wasm memory.
    pub fn generate() -> Result<KeysealKey, JsValue> {
        js(DataKey::generate().map(|key| KeysealKey { key }))
    }

    /// The key's bytes (a copy).
    #[wasm_bindgen(js_name = exportKey)]
    pub fn export_key(&self) -> Uint8Array {
        Uint8Array::from(&self.key.expose_secret()[..])
    }

    /// Same as the function `encrypt`, with this key.
    pub fn encrypt(&self, plaintext: &JsValue) -> Result<String, JsValue> {
        js(encrypt_str(plaintext, &self.key))
    }

    /// Same as the function `decrypt`, with this key.
    pub fn decrypt(&self, token: &JsValue) -> Result<JsString, JsValue> {
        js(decrypt_str(token, &self.key))
    }

    /// Same as the function `encryptBytes`, with this key.
    #[wasm_bindgen(js_name = encryptBytes)]
    pub fn encrypt_bytes(&self, plaintext: &JsValue) -> Result<String, JsValue> {
        js(encrypt_u8(plaintext, &self.key))
    }

    /// Same as the function `decryptBytes`, with this key.
    #[wasm_bindgen(js_name = decryptBytes)]
    pub fn decrypt_bytes(&self, token: &JsValue) -> Result<Uint8Array, JsValue> {
        js(decrypt_u8(token, &self.key))
    }
}

// The bindings themselves, with JS values, in Chromium (`make test-wasm`); the npm package's
// own tests (bindings/test/) cover them in Node.
#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

    wasm_bindgen_test_configure!(run_in_browser);

    fn code_of(err: &JsValue) -> (String, String) {
        let get = |name: &str| {
            Reflect::get(err, &JsValue::from_str(name))
                .unwrap()
                .as_string()
                .unwrap()
        };
        (get("name"), get("code"))
    }

    fn key(fill: u8) -> JsValue {
        Uint8Array::from(&[fill; 32][..]).into()
    }

    #[test]
    fn round_trips_through_js_values() {
        let k = key(1);
        let token = encrypt(&JsValue::from_str("héllo 🔑"), &k).unwrap();
        assert!(token.starts_with("v2:"));
        assert!(is_encrypted(&JsValue::from_str(&token)));
        let back = decrypt(&JsValue::from_str(&token), &k).unwrap();
        assert_eq!(String::from(back), "héllo 🔑");
        let bytes: JsValue = Uint8Array::from(&[0u8, 255, 7][..]).into();
        let token = encrypt_bytes(&bytes, &k).unwrap();
        let back = decrypt_bytes(&JsValue::from_str(&token), &k).unwrap();
        assert_eq!(back.to_vec(), vec![0, 255, 7]);
        let handle = KeysealKey::new(&k).unwrap();
        let back = handle.decrypt(&JsValue::from_str(&token));
        assert_eq!(
            code_of(&back.unwrap_err()),
            ("KeysealError".into(), "not_utf8".into())
        );
    }

    #[test]
    fn errors_are_keyseal_errors_with_codes() {
        let short: JsValue = Uint8Array::new_with_length(31).into();
        let err = encrypt(&JsValue::from_str("x"), &short).unwrap_err();
        assert!(err.is_instance_of::<js_sys::Error>());
        assert_eq!(code_of(&err), ("KeysealError".into(), "bad_key".into()));
        let err = decrypt(&JsValue::from_str("v2:@@@"), &key(1)).unwrap_err();
        assert_eq!(code_of(&err).1, "malformed");
        let other = encrypt(&JsValue::from_str("x"), &key(2)).unwrap();
        let err = decrypt(&JsValue::from_str(&other), &key(1)).unwrap_err();
        assert_eq!(code_of(&err).1, "authentication");
        let err = derive_pool_key(&JsValue::from_f64(32.0)).unwrap_err();
        assert_eq!(code_of(&err).1, "bad_key");
        let lone = JsString::from_char_code1(0xD800);
        let err = hash(&lone.into()).unwrap_err();
        assert_eq!(code_of(&err).1, "malformed");
    }

    #[test]
    fn generated_keys_differ() {
        let a = generate_key().unwrap().to_vec();
        let b = generate_key().unwrap().to_vec();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(encrypted_prefix(), "v2:");
    }
}
