//! API key issuance: create, verify, list, revoke and rotate API keys, bcrypt-hashed at rest.
//!
//! [`ApiKeys`] keeps keys in a `SQLite` file (tables `api_keys` and `api_key_meta`; the key
//! store's tables in the same file are never touched).
//!
//! # Key format
//! `{tag}_{live|test}_{key id: 12}{secret: 43}{CRC-32: 6}`, all base62 after the marker; see
//! [`KeyFormat`] for the table and the regular expression for secret scanners. The checksum
//! lets typos and garbage be refused without touching the database.
//!
//! # Hash at rest
//! bcrypt reads at most 72 bytes of its input, and a key with a long tag could be longer. So
//! keyseal never gives bcrypt the key itself: it gives it
//! `base64url(HMAC-SHA256(key = "keyseal/api-key/bcrypt-prehash/v1", message = whole key))`,
//! 44 ASCII characters that depend on every byte of the key (scheme `ks1` in the `scheme`
//! column). The fixed HMAC key separates this pre-hash from the plain SHA-256 lookup hash
//! ([`crate::api_key_hash`]), so a stored lookup hash can never be fed to bcrypt in its place.
//! Keys imported from seed-004-style stores keep their plain bcrypt of the key as it is
//! (scheme `bcrypt`); `$2a$`, `$2b$` and `$2y$` hashes are accepted.
//!
//! # Verification
//! Parse and checksum; then the in-memory cache, keyed by HMAC-SHA256 with a secret drawn at
//! start-up (never by the raw key), which is checked against revocation and expiry on every
//! hit; then an in-memory filter of all key ids (unknown ids cost no database read); then
//! recent failures (a repeated wrong key costs no bcrypt); then one indexed read by key id,
//! refusal of revoked or expired keys, and one bcrypt at the stored cost, with the number of
//! bcrypt computations running at once bounded.
//!
//! Other processes' writes are noticed through `PRAGMA data_version`, read at most every
//! [`ApiKeysConfig::change_check_interval`] (default 250 ms) by whichever call comes first,
//! on a read connection of its own that never waits for a write (in WAL mode, not even for
//! another process's write lock or this process's own busy connection): a revocation
//! elsewhere is seen in well under a second, with no query per request. If that check cannot
//! read the store for longer than the interval plus one second, cached keys fail closed
//! ([`Error::Storage`]) until it can. A row that cannot be read (say a hand-edited
//! `expires_at`) does not stop the others being seen; its key fails closed with an error
//! naming the row.
//!
//! Legacy keys: a wrong key costs one bcrypt per imported key under its lookup prefix (at
//! most 16: an import beyond that is refused), for each legacy format of its prefix.
//!
//! # Floods, rate limits, quota
//! - At most [`ApiKeysConfig::bcrypt_concurrency`] bcrypt verifications run at once (default
//!   half the cores); a call that cannot get a slot within
//!   [`ApiKeysConfig::bcrypt_wait`] is refused as `rate_limited`.
//! - A key that failed bcrypt is remembered (by its keyed hash, 10 minutes): repeating it
//!   costs no bcrypt. A key id that collected [`ApiKeysConfig::max_failures_per_key`]
//!   failures in a minute (default 20) refuses further *uncached* attempts as `rate_limited`
//!   for the rest of that minute; its owner's already verified key keeps working.
//! - Verified keys are answered from memory (no lock shared across keys, no write), so they
//!   keep their speed during a flood.
//! - A key created with [`NewKey::rate_limit`] gets one token bucket in this process (not
//!   reset when its cache entry is evicted); over the limit the refusal carries
//!   `retry_after`.
//! - A user holds at most [`ApiKeysConfig::max_active_keys`] valid keys (default 5, as
//!   seed 003), keys in a rotation's grace included; a rotation may go one over (see
//!   [`ApiKeys::rotate`]). Imports do not count.
//!
//! # Storage
//! Table `api_keys` (one row per key: public `key_id`, indexed `lookup`, `scheme`, bcrypt
//! `hash`, owner, name, space-separated scopes, `live`/`test`, times in Unix milliseconds,
//! `revoked_at`, `rotated_to`, rate limit, `last_used_at`, and a store-wide change sequence
//! `seq`) and `api_key_meta` (the legacy key formats that imports registered). Last use is
//! written in batches, at most once per [`ApiKeysConfig::last_use_interval`] per key.
//!
//! # Example
//! ```
//! use keyseal::{ApiKeys, ApiKeysConfig, NewKey, Verification};
//! use std::time::Duration;
//!
//! # let dir = std::env::temp_dir().join(format!("keyseal-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("keys.db");
//! let keys = ApiKeys::open_with(&path, ApiKeysConfig::default().bcrypt_cost(4))?;
//! let made = keys.create(&NewKey::new("user-42", "CI").scope("deploy"))?;
//! assert!(made.key.starts_with("ks_live_")); // shown once, never stored
//!
//! match keys.verify(&made.key)? {
//!     Verification::Valid(v) => assert_eq!(&*v.user_id, "user-42"),
//!     Verification::Refused(r) => panic!("refused: {}", r.reason()),
//! }
//! let next = keys.rotate("user-42", &made.key_id, Duration::from_secs(3600))?;
//! assert!(keys.verify(&made.key)?.is_valid()); // still, for an hour
//! keys.revoke("user-42", &next.key_id)?;
//! assert_eq!(keys.verify(&next.key)?.refusal().unwrap().reason(), "revoked");
//! # drop(keys); let _ = std::fs::remove_dir_all(&dir);
//! # Ok::<(), keyseal::Error>(())
//! ```

