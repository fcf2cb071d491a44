//! The verify path: parse and checksum, the cache, the known-id filter, recent failures,
//! one indexed read and one bcrypt (bounded in number), then caching the verified key.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::backend::{Row, Scheme};
use super::cache::{CacheKey, CachedKey};
use super::fast_verifier::TagCheck;
use super::format::Environment;
use super::prehash::{bcrypt_cost, bcrypt_ok, MAX_IMPORTED_COST};
use super::rules::{self, NEVER};
use super::scopes::Requirement;
use super::time::Timestamp;
use super::types::{Refusal, Validated, Verification};
use super::ApiKeys;
use crate::{Error, StorageKind};

/// Longest string looked at as a possible legacy key.
const MAX_LEGACY_KEY_LEN: usize = 200;

impl ApiKeys {
    /// Verifies a presented key. Never logs or keeps the key; cached keys are checked
    /// against revocation and expiry on every call, and never wait for a write.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database is needed (a key not in the cache) and fails;
    /// (kind `unavailable`) for a cached key when the change feed could not be read for
    /// longer than [`ApiKeysConfig::max_staleness`](super::ApiKeysConfig::max_staleness),
    /// the key's row cannot be re-read either, and the
    /// [`StalePolicy`](super::StalePolicy) does not serve it stale (so a cached key never
    /// outlives a revocation made elsewhere by more than that bound); or for a key whose
    /// stored row cannot be read (the message names the row).
    /// Every refusal is an `Ok(Verification::Refused(..))`.
    pub fn verify(&self, key: &str) -> Result<Verification, Error> {
        self.verify_with(key, &Requirement::none())
    }

