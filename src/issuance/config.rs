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
    /// Shared, so that the config stays `Clone` while the key has no `Clone`.
    pub(crate) verifier: Option<std::sync::Arc<VerifierKey>>,
    pub(crate) max_staleness: Duration,
    pub(crate) stale_policy: StalePolicy,
    pub(crate) listen_url: Option<ListenUrl>,
    pub(crate) max_upgrade_scan: usize,
}

/// What a cached verdict is worth once the change feed could not be read for longer than
/// [`ApiKeysConfig::max_staleness`] (and the key's own row cannot be read either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StalePolicy {
    /// Cached keys are refused with [`Error::Storage`] (kind `unavailable`) until the store
    /// can be read: a revocation made elsewhere can never be missed for longer than the
    /// bound. The default.
    Refuse,
    /// Cached keys keep being accepted until the feed has been unreadable for `up_to` in all
    /// (each such answer logged as a warning), then refused as with `Refuse`: availability
    /// during a longer outage, at the price of honouring a revocation made elsewhere that
    /// much later.
    ServeStale {
        /// The second bound, counted like the first; less than `max_staleness` acts as
        /// `max_staleness`.
        up_to: Duration,
    },
}

/// A URL that may hold a password: kept wiped, never shown.
#[derive(Clone)]
pub(crate) struct ListenUrl(pub(crate) zeroize::Zeroizing<String>);

impl core::fmt::Debug for ListenUrl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ListenUrl(..)")
    }
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
            max_staleness: Duration::from_secs(30),
            stale_policy: StalePolicy::Refuse,
            listen_url: None,
            max_upgrade_scan: 1_000,
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
    /// How often other processes' writes are looked for, by a thread of the manager's own
    /// (and sooner when the store notifies a commit, on PostgreSQL); default 250 ms. Zero:
    /// also before every verification that uses the cache (every call then sees every change
    /// committed before it; for tests).
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
    /// How long cached verdicts stay trusted while the change feed cannot be read (database
    /// down, connection lost); default 30 s. Past it, a cached key's row is read again (one
    /// indexed read, never a bcrypt) before it is answered, and if that read fails too the
    /// [`StalePolicy`] decides. 30 s rides out a server restart or a failover without
    /// refusing every client, while no revocation can be missed for longer; while the
    /// database is down nothing can be revoked anyway, so the window matters only for a
    /// process cut off from a database others still reach.
    #[must_use]
    pub fn max_staleness(mut self, d: Duration) -> Self {
        self.max_staleness = d;
        self
    }
    /// What happens past [`ApiKeysConfig::max_staleness`]; default [`StalePolicy::Refuse`].
    #[must_use]
    pub fn stale_policy(mut self, policy: StalePolicy) -> Self {
        self.stale_policy = policy;
        self
    }
    /// PostgreSQL only: where to `LISTEN` for commits (a URL that reaches the server
    /// directly, when the store's URL goes through a pooler in transaction mode, which
    /// cannot deliver notifications). Default: the store's own URL. Without working
    /// notifications (found by a self-test at start), changes are still seen on every
    /// [`ApiKeysConfig::change_check_interval`]. The URL is kept wiped and never shown; a
    /// password in it is better given by `PGPASSWORD` or a password file.
    #[must_use]
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(ListenUrl(zeroize::Zeroizing::new(url.into())));
        self
    }
    /// Most imported keys one first verification runs bcrypt over, for keys imported without
    /// a lookup; default 1 000. Such a key's first verification checks the pending keys of
    /// its tag (most recently used in the old system first), as the old system checked every
    /// key on every request, then records a lookup derived from the key, so later
    /// verifications cost one indexed read. Each bcrypt takes a slot of
    /// [`ApiKeysConfig::bcrypt_concurrency`]. Keys past the bound are found once enough of
    /// the others have been used (each use removes one from the scan; a process that refused
    /// such a key remembers that for ten minutes, as it does a wrong key); a tag with more pending
    /// keys than this logs a warning. Zero: pending keys are never scanned.
    #[must_use]
    pub fn max_upgrade_scan(mut self, n: usize) -> Self {
        self.max_upgrade_scan = n;
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
    /// default 5 s; longer than one day counts as one day. A rate-limited key's lease is such
    /// a write: a verification that needs a new lease waits at most this long.
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
        self.verifier = Some(std::sync::Arc::new(key));
        self
    }
}
