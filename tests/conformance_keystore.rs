//! Temporary entry for the key store conformance suite, until it joins the shared
//! `tests/conformance/main.rs`.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

mod common;
#[path = "conformance/keystore.rs"]
mod keystore;