mod cache;
mod changes;
mod format;
mod last_use;
mod sqlite;
mod store;
mod time;

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use zeroize::Zeroizing;

use cache::{Cache, Failures, Gate, Live, Tag, TagHasher, Tagger};
use format::{random_base62, LegacyFormat, KEY_ID_LEN, SECRET_LEN};
use store::{Inserted, Row, Scheme, Storage};

pub use format::{Environment, KeyFormat};
pub use time::Timestamp;

use crate::Error;

const PREHASH_KEY: &[u8] = b"keyseal/api-key/bcrypt-prehash/v1";
/// Highest bcrypt cost accepted from an imported hash: each step doubles the work, and one
/// row at cost 31 would hold a bcrypt slot for days.
const MAX_IMPORTED_COST: u32 = 16;
const NEVER: i64 = i64::MAX;

/// A per-key rate limit: at most `requests` per `period`, as a token bucket (bursts up to
/// `requests`, refilled evenly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    requests: u32,
    #[serde(rename = "period_ms", serialize_with = "ser_millis")]
    period: Duration,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RateLimit {
    /// `requests` per `period` (both at least 1; smaller values are raised to 1 / 1 ms).
    pub fn new(requests: u32, period: Duration) -> Self {
        RateLimit {
            requests: requests.max(1),
            period: period.max(Duration::from_millis(1)),
        }
    }
    /// `requests` per second.
    pub fn per_second(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(1))
    }
    /// `requests` per minute.
    pub fn per_minute(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(60))
    }
    /// The bucket size.
    pub fn requests(&self) -> u32 {
        self.requests
    }
    /// The period over which `requests` are allowed.
    pub fn period(&self) -> Duration {
        self.period
    }
}

/// Settings of an [`ApiKeys`]; `ApiKeysConfig::default()` then the builder methods.
#[derive(Debug, Clone)]
pub struct ApiKeysConfig {
    format: KeyFormat,
    bcrypt_cost: u32,
    max_active_keys: Option<u32>,
    cache_capacity: usize,
    change_check_interval: Duration,
    bcrypt_concurrency: usize,
    bcrypt_wait: Duration,
    max_failures_per_key: u32,
    last_use_interval: Duration,
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
}

/// What to create: builder for [`ApiKeys::create`].
#[derive(Debug, Clone)]
pub struct NewKey {
    user_id: String,
    name: String,
    scopes: Vec<String>,
    expires_at: Option<Timestamp>,
    rate_limit: Option<RateLimit>,
    environment: Environment,
}

impl NewKey {
    /// A live key for `user_id` named `name`, no scopes, no expiry, no rate limit.
    pub fn new(user_id: impl Into<String>, name: impl Into<String>) -> Self {
        NewKey {
            user_id: user_id.into(),
            name: name.into(),
            scopes: Vec::new(),
            expires_at: None,
            rate_limit: None,
            environment: Environment::Live,
        }
    }
    /// Adds a scope (no whitespace, 1 to 128 printable characters).
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }
    /// Sets the scopes.
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
    /// Expires at `at`.
    #[must_use]
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }
    /// Expires `d` from now.
    #[must_use]
    pub fn expires_in(mut self, d: Duration) -> Self {
        self.expires_at = Some(Timestamp::now().plus(d));
        self
    }
    /// A per-key rate limit.
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }
    /// `live` (default) or `test`.
    #[must_use]
    pub fn environment(mut self, env: Environment) -> Self {
        self.environment = env;
        self
    }
}

/// A key just made: the only time the key itself is ever available. Serializes to the CLI's
/// `{"key","key_id","user_id","name","scopes","created_at","expires_at"}`. `Debug` hides the
/// key, and it is wiped from memory on drop.
#[derive(Clone, Serialize)]
pub struct CreatedKey {
    /// The API key: give it to the user once; it is not stored anywhere.
    pub key: String,
    /// Public id of the key (for list, revoke, rotate, logs).
    pub key_id: String,
    /// Owner.
    pub user_id: String,
    /// Name given at creation.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
}

impl core::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key", &"[REDACTED]")
            .field("key_id", &self.key_id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Drop for CreatedKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// State of a key in a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Valid now.
    Active,
    /// Replaced by a rotation, valid until its grace period ends.
    Rotating,
    /// Past its expiry (or its grace period).
    Expired,
    /// Revoked.
    Revoked,
}

