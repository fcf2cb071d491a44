//! The bodies of the encrypt and decrypt exports, one per operation for both token formats,
//! the functions (key given as bytes) and the `KeysealKey` methods alike: each export is a
//! one-line call into here, which keeps the `.wasm` small.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use zeroize::Zeroize;

use super::handle::KeysealKey;
use super::v3::{context_in, take_staged, version_in};
use super::{
    check_encrypt_size, data_key, guarded, input, secret_bytes_out, secret_string_out, token_in,
    token_len, MAX_JS_STRING, OVERHEAD, OVERHEAD_V3, TOKEN_TOO_LARGE,
};
use crate::{DataKey, Error};

/// The key of a call: a `Uint8Array` argument (functions) or a handle (methods).
#[derive(Clone, Copy)]
pub(super) enum KeyArg<'a> {
    Bytes(&'a JsValue),
    Handle(&'a KeysealKey),
}

impl KeyArg<'_> {
    fn get(self) -> Result<Rc<DataKey>, Error> {
        match self {
            KeyArg::Bytes(v) => data_key(v).map(Rc::new),
            KeyArg::Handle(h) => h.key(),
        }
    }
}

/// Encrypts a string (`text`) or a `Uint8Array` into a `v2:` token, or into a `v3:` token when
/// `v3` gives a version and a context. The arguments are read in this order, so the first bad
/// one names the error: key, version, context, plaintext. The plaintext is copied into wasm
/// memory only once its token is known to fit in a JS string and memory is reserved.
pub(super) fn encrypt_call(
    plaintext: &JsValue,
    key: KeyArg<'_>,
    v3: Option<(&JsValue, &JsValue)>,
    text: bool,
) -> Result<String, JsValue> {
    guarded(|| {
        // First, so that no other call can find it (see `take_staged`).
        let staged = v3.map_or(0, |_| take_staged());
        let key = key.get()?;
        let (overhead, v3) = match v3 {
            None => (OVERHEAD, None),
            Some((version, context)) => (
                OVERHEAD_V3,
                Some((version_in(version)?, context_in(staged, context)?)),
            ),
        };
        let data = if text {
            // Every UTF-16 unit takes at least one UTF-8 byte: refuse before copying what
            // cannot fit.
            if token_len(input::text_units(plaintext)?, overhead) > MAX_JS_STRING {
                return Err(TOKEN_TOO_LARGE);
            }
            // The UTF-8 bytes of a string: the same token as the crate's text functions make.
            let text = input::text_in(plaintext)?;
            check_encrypt_size(text.len(), overhead)?;
            text
        } else {
            check_encrypt_size(input::bytes_len(plaintext)?, overhead)?;
            input::bytes_in(plaintext)?
        };
        match &v3 {
            None => crate::encrypt_bytes(&data, &key),
            Some((version, ctx)) => crate::encrypt_bytes_v3(&data, &key, *version, ctx),
        }
    })
}

/// Decrypts a token into a string (`text`) or a `Uint8Array`: a `v2:` token, or a `v3:` one
/// when `v3_context` is given (the context argument, possibly `undefined`). Read in this
/// order: key, context, token.
pub(super) fn decrypt_call(
    token: &JsValue,
    key: KeyArg<'_>,
    v3_context: Option<&JsValue>,
    text: bool,
) -> Result<JsValue, JsValue> {
    guarded(|| {
        // First, so that no other call can find it (see `take_staged`).
        let staged = v3_context.map_or(0, |_| take_staged());
        let key = key.get()?;
        let ctx = v3_context.map(|c| context_in(staged, c)).transpose()?;
        let t = token_in(token)?;
        let bytes = match &ctx {
            None => crate::decrypt_bytes(&t, &key)?,
            Some(ctx) => crate::decrypt_bytes_v3(&t, &key, ctx)?,
        };
        if !text {
            return Ok(secret_bytes_out(bytes).into());
        }
        let s = String::from_utf8(bytes).map_err(|e| {
            e.into_bytes().zeroize();
            Error::NotUtf8
        })?;
        Ok(secret_string_out(s).into())
    })
}
