//! Upgrade on first use: keys imported without a lookup are found by a bcrypt scan over the
//! pending keys of their tag (what the old system did on every request), once; the first
//! verification that passes records a lookup derived from the key, so every later one, on
//! every server (the new lookup is a change in the feed), is one indexed read and then the
//! cache.
//!
//! The derived lookup is 12 base64url characters (72 bits) of a domain-separated SHA-256 of
//! the key. Collisions only cost a bcrypt (a lookup is not unique). It tells a reader of the
//! database no more than the clear prefix older stores kept beside the hash does, for keys of
//! 160 random bits or more (the systems keyseal imports from draw 160 to 256).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::backend::{Scheme, PENDING_MARK};
use super::cache::CacheKey;
use super::prehash::{bcrypt_cost, bcrypt_ok, MAX_IMPORTED_COST};
use super::scopes::Requirement;
use super::time::Timestamp;
use super::types::{Refusal, Verification};
use super::ApiKeys;
use crate::Error;

const UNKNOWN: Verification = Verification::Refused(Refusal::Unknown);

/// Length of a derived lookup, in base64url characters.
const DERIVED_LEN: usize = 12;

/// The lookup recorded for an imported key of `prefix` once its first verification passed.
pub(crate) fn derived_lookup(prefix: &str, key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"keyseal/imported-lookup/v1\0")
        .chain_update(prefix.as_bytes())
        .chain_update(b"\0")
        .chain_update(key.as_bytes())
        .finalize();
    let mut text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    text.truncate(DERIVED_LEN);
    text
}

/// The pending marker of keys of `prefix` (e.g. `eg_`) imported without a lookup.
pub(crate) fn marker_of(prefix: &str) -> String {
    format!("{PENDING_MARK}{prefix}")
}

/// When the last "more pending keys than the scan bound" warning was given (ms since the
/// Unix epoch), so it is said at most once a minute per process.
static WARNED_AT: AtomicU64 = AtomicU64::new(0);

impl ApiKeys {
    /// Verifies a key of a format imported without a lookup (`prefixes`: the formats it
    /// fits), after the lookups of the formats with one (`lookups`): first by the derived
    /// lookup (an upgraded key: one indexed read), then by the pending scan.
    pub(super) fn verify_imported(
        &self,
        key: &str,
        cache_key: CacheKey,
        lookups: &[&str],
        prefixes: &[String],
        required: &Requirement,
    ) -> Result<Verification, Error> {
        let derived: Vec<String> = prefixes.iter().map(|p| derived_lookup(p, key)).collect();
        let mut lookups = lookups.to_vec();
        lookups.extend(derived.iter().map(String::as_str));
        let found =
            self.verify_uncached(key, cache_key, &lookups, (Scheme::Plain, None), required)?;
        if found != UNKNOWN {
            return Ok(found);
        }
        self.scan_pending(key, cache_key, prefixes, &derived, required)
    }

    /// bcrypt over the pending keys of each prefix (bounded by
    /// [`super::ApiKeysConfig::max_upgrade_scan`]); the one that passes gets its derived
    /// lookup and is cached. A key that matched none is remembered as wrong, so repeating it
    /// costs nothing.
    fn scan_pending(
        &self,
        key: &str,
        cache_key: CacheKey,
        prefixes: &[String],
        derived: &[String],
        required: &Requirement,
    ) -> Result<Verification, Error> {
        let start = Instant::now();
        let limit = self.config.max_upgrade_scan;
        if limit == 0 || self.failures.known_bad_for_scan(&cache_key, start) {
            return Ok(UNKNOWN);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let now = Timestamp::now();
        let mut tried = false;
        for (prefix, derived) in prefixes.iter().zip(derived) {
            let marker = marker_of(prefix);
            let rows = self.backend.pending(&marker, limit)?;
            if rows.len() >= limit {
                warn_scan_bound(prefix, limit);
            }
            for mut row in rows {
                // Expired, revoked: no bcrypt for keys that cannot pass (such a key is
                // refused as unknown).
                if row.scheme != Scheme::Plain
                    || row.refusal_before_secret(now).is_some()
                    || bcrypt_cost(&row.hash).is_some_and(|c| c > MAX_IMPORTED_COST)
                {
                    continue;
                }
                let Some(slot) = self.bcrypt_limiter.acquire(self.config.bcrypt_wait) else {
                    return Ok(Verification::Refused(Refusal::RateLimited {
                        retry_after: std::time::Duration::from_secs(1),
                    }));
                };
                let ok = bcrypt_ok(Scheme::Plain, key, &row.hash);
                drop(slot);
                self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
                tried = true;
                if !ok {
                    continue;
                }
                match self.backend.set_lookup(row.row_id, &marker, derived) {
                    Ok(_) => {}
                    // The key is right; only the upgrade waits for the next first use.
                    Err(e) => tracing::warn!(
                        error = %e,
                        "keyseal api keys: could not record an imported key's lookup"
                    ),
                }
                row.lookup.clone_from(derived);
                self.known_ids.extend([derived.as_str()]);
                if let Some(v) = self.config.verifier.as_ref() {
                    self.queue_tag(row.row_id, v.tag(row.scheme, &row.key_id, key));
                }
                return self.cache_verified(cache_key, row, generation, required);
            }
        }
        if tried {
            // At the scan's start: a key imported since may be the one, and must be seen.
            self.failures.record(cache_key, None, start);
        }
        Ok(UNKNOWN)
    }
}

fn warn_scan_bound(prefix: &str, limit: usize) {
    let now = u64::try_from(Timestamp::now().unix_millis()).unwrap_or(0);
    let last = WARNED_AT.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60_000
        && WARNED_AT
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            prefix,
            limit,
            "keyseal api keys: more imported keys of this prefix wait for their first use \
             than max_upgrade_scan; the least recently used are not checked until others \
             are upgraded"
        );
    }
}
