//! The admin operations on a key after its creation: update, disable / enable, delete.
//! Each is one backend write that bumps the change feed, so other processes' caches see it
//! as they see a revocation.

use std::sync::atomic::Ordering;

use super::backend::Row;
use super::rules::{self, NEVER};
use super::time::Timestamp;
use super::types::KeyInfo;
use super::update::KeyUpdate;
use super::ApiKeys;
use crate::user_id::check_user_id;
use crate::Error;

impl ApiKeys {
    /// Changes a user's key in place: any of name, scopes (the whole set), expiry (set or
    /// cleared), rate limit (set or cleared), metadata, enabled. One write; this process
    /// answers with the change at once, other processes within
    /// [`ApiKeysConfig::change_check_interval`](super::ApiKeysConfig::change_check_interval),
    /// as for a revocation. The key itself and its hash never change.
    ///
    /// ```
    /// use keyseal::{ApiKeys, ApiKeysConfig, KeyUpdate, NewKey, RateLimit};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let keys = ApiKeys::open_with(dir.path().join("keys.db"), ApiKeysConfig::default().bcrypt_cost(4))?;
    /// let made = keys.create(&NewKey::new("user-42", "CI").scope("read"))?;
    /// let info = keys.update(
    ///     "user-42",
    ///     &made.key_id,
    ///     &KeyUpdate::new()
    ///         .scopes(["read", "deploy"])
    ///         .rate_limit(Some(RateLimit::per_minute(100)))
    ///         .metadata(serde_json::json!({ "ticket": "OPS-1" })),
    /// )?;
    /// assert_eq!(info.scopes, ["read", "deploy"]);
    /// assert_eq!(&*keys.verify(&made.key)?.validated().unwrap().scopes, ["read", "deploy"]);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    ///
    /// # Errors
    /// Nothing is changed on any error.
    /// [`Error::NotFound`] when the user has no key with this id (another user's key, or a
    /// deleted one); [`Error::InvalidArgument`] for an update that changes nothing, a bad
    /// user id, name or scope (the limits of [`ApiKeys::create`]), metadata that is not a
    /// JSON object of at most [`MAX_METADATA_BYTES`](super::MAX_METADATA_BYTES) serialized,
    /// any change to a revoked key (enabling it included), or a new expiry for a rotated key
    /// (its expiry is the end of its grace period); [`Error::QuotaExceeded`] when a new
    /// expiry brings an expired key back while the user holds the most alive keys;
    /// [`Error::Storage`].
    pub fn update(
        &self,
        user_id: &str,
        key_id: &str,
        update: &KeyUpdate,
    ) -> Result<KeyInfo, Error> {
        check_user_id(user_id)?;
        update.check()?;
        let quota = self.config.max_active_keys;
        let now = Timestamp::now();
        let decide =
            |old: &Row, user_rows: &[Row]| rules::updated_row(old, user_rows, update, quota, now);
        let row = self
            .backend
            .update(user_id, key_id, &decide)?
            .ok_or(Error::NotFound { what: "api key" })?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(cached) = self.cache.by_row(row.row_id) {
            cached.apply_row_state(
                row.revoked_at.is_some(),
                !row.enabled,
                row.expires_at.map_or(NEVER, Timestamp::unix_millis),
            );
        }
        Ok(KeyInfo::from_row(row, Timestamp::now()))
    }

    /// Disables a user's key: refused as `disabled` (to a holder of the right secret; a wrong
    /// one stays `unknown`) until [`ApiKeys::enable`]. Seen by other processes as a
    /// revocation is. Disabling twice is fine. A disabled key still counts against the
    /// quota, since it can come back.
    ///
    /// ```
    /// use keyseal::{ApiKeys, ApiKeysConfig, NewKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let keys = ApiKeys::open_with(dir.path().join("keys.db"), ApiKeysConfig::default().bcrypt_cost(4))?;
    /// let made = keys.create(&NewKey::new("user-42", "CI"))?;
    /// keys.disable("user-42", &made.key_id)?;
    /// assert_eq!(keys.verify(&made.key)?.refusal().unwrap().reason(), "disabled");
    /// keys.enable("user-42", &made.key_id)?;
    /// assert!(keys.verify(&made.key)?.is_valid());
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`ApiKeys::update`]: [`Error::NotFound`]; [`Error::InvalidArgument`] for a
    /// revoked key or a bad user id; [`Error::Storage`].
    pub fn disable(&self, user_id: &str, key_id: &str) -> Result<KeyInfo, Error> {
        self.update(user_id, key_id, &KeyUpdate::new().enabled(false))
    }

    /// Enables a disabled key again. Enabling an enabled key is fine.
    ///
    /// ```
    /// use keyseal::{ApiKeys, ApiKeysConfig, KeyStatus, NewKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let keys = ApiKeys::open_with(dir.path().join("keys.db"), ApiKeysConfig::default().bcrypt_cost(4))?;
    /// let made = keys.create(&NewKey::new("user-42", "CI"))?;
    /// assert_eq!(keys.disable("user-42", &made.key_id)?.status, KeyStatus::Disabled);
    /// assert_eq!(keys.enable("user-42", &made.key_id)?.status, KeyStatus::Active);
    /// keys.revoke("user-42", &made.key_id)?;
    /// assert!(keys.enable("user-42", &made.key_id).is_err()); // a revocation is final
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`ApiKeys::update`]: [`Error::NotFound`]; [`Error::InvalidArgument`] for a
    /// revoked key (a revocation is final) or a bad user id; [`Error::Storage`].
    pub fn enable(&self, user_id: &str, key_id: &str) -> Result<KeyInfo, Error> {
        self.update(user_id, key_id, &KeyUpdate::new().enabled(true))
    }

    /// Deletes a user's key for good: its row is removed (a tombstone in the change feed
    /// tells other processes), and the key is refused as `unknown` from then on, here at
    /// once and elsewhere within the change check interval. Returns what the key was.
    ///
    /// ```
    /// use keyseal::{ApiKeys, ApiKeysConfig, NewKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let keys = ApiKeys::open_with(dir.path().join("keys.db"), ApiKeysConfig::default().bcrypt_cost(4))?;
    /// let made = keys.create(&NewKey::new("user-42", "CI"))?;
    /// keys.delete("user-42", &made.key_id)?;
    /// assert_eq!(keys.verify(&made.key)?.refusal().unwrap().reason(), "unknown");
    /// assert!(keys.list("user-42")?.is_empty());
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] when the user has no key with this id (another user's key, or one
    /// deleted already), nothing deleted; [`Error::InvalidArgument`] for a bad user id;
    /// [`Error::Storage`].
    pub fn delete(&self, user_id: &str, key_id: &str) -> Result<KeyInfo, Error> {
        check_user_id(user_id)?;
        let row = self
            .backend
            .delete(user_id, key_id)?
            .ok_or(Error::NotFound { what: "api key" })?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(cached) = self.cache.by_row(row.row_id) {
            cached.gone.store(true, Ordering::SeqCst);
        }
        Ok(KeyInfo::from_row(row, Timestamp::now()))
    }
}