    /// Verifies a presented key and checks that it has the scopes `required`: a valid key
    /// without them is refused as [`Refusal::Forbidden`], after every other check (so a
    /// wrong secret is `unknown`, and a key over its rate limit is `rate_limited`, whatever
    /// its scopes). Costs a few string comparisons over [`ApiKeys::verify`].
    ///
    /// ```
    /// use keyseal::{ApiKeys, ApiKeysConfig, NewKey, Requirement};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let keys = ApiKeys::open_with(dir.path().join("keys.db"), ApiKeysConfig::default().bcrypt_cost(4))?;
    /// let made = keys.create(&NewKey::new("user-42", "CI").scope("read"))?;
    /// let deploy = Requirement::all(["deploy"]); // made once, reused
    /// assert_eq!(keys.verify_with(&made.key, &deploy)?.refusal().unwrap().reason(), "forbidden");
    /// assert!(keys.verify_with(&made.key, &Requirement::any(["read", "admin"]))?.is_valid());
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`ApiKeys::verify`].
    pub fn verify_with(&self, key: &str, required: &Requirement) -> Result<Verification, Error> {
        if let Some(p) = self.config.format.parse(key) {
            let now = self.check_for_changes(self.check_interval_ms());
            // Prefix and checksum are fixed by the format and `live`/`test` is checked
            // against the row, so id and secret identify the key; 55 bytes fit one SHA-256
            // block. (Legacy keys are keyed whole; they contain `_`, never in base62: no
            // overlap.)
            let cache_key = self.keyer.cache_key(p.id_and_secret);
            if let Some(cached) = self.cache.get(&cache_key) {
                if cached.environment != p.environment {
                    return Ok(Verification::Refused(Refusal::Unknown));
                }
                return self.answer_cached(cache_key, &cached, now, required);
            }
            return self.verify_uncached(
                key,
                cache_key,
                &[p.key_id],
                (Scheme::Prehashed, Some(p.environment)),
                required,
            );
        }
        self.verify_legacy(key, required)
    }

    /// The answer when memory alone gives it: a malformed key, or a cached one whose
    /// answer needs no read (no change check due, the entry current). `None`: the full
    /// [`ApiKeys::verify_with`] is needed, which may read storage or run bcrypt.
    #[inline]
    pub(crate) fn verify_from_memory(
        &self,
        key: &str,
        required: &Requirement,
    ) -> Option<Result<Verification, Error>> {
        let Some(p) = self.config.format.parse(key) else {
            // Legacy keys need the registered formats, which the change check keeps.
            return None;
        };
        if self.check_interval_ms() == 0 {
            return None; // the feed is read on the verification's path
        }
        let now = self.clock_ms();
        let cached = self.cache.get(&self.keyer.cache_key(p.id_and_secret))?;
        if cached.environment != p.environment {
            return Some(Ok(Verification::Refused(Refusal::Unknown)));
        }
        let usable = !cached.unreadable.load(Ordering::Acquire)
            && (!cached.stale.load(Ordering::Acquire) || cached.gone.load(Ordering::Acquire));
        if !usable || self.too_old(&cached, now).is_some() {
            return None;
        }
        Some(Ok(self.answer(&cached, required)))
    }

    fn verify_legacy(&self, key: &str, required: &Requirement) -> Result<Verification, Error> {
        if key.len() > MAX_LEGACY_KEY_LEN
            || key.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Ok(Verification::Refused(Refusal::Malformed));
        }
        // Changes first, lookups after: a format another process registered since the last
        // check (perhaps under a prefix overlapping a known one, so that the known format
        // alone would give a lookup) must count. Within the check interval this only reads
        // the clock, so malformed keys cost no read.
        let now = self.check_for_changes(self.check_interval_ms());
        // Only verified keys are cached: a hit needs no look at the formats.
        let cache_key = self.keyer.cache_key(key);
        if let Some(cached) = self.cache.get(&cache_key) {
            return self.answer_cached(cache_key, &cached, now, required);
        }
        let lookups = self.legacy.lookups(key);
        let imported = self.legacy.lookupless(key);
        if lookups.is_empty() && imported.is_empty() {
            return Ok(Verification::Refused(Refusal::Malformed));
        }
        if !imported.is_empty() {
            return self.verify_imported(key, cache_key, &lookups, &imported, required);
        }
        self.verify_uncached(key, cache_key, &lookups, (Scheme::Plain, None), required)
    }

    /// A cached key's answer, if the change check is recent enough to trust it.
    #[inline]
    fn answer_cached(
        &self,
        cache_key: CacheKey,
        cached: &CachedKey,
        now: u64,
        required: &Requirement,
    ) -> Result<Verification, Error> {
        if let Some(age) = self.too_old(cached, now) {
            return self.answer_too_old(cache_key, cached, now, age, required);
        }
        if cached.unreadable.load(Ordering::Acquire) {
            return Err(Error::storage(
                StorageKind::Corrupt,
                format!(
                    "api_keys row {} (key id {}) cannot be read; refused until it is repaired",
                    cached.row_id, cached.key_id
                ),
            ));
        }
        if cached.stale.load(Ordering::Acquire) && !cached.gone.load(Ordering::Acquire) {
            // A refusal the flags already give needs no read (a revocation is seen even
            // while this process's connection is busy).
            if let Some(refusal) = Self::flag_refusal(cached, Timestamp::now()) {
                return Ok(Verification::Refused(refusal));
            }
            return self.refresh(cache_key, cached, required);
        }
        Ok(self.answer(cached, required))
    }

    /// A cached key whose row changed: read the row again (the key already passed bcrypt
    /// against it, and an update never changes the hash), replace the entry and answer.
    /// The read started after the change that marked the entry stale, so it sees it.
    #[cold]
    pub(super) fn refresh(
        &self,
        cache_key: CacheKey,
        stale: &CachedKey,
        required: &Requirement,
    ) -> Result<Verification, Error> {
        let generation = self.generation.load(Ordering::SeqCst);
        match self.backend.get(stale.row_id)? {
            Some(row) if row.key_id == *stale.key_id => {
                self.cache_verified(cache_key, row, generation, required)
            }
            _ => {
                stale.gone.store(true, Ordering::SeqCst);
                Ok(Verification::Refused(Refusal::Unknown))
            }
        }
    }

    /// What the entry's flags refuse the key for now (deleted, revoked, expired, disabled),
    /// if anything.
    #[inline]
    fn flag_refusal(cached: &CachedKey, now: Timestamp) -> Option<Refusal> {
        if cached.gone.load(Ordering::Acquire) {
            return Some(Refusal::Unknown);
        }
        rules::refusal(
            cached.revoked.load(Ordering::Acquire),
            cached.disabled.load(Ordering::Acquire),
            cached.expires_at.load(Ordering::Acquire),
            now.unix_millis(),
        )
    }

    /// The answer for a key that passed bcrypt: its state now, its rate limit, its scopes,
    /// and its last use queued.
    #[inline]
    pub(super) fn answer(&self, cached: &CachedKey, required: &Requirement) -> Verification {
        let now = Timestamp::now();
        if let Some(refusal) = Self::flag_refusal(cached, now) {
            return Verification::Refused(refusal);
        }
        let expires = cached.expires_at.load(Ordering::Acquire);
        if let Some(bucket) = &cached.bucket {
            let taken = bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(Instant::now());
            if let Err(retry_after) = taken {
                return Verification::Refused(Refusal::RateLimited { retry_after });
            }
        }
        if !required.is_met_by(&cached.scopes) {
            return Verification::Refused(Refusal::Forbidden);
        }
        self.queue_last_use(cached, now);
        Verification::Valid(Validated {
            key_id: cached.key_id.clone(),
            user_id: cached.user_id.clone(),
            scopes: cached.scopes.clone(),
            expires_at: (expires != NEVER).then_some(Timestamp::from_unix_millis(expires)),
            environment: cached.environment,
        })
    }

    /// The lookups in `lookups` that the known-id filter has.
    fn known<'k>(&self, lookups: &[&'k str]) -> Vec<&'k str> {
        lookups
            .iter()
            .copied()
            .filter(|l| self.known_ids.contains(l))
            .collect()
    }

    /// Not in the cache: read the rows under `lookups` and bcrypt. A keyseal key has one
    /// lookup and one row; a legacy key may have one lookup per registered format and up to
    /// `rules::MAX_LEGACY_PER_LOOKUP` rows under each.
    pub(super) fn verify_uncached(
        &self,
        key: &str,
        cache_key: CacheKey,
        lookups: &[&str],
        (scheme, env): (Scheme, Option<Environment>),
        required: &Requirement,
    ) -> Result<Verification, Error> {
        const UNKNOWN: Verification = Verification::Refused(Refusal::Unknown);
        let mut known = self.known(lookups);
        if known.is_empty() {
            // Perhaps made by another process a moment ago: look now (at most once a
            // millisecond, so a flood of unknown ids costs at most 1000 cheap reads/s).
            self.look_for_new_keys();
            known = self.known(lookups);
            if known.is_empty() {
                return Ok(UNKNOWN);
            }
        }
        let start = Instant::now();
        if self.failures.known_bad(&cache_key, start) {
            return Ok(UNKNOWN);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let now = Timestamp::now();
        let mut rows = Vec::new();
        for l in known {
            rows.extend(self.backend.find(l)?);
        }
        let mut refusal = None;
        let mut tried = None;
        for row in rows {
            if row.scheme != scheme || (scheme == Scheme::Prehashed && row.key_id != row.lookup) {
                continue;
            }
            if env.is_some_and(|e| e != row.environment) {
                // The right id and maybe secret under the other marker: the cache key is
                // shared with the real key, so this must not be remembered as a failure.
                return Ok(UNKNOWN);
            }
            // Disabled is only said once the secret is proven (in `answer`).
            if let Some(r) = row.refusal_before_secret(now) {
                refusal.get_or_insert(r);
                continue;
            }
            if row.scheme == Scheme::Plain
                && bcrypt_cost(&row.hash).is_some_and(|c| c > MAX_IMPORTED_COST)
            {
                // Imported before costs were bounded: never worth a bcrypt slot for hours.
                tracing::warn!(key_id = %row.key_id, "keyseal api keys: bcrypt cost above the maximum; key refused");
                continue;
            }
            if let Err(retry_after) = self.failures.row_allowed(row.row_id, start) {
                refusal.get_or_insert(Refusal::RateLimited { retry_after });
                continue;
            }
            // The fast verifier: a tag of this process's key settles it without bcrypt, for
            // a right key and a wrong one (a tag is only written for a key bcrypt accepted).
            let verifier = self.config.verifier.as_ref();
            match verifier.map_or(TagCheck::Unusable, |v| {
                v.check(row.verifier_tag.as_deref(), row.scheme, &row.key_id, key)
            }) {
                TagCheck::Match => {
                    return self.cache_verified(cache_key, row, generation, required);
                }
                TagCheck::Mismatch => {
                    tried = Some(row.row_id);
                    continue;
                }
                TagCheck::Unusable => {}
            }
            let Some(slot) = self.bcrypt_limiter.acquire(self.config.bcrypt_wait) else {
                return Ok(Verification::Refused(Refusal::RateLimited {
                    retry_after: Duration::from_secs(1),
                }));
            };
            let ok = bcrypt_ok(row.scheme, key, &row.hash);
            drop(slot);
            self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
            if ok {
                if let Some(v) = verifier {
                    // No usable tag (none, another key's, unreadable): this key's from now.
                    self.queue_tag(row.row_id, v.tag(row.scheme, &row.key_id, key));
                }
                return self.cache_verified(cache_key, row, generation, required);
            }
            tried = Some(row.row_id);
        }
        if tried.is_some() {
            // Only a bcrypt that said no is remembered: nothing else can become valid later
            // by itself, but a legacy key may yet be imported.
            self.failures.record(cache_key, tried, Instant::now());
        }
        Ok(match (tried, refusal) {
            // A wrong secret: say "unknown", whatever other rows share a legacy prefix.
            (Some(_), _) | (None, None) => UNKNOWN,
            (None, Some(r)) => Verification::Refused(r),
        })
    }

    /// Caches a key that passed bcrypt and answers for it. Every cache entry of a row shares
    /// one [`CachedKey`] (legacy keys that differ past bcrypt's 72 bytes are one key) and the
    /// row's one token bucket.
    ///
    /// Every write bumps `generation` *before* it looks for a cached entry to flip, so
    /// re-reading the row whenever the generation moved, both before and after the entry is
    /// inserted, leaves no window in which a stale entry could stay valid. A stale entry of
    /// the row is replaced by this one (read after `seen`, so no older than the change that
    /// made it stale, or the loop below catches that change).
    ///
    /// # Errors
    /// [`Error::Storage`] when a change raced the verification and the row cannot be read
    /// again to see what it was: this call fails closed, and the entry is re-read at its next
    /// use (it is never taken for revoked on that account).
    pub(super) fn cache_verified(
        &self,
        cache_key: CacheKey,
        row: Row,
        mut seen: u64,
        required: &Requirement,
    ) -> Result<Verification, Error> {
        let fresh = Arc::new(CachedKey {
            row_id: row.row_id,
            key_id: row.key_id.into(),
            user_id: row.user_id.into(),
            scopes: row.scopes.into(),
            environment: row.environment,
            expires_at: AtomicI64::new(row.expires_at.map_or(NEVER, Timestamp::unix_millis)),
            revoked: AtomicBool::new(row.revoked_at.is_some()),
            disabled: AtomicBool::new(!row.enabled),
            gone: AtomicBool::new(false),
            stale: AtomicBool::new(false),
            unreadable: AtomicBool::new(false),
            confirmed_ms: AtomicU64::new(self.clock_ms()),
            last_use_queued: AtomicI64::new(row.last_used_at.map_or(0, Timestamp::unix_millis)),
            bucket: row.rate_limit.map(|l| self.cache.bucket(row.row_id, l)),
        });
        let cached = self.cache.entry_for(fresh);
        let mut inserted = false;
        loop {
            let current = self.generation.load(Ordering::SeqCst);
            if current != seen {
                seen = current;
                match self.backend.get(cached.row_id) {
                    Ok(Some(now)) => {
                        cached
                            .revoked
                            .store(now.revoked_at.is_some(), Ordering::SeqCst);
                        cached.disabled.store(!now.enabled, Ordering::SeqCst);
                        cached.expires_at.store(
                            now.expires_at.map_or(NEVER, Timestamp::unix_millis),
                            Ordering::SeqCst,
                        );
                        if now.scopes[..] != cached.scopes[..]
                            || now.rate_limit
                                != cached.bucket.as_ref().map(|b| {
                                    b.lock().unwrap_or_else(PoisonError::into_inner).limit()
                                })
                        {
                            cached.stale.store(true, Ordering::SeqCst);
                        }
                    }
                    Ok(None) => cached.gone.store(true, Ordering::SeqCst),
                    Err(e) => {
                        cached.stale.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                }
                continue;
            }
            if inserted {
                break;
            }
            self.cache.insert(cache_key, cached.clone());
            inserted = true;
        }
        Ok(self.answer(&cached, required))
    }
}
