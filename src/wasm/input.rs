//! Arguments from JavaScript, read so that no JS exception ever unwinds through wasm.
//!
//! wasm-bindgen's own conversions call JS that can throw (a `Proxy`'s traps, a detached buffer,
//! an own `length` getter) from imports that do not catch: the exception then unwinds through
//! the wasm frames, skipping the code that releases wasm-bindgen's externref slots and restores
//! the shadow stack, so a few hundred of them leave the instance unusable; and js-sys's
//! `copy_to` asserts that `length` did not change, which is a trap when it did. Here every JS
//! operation on an argument goes through an import with `catch`, and:
//!
//! - a `Uint8Array` is recognised by the intrinsic `%TypedArray%.prototype[Symbol.toStringTag]`
//!   getter, which runs no user code and works across realms (a `Proxy` of one is not one);
//! - its length is read once, by the intrinsic `length` getter, and its bytes are copied by
//!   `Uint8Array.prototype.set` into a buffer of exactly that length, which throws (and is
//!   refused) for a detached or out-of-bounds view;
//! - text to encrypt or hash is encoded by `TextEncoder.encodeInto` straight into a buffer that
//!   is zeroized after use (wasm-bindgen's string copy leaves pieces in freed memory).

use core::cell::OnceCell;

use js_sys::{Function, JsString, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use zeroize::Zeroizing;

use super::{LONE_SURROGATE, NOT_A_STRING, TOO_LARGE};
use crate::Error;

#[wasm_bindgen]
extern "C" {
    /// `Uint8Array.prototype.set.call(dst, src)`: copies `src` into wasm memory at `dst`.
    #[wasm_bindgen(catch, js_namespace = Uint8Array, js_name = "prototype.set.call")]
    pub(super) fn set_into(dst: &mut [u8], src: &JsValue) -> Result<(), JsValue>;

    /// `Uint8Array.prototype.fill.call(array, value)`, to wipe a JS-side copy of secret bytes.
    #[wasm_bindgen(catch, js_namespace = Uint8Array, js_name = "prototype.fill.call")]
    pub(super) fn fill_u8(array: &Uint8Array, value: u8) -> Result<JsValue, JsValue>;

    type TextEncoder;
    #[wasm_bindgen(catch, constructor)]
    fn new() -> Result<TextEncoder, JsValue>;
    /// `encoder.encodeInto(s, dst)`: UTF-8 of `s` written into wasm memory at `dst`.
    #[wasm_bindgen(catch, method, js_name = encodeInto)]
    fn encode_into(this: &TextEncoder, s: &JsString, dst: &mut [u8]) -> Result<JsValue, JsValue>;

    /// A JS string, seen through the one method below.
    #[wasm_bindgen(extends = JsString)]
    type CheckedString;
    /// `String.prototype.isWellFormed` (ES2024: Node 20, Chrome 111, Firefox 119, Safari 16.4);
    /// `catch` turns its absence on an older engine into an `Err`.
    #[wasm_bindgen(method, catch, js_name = isWellFormed)]
    fn is_well_formed(this: &CheckedString) -> Result<bool, JsValue>;
}

/// The built-ins argument checks rely on, looked up once, at first use.
struct Intrinsics {
    /// `%TypedArray%.prototype[Symbol.toStringTag]`'s getter.
    tag: Function,
    /// `%TypedArray%.prototype.length`'s getter.
    length: Function,
    uint8array: JsValue,
    read: JsValue,
    written: JsValue,
    encoder: TextEncoder,
}

std::thread_local! {
    static INTRINSICS: OnceCell<Intrinsics> = const { OnceCell::new() };
}

fn find_intrinsics() -> Option<Intrinsics> {
    let global: JsValue = js_sys::global().into();
    let ctor = Reflect::get(&global, &JsValue::from_str("Uint8Array")).ok()?;
    let proto = Reflect::get(&ctor, &JsValue::from_str("prototype")).ok()?;
    let typed_array_proto = Reflect::get_prototype_of(&proto).ok()?;
    let getter = |name: &JsValue| -> Option<Function> {
        let desc = Reflect::get_own_property_descriptor(&typed_array_proto, name).ok()?;
        Reflect::get(&desc, &JsValue::from_str("get"))
            .ok()?
            .dyn_into()
            .ok()
    };
    Some(Intrinsics {
        tag: getter(&js_sys::Symbol::to_string_tag().into())?,
        length: getter(&JsValue::from_str("length"))?,
        uint8array: JsValue::from_str("Uint8Array"),
        read: JsValue::from_str("read"),
        written: JsValue::from_str("written"),
        encoder: TextEncoder::new().ok()?,
    })
}

/// Runs `f` with the intrinsics, or fails with `err` in an engine that lacks them.
fn with_intrinsics<T>(
    err: Error,
    f: impl FnOnce(&Intrinsics) -> Result<T, Error>,
) -> Result<T, Error> {
    INTRINSICS.with(|cell| {
        if cell.get().is_none() {
            if let Some(found) = find_intrinsics() {
                // A call re-entering from JS may have set it meanwhile: either is fine.
                let _ = cell.set(found);
            }
        }
        match cell.get() {
            Some(intrinsics) => f(intrinsics),
            None => Err(err),
        }
    })
}

/// The length of `v` if it is a genuine `Uint8Array` (any realm, any buffer kind), else `None`.
/// A detached or out-of-bounds view has length 0 here and fails when copied.
fn u8_length(i: &Intrinsics, v: &JsValue) -> Option<usize> {
    if !v.is_object() {
        return None;
    }
    let tag = i.tag.call0(v).ok()?;
    if tag != i.uint8array {
        return None;
    }
    let len = i.length.call0(v).ok()?.as_f64()?;
    // Typed array lengths are integers below 2^53; this also refuses NaN.
    if !(0.0..=9_007_199_254_740_991.0).contains(&len) || len.fract() != 0.0 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let len = len as u64;
    usize::try_from(len).ok()
}

/// Reads a 32-byte key from a `Uint8Array` into a buffer zeroized on drop.
pub(super) fn key_bytes(v: &JsValue) -> Result<Zeroizing<[u8; 32]>, Error> {
    with_intrinsics(super::KEY_TYPE, |i| {
        let len = u8_length(i, v).ok_or(super::KEY_TYPE)?;
        if len != 32 {
            return Err(super::KEY_LENGTH);
        }
        let mut buf = Zeroizing::new([0u8; 32]);
        set_into(&mut buf[..], v).map_err(|_| super::KEY_UNREADABLE)?;
        Ok(buf)
    })
}

/// The length of a `Uint8Array` argument, before any copy (to refuse what cannot fit).
pub(super) fn bytes_len(v: &JsValue) -> Result<usize, Error> {
    with_intrinsics(super::NOT_BYTES, |i| {
        u8_length(i, v).ok_or(super::NOT_BYTES)
    })
}

/// Copies a `Uint8Array` argument into wasm memory, into a buffer zeroized on drop.
pub(super) fn bytes_in(v: &JsValue) -> Result<Zeroizing<Vec<u8>>, Error> {
    with_intrinsics(super::NOT_BYTES, |i| {
        let n = u8_length(i, v).ok_or(super::NOT_BYTES)?;
        let mut buf = Zeroizing::new(Vec::new());
        buf.try_reserve_exact(n).map_err(|_| TOO_LARGE)?;
        buf.resize(n, 0);
        // Copied even when empty: `set` is what refuses a detached or out-of-bounds view.
        set_into(&mut buf, v).map_err(|_| super::BYTES_UNREADABLE)?;
        Ok(buf)
    })
}

fn checked_string(s: &JsValue) -> Result<&JsString, Error> {
    s.dyn_ref::<JsString>().ok_or(NOT_A_STRING)
}

fn well_formed(js: &JsString) -> bool {
    match js.unchecked_ref::<CheckedString>().is_well_formed() {
        Ok(ok) => ok,
        // An engine without isWellFormed: check unit by unit (slow, but only there).
        Err(_) => js.is_valid_utf16(),
    }
}

/// The UTF-16 length of a string argument, before any copy.
pub(super) fn text_units(s: &JsValue) -> Result<usize, Error> {
    Ok(checked_string(s)?.length() as usize)
}

/// A zeroed buffer of `len` bytes, zeroized on drop; `malformed` if memory runs out.
fn zeroed(len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut buf = Zeroizing::new(Vec::new());
    buf.try_reserve_exact(len).map_err(|_| TOO_LARGE)?;
    buf.resize(len, 0);
    Ok(buf)
}

/// `encoder.encodeInto(s, dst)`: (UTF-16 units read, bytes written), checked.
fn encode_into(i: &Intrinsics, s: &JsString, dst: &mut [u8]) -> Result<(usize, usize), Error> {
    let result = i
        .encoder
        .encode_into(s, dst)
        .map_err(|_| super::TEXT_UNREADABLE)?;
    let field = |name: &JsValue, max: usize| {
        #[allow(clippy::cast_precision_loss)]
        let max = max as f64;
        let v = Reflect::get(&result, name)
            .ok()
            .and_then(|v| v.as_f64())
            .filter(|v| (0.0..=max).contains(v) && v.fract() == 0.0)
            .ok_or(super::TEXT_UNREADABLE)?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok::<usize, Error>(v as usize)
    };
    Ok((
        field(&i.read, s.length() as usize)?,
        field(&i.written, dst.len())?,
    ))
}

/// Copies a string argument into wasm memory as UTF-8, into a buffer zeroized on drop. A lone
/// surrogate is refused (as Python's `str.encode` refuses it) rather than replaced by U+FFFD.
pub(super) fn text_in(s: &JsValue) -> Result<Zeroizing<Vec<u8>>, Error> {
    let js = checked_string(s)?;
    let units = js.length() as usize;
    if !well_formed(js) {
        return Err(LONE_SURROGATE);
    }
    with_intrinsics(NOT_A_STRING, |i| {
        // One byte per unit first (exact for ASCII); if the text did not fit, a buffer with
        // room for the rest at 3 bytes per unit (the most UTF-8 needs) takes over. It is a new
        // buffer, not a grown one: growing would free the first copy without zeroizing it.
        let mut buf = zeroed(units)?;
        let (read, written) = encode_into(i, js, &mut buf)?;
        if read == units {
            buf.truncate(written);
            return Ok(buf);
        }
        let rest = units - read;
        let mut full = zeroed(
            rest.checked_mul(3)
                .and_then(|r| r.checked_add(written))
                .ok_or(TOO_LARGE)?,
        )?;
        full[..written].copy_from_slice(&buf[..written]);
        drop(buf);
        #[allow(clippy::cast_possible_truncation)] // both at most a JS string's length
        let tail = js.slice(read as u32, units as u32);
        let (read2, written2) = encode_into(i, &tail, &mut full[written..])?;
        if read2 != rest {
            return Err(super::TEXT_UNREADABLE);
        }
        full.truncate(written + written2);
        Ok(full)
    })
}

/// Copies a token argument into wasm memory (tokens are not secret: wasm-bindgen's own copy).
pub(super) fn token_in(s: &JsValue) -> Result<String, Error> {
    let js = checked_string(s)?;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    super::reserve((js.length() as usize).saturating_mul(3))?;
    js.as_string().ok_or(NOT_A_STRING)
}
