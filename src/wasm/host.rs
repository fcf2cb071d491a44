//! Randomness from the host, and wiping what a call leaves on the wasm stack.

use js_sys::{Function, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use super::input::{fill_u8, set_into};
use crate::Error;

/// `crypto.getRandomValues` fills at most this many bytes per call.
const MAX_PER_CALL: usize = 65_536;

/// Fills `dest` from `crypto.getRandomValues`, reached through `catch` imports only: a missing
/// or throwing `crypto` (or a getter on it) is [`Error::Randomness`], never a JS exception
/// unwinding through wasm. The bytes pass through a JS array, which is zeroed afterwards. A
/// host function that wrote nothing (all zeros back) is refused too.
pub(super) fn random(dest: &mut [u8]) -> Result<(), Error> {
    let global: JsValue = js_sys::global().into();
    let crypto =
        Reflect::get(&global, &JsValue::from_str("crypto")).map_err(|_| Error::Randomness)?;
    if !crypto.is_object() {
        return Err(Error::Randomness);
    }
    let get_random_values: Function = Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or(Error::Randomness)?;
    for chunk in dest.chunks_mut(MAX_PER_CALL) {
        // The chunk length is at most 65 536.
        #[allow(clippy::cast_possible_truncation)]
        let tmp = Uint8Array::new_with_length(chunk.len() as u32);
        let drawn = get_random_values.call1(&crypto, &tmp).is_ok();
        let copied = drawn && set_into(chunk, &tmp).is_ok();
        let _ = fill_u8(&tmp, 0);
        if !copied {
            chunk.fill(0);
            return Err(Error::Randomness);
        }
    }
    // Real randomness of 16 bytes or more is all zeros with probability 2^-128 or less.
    if dest.len() >= 16 && dest.iter().all(|&b| b == 0) {
        return Err(Error::Randomness);
    }
    Ok(())
}

/// Bytes of wasm stack wiped after each call that touched a secret. The shadow stack lives in
/// linear memory, and Rust leaves copies of what it moves (key bytes, the expanded AES schedule,
/// cipher and hash states) in the frames it pops. The deepest calls here (decrypt,
/// derivePoolKey) use between 1 and 2 KiB of it: the JS tests scan the whole memory for the
/// keys and secrets they used, and fail with 1 KiB. Four times the need, for headroom.
const SCRUB_BYTES: usize = 8 * 1024;

/// Zeroes the `SCRUB_BYTES` of stack below the caller's frame, where the call that handled the
/// secret had its frames.
#[inline(never)]
pub(super) fn scrub_stack() {
    let area = [0u8; SCRUB_BYTES];
    // Keeps the zeroing from being optimized away: the area counts as read.
    core::hint::black_box(&area);
}
