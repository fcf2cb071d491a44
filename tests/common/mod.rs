//! Helpers shared by the integration tests; vectors are compiled in (no file system needed,
//! so the same tests run under wasm32).
#![allow(dead_code)]

use serde::Deserialize;

#[cfg(not(target_arch = "wasm32"))]
pub mod temp_db;

/// The Python module's known answers (`tests/vectors/python/python-interop.json`).
pub const PYTHON_INTEROP: &str = include_str!("../vectors/python/python-interop.json");

#[derive(Deserialize)]
pub struct PythonVectors {
    pub tokens: Vec<TokenCase>,
    pub rejected_tokens: Vec<RejectedCase>,
    pub pool_keys: Vec<PoolKeyCase>,
    pub api_key_hashes: Vec<HashCase>,
    pub master_key_env: Vec<MasterKeyCase>,
}

#[derive(Deserialize)]
pub struct TokenCase {
    pub key_b64: String,
    pub plaintext: String,
    pub token: String,
}

#[derive(Deserialize)]
pub struct RejectedCase {
    pub why: String,
    pub key_b64: String,
    pub token: String,
    pub bytes_b64: Option<String>,
}

#[derive(Deserialize)]
pub struct PoolKeyCase {
    pub master_key_b64: String,
    pub pool_key_b64: String,
}

#[derive(Deserialize)]
pub struct HashCase {
    pub api_key: String,
    pub sha256_hex: String,
}

#[derive(Deserialize)]
pub struct MasterKeyCase {
    pub value: String,
    pub why: String,
    pub resolves_to_b64: Option<String>,
}

pub fn python_vectors() -> PythonVectors {
    serde_json::from_str(PYTHON_INTEROP).expect("python-interop.json parses")
}

pub fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}