/// A key's metadata, as [`ApiKeys::list`] gives it: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// Public id.
    pub key_id: String,
    /// Owner.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// `live` or `test`.
    pub environment: Environment,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any (after a rotation: the end of the grace period).
    pub expires_at: Option<Timestamp>,
    /// When revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// The key that replaced this one in a rotation.
    pub rotated_to: Option<String>,
    /// Last successful use, to within a minute.
    pub last_used_at: Option<Timestamp>,
    /// Per-key rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Whether it was imported from a legacy store (plain bcrypt of the key).
    pub legacy: bool,
    /// Its state now.
    pub status: KeyStatus,
}

impl KeyInfo {
    fn from_row(r: Row, now: Timestamp) -> Self {
        let status = if r.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if r.expires_at.is_some_and(|e| e <= now) {
            KeyStatus::Expired
        } else if r.rotated_to.is_some() {
            KeyStatus::Rotating
        } else {
            KeyStatus::Active
        };
        KeyInfo {
            key_id: r.key_id,
            user_id: r.user_id,
            name: r.name,
            scopes: r.scopes,
            environment: r.environment,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            rotated_to: r.rotated_to,
            last_used_at: r.last_used_at,
            rate_limit: r.rate_limit,
            legacy: r.scheme == Scheme::Plain,
            status,
        }
    }
}

/// Who a valid key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validated {
    /// Public id of the key.
    pub key_id: Arc<str>,
    /// Owner.
    pub user_id: Arc<str>,
    /// Scopes.
    pub scopes: Arc<[String]>,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
    /// `live` or `test`.
    #[serde(skip)]
    pub environment: Environment,
}

/// Why a key was refused. Meant for the caller's logs; the key itself is never logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a key of this format, or a wrong checksum: refused without touching storage.
    Malformed,
    /// Well formed, but no such key (or a wrong secret for a key id).
    Unknown,
    /// Past its expiry, or its grace period after a rotation.
    Expired,
    /// Revoked.
    Revoked,
    /// Over the key's rate limit (or too much work in flight); try again after `retry_after`.
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
}

impl Refusal {
    /// `malformed`, `unknown`, `expired`, `revoked` or `rate_limited`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Unknown => "unknown",
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
            Refusal::RateLimited { .. } => "rate_limited",
        }
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::RateLimited { retry_after } => {
                write!(
                    f,
                    "rate_limited (retry after {} ms)",
                    retry_after.as_millis()
                )
            }
            other => f.write_str(other.reason()),
        }
    }
}

/// The answer of [`ApiKeys::verify`]. Serializes to the CLI's
/// `{"valid":true,"key_id","user_id","scopes","expires_at"}` or
/// `{"valid":false,"reason":…}` (plus `"retry_after_ms"` for `rate_limited`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The key is valid.
    Valid(Validated),
    /// The key is refused.
    Refused(Refusal),
}

impl Verification {
    /// Whether the key is valid.
    pub fn is_valid(&self) -> bool {
        matches!(self, Verification::Valid(_))
    }
    /// The refusal, if refused.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Verification::Refused(r) => Some(*r),
            Verification::Valid(_) => None,
        }
    }
}

impl Serialize for Verification {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match self {
            Verification::Valid(v) => {
                m.serialize_entry("valid", &true)?;
                m.serialize_entry("key_id", &v.key_id)?;
                m.serialize_entry("user_id", &v.user_id)?;
                m.serialize_entry("scopes", &v.scopes)?;
                m.serialize_entry("expires_at", &v.expires_at)?;
            }
            Verification::Refused(r) => {
                m.serialize_entry("valid", &false)?;
                m.serialize_entry("reason", r.reason())?;
                if let Refusal::RateLimited { retry_after } = r {
                    m.serialize_entry(
                        "retry_after_ms",
                        &u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                    )?;
                }
            }
        }
        m.end()
    }
}

/// A key from a seed-004-style store, for [`ApiKeys::import_legacy`]: the key was
/// `prefix + random url-safe text`, its first `lookup.len()` characters after the prefix are
/// stored in clear, and the hash is bcrypt of the whole key as it is.
#[derive(Clone)]
pub struct LegacyKey {
    /// The literal prefix of such keys, e.g. `mhu_`.
    pub prefix: String,
    /// The stored lookup prefix (seed 004: `key_prefix`, 8 characters after `mhu_`).
    pub lookup: String,
    /// The key's id in the old store (seed 004: `id`); `None` draws a new one.
    pub key_id: Option<String>,
    /// Owner.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// Scopes (seed 004 stores `"read write"`: split it on whitespace).
    pub scopes: Vec<String>,
    /// `$2a$`, `$2b$` or `$2y$` bcrypt hash of the key.
    pub bcrypt_hash: String,
    /// Creation time; `None` is now.
    pub created_at: Option<Timestamp>,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
}

