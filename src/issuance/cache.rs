//! In-memory state: the verified-key cache, recent failures, the bcrypt gate, token buckets.
//!
//! Nothing here ever holds a raw key: the cache and the failure list are keyed by
//! HMAC-SHA256(per-process random secret, key).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::format::Environment;
use super::RateLimit;

/// A keyed hash of a presented key (HMAC-SHA256 with a per-process secret).
pub(crate) type Tag = [u8; 32];

/// Computes [`Tag`]s; the secret is drawn at start-up and never leaves the process.
pub(crate) struct Tagger {
    mac: Hmac<Sha256>,
}

impl Tagger {
    pub(crate) fn new() -> Result<Self, crate::Error> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|_| crate::Error::Randomness)?;
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&secret).map_err(|_| crate::Error::Randomness)?;
        secret.fill(0);
        Ok(Tagger { mac })
    }

    pub(crate) fn tag(&self, key: &str) -> Tag {
        let mut m = self.mac.clone();
        m.update(key.as_bytes());
        m.finalize().into_bytes().into()
    }
}

/// The tags are uniformly random already: hash by their first 8 bytes.
#[derive(Default)]
pub(crate) struct TagHasher(u64);

impl Hasher for TagHasher {
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

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<TagHasher>>;

/// Per-key token bucket.
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Instant,
    limit: RateLimit,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Bucket {
            tokens: f64::from(limit.requests()),
            last: Instant::now(),
            limit,
        }
    }

    /// Takes a token, or says how long until one is there.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let cap = f64::from(self.limit.requests());
        let rate = cap / self.limit.period().as_secs_f64().max(1e-9); // tokens per second
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(cap);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / rate;
            Err(Duration::from_secs_f64(wait.clamp(0.001, 1e9)))
        }
    }

    /// Whether the bucket is full by `now`: forgetting it then changes nothing.
    fn is_full(&self, now: Instant) -> bool {
        let rate = f64::from(self.limit.requests()) / self.limit.period().as_secs_f64().max(1e-9);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * rate >= f64::from(self.limit.requests())
    }
}

/// A key's token bucket, shared by every cache entry of the key.
pub(crate) type SharedBucket = Arc<Mutex<Bucket>>;

/// What this process knows of one verified key. One per row, shared by every cache entry of
/// the row (a legacy key has several: bcrypt ignores what follows byte 72) and found through
/// the by-row index, so a revocation or rotation flips them all in place.
#[derive(Debug)]
pub(crate) struct Live {
    pub row_id: i64,
    pub key_id: Arc<str>,
    pub user_id: Arc<str>,
    pub scopes: Arc<[String]>,
    pub environment: Environment,
    /// Unix ms; `i64::MAX` for never.
    pub expires_at: AtomicI64,
    pub revoked: AtomicBool,
    /// The row could not be read by the last change check: refused with an error.
    pub unreadable: AtomicBool,
    /// Unix ms of the last use queued for writing.
    pub last_use_queued: AtomicI64,
    pub bucket: Option<SharedBucket>,
}

const SHARDS: usize = 16;

/// Verified keys by tag: sharded read-mostly maps.
pub(crate) struct Cache {
    shards: Vec<RwLock<FastMap<Tag, Arc<Live>>>>,
    per_shard: usize,
    capacity: usize,
    /// Row id → its entry while any tag refers to it, for revocation / rotation.
    by_row: Mutex<HashMap<i64, Weak<Live>>>,
    /// Row id → token bucket: the bucket belongs to the key, not to a cache entry, so an
    /// eviction or two first verifications at once cannot hand out a fresh one.
    buckets: Mutex<HashMap<i64, SharedBucket>>,
}

