//! The `SQLite` backend: one harness per suite.

#[cfg(feature = "issuance")]
mod api_keys;
#[cfg(feature = "keystore")]
mod keystore;