impl core::fmt::Debug for LegacyKey {
    /// Everything but the bcrypt hash, which is shown as `..`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LegacyKey")
            .field("prefix", &self.prefix)
            .field("lookup", &self.lookup)
            .field("key_id", &self.key_id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("bcrypt_hash", &"..")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The API key manager over one `SQLite` file. `Send + Sync`: share one per process (in an
/// `Arc`); any number of processes may open the same file.
pub struct ApiKeys {
    store: Box<dyn Storage>,
    config: ApiKeysConfig,
    tagger: Tagger,
    cache: Cache,
    failures: Failures,
    gate: Gate,
    /// Keyed 64-bit hashes of every lookup value in storage.
    ids: RwLock<HashSet<u64, BuildHasherDefault<TagHasher>>>,
    id_hasher: RandomState,
    legacy: RwLock<Vec<LegacyFormat>>,
    /// Bumped on every in-memory revocation / expiry change; a verification that raced one
    /// re-reads its row before caching.
    generation: AtomicU64,
    seq: AtomicI64,
    catch_up_pending: AtomicBool,
    epoch: Instant,
    last_tick_ms: AtomicU64,
    /// When (see `clock_ms`) the last successful change check started.
    checked_ms: AtomicU64,
    /// One change check at a time.
    check_lock: Mutex<()>,
    pending_uses: Mutex<Vec<(i64, Timestamp)>>,
}

impl core::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn check_text(what: &str, v: &str, max: usize, spaces: bool) -> Result<(), Error> {
    let ok = !v.is_empty()
        && v.len() <= max
        && !v
            .chars()
            .any(|c| c.is_control() || (!spaces && c.is_whitespace()));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            what: format!(
                "{what}: 1 to {max} bytes, no control characters{}",
                if spaces { "" } else { " or spaces" }
            ),
        })
    }
}

fn prehash(key: &str) -> Zeroizing<String> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(PREHASH_KEY)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(key.as_bytes());
    let digest = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
    Zeroizing::new(crate::encoding::encode(&*digest))
}

fn bcrypt_ok(scheme: Scheme, key: &str, hash: &str) -> bool {
    match scheme {
        Scheme::Prehashed => bcrypt::verify(prehash(key).as_bytes(), hash).unwrap_or(false),
        Scheme::Plain => bcrypt::verify(key.as_bytes(), hash).unwrap_or(false),
    }
}

/// The cost of a bcrypt hash (`$2?$NN$...`), if it has that shape there.
fn bcrypt_cost(h: &str) -> Option<u32> {
    h.get(4..6)?.parse().ok()
}

