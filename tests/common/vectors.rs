//! Every test vector file, loaded the same way: compiled in with `include_str!` and parsed
//! with serde into typed cases (Python module answers, Wycheproof groups, the Python key store
//! seed).
#![allow(dead_code)]

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;

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

/// Wycheproof AES-GCM cases (`tests/vectors/wycheproof/`, source in `SOURCE`).
pub const WYCHEPROOF_AES_GCM: &str = include_str!("../vectors/wycheproof/aes_gcm_test.json");
/// Wycheproof HMAC-SHA256 cases.
pub const WYCHEPROOF_HMAC_SHA256: &str =
    include_str!("../vectors/wycheproof/hmac_sha256_test.json");
/// Wycheproof PBKDF2-HMAC-SHA256 cases.
pub const WYCHEPROOF_PBKDF2_HMAC_SHA256: &str =
    include_str!("../vectors/wycheproof/pbkdf2_hmacsha256_test.json");

#[derive(Deserialize)]
struct WycheproofFile<G> {
    #[serde(rename = "testGroups")]
    groups: Vec<G>,
}

/// The test groups of a Wycheproof file, each parsed as a `G`.
pub fn wycheproof_groups<G: DeserializeOwned>(file: &str) -> Vec<G> {
    serde_json::from_str::<WycheproofFile<G>>(file)
        .expect("Wycheproof file parses")
        .groups
}

/// The key store the Python module wrote (`tests/vectors/python/seed-keystore.sqlite`) and
/// what it holds (`seed-keystore.json`).
pub const SEED_KEYSTORE_JSON: &str = include_str!("../vectors/python/seed-keystore.json");

#[derive(Deserialize)]
pub struct SeedKeystore {
    pub master_key_b64: String,
    /// Each user's data key, hex.
    pub user_keys_hex: HashMap<String, String>,
}

pub fn seed_keystore() -> SeedKeystore {
    serde_json::from_str(SEED_KEYSTORE_JSON).expect("seed-keystore.json parses")
}

/// The Python module's key store file (copy it before opening: opening may write).
#[cfg(not(target_arch = "wasm32"))]
pub fn seed_keystore_db() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/python/seed-keystore.sqlite")
}
