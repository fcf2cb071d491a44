//! Helpers for this crate's own tests, benchmarks and fuzz targets (`fuzz/`, and the replay
//! of its corpora). Not part of the public API: hidden from the docs, not covered by semver,
//! and may change or go in any release.
#![cfg(all(feature = "issuance", not(target_arch = "wasm32")))]

use crate::{Environment, KeyFormat};

/// `body` followed by its 6-character checksum: forges a well-formed API key (say the same
/// key id with another secret) without copying the checksum's code.
pub use crate::issuance::with_checksum;

/// The API-key parser: `Some((environment, key id, key id and secret))` when `key` has the
/// shape and checksum of `format`, as `ApiKeys::verify` checks before any storage access.
///
/// # Errors
/// None: garbage gives `None`.
pub fn parse_api_key(format: &KeyFormat, key: &str) -> Option<(Environment, String, String)> {
    format.parse(key).map(|p| {
        (
            p.environment,
            p.key_id.to_owned(),
            p.id_and_secret.to_owned(),
        )
    })
}

/// Builds a key of `format` from its parts, as `ApiKeys::create` does (`key_id`: 12,
/// `secret`: 43 base62 characters).
///
/// # Errors
/// None; the lengths are the caller's to respect.
pub fn assemble_api_key(
    format: &KeyFormat,
    environment: Environment,
    key_id: &str,
    secret: &str,
) -> String {
    format.assemble(environment, key_id, secret)
}

/// How many bcrypt verifications `keys` ran while verifying keys (creation not counted): the
/// conformance tests and the cold-start benchmark count them.
pub fn bcrypt_verifications(keys: &crate::ApiKeys) -> u64 {
    keys.bcrypt_runs()
}

/// How many rate-limit lease requests of `keys` wrote to the store (grants, hand-backs):
/// the fleet rate-limit tests and benchmark count store writes per admitted request.
pub fn lease_writes(keys: &crate::ApiKeys) -> u64 {
    keys.lease_writes()
}

/// How many rate-limit lease requests `keys` made, those that only read included.
pub fn lease_requests(keys: &crate::ApiKeys) -> u64 {
    keys.lease_requests()
}

/// For the cold-start benchmark only: writes the fast-verifier tags of `api_keys` (keys the
/// caller created, so known to be right) without the bcrypt `verify` runs before writing a
/// tag; returns how many rows were tagged. Never use it on keys presented by a client.
///
/// # Errors
/// [`crate::Error::Storage`] when the store cannot be read or written.
pub fn tag_known_keys(
    keys: &crate::ApiKeys,
    verifier: &crate::VerifierKey,
    api_keys: &[&str],
) -> Result<usize, crate::Error> {
    keys.tag_known_keys(verifier, api_keys)
}
