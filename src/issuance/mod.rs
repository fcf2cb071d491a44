//! API key issuance: create, verify (with scope requirements), list, update, disable /
//! enable, delete, revoke and rotate API keys, bcrypt-hashed at rest; every operation also
//! async ([`ApiKeysFuture`]).
//!
//! [`ApiKeys`] keeps keys in a `SQLite` file (tables `api_keys`, `api_key_meta` and
//! `api_key_tombstones`; the key store's tables in the same file are never touched).
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
//! column). The fixed HMAC key separates this pre-hash from the plain SHA-256 of
//! [`crate::api_key_hash`], so a stored SHA-256 of a key can never be fed to bcrypt in its place.
//! Keys imported from older stores ([`ApiKeys::import_legacy`]) keep their plain bcrypt of the key as it is
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
//! Other processes' writes are seen through the store's change feed, read by a thread of
//! each manager's own every [`ApiKeysConfig::change_check_interval`] (default 250 ms) and,
//! on PostgreSQL, as soon as a commit notifies it; on `SQLite` the read is a
//! `PRAGMA data_version` on a read connection of its own that never waits for a write (in WAL
//! mode, not even for another process's write lock or this process's own busy connection).
//! Verifications never wait for it. A cached key is trusted while the feed (or a re-read of
//! its own row) is at most [`ApiKeysConfig::max_staleness`] old (default 30 s); past it the
//! row is read again (no bcrypt), and if that fails [`StalePolicy`] decides (by default the
//! key is refused with [`Error::Storage`]). A row that cannot be read (say a hand-edited
//! `expires_at`) does not stop the others being seen; its key fails closed with an error
//! naming the row.
//!
//! With a [`VerifierKey`] ([`ApiKeysConfig::verifier_key`]) the bcrypt of a key whose row
//! carries a tag of that key is replaced by one HMAC, compared in constant time, for a right
//! key and a wrong one; rows without a usable tag are checked with bcrypt and then tagged.
//! See [`VerifierKey`] for why the tags are safe if the database leaks.
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
//! - A user holds at most [`ApiKeysConfig::max_active_keys`] valid keys (default 5), keys in a rotation's grace included; a rotation may go one over (see
//!   [`ApiKeys::rotate`]). Imports do not count.
//!
//! # Storage
//! Table `api_keys` (one row per key: public `key_id`, indexed `lookup`, `scheme`, bcrypt
//! `hash`, owner, name, space-separated scopes, `live`/`test`, times in Unix milliseconds,
//! `revoked_at`, `rotated_to`, rate limit, `last_used_at`, `enabled`, JSON `metadata`, and a
//! store-wide change sequence `seq`), `api_key_tombstones` (row id, lookup and `seq` of each
//! deleted key, so other processes drop it) and `api_key_meta` (the legacy key formats that
//! imports registered, and `schema_version`: files of an older version are upgraded in place
//! on open, in one transaction; a newer version is refused). Last use is written in batches,
//! at most once per [`ApiKeysConfig::last_use_interval`] per key.
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
//!     refused => panic!("refused: {:?}", refused.refusal()),
//! }
//! let next = keys.rotate("user-42", &made.key_id, Duration::from_secs(3600))?;
//! assert!(keys.verify(&made.key)?.is_valid()); // still, for an hour
//! keys.revoke("user-42", &next.key_id)?;
//! assert_eq!(keys.verify(&next.key)?.refusal().unwrap().reason(), "revoked");
//! # drop(keys); let _ = std::fs::remove_dir_all(&dir);
//! # Ok::<(), keyseal::Error>(())
//! ```