fn valid_bcrypt_hash(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60
        && matches!(&b[..4], b"$2a$" | b"$2b$" | b"$2y$")
        && b[6] == b'$'
        && bcrypt_cost(h).is_some_and(|c| (4..=31).contains(&c))
        && b[7..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/')
}

impl ApiKeys {
    /// Opens (creating if needed) the key tables in the `SQLite` file at `path`, default
    /// settings.
    ///
    /// # Errors
    /// [`Error::Storage`] when the file cannot be opened or written.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, ApiKeysConfig::default())
    }

    /// Opens with the given settings.
    ///
    /// # Errors
    /// [`Error::Storage`]; [`Error::InvalidArgument`] for a bcrypt cost outside 4..=31.
    pub fn open_with(path: impl AsRef<Path>, config: ApiKeysConfig) -> Result<Self, Error> {
        if !(4..=31).contains(&config.bcrypt_cost) {
            return Err(Error::InvalidArgument {
                what: format!("bcrypt cost {}: must be 4 to 31", config.bcrypt_cost),
            });
        }
        let store = sqlite::SqliteStorage::open(path.as_ref())?;
        Self::with_storage(Box::new(store), config)
    }

    fn with_storage(store: Box<dyn Storage>, config: ApiKeysConfig) -> Result<Self, Error> {
        // Prime the change counter before reading, so nothing written in between is missed.
        store.changed_elsewhere()?;
        let (lookups, seq) = store.all_lookups()?;
        let id_hasher = RandomState::new();
        let mut ids =
            HashSet::with_capacity_and_hasher(lookups.len(), BuildHasherDefault::default());
        ids.extend(lookups.iter().map(|l| id_hasher.hash_one(l.as_str())));
        let legacy = store
            .legacy_formats()?
            .into_iter()
            .map(|(prefix, lookup_len)| LegacyFormat { prefix, lookup_len })
            .collect();
        let keys = ApiKeys {
            tagger: Tagger::new()?,
            cache: Cache::new(config.cache_capacity),
            failures: Failures::new(100_000, config.max_failures_per_key),
            gate: Gate::new(config.bcrypt_concurrency),
            ids: RwLock::new(ids),
            id_hasher,
            legacy: RwLock::new(legacy),
            generation: AtomicU64::new(0),
            seq: AtomicI64::new(seq),
            catch_up_pending: AtomicBool::new(false),
            epoch: Instant::now(),
            last_tick_ms: AtomicU64::new(0),
            checked_ms: AtomicU64::new(0),
            check_lock: Mutex::default(),
            pending_uses: Mutex::default(),
            store,
            config,
        };
        // Everything was just read: as good as a change check.
        keys.checked_ms.store(keys.clock_ms(), Ordering::Release);
        Ok(keys)
    }

    /// The key format in use.
    pub fn format(&self) -> &KeyFormat {
        &self.config.format
    }

    fn new_row(user_id: &str, name: &str, scopes: &[String], env: Environment) -> Row {
        Row {
            row_id: 0,
            key_id: String::new(),
            lookup: String::new(),
            scheme: Scheme::Prehashed,
            hash: String::new(),
            user_id: user_id.to_owned(),
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            environment: env,
            created_at: Timestamp::now(),
            expires_at: None,
            revoked_at: None,
            rotated_to: None,
            rate_limit: None,
            last_used_at: None,
        }
    }

    /// Draws a key id and secret into `row`; returns the key.
    fn fill_secret(&self, row: &mut Row) -> Result<Zeroizing<String>, Error> {
        let key_id = random_base62(KEY_ID_LEN)?;
        let secret = Zeroizing::new(random_base62(SECRET_LEN)?);
        let key = Zeroizing::new(
            self.config
                .format
                .assemble(row.environment, &key_id, &secret),
        );
        row.hash =
            bcrypt::hash(prehash(&key).as_bytes(), self.config.bcrypt_cost).map_err(|e| {
                Error::InvalidArgument {
                    what: format!("bcrypt: {e}"),
                }
            })?;
        row.lookup.clone_from(&key_id);
        row.key_id = key_id;
        Ok(key)
    }

    fn add_id(&self, lookup: &str) {
        let h = self.id_hasher.hash_one(lookup);
        self.ids
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(h);
    }

    fn created(key: &str, row: &Row) -> CreatedKey {
        CreatedKey {
            key: key.to_owned(),
            key_id: row.key_id.clone(),
            user_id: row.user_id.clone(),
            name: row.name.clone(),
            scopes: row.scopes.clone(),
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }

    /// Creates a key. The key is in the answer and nowhere else: only its bcrypt hash is
    /// stored. One bcrypt at the configured cost.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or over-long user id, name or scope;
    /// [`Error::QuotaExceeded`] when the user already has the maximum of valid keys (keys
    /// in a rotation's grace included);
    /// [`Error::Storage`]; [`Error::Randomness`].
    pub fn create(&self, new: &NewKey) -> Result<CreatedKey, Error> {
        check_text("user id", &new.user_id, 256, false)?;
        check_text("name", &new.name, 256, true)?;
        if new.scopes.len() > 64 {
            return Err(Error::InvalidArgument {
                what: "at most 64 scopes".into(),
            });
        }
        for s in &new.scopes {
            check_text("scope", s, 128, false)?;
        }
        let mut row = Self::new_row(&new.user_id, &new.name, &new.scopes, new.environment);
        row.expires_at = new.expires_at;
        row.rate_limit = new.rate_limit;
        for _ in 0..8 {
            let key = self.fill_secret(&mut row)?;
            match self
                .store
                .insert(&row, self.config.max_active_keys, row.created_at)?
            {
                Inserted::Ok(_) => {
                    self.add_id(&row.lookup);
                    return Ok(Self::created(&key, &row));
                }
                Inserted::IdTaken => {}
            }
        }
        Err(Error::Storage {
            message: "could not draw an unused key id".into(),
        })
    }

    /// Revokes a user's key: refused at once in this process, and in other processes using
    /// the same file within [`ApiKeysConfig::change_check_interval`]. Revoking twice is fine.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the user has no key with this id; [`Error::Storage`].
    pub fn revoke(&self, user_id: &str, key_id: &str) -> Result<KeyInfo, Error> {
        let row = self
            .store
            .revoke(user_id, key_id, Timestamp::now())?
            .ok_or(Error::NotFound { what: "api key" })?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(live) = self.cache.by_row(row.row_id) {
            live.revoked.store(true, Ordering::SeqCst);
        }
        Ok(KeyInfo::from_row(row, Timestamp::now()))
    }

    /// Rotates a user's key: a new key with the same name, scopes, rate limit and lifetime
    /// (an old key that expired 30 days after creation gives a new one that expires 30 days
    /// from now). The old key keeps working for `grace`, then is refused as `expired` (or
    /// `revoked` if revoked first). `Duration::ZERO` ends it at once.
    ///
    /// Quota: the old key counts while in its grace, and a rotation may take the user one
    /// key over [`ApiKeysConfig::max_active_keys`], no further. So a user at the limit can
    /// rotate one key with a grace period; the next rotation with a grace waits until that
    /// grace ends (or the old key is revoked). A rotation with `Duration::ZERO` is always
    /// within the quota.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidArgument`] if the key is revoked or was already
    /// rotated; [`Error::QuotaExceeded`] as above; [`Error::Storage`].
    pub fn rotate(
        &self,
        user_id: &str,
        key_id: &str,
        grace: Duration,
    ) -> Result<CreatedKey, Error> {
        let old = self
            .store
            .get_user_key(user_id, key_id)?
            .ok_or(Error::NotFound { what: "api key" })?;
        let mut row = Self::new_row(user_id, &old.name, &old.scopes, old.environment);
        row.rate_limit = old.rate_limit;
        if let Some(exp) = old.expires_at {
            let life = exp
                .unix_millis()
                .saturating_sub(old.created_at.unix_millis());
            row.expires_at = Some(Timestamp::from_unix_millis(
                row.created_at.unix_millis().saturating_add(life.max(0)),
            ));
        }
        let old_ends = row.created_at.plus(grace);
        for _ in 0..8 {
            let key = self.fill_secret(&mut row)?;
            match self
                .store
                .rotate(user_id, key_id, &row, old_ends, self.config.max_active_keys)?
            {
                None => return Err(Error::NotFound { what: "api key" }),
                Some((_, Inserted::IdTaken)) => {}
                Some((old, Inserted::Ok(_))) => {
                    let ends = old.expires_at.map_or(old_ends, |e| e.min(old_ends));
                    self.generation.fetch_add(1, Ordering::SeqCst);
                    if let Some(live) = self.cache.by_row(old.row_id) {
                        live.expires_at.store(ends.unix_millis(), Ordering::SeqCst);
                    }
                    self.add_id(&row.lookup);
                    return Ok(Self::created(&key, &row));
                }
            }
        }
        Err(Error::Storage {
            message: "could not draw an unused key id".into(),
        })
    }

    /// A user's keys, newest first: metadata only, never keys or hashes.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn list(&self, user_id: &str) -> Result<Vec<KeyInfo>, Error> {
        // Best effort: queued last uses, so the listing is current; never a reason to fail.
        let _ = self.flush_within(Duration::from_millis(50));
        let now = Timestamp::now();
        Ok(self
            .store
            .list(user_id)?
            .into_iter()
            .map(|r| KeyInfo::from_row(r, now))
            .collect())
    }

    /// One of a user's keys, metadata only.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Storage`].
    pub fn info(&self, user_id: &str, key_id: &str) -> Result<KeyInfo, Error> {
        // Best effort: queued last uses, so the listing is current; never a reason to fail.
        let _ = self.flush_within(Duration::from_millis(50));
        let row = self
            .store
            .get_user_key(user_id, key_id)?
            .ok_or(Error::NotFound { what: "api key" })?;
        Ok(KeyInfo::from_row(row, Timestamp::now()))
    }

    /// Imports a key from a seed-004-style store; it keeps validating unchanged (plain
    /// bcrypt of the key, as the old store made it). Not counted against the quota. One
    /// prefix may have several lookup lengths.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a hash that is not `$2a$`/`$2b$`/`$2y$` bcrypt or has a
    /// cost above 16, an unusable prefix or lookup, a lookup that 16 imported keys already
    /// share (a wrong key costs one bcrypt per key under its lookup), or a key id already in
    /// use; [`Error::Storage`].
    pub fn import_legacy(&self, key: &LegacyKey) -> Result<KeyInfo, Error> {
        check_text("user id", &key.user_id, 256, false)?;
        check_text("name", &key.name, 256, true)?;
        for s in &key.scopes {
            check_text("scope", s, 128, false)?;
        }
        check_text("legacy prefix", &key.prefix, 32, false)?;
        let lookup_ok = (1..=64).contains(&key.lookup.len())
            && key
                .lookup
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !lookup_ok {
            return Err(Error::InvalidArgument {
                what: "legacy lookup: 1 to 64 url-safe base64 characters".into(),
            });
        }
        if !valid_bcrypt_hash(&key.bcrypt_hash) {
            return Err(Error::InvalidArgument {
                what: "legacy hash: not a $2a$/$2b$/$2y$ bcrypt hash".into(),
            });
        }
        if bcrypt_cost(&key.bcrypt_hash).is_some_and(|c| c > MAX_IMPORTED_COST) {
            return Err(Error::InvalidArgument {
                what: format!(
                    "legacy hash: bcrypt cost above {MAX_IMPORTED_COST}, the most accepted"
                ),
            });
        }
        let key_id = match &key.key_id {
            Some(id) => {
                check_text("key id", id, 128, false)?;
                id.clone()
            }
            None => random_base62(KEY_ID_LEN)?,
        };
        let mut row = Self::new_row(&key.user_id, &key.name, &key.scopes, Environment::Live);
        row.key_id = key_id;
        row.lookup.clone_from(&key.lookup);
        row.scheme = Scheme::Plain;
        row.hash.clone_from(&key.bcrypt_hash);
        row.created_at = key.created_at.unwrap_or(row.created_at);
        row.expires_at = key.expires_at;
        self.store
            .add_legacy_format(&key.prefix, key.lookup.len())?;
        {
            let mut legacy = self.legacy.write().unwrap_or_else(PoisonError::into_inner);
            let f = LegacyFormat {
                prefix: key.prefix.clone(),
                lookup_len: key.lookup.len(),
            };
            if !legacy.contains(&f) {
                legacy.push(f);
            }
        }
        match self.store.insert(&row, None, Timestamp::now())? {
            Inserted::Ok(id) => {
                row.row_id = id;
                self.add_id(&row.lookup);
                Ok(KeyInfo::from_row(row, Timestamp::now()))
            }
            Inserted::IdTaken => Err(Error::InvalidArgument {
                what: format!("key id {} is already in use", row.key_id),
            }),
        }
    }

    /// Verifies a presented key. Never logs or keeps the key; cached keys are checked
    /// against revocation and expiry on every call, and never wait for a write.
    ///
    /// # Errors
    /// [`Error::Storage`] when the database is needed (a key not in the cache) and fails;
    /// when no change check could read the store for longer than
    /// [`ApiKeysConfig::change_check_interval`] plus one second (cached keys then fail
    /// closed rather than outlive a revocation made elsewhere); or for a key whose stored
    /// row cannot be read (the message names the row). Every refusal is an
    /// `Ok(Verification::Refused(..))`.
    pub fn verify(&self, key: &str) -> Result<Verification, Error> {
        if let Some(p) = self.config.format.parse(key) {
            let now = self.tick(self.check_interval_ms());
            // Tag and checksum are fixed by the format and `live`/`test` is checked against
            // the row, so id and secret identify the key; 55 bytes fit one SHA-256 block.
            // (Legacy keys are tagged whole; they contain `_`, never in base62: no overlap.)
            let tag = self.tagger.tag(p.id_and_secret);
            if let Some(live) = self.cache.get(&tag) {
                if live.environment != p.environment {
                    return Ok(Verification::Refused(Refusal::Unknown));
                }
                return self.answer_cached(&live, now);
            }
            return self.verify_slow(
                key,
                tag,
                &[p.key_id],
                Scheme::Prehashed,
                Some(p.environment),
            );
        }
        self.verify_legacy(key)
    }

    /// The lookup values `key` has under every registered legacy format (several formats
    /// may share a prefix).
    fn legacy_lookups<'k>(&self, key: &'k str) -> Vec<&'k str> {
        let legacy = self.legacy.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<&str> = Vec::new();
        for l in legacy.iter().filter_map(|f| f.lookup(key)) {
            if !out.contains(&l) {
                out.push(l);
            }
        }
        out
    }

    fn verify_legacy(&self, key: &str) -> Result<Verification, Error> {
        let mut lookups = self.legacy_lookups(key);
        if lookups.is_empty() {
            if key.len() > 200 || key.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Ok(Verification::Refused(Refusal::Malformed));
            }
            // Perhaps a format another process registered since the last change check: the
            // same bound as a revocation made elsewhere, and no extra read per malformed key.
            self.tick(self.check_interval_ms());
            lookups = self.legacy_lookups(key);
            if lookups.is_empty() {
                return Ok(Verification::Refused(Refusal::Malformed));
            }
        }
        let now = self.tick(self.check_interval_ms());
        let tag = self.tagger.tag(key);
        if let Some(live) = self.cache.get(&tag) {
            return self.answer_cached(&live, now);
        }
        self.verify_slow(key, tag, &lookups, Scheme::Plain, None)
    }

    /// A cached key's answer, if the change check is recent enough to trust it.
    #[inline]
    fn answer_cached(&self, live: &Live, now: u64) -> Result<Verification, Error> {
        self.fresh_enough(now)?;
        if live.unreadable.load(Ordering::Acquire) {
            return Err(Error::Storage {
                message: format!(
                    "api_keys row {} (key id {}) cannot be read; refused until it is repaired",
                    live.row_id, live.key_id
                ),
            });
        }
        Ok(self.check_live(live))
    }

    #[inline]
    fn check_live(&self, live: &Live) -> Verification {
        if live.revoked.load(Ordering::Acquire) {
            return Verification::Refused(Refusal::Revoked);
        }
        let now = Timestamp::now();
        let expires = live.expires_at.load(Ordering::Acquire);
        if expires <= now.unix_millis() {
            return Verification::Refused(Refusal::Expired);
        }
        if let Some(bucket) = &live.bucket {
            let taken = bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(Instant::now());
            if let Err(retry_after) = taken {
                return Verification::Refused(Refusal::RateLimited { retry_after });
            }
        }
        let queued = live.last_use_queued.load(Ordering::Relaxed);
        let interval = i64::try_from(self.config.last_use_interval.as_millis()).unwrap_or(i64::MAX);
        if now.unix_millis().saturating_sub(queued) >= interval
            && live
                .last_use_queued
                .compare_exchange(
                    queued,
                    now.unix_millis(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.pending_uses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((live.row_id, now));
        }
        Verification::Valid(Validated {
            key_id: live.key_id.clone(),
            user_id: live.user_id.clone(),
            scopes: live.scopes.clone(),
            expires_at: (expires != NEVER).then_some(Timestamp::from_unix_millis(expires)),
            environment: live.environment,
        })
    }

    fn known_lookup(&self, lookup: &str) -> bool {
        let h = self.id_hasher.hash_one(lookup);
        self.ids
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&h)
    }

    /// Not in the cache: read the rows under `lookups` and bcrypt. A keyseal key has one
    /// lookup and one row; a legacy key may have one lookup per registered format and up to
    /// `store::MAX_LEGACY_PER_LOOKUP` rows under each.
    fn verify_slow(
        &self,
        key: &str,
        tag: Tag,
        lookups: &[&str],
        scheme: Scheme,
        env: Option<Environment>,
    ) -> Result<Verification, Error> {
        const UNKNOWN: Verification = Verification::Refused(Refusal::Unknown);
        let mut known: Vec<&str> = lookups
            .iter()
            .copied()
            .filter(|l| self.known_lookup(l))
            .collect();
        if known.is_empty() {
            // Perhaps made by another process a moment ago: look now (at most once a
            // millisecond, so a flood of unknown ids costs at most 1000 cheap PRAGMAs/s).
            self.tick(1);
            known = lookups
                .iter()
                .copied()
                .filter(|l| self.known_lookup(l))
                .collect();
            if known.is_empty() {
                return Ok(UNKNOWN);
            }
        }
        let start = Instant::now();
        if self.failures.known_bad(&tag, start) {
            return Ok(UNKNOWN);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let now = Timestamp::now();
        let mut rows = Vec::new();
        for l in known {
            rows.extend(self.store.find(l)?);
        }
        let mut refusal = None;
        let mut tried = None;
        for row in rows {
            if row.scheme != scheme || (scheme == Scheme::Prehashed && row.key_id != row.lookup) {
                continue;
            }
            if env.is_some_and(|e| e != row.environment) {
                // The right id and maybe secret under the other marker: the tag is shared
                // with the real key, so this must not be remembered as a failure.
                return Ok(UNKNOWN);
            }
            if row.revoked_at.is_some() {
                refusal.get_or_insert(Refusal::Revoked);
                continue;
            }
            if row.expires_at.is_some_and(|e| e <= now) {
                refusal.get_or_insert(Refusal::Expired);
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
            let Some(permit) = self.gate.enter(self.config.bcrypt_wait) else {
                return Ok(Verification::Refused(Refusal::RateLimited {
                    retry_after: Duration::from_secs(1),
                }));
            };
            let ok = bcrypt_ok(row.scheme, key, &row.hash);
            drop(permit);
            if ok {
                return Ok(self.admit(tag, row, generation));
            }
            tried = Some(row.row_id);
        }
        if tried.is_some() {
            // Only a bcrypt that said no is remembered: nothing else can become valid later
            // by itself, but a legacy key may yet be imported.
            self.failures.record(tag, tried, Instant::now());
        }
        Ok(match (tried, refusal) {
            // A wrong secret: say "unknown", whatever other rows share a legacy prefix.
            (Some(_), _) | (None, None) => UNKNOWN,
            (None, Some(r)) => Verification::Refused(r),
        })
    }

    /// Caches a key that passed bcrypt and answers for it. Every cache entry of a row shares
    /// one [`Live`] (legacy keys that differ past bcrypt's 72 bytes are one key) and the
    /// row's one token bucket.
    ///
    /// Revocations and rotations bump `generation` *before* they look for a cached entry to
    /// flip, so re-reading the row whenever the generation moved, both before and after the
    /// entry is inserted, leaves no window in which a stale entry could stay valid.
    fn admit(&self, tag: Tag, row: Row, mut seen: u64) -> Verification {
        let live = self.cache.entry_for(Arc::new(Live {
            row_id: row.row_id,
            key_id: row.key_id.into(),
            user_id: row.user_id.into(),
            scopes: row.scopes.into(),
            environment: row.environment,
            expires_at: AtomicI64::new(row.expires_at.map_or(NEVER, Timestamp::unix_millis)),
            revoked: AtomicBool::new(row.revoked_at.is_some()),
            unreadable: AtomicBool::new(false),
            last_use_queued: AtomicI64::new(row.last_used_at.map_or(0, Timestamp::unix_millis)),
            bucket: row.rate_limit.map(|l| self.cache.bucket(row.row_id, l)),
        }));
        let mut inserted = false;
        loop {
            let current = self.generation.load(Ordering::SeqCst);
            if current != seen {
                seen = current;
                match self.store.get(live.row_id) {
                    Ok(Some(fresh)) => {
                        live.revoked
                            .store(fresh.revoked_at.is_some(), Ordering::SeqCst);
                        live.expires_at.store(
                            fresh.expires_at.map_or(NEVER, Timestamp::unix_millis),
                            Ordering::SeqCst,
                        );
                    }
                    _ => live.revoked.store(true, Ordering::SeqCst),
                }
                continue;
            }
            if inserted {
                break;
            }
            self.cache.insert(tag, live.clone());
            inserted = true;
        }
        self.check_live(&live)
    }
}

impl Drop for ApiKeys {
    fn drop(&mut self) {
        self.flush_on_drop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prehash_covers_the_whole_key() {
        let a = "ks_live_".to_string() + &"a".repeat(100);
        let mut b = a.clone();
        b.push('b');
        assert_ne!(*prehash(&a), *prehash(&b));
        assert_eq!(prehash(&a).len(), 44);
    }

    #[test]
    fn bcrypt_hash_shapes() {
        let h = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";
        assert!(valid_bcrypt_hash(h));
        assert!(valid_bcrypt_hash(&h.replace("$2b$", "$2y$")));
        assert!(!valid_bcrypt_hash(&h.replace("$2b$", "$2x$")));
        assert!(!valid_bcrypt_hash(&h[..59]));
        assert!(!valid_bcrypt_hash(
            "$2b$03$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC"
        ));
    }

    fn _assert_send_sync() {
        fn f<T: Send + Sync>() {}
        f::<ApiKeys>();
    }
}
