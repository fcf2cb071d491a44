//! Helpers for this crate's own tests, benchmarks and fuzz targets. Not part of the public
//! API: hidden from the docs, and may change or go in any release.

/// `body` followed by its 6-character checksum: forges a well-formed API key (say the same
/// key id with another secret) without copying the checksum's code.
#[cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
pub use crate::issuance::with_checksum;
