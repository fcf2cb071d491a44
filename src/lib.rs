#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod context;
mod encoding;
mod error;
mod hash;
mod keys;
mod nonce;
mod seal;
mod token;
mod token_v3;

pub use context::Context;
pub use error::{Error, StorageKind, StorageSource};
pub use hash::{api_key_hash, derive_pool_key, POOL_KEY_ITERATIONS, POOL_KEY_SALT};
pub use keys::{DataKey, MasterKey, KEY_LEN};
pub use token::{
    decrypt, decrypt_bytes, decrypt_bytes_with_aad, encrypt, encrypt_bytes, encrypt_bytes_with_aad,
    is_encrypted, ENCRYPTED_PREFIX, V3_PREFIX,
};
pub use token_v3::{
    decrypt_any, decrypt_bytes_any, decrypt_bytes_v3, decrypt_v3, encrypt_bytes_v3, encrypt_v3,
    token_format, TokenFormat,
};

cfg_if::cfg_if! {
    if #[cfg(not(target_arch = "wasm32"))] {
        mod env;
        pub use env::{parse_master_key, resolve_master_key, MASTER_KEY_ENV};
    }
}

// Runtime-agnostic futures over a small thread pool, for the key store and API keys.
#[cfg(all(
    any(feature = "keystore", feature = "issuance"),
    not(target_arch = "wasm32")
))]
mod blocking;
#[cfg(all(
    any(feature = "keystore", feature = "issuance"),
    not(target_arch = "wasm32")
))]
mod civil;
#[cfg(all(
    any(feature = "keystore", feature = "issuance"),
    not(target_arch = "wasm32")
))]
mod db_path;
#[cfg(all(
    any(feature = "keystore", feature = "issuance"),
    not(target_arch = "wasm32")
))]
mod file_mode;
#[cfg(all(feature = "keystore", not(target_arch = "wasm32")))]
mod keystore;
#[cfg(all(
    any(feature = "keystore", feature = "issuance"),
    not(target_arch = "wasm32")
))]
// The one user-id rule, used by the key store, API keys and migrations.
mod user_id;
/// The storage role behind [`KeyStore`] and its contract (sealed: backends live in keyseal).
#[cfg(all(feature = "keystore", not(target_arch = "wasm32")))]
pub use keystore::backend as keystore_backend;
#[cfg(all(feature = "keystore", not(target_arch = "wasm32")))]
pub use keystore::{
    CopyReport, Decrypted, KeyOwner, KeyState, KeyStore, KeyStoreFuture, KeyStoreOptions,
    KeyVersion, MasterKeyId, MasterKeyStatus, MasterKeyring, MasterRewrapReport, RotationReport,
    MAX_USER_ID_LEN,
};
// The one SQLite layer: connections, pragmas, busy handling, error mapping.
#[cfg(all(
    any(feature = "keystore", feature = "issuance"),
    not(target_arch = "wasm32")
))]
mod sqlite;

// The PostgreSQL backend: URLs, pool, schema migrations, the two backends.
#[cfg(all(feature = "postgres", not(target_arch = "wasm32")))]
pub mod postgres;

#[cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
mod issuance;
/// The storage interface behind [`ApiKeys`] and the contract its backends keep.
#[cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
pub use issuance::backend as api_keys_backend;
#[cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
pub use issuance::{
    ApiKeys, ApiKeysConfig, ApiKeysFuture, ApiKeysStatus, CreatedKey, Environment, ImportOptions,
    ImportReport, ImportedFrom, ImportedKey, KeyCounts, KeyFormat, KeyInfo, KeyPage, KeyStatus,
    KeyUpdate, LegacyKey, ListCursor, ListFilter, NewKey, RateLimit, Refusal, Requirement,
    StalePolicy, Timestamp, Validated, Verification, VerifierKey, MAX_METADATA_BYTES,
};

#[cfg(all(feature = "keystore", not(target_arch = "wasm32")))]
pub mod migrate;
#[cfg(all(feature = "keystore", not(target_arch = "wasm32")))]
pub mod rewrap;

#[cfg(all(
    feature = "keystore",
    feature = "issuance",
    not(target_arch = "wasm32")
))]
mod copy;
#[cfg(all(
    feature = "keystore",
    feature = "issuance",
    not(target_arch = "wasm32")
))]
pub use copy::{copy_store, StoreCopyReport};

#[doc(hidden)]
pub mod testing;

// The npm package's JavaScript bindings: the only module that uses wasm-bindgen.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod wasm;
