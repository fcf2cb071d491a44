//! The settings of an [`ApiKeys`].

use std::time::Duration;

use super::fast_verifier::VerifierKey;
use super::format::KeyFormat;
#[cfg(doc)]
use super::ApiKeys;
#[cfg(doc)]
use crate::Error;

/// Settings of an [`ApiKeys`]: `ApiKeysConfig::default()`, then the builder methods (each
/// takes and returns the config by value), then [`ApiKeys::open_with`].
#[derive(Debug, Clone)]
pub struct ApiKeysConfig {
    pub(crate) format: KeyFormat,
    pub(crate) bcrypt_cost: u32,
    pub(crate) max_active_keys: Option<u32>,
    pub(crate) cache_capacity: usize,
    pub(crate) change_check_interval: Duration,
    pub(crate) bcrypt_concurrency: usize,
    pub(crate) bcrypt_wait: Duration,
    pub(crate) max_failures_per_key: u32,
    pub(crate) last_use_interval: Duration,
    pub(crate) busy_timeout: Duration,
    pub(crate) verifier: Option<VerifierKey>,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        ApiKeysConfig {
            format: KeyFormat::default(),
            bcrypt_cost: 12,
            max_active_keys: Some(5),
            cache_capacity: 100_000,
            change_check_interval: Duration::from_millis(250),
            bcrypt_concurrency: cores.div_ceil(2),
            bcrypt_wait: Duration::from_secs(2),
            max_failures_per_key: 20,
            last_use_interval: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(5),
            verifier: None,
        }
    }
}

impl ApiKeysConfig {
    /// The key format (tag); default `ks`.
    #[must_use]
    pub fn format(mut self, format: KeyFormat) -> Self {
        self.format = format;
        self
    }
    /// bcrypt cost for new keys, 4 to 31; default 12.
    #[must_use]
    pub fn bcrypt_cost(mut self, cost: u32) -> Self {
        self.bcrypt_cost = cost;
        self
    }
    /// Most valid keys a user may hold (`None`: no limit); default 5. Valid: not revoked,
    /// not expired; a rotated key counts until its grace period ends. A rotation may take
    /// the user one over (see [`ApiKeys::rotate`]).
    #[must_use]
    pub fn max_active_keys(mut self, limit: Option<u32>) -> Self {
        self.max_active_keys = limit;
        self
    }
    /// Verified keys kept in memory; default 100 000.
    #[must_use]
    pub fn cache_capacity(mut self, n: usize) -> Self {
        self.cache_capacity = n;
        self
    }
    /// How often, at most, other processes' writes are looked for; default 250 ms. Cached
    /// keys fail closed when no look succeeded for this long plus one second.
    #[must_use]
    pub fn change_check_interval(mut self, d: Duration) -> Self {
        self.change_check_interval = d;
        self
    }
    /// bcrypt verifications allowed to run at once; default half the cores, at least 1.
    #[must_use]
    pub fn bcrypt_concurrency(mut self, n: usize) -> Self {
        self.bcrypt_concurrency = n.max(1);
        self
    }
    /// How long a verification waits for a bcrypt slot before it is refused as
    /// `rate_limited`; default 2 s.
    #[must_use]
    pub fn bcrypt_wait(mut self, d: Duration) -> Self {
        self.bcrypt_wait = d;
        self
    }
    /// Wrong secrets allowed per key id per minute before further uncached attempts on that
    /// id are refused as `rate_limited` without bcrypt; default 20.
    #[must_use]
    pub fn max_failures_per_key(mut self, n: u32) -> Self {
        self.max_failures_per_key = n.max(1);
        self
    }
    /// Least time between two writes of a key's last use; default 60 s.
    #[must_use]
    pub fn last_use_interval(mut self, d: Duration) -> Self {
        self.last_use_interval = d;
        self
    }
    /// How long a write waits for other connections or processes holding the database
    /// before failing with [`Error::Storage`] (busy writes are retried within this bound);
    /// default 5 s; longer than one day counts as one day.
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
    /// The fast verifier's key (none by default). With it, a key this process has not
    /// cached yet is verified with one indexed read and one HMAC instead of one bcrypt,
    /// once any process holding the same key verified it (or created it): a new process
    /// serves a warm fleet's keys without a bcrypt storm, and a wrong key costs no bcrypt
    /// either. Without it nothing changes. The key must never be stored in the database:
    /// the tags stored there are useless without it, and bcrypt stays the at-rest hash (see
    /// [`VerifierKey`]).
    #[must_use]
    pub fn verifier_key(mut self, key: VerifierKey) -> Self {
        self.verifier = Some(key);
        self
    }
}