pub mod backend;
mod bcrypt_limiter;
mod cache;
mod changes;
mod config;
mod failures;
mod fast_verifier;
mod feed_thread;
mod format;
mod future;
mod import;
mod known_ids;
mod last_use;
mod legacy;
mod lifecycle;
mod listing;
mod prehash;
mod rate_limit;
mod rules;
mod scopes;
mod status;
mod time;
mod types;
mod update;
mod upgrade;
mod verify;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use backend::{Backend, Inserted, Row, Scheme};
use bcrypt_limiter::BcryptLimiter;
use cache::{Cache, CacheKeyer};
use failures::FailureCache;
use format::{random_base62, KEY_ID_LEN, SECRET_LEN};
use known_ids::KnownIds;
use legacy::LegacyFormats;
use prehash::hash_new_key;

pub use config::{ApiKeysConfig, StalePolicy};
pub use fast_verifier::VerifierKey;
/// For `keyseal::testing` (tests, benchmarks, fuzzing), which re-exports it; not part of the
/// stable API.
#[doc(hidden)]
pub use format::with_checksum;
pub use format::{Environment, KeyFormat};
pub use future::ApiKeysFuture;
pub use import::{ImportOptions, ImportReport, ImportedKey};
pub use legacy::LegacyKey;
pub use listing::{KeyPage, ListCursor, ListFilter};
pub use rate_limit::RateLimit;
pub use rules::MAX_METADATA_BYTES;
pub use scopes::Requirement;
pub use status::{ApiKeysStatus, KeyCounts};
pub use time::Timestamp;
pub use types::{
    CreatedKey, ImportedFrom, KeyInfo, KeyStatus, NewKey, Refusal, Validated, Verification,
};
pub use update::KeyUpdate;

use crate::{Error, StorageKind};

/// How many times a new key id is drawn before giving up (a collision among 62^12 ids is
/// already unlikely once).
const KEY_ID_DRAWS: usize = 8;

/// The API key manager over one `SQLite` file. `Send + Sync`: share one per process (in an
/// `Arc`); any number of processes may open the same file.
pub struct ApiKeys {
    core: Arc<Core>,
    /// Stops the change-feed thread when the manager is dropped.
    _feed: feed_thread::FeedThread,
}

/// The state of an [`ApiKeys`], shared with its change-feed thread (which holds it weakly).
/// Not nameable outside the crate; [`ApiKeys`] derefs to it so every method reads its
/// fields directly.
pub struct Core {
    backend: Box<dyn Backend>,
    config: ApiKeysConfig,
    keyer: CacheKeyer,
    cache: Cache,
    failures: FailureCache,
    bcrypt_limiter: BcryptLimiter,
    known_ids: KnownIds,
    legacy: LegacyFormats,
    /// Bumped on every in-memory revocation / expiry change; a verification that raced one
    /// re-reads its row before caching.
    generation: AtomicU64,
    /// The change feed's position: changes up to it are applied.
    seq: AtomicI64,
    catch_up_pending: AtomicBool,
    epoch: Instant,
    last_check_ms: AtomicU64,
    /// When (see `clock_ms`) the last successful change check started.
    checked_ms: AtomicU64,
    /// One change check at a time.
    check_lock: Mutex<()>,
    /// When the last look for a new key (an unknown id) was claimed.
    unknown_check_ms: AtomicU64,
    /// The store's epoch at the last feed read (0: none).
    last_epoch: AtomicU64,
    /// When the feed became unreadable (0: it is readable).
    feed_down_since: AtomicU64,
    /// When the last repeated warning was said.
    warned_ms: AtomicU64,
    /// How many times the store was found restarted, replaced or restored.
    epoch_changes: AtomicU64,
    /// No re-read of a too-old cached key before this (one failed: the store is down).
    reread_after_ms: AtomicU64,
    pending_uses: Mutex<Vec<(i64, Timestamp)>>,
    /// Fast-verifier tags to write (row id, tag), written with the last uses.
    pending_tags: Mutex<Vec<(i64, String)>>,
    /// bcrypt verifications run by `verify` (for tests and benchmarks).
    bcrypt_runs: AtomicU64,
    /// One last-use flush at a time.
    flush_lock: Mutex<()>,
}

