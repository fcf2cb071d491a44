//! The bindings themselves, with JS values, in Chromium (`make test-wasm`); the npm package's
//! own tests (bindings/test/) cover them in Node.

use super::handle::KeysealKey;
use super::*;
use js_sys::Reflect;
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

#[test]
fn proxies_and_lying_lengths_are_read_safely() {
    // A Proxy of a key is not a Uint8Array: bad_key, not a TypeError thrown through wasm.
    let proxy: JsValue = js_sys::Proxy::new(&key(1), &js_sys::Object::new()).into();
    let err = encrypt(&JsValue::from_str("x"), &proxy).unwrap_err();
    assert_eq!(code_of(&err), ("KeysealError".into(), "bad_key".into()));
    let err = encrypt_bytes(&proxy, &key(1)).unwrap_err();
    assert_eq!(code_of(&err).1, "malformed");
    // An own `length` getter that changes on every read once tripped an assertion (a trap);
    // the real length is what counts.
    let lying = key(3);
    let getter = js_sys::Function::new_no_args("return this.__n = (this.__n | 0) + 1;");
    let desc = js_sys::Object::new();
    Reflect::set(&desc, &"get".into(), &getter).unwrap();
    Reflect::define_property(
        lying.unchecked_ref::<js_sys::Object>(),
        &"length".into(),
        desc.unchecked_ref(),
    )
    .unwrap();
    let token = encrypt(&JsValue::from_str("lying"), &lying).unwrap();
    let back = decrypt(&JsValue::from_str(&token), &key(3)).unwrap();
    assert_eq!(String::from(back), "lying");
}

#[test]
fn a_freed_handle_is_bad_key() {
    let handle = KeysealKey::new(&key(4)).unwrap();
    let token = handle.encrypt(&JsValue::from_str("x")).unwrap();
    handle.free();
    handle.free();
    let err = handle.decrypt(&JsValue::from_str(&token)).unwrap_err();
    assert_eq!(code_of(&err), ("KeysealError".into(), "bad_key".into()));
    assert_eq!(code_of(&handle.export_key().unwrap_err()).1, "bad_key");
}

#[test]
fn nonce_pool_survives_failing_silent_and_reentering_sources() {
    use crate::nonce::{fill_nonce, set_random_source};
    fn failing(_: &mut [u8]) -> Result<(), Error> {
        Err(Error::Randomness)
    }
    fn silent(_: &mut [u8]) -> Result<(), Error> {
        Ok(())
    }
    fn reentering(buf: &mut [u8]) -> Result<(), Error> {
        // A nonce asked for while the pool refills: refused, not a RefCell panic (a trap).
        let mut inner = [0u8; 12];
        assert_eq!(fill_nonce(&mut inner), Err(Error::Randomness));
        host::random(buf)
    }
    let mut nonce = [0u8; 12];
    set_random_source(failing);
    // Use up what the pool holds; then every refill fails, cleanly.
    let mut drained = 0;
    while fill_nonce(&mut nonce).is_ok() {
        drained += 1;
        assert!(drained <= 4096 / 12, "the failing source was never asked");
    }
    assert_eq!(fill_nonce(&mut nonce), Err(Error::Randomness));
    set_random_source(silent);
    assert_eq!(fill_nonce(&mut nonce), Err(Error::Randomness));
    set_random_source(reentering);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        fill_nonce(&mut nonce).unwrap();
        assert!(seen.insert(nonce), "a nonce handed out twice");
    }
    set_random_source(host::random);
}

