#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod encoding;
mod error;
mod hash;
mod keys;
mod nonce;
mod token;

pub use error::Error;
pub use hash::{api_key_hash, derive_pool_key, POOL_KEY_ITERATIONS, POOL_KEY_SALT};
pub use keys::{DataKey, MasterKey, KEY_LEN};
pub use token::{
    decrypt, decrypt_bytes, decrypt_bytes_with_aad, encrypt, encrypt_bytes, encrypt_bytes_with_aad,
    is_encrypted, ENCRYPTED_PREFIX,
};

cfg_if::cfg_if! {
    if #[cfg(not(target_arch = "wasm32"))] {
        mod env;
        pub use env::{parse_master_key, resolve_master_key, MASTER_KEY_ENV};
    }
}

#[cfg(all(
    any(feature = "keystore", feature = "issuance"),
    not(target_arch = "wasm32")
))]
mod civil;
#[cfg(all(feature = "keystore", not(target_arch = "wasm32")))]
mod keystore;
#[cfg(all(feature = "keystore", not(target_arch = "wasm32")))]
pub use keystore::{KeyStore, KeyStoreFuture, KeyStoreOptions, RotationReport, MAX_USER_ID_LEN};

#[cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
mod issuance;
#[cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
pub use issuance::{
    ApiKeys, ApiKeysConfig, CreatedKey, Environment, KeyFormat, KeyInfo, KeyStatus, LegacyKey,
    NewKey, RateLimit, Refusal, Timestamp, Validated, Verification,
};

#[cfg(all(feature = "keystore", not(target_arch = "wasm32")))]
pub mod migrate;

#[doc(hidden)]
pub mod testing;

// The npm package's JavaScript bindings: the only module that uses wasm-bindgen.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod wasm;