#[doc(hidden)]
impl std::ops::Deref for ApiKeys {
    type Target = Core;
    #[inline]
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl core::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ApiKeys {
    /// Opens (creating if needed) the key tables in the `SQLite` file at `path`, default
    /// settings. A `path` whose text starts with `postgres://` or `postgresql://` is a
    /// PostgreSQL URL instead (feature `postgres`; see the README's PostgreSQL section).
    ///
    /// # Errors
    /// [`Error::Storage`] when the file cannot be opened or written, or the PostgreSQL server
    /// cannot be reached, refuses the login, or its schema cannot be used (kind `schema`);
    /// [`Error::InvalidArgument`] for a PostgreSQL URL that cannot be read, or in a build
    /// without the `postgres` feature.
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
        let backend = open_backend(path.as_ref(), config.busy_timeout)?;
        Self::with_backend(backend, config)
    }

    /// The backend, for crate-internal tools that move whole stores (copying).
    pub(crate) fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    pub(crate) fn with_backend(
        backend: Box<dyn Backend>,
        config: ApiKeysConfig,
    ) -> Result<Self, Error> {
        // Prime the change counter before reading, so nothing written in between is missed.
        backend.changed_elsewhere()?;
        let (lookups, seq) = backend.all_lookups()?;
        let legacy = LegacyFormats::new();
        legacy.merge(backend.legacy_formats()?);
        let core = Core {
            keyer: CacheKeyer::new()?,
            cache: Cache::new(config.cache_capacity),
            failures: FailureCache::new(100_000, config.max_failures_per_key),
            bcrypt_limiter: BcryptLimiter::new(config.bcrypt_concurrency),
            known_ids: KnownIds::new(lookups.iter().map(String::as_str)),
            legacy,
            generation: AtomicU64::new(0),
            seq: AtomicI64::new(seq),
            catch_up_pending: AtomicBool::new(false),
            epoch: Instant::now(),
            last_check_ms: AtomicU64::new(0),
            checked_ms: AtomicU64::new(0),
            check_lock: Mutex::default(),
            unknown_check_ms: AtomicU64::new(0),
            last_epoch: AtomicU64::new(backend.epoch().map_or(0, |e| e | 1)),
            feed_down_since: AtomicU64::new(0),
            warned_ms: AtomicU64::new(0),
            epoch_changes: AtomicU64::new(0),
            reread_after_ms: AtomicU64::new(0),
            pending_uses: Mutex::default(),
            pending_tags: Mutex::default(),
            bcrypt_runs: AtomicU64::new(0),
            flush_lock: Mutex::default(),
            backend,
            config,
        };
        // Everything was just read: as good as a change check.
        core.checked_ms.store(core.clock_ms(), Ordering::Release);
        let core = Arc::new(core);
        let feed = feed_thread::FeedThread::start(&core)?;
        Ok(ApiKeys { core, _feed: feed })
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
            enabled: true,
            metadata: serde_json::Map::new(),
            verifier_tag: None,
            source: None,
            source_id: None,
        }
    }

    /// The one key-id draw loop: draws a key id and secret into `row` and hashes the key,
    /// then lets `store` write it; draws again while the id is taken.
    fn draw_and_store<T>(
        &self,
        row: &mut Row,
        mut store: impl FnMut(&Row) -> Result<Option<(Inserted, T)>, Error>,
    ) -> Result<Option<(CreatedKey, T)>, Error> {
        for _ in 0..KEY_ID_DRAWS {
            let key_id = random_base62(KEY_ID_LEN)?;
            let secret = Zeroizing::new(random_base62(SECRET_LEN)?);
            let key = Zeroizing::new(self.config.format.assemble(
                row.environment,
                &key_id,
                &secret,
            ));
            row.hash = hash_new_key(&key, self.config.bcrypt_cost)?;
            // Tagged at creation: no process holding the verifier key ever bcrypts it.
            row.verifier_tag = self
                .config
                .verifier
                .as_ref()
                .map(|v| v.tag(row.scheme, &key_id, &key));
            row.lookup.clone_from(&key_id);
            row.key_id = key_id;
            match store(row)? {
                None => return Ok(None),
                Some((Inserted::IdTaken, _)) => {}
                Some((Inserted::Ok(_), extra)) => {
                    self.known_ids.extend([row.lookup.as_str()]);
                    return Ok(Some((CreatedKey::new(&key, row), extra)));
                }
            }
        }
        Err(Error::storage(
            StorageKind::Other,
            "could not draw an unused key id",
        ))
    }

    /// Creates a key. The key is in the answer and nowhere else: only its bcrypt hash is
    /// stored. One bcrypt at the configured cost.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or over-long user id (more than 1 024 bytes,
    /// or holding NUL), name or scope, or more than 64 scopes, or metadata that is not a
    /// JSON object of at most [`MAX_METADATA_BYTES`];
    /// [`Error::QuotaExceeded`] when the user already has the maximum of valid keys (keys
    /// in a rotation's grace included);
    /// [`Error::Storage`]; [`Error::Randomness`]. On PostgreSQL, [`Error::Storage`] of kind
    /// [`StorageKind::OutcomeUnknown`] when the connection was lost after the commit was
    /// sent: the key may have been stored. It was never shown to anyone: if stored, it is
    /// listed by [`ApiKeys::list`] under a key id the caller does not know, and can be
    /// revoked; creating another key is safe.
    pub fn create(&self, new: &NewKey) -> Result<CreatedKey, Error> {
        rules::check_key_fields(&new.user_id, &new.name, &new.scopes)?;
        let metadata = new
            .metadata
            .clone()
            .map(rules::check_metadata)
            .transpose()?;
        let mut row = Self::new_row(&new.user_id, &new.name, &new.scopes, new.environment);
        row.expires_at = new.expires_at;
        row.rate_limit = new.rate_limit;
        row.metadata = metadata.unwrap_or_default();
        let quota = self.config.max_active_keys;
        let now = row.created_at;
        let created = self.draw_and_store(&mut row, |row| {
            let decide = |ctx: &_| rules::may_insert(row, ctx, quota, now);
            Ok(Some((self.backend.insert(row, &decide)?, ())))
        })?;
        // Only a rotation's old key can be gone; an insert always answers.
        created
            .map(|(key, ())| key)
            .ok_or_else(|| Error::storage(StorageKind::Other, "the key was not stored"))
    }

    /// Revokes a user's key: refused at once in this process, and in other processes using
    /// the same file within [`ApiKeysConfig::change_check_interval`]. Revoking twice is fine.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the user has no key with this id; [`Error::Storage`].
    pub fn revoke(&self, user_id: &str, key_id: &str) -> Result<KeyInfo, Error> {
        let row = self
            .backend
            .revoke(user_id, key_id, Timestamp::now())?
            .ok_or(Error::NotFound { what: "api key" })?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(cached) = self.cache.by_row(row.row_id) {
            cached.revoked.store(true, Ordering::SeqCst);
        }
        Ok(KeyInfo::from_row(row, Timestamp::now()))
    }

    /// Rotates a user's key: a new key with the same name, scopes, rate limit, metadata and lifetime
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
    /// [`Error::NotFound`]; [`Error::InvalidArgument`] if the key is revoked, expired,
    /// disabled or was already rotated; [`Error::QuotaExceeded`] as above; [`Error::Storage`].
    pub fn rotate(
        &self,
        user_id: &str,
        key_id: &str,
        grace: Duration,
    ) -> Result<CreatedKey, Error> {
        let old = self
            .backend
            .get_user_key(user_id, key_id)?
            .ok_or(Error::NotFound { what: "api key" })?;
        let mut row = Self::new_row(user_id, &old.name, &old.scopes, old.environment);
        row.rate_limit = old.rate_limit;
        row.metadata.clone_from(&old.metadata);
        let now = row.created_at;
        row.expires_at = rules::successor_expiry(&old, now);
        let grace_end = now.plus(grace);
        let quota = self.config.max_active_keys;
        let decide = |old: &Row, user_rows: &[Row]| {
            rules::rotation_end(old, user_rows, grace_end, quota, now)
        };
        let rotated = self.draw_and_store(&mut row, |row| {
            Ok(self
                .backend
                .rotate(user_id, key_id, row, &decide)?
                .map(|(old, inserted)| (inserted, old)))
        })?;
        let (created, old) = rotated.ok_or(Error::NotFound { what: "api key" })?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(cached) = self.cache.by_row(old.row_id) {
            let ends = old.expires_at.map_or(rules::NEVER, Timestamp::unix_millis);
            cached.expires_at.store(ends, Ordering::SeqCst);
        }
        Ok(created)
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
            .backend
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
            .backend
            .get_user_key(user_id, key_id)?
            .ok_or(Error::NotFound { what: "api key" })?;
        Ok(KeyInfo::from_row(row, Timestamp::now()))
    }

    /// Imports a key from an older store; it keeps validating unchanged (plain bcrypt of the
    /// key, as the old store made it). Not counted against the quota. One prefix may have
    /// several lookup lengths.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for the same user id, name and scope limits as
    /// [`ApiKeys::create`]; a hash that is not `$2a$`/`$2b$`/`$2y$` bcrypt or has a cost above
    /// 16, an unusable prefix or lookup, a lookup that 16 imported keys already share (a
    /// wrong key costs one bcrypt per key under its lookup), or a key id already in use;
    /// [`Error::Storage`].
    pub fn import_legacy(&self, key: &LegacyKey) -> Result<KeyInfo, Error> {
        rules::check_key_fields(&key.user_id, &key.name, &key.scopes)?;
        key.check()?;
        let key_id = match &key.key_id {
            Some(id) => id.clone(),
            None => random_base62(KEY_ID_LEN)?,
        };
        let mut row = Self::new_row(&key.user_id, &key.name, &key.scopes, Environment::Live);
        row.key_id = key_id;
        row.lookup.clone_from(&key.lookup);
        row.scheme = Scheme::Plain;
        row.hash.clone_from(&key.bcrypt_hash);
        row.created_at = key.created_at.unwrap_or(row.created_at);
        row.expires_at = key.expires_at;
        self.backend
            .add_legacy_format(&key.prefix, key.lookup.len())?;
        self.legacy.merge([(key.prefix.clone(), key.lookup.len())]);
        let now = Timestamp::now();
        let decide = |ctx: &_| rules::may_insert(&row, ctx, None, now);
        match self.backend.insert(&row, &decide)? {
            Inserted::Ok(id) => {
                row.row_id = id;
                self.known_ids.extend([row.lookup.as_str()]);
                Ok(KeyInfo::from_row(row, Timestamp::now()))
            }
            Inserted::IdTaken => Err(Error::InvalidArgument {
                what: format!("key id {} is already in use", row.key_id),
            }),
        }
    }
}

impl Drop for ApiKeys {
    fn drop(&mut self) {
        self.flush_on_drop();
    }
}

/// The backend `location` selects: PostgreSQL for a `postgres://` / `postgresql://` URL,
/// else `SQLite`.
pub(crate) fn open_backend(
    location: &Path,
    busy_timeout: Duration,
) -> Result<Box<dyn Backend>, Error> {
    if crate::db_path::is_postgres(location) {
        #[cfg(feature = "postgres")]
        {
            let url = location.to_str().unwrap_or_default();
            return Ok(Box::new(crate::postgres::api_keys::PgApiKeys::open(
                url,
                busy_timeout,
            )?));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(Error::postgres_not_built());
    }
    Ok(Box::new(crate::sqlite::api_keys::SqliteBackend::open(
        location,
        busy_timeout,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn _assert_send_sync() {
        fn f<T: Send + Sync>() {}
        f::<ApiKeys>();
    }
}