#[test]
fn v3_tokens_through_js_values() {
    let k = key(6);
    let row: JsValue = js_sys::Array::of3(
        &JsValue::from_str("users"),
        &JsValue::from_str("42"),
        &Uint8Array::from(&[0xffu8][..]),
    )
    .into();
    let token = v3::encrypt_v3(
        &JsValue::from_str("héllo"),
        &k,
        &JsValue::from_f64(7.0),
        &row,
    )
    .unwrap();
    assert!(token.starts_with("v3:"));
    assert!(is_encrypted(&JsValue::from_str(&token)));
    let t = JsValue::from_str(&token);
    assert_eq!(String::from(v3::decrypt_v3(&t, &k, &row).unwrap()), "héllo");
    let format = v3::token_format(&t).unwrap();
    let version = Reflect::get(&format, &"keyVersion".into()).unwrap();
    assert_eq!(version.as_f64(), Some(7.0));
    // Another row, no context, a bad version and a bad context: typed errors, no trap.
    let other: JsValue = js_sys::Array::of2(&"users".into(), &"43".into()).into();
    let err = v3::decrypt_v3(&t, &k, &other).unwrap_err();
    assert_eq!(
        code_of(&err),
        ("KeysealError".into(), "authentication".into())
    );
    let err = v3::decrypt_v3(&t, &k, &JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code_of(&err).1, "authentication");
    let err = v3::encrypt_v3(&"x".into(), &k, &JsValue::from_f64(0.0), &row).unwrap_err();
    assert_eq!(code_of(&err).1, "invalid_argument");
    let err =
        v3::encrypt_v3(&"x".into(), &k, &JsValue::from_f64(1.0), &"users".into()).unwrap_err();
    assert_eq!(code_of(&err).1, "malformed");
    // The handle reads what the function wrote.
    let handle = KeysealKey::new(&k).unwrap();
    assert_eq!(String::from(handle.decrypt_v3(&t, &row).unwrap()), "héllo");
    handle.free();
}

/// Writes `bytes` into wasm memory at `at`, as the package's JavaScript does when it stages a
/// context.
fn write_memory(at: usize, bytes: &[u8]) {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    let view = Uint8Array::new_with_byte_offset_and_length(
        &memory.buffer(),
        u32::try_from(at).unwrap(),
        u32::try_from(bytes.len()).unwrap(),
    );
    view.copy_from(bytes);
}

#[test]
fn a_staged_context_binds_once_and_a_cut_one_is_malformed() {
    let k = key(7);
    let row: JsValue = js_sys::Array::of2(&"users".into(), &"42".into()).into();
    let token = JsValue::from_str(
        &v3::encrypt_v3(&"staged".into(), &k, &JsValue::from_f64(1.0), &row).unwrap(),
    );
    // "users", "42" as the JavaScript stages them: u32 LE length + bytes, the mark last.
    let parts = [
        &5u32.to_le_bytes()[..],
        b"users",
        &2u32.to_le_bytes(),
        b"42",
    ]
    .concat();
    let stage = |parts: &[u8], mark: u32| {
        let at = v3::stage_context(parts.len());
        assert_ne!(at, 0);
        write_memory(at + 4, parts);
        write_memory(at, &mark.to_le_bytes());
    };
    stage(&parts, u32::try_from(parts.len()).unwrap() + 1);
    let got = v3::decrypt_v3(&token, &k, &JsValue::UNDEFINED).unwrap();
    assert_eq!(String::from(got), "staged");
    // Taken by that call: the next one without staging has no context.
    let err = v3::decrypt_v3(&token, &k, &JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code_of(&err).1, "authentication");
    // A mark past the buffer, or parts cut short: malformed, and nothing left staged.
    let huge = u32::try_from(parts.len()).unwrap() + 1000;
    for (parts, mark) in [(&parts[..], huge), (&parts[..parts.len() - 1], 12)] {
        stage(parts, mark);
        let err = v3::decrypt_v3(&token, &k, &row).unwrap_err();
        assert_eq!(code_of(&err).1, "malformed");
        assert_eq!(
            String::from(v3::decrypt_v3(&token, &k, &row).unwrap()),
            "staged"
        );
    }
    // A call refused before its context is read (bad key) still takes what was staged.
    stage(&parts, u32::try_from(parts.len()).unwrap() + 1);
    let err = v3::decrypt_v3(&token, &JsValue::from_str("no key"), &row).unwrap_err();
    assert_eq!(code_of(&err).1, "bad_key");
    let err = v3::decrypt_v3(&token, &k, &JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code_of(&err).1, "authentication");
}