fn shard_of(tag: &Tag) -> usize {
    usize::from(tag[31]) % SHARDS
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
    pub(crate) fn get(&self, tag: &Tag) -> Option<Arc<Live>> {
        self.shards[shard_of(tag)]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tag)
            .cloned()
    }

    /// The row's entry if one is live, else `fresh`, which becomes the row's entry.
    pub(crate) fn entry_for(&self, fresh: Arc<Live>) -> Arc<Live> {
        let mut by_row = self.by_row.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(live) = by_row.get(&fresh.row_id).and_then(Weak::upgrade) {
            return live;
        }
        if by_row.len() >= 2 * self.capacity {
            by_row.retain(|_, w| w.strong_count() > 0);
        }
        by_row.insert(fresh.row_id, Arc::downgrade(&fresh));
        fresh
    }

    pub(crate) fn insert(&self, tag: Tag, live: Arc<Live>) {
        let mut shard = self.shards[shard_of(&tag)]
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard && !shard.contains_key(&tag) {
            if let Some(victim) = shard.keys().next().copied() {
                shard.remove(&victim);
            }
        }
        shard.insert(tag, live);
    }

    /// The cached entry of a row, if any.
    pub(crate) fn by_row(&self, row_id: i64) -> Option<Arc<Live>> {
        self.by_row
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&row_id)
            .and_then(Weak::upgrade)
    }

    /// The row's token bucket, made on first use.
    pub(crate) fn bucket(&self, row_id: i64, limit: RateLimit) -> SharedBucket {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= self.capacity {
            // Only full buckets are dropped: a key that comes back gets a full one anyway.
            let now = Instant::now();
            buckets.retain(|_, b| {
                !b.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_full(now)
            });
        }
        buckets
            .entry(row_id)
            .or_insert_with(|| Arc::new(Mutex::new(Bucket::new(limit))))
            .clone()
    }
}

/// Recently failed keys (by tag) and per-key-id failure counts: repeated wrong secrets cost
/// no bcrypt, and one key id cannot be made to burn more than a few bcrypts a minute.
pub(crate) struct Failures {
    recent: Mutex<FastMap<Tag, Instant>>,
    per_row: Mutex<HashMap<i64, (Instant, u32)>>,
    capacity: usize,
    ttl: Duration,
    max_per_row: u32,
    window: Duration,
}

impl Failures {
    pub(crate) fn new(capacity: usize, max_per_row: u32) -> Self {
        Failures {
            recent: Mutex::default(),
            per_row: Mutex::default(),
            capacity: capacity.max(1),
            ttl: Duration::from_secs(600),
            max_per_row,
            window: Duration::from_secs(60),
        }
    }

    pub(crate) fn known_bad(&self, tag: &Tag, now: Instant) -> bool {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent
            .get(tag)
            .is_some_and(|&at| now.saturating_duration_since(at) < self.ttl)
    }

    /// `Err(retry_after)` when this key id has failed too often in the current window.
    pub(crate) fn row_allowed(&self, row_id: i64, now: Instant) -> Result<(), Duration> {
        let per_row = self.per_row.lock().unwrap_or_else(PoisonError::into_inner);
        match per_row.get(&row_id) {
            Some(&(start, n)) if n >= self.max_per_row => {
                let end = start + self.window;
                if now < end {
                    Err(end - now)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn record(&self, tag: Tag, row_id: Option<i64>, now: Instant) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.len() >= self.capacity {
                let ttl = self.ttl;
                recent.retain(|_, at| now.saturating_duration_since(*at) < ttl);
                if recent.len() >= self.capacity {
                    recent.clear();
                }
            }
            recent.insert(tag, now);
        }
        if let Some(row) = row_id {
            let mut per_row = self.per_row.lock().unwrap_or_else(PoisonError::into_inner);
            if per_row.len() >= self.capacity {
                let window = self.window;
                per_row.retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            }
            let e = per_row.entry(row).or_insert((now, 0));
            if now.saturating_duration_since(e.0) >= self.window {
                *e = (now, 0);
            }
            e.1 += 1;
        }
    }
}

/// Bounds the number of bcrypt computations running at once.
pub(crate) struct Gate {
    free: Mutex<usize>,
    cv: Condvar,
}

pub(crate) struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.cv.notify_one();
    }
}

impl Gate {
    pub(crate) fn new(permits: usize) -> Self {
        Gate {
            free: Mutex::new(permits.max(1)),
            cv: Condvar::new(),
        }
    }

    /// A permit, waiting at most `wait`; `None` when the gate stayed full.
    pub(crate) fn enter(&self, wait: Duration) -> Option<Permit<'_>> {
        // A wait too long for an Instant (e.g. Duration::MAX) means no deadline.
        let deadline = Instant::now().checked_add(wait);
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    self.cv
                        .wait_timeout(free, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.cv.wait(free).unwrap_or_else(PoisonError::into_inner),
            };
        }
        *free -= 1;
        Some(Permit(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills() {
        let mut b = Bucket::new(RateLimit::new(2, Duration::from_secs(1)));
        let t = Instant::now();
        assert!(b.take(t).is_ok());
        assert!(b.take(t).is_ok());
        let wait = b.take(t).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(b.take(t + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn gate_bounds() {
        let g = Gate::new(1);
        let p = g.enter(Duration::ZERO).unwrap();
        assert!(g.enter(Duration::from_millis(5)).is_none());
        drop(p);
        assert!(g.enter(Duration::ZERO).is_some());
    }
}
