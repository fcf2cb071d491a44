//! [`KeysealKey`]: a key kept inside wasm memory with its expanded AES schedule.

use core::cell::Cell;
use std::rc::Rc;

use js_sys::{JsString, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::calls::{decrypt_call, encrypt_call, KeyArg};
use super::{data_key, guarded, host};
use crate::{DataKey, Error};

const FREED: Error = Error::BadKey {
    reason: "this KeysealKey was freed",
};

/// A 32-byte key kept inside wasm memory with its expanded AES schedule: the fast way to use
/// one key many times. Call `free()` when done; the key is zeroized then, and any later use
/// throws `KeysealError` `bad_key`.
#[wasm_bindgen]
pub struct KeysealKey {
    // `free()` takes the key out. A call in progress holds its own `Rc`, so a `free()` from JS
    // code it runs (a patched `crypto.getRandomValues`) zeroizes the key when that call ends.
    key: Cell<Option<Rc<DataKey>>>,
}

// Nothing a panic could interrupt leaves the handle half-changed: it holds a key or it does not.
impl std::panic::RefUnwindSafe for KeysealKey {}

impl KeysealKey {
    fn with_key(key: DataKey) -> Self {
        KeysealKey {
            key: Cell::new(Some(Rc::new(key))),
        }
    }

    pub(super) fn key(&self) -> Result<Rc<DataKey>, Error> {
        let key = self.key.take();
        let out = key.clone();
        self.key.set(key);
        out.ok_or(FREED)
    }
}

#[wasm_bindgen]
impl KeysealKey {
    /// Takes a copy of a 32-byte key.
    ///
    /// Throws `KeysealError` `bad_key` when `key` is not a 32-byte `Uint8Array`.
    #[wasm_bindgen(constructor)]
    pub fn new(key: &JsValue) -> Result<KeysealKey, JsValue> {
        guarded(|| data_key(key).map(KeysealKey::with_key))
    }

    /// A new random key, generated inside wasm memory.
    ///
    /// Throws `KeysealError` `randomness` when the host has none to give.
    pub fn generate() -> Result<KeysealKey, JsValue> {
        guarded(|| {
            super::random_key_bytes()
                .map(DataKey::from_array)
                .map(KeysealKey::with_key)
        })
    }

    /// Zeroizes the key and its AES schedule now. Later calls throw `KeysealError` `bad_key`;
    /// calling `free()` again does nothing. The handle's own few bytes are released when the
    /// object is garbage-collected.
    // Replaces wasm-bindgen's generated `free()` (the later definition in the JS class wins):
    // that one nulled the pointer, so a later call threw a plain Error from Rust's null check,
    // through wasm, leaking a slot each time.
    pub fn free(&self) {
        // Only the handle's own reference: a call in progress keeps the key until it returns.
        drop(self.key.take());
        host::scrub_stack();
    }

    /// The key's bytes (a copy).
    ///
    /// Throws `KeysealError` `bad_key` after `free()`.
    #[wasm_bindgen(js_name = exportKey)]
    pub fn export_key(&self) -> Result<Uint8Array, JsValue> {
        guarded(|| self.key().map(|k| Uint8Array::from(&k.expose_secret()[..])))
    }

    /// Same as the function `encrypt`, with this key; `bad_key` after `free()`.
    pub fn encrypt(&self, plaintext: &JsValue) -> Result<String, JsValue> {
        encrypt_call(plaintext, KeyArg::Handle(self), None, true)
    }

    /// Same as the function `decrypt`, with this key; `bad_key` after `free()`.
    pub fn decrypt(&self, token: &JsValue) -> Result<JsString, JsValue> {
        decrypt_call(token, KeyArg::Handle(self), None, true).map(JsCast::unchecked_into)
    }

    /// Same as the function `encryptBytes`, with this key; `bad_key` after `free()`.
    #[wasm_bindgen(js_name = encryptBytes)]
    pub fn encrypt_bytes(&self, plaintext: &JsValue) -> Result<String, JsValue> {
        encrypt_call(plaintext, KeyArg::Handle(self), None, false)
    }

    /// Same as the function `decryptBytes`, with this key; `bad_key` after `free()`.
    #[wasm_bindgen(js_name = decryptBytes)]
    pub fn decrypt_bytes(&self, token: &JsValue) -> Result<Uint8Array, JsValue> {
        decrypt_call(token, KeyArg::Handle(self), None, false).map(JsCast::unchecked_into)
    }
}
