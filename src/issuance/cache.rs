//! The verified-key cache.
//!
//! Nothing here ever holds a raw key: entries are found by a [`CacheKey`],
//! HMAC-SHA256(per-process random secret, key).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Instant;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::backend::Change;
use super::fleet_limit::{FleetBucket, SharedBucket};
use super::format::Environment;
use super::rate_limit::RateLimit;
use super::rules::NEVER;
use super::time::Timestamp;

/// What a presented key is cached under: HMAC-SHA256 of the key with a per-process secret.
pub(crate) type CacheKey = [u8; 32];

/// Computes [`CacheKey`]s; the secret is drawn at start-up and never leaves the process.
pub(crate) struct CacheKeyer {
    mac: Hmac<Sha256>,
}

impl CacheKeyer {
    pub(crate) fn new() -> Result<Self, crate::Error> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|_| crate::Error::Randomness)?;
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&secret).map_err(|_| crate::Error::Randomness)?;
        secret.fill(0);
        Ok(CacheKeyer { mac })
    }

    pub(crate) fn cache_key(&self, key: &str) -> CacheKey {
        let mut m = self.mac.clone();
        m.update(key.as_bytes());
        m.finalize().into_bytes().into()
    }
}

/// For keys that are uniformly random already (cache keys, keyed hashes): hashes by their
/// first 8 bytes.
#[derive(Default)]
pub(crate) struct UniformHasher(u64);

impl Hasher for UniformHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<UniformHasher>>;

/// What this process knows of one verified key. One per row, shared by every cache entry of
/// the row (a legacy key has several: bcrypt ignores what follows byte 72) and found through
/// the by-row index, so a revocation or rotation flips them all in place.
#[derive(Debug)]
pub(crate) struct CachedKey {
    pub row_id: i64,
    pub key_id: Arc<str>,
    pub user_id: Arc<str>,
    pub scopes: Arc<[String]>,
    pub environment: Environment,
    /// Unix ms; `i64::MAX` for never.
    pub expires_at: AtomicI64,
    pub revoked: AtomicBool,
    pub disabled: AtomicBool,
    /// The row was deleted: its key is unknown.
    pub gone: AtomicBool,
    /// The row changed in a way the flags above do not carry (scopes, rate limit): the
    /// next use re-reads it (one indexed read, no bcrypt) and replaces this entry.
    pub stale: AtomicBool,
    /// The row could not be read by the last change check: refused with an error.
    pub unreadable: AtomicBool,
    /// When (manager clock, see `Core::clock_ms`) this entry was last known to match its
    /// row: read, or re-read while the change feed could not be.
    pub confirmed_ms: AtomicU64,
    /// Unix ms of the last use queued for writing.
    pub last_use_queued: AtomicI64,
    pub bucket: Option<SharedBucket>,
}

impl CachedKey {
    /// Applies a change read from the feed (not an unreadable one): the flags at once, and
    /// anything else at the next use (`stale`).
    pub(crate) fn apply_change(&self, c: &Change) {
        if c.deleted {
            self.gone.store(true, Ordering::SeqCst);
            return;
        }
        self.apply_row_state(
            c.revoked,
            c.disabled,
            c.expires_at.map_or(NEVER, Timestamp::unix_millis),
        );
        // Repaired (written again, readable): answered again.
        self.unreadable.store(false, Ordering::SeqCst);
    }

    /// A write to the row: its flags now, and the rest re-read at the next use. A
    /// revocation is never undone.
    pub(crate) fn apply_row_state(&self, revoked: bool, disabled: bool, expires_at_ms: i64) {
        if revoked {
            self.revoked.store(true, Ordering::SeqCst);
        }
        self.disabled.store(disabled, Ordering::SeqCst);
        self.expires_at.store(expires_at_ms, Ordering::SeqCst);
        self.stale.store(true, Ordering::SeqCst);
    }
}

const SHARDS: usize = 16;

/// Verified keys by cache key: sharded read-mostly maps.
pub(crate) struct Cache {
    shards: Vec<RwLock<FastMap<CacheKey, Arc<CachedKey>>>>,
    per_shard: usize,
    capacity: usize,
    /// Row id → its entry while any cache key refers to it, for revocation / rotation.
    by_row: Mutex<HashMap<i64, Weak<CachedKey>>>,
    /// Row id → the key's rate limit in this process (its lease): it belongs to the key, not
    /// to a cache entry, so an eviction or two first verifications at once share one.
    buckets: Mutex<HashMap<i64, SharedBucket>>,
}

fn shard_of(key: &CacheKey) -> usize {
    usize::from(key[31]) % SHARDS
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Cache {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            capacity: capacity.max(SHARDS),
            by_row: Mutex::default(),
            buckets: Mutex::default(),
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Arc<CachedKey>> {
        self.shards[shard_of(key)]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// The row's entry if one is cached and current, else `fresh`, which becomes the row's
    /// entry (replacing a stale one). So every entry in the cache is either the row's entry,
    /// which writes and the change feed flip, or stale, which is re-read before it answers;
    /// two concurrent refreshes leave one live entry.
    pub(crate) fn entry_for(&self, fresh: Arc<CachedKey>) -> Arc<CachedKey> {
        let mut by_row = self.by_row.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = by_row.get(&fresh.row_id).and_then(Weak::upgrade) {
            if !entry.stale.load(Ordering::SeqCst) {
                return entry;
            }
        }
        if by_row.len() >= 2 * self.capacity {
            by_row.retain(|_, w| w.strong_count() > 0);
        }
        by_row.insert(fresh.row_id, Arc::downgrade(&fresh));
        fresh
    }

    pub(crate) fn insert(&self, key: CacheKey, entry: Arc<CachedKey>) {
        let mut shard = self.shards[shard_of(&key)]
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            if let Some(victim) = shard.keys().next().copied() {
                shard.remove(&victim);
            }
        }
        shard.insert(key, entry);
    }

    /// Marks every cached entry stale: each is re-read (one indexed read, no bcrypt) before
    /// it answers again. For a store that went back in time or was replaced.
    pub(crate) fn mark_all_stale(&self) -> usize {
        let by_row = self.by_row.lock().unwrap_or_else(PoisonError::into_inner);
        let mut n = 0;
        for entry in by_row.values().filter_map(Weak::upgrade) {
            entry.stale.store(true, Ordering::SeqCst);
            n += 1;
        }
        n
    }

    /// How many rows have a cached entry.
    pub(crate) fn rows(&self) -> usize {
        self.by_row
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// The cached entry of a row, if any.
    pub(crate) fn by_row(&self, row_id: i64) -> Option<Arc<CachedKey>> {
        self.by_row
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&row_id)
            .and_then(Weak::upgrade)
    }

    /// The row's rate limit in this process, made on first use, and made anew when the
    /// key's limit changed.
    pub(crate) fn bucket(&self, row_id: i64, limit: RateLimit) -> SharedBucket {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= self.capacity {
            // Only idle ones are dropped (no tokens in hand, no refusal to remember): the
            // shared window is in the store, so a key that comes back loses nothing.
            let now = Instant::now();
            buckets.retain(|_, b| !b.is_idle(now));
        }
        let bucket = buckets
            .entry(row_id)
            .or_insert_with(|| Arc::new(FleetBucket::new(row_id, limit)));
        if bucket.limit() != limit {
            *bucket = Arc::new(FleetBucket::new(row_id, limit));
        }
        bucket.clone()
    }

    /// Every key's rate limit in this process (to hand back unspent leases).
    pub(crate) fn buckets(&self) -> Vec<SharedBucket> {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}
