//! What an update of a key changes: the [`KeyUpdate`] builder.

use std::time::Duration;

use super::backend::Row;
use super::rate_limit::RateLimit;
use super::rules::{check_key_fields, check_metadata};
use super::time::Timestamp;
#[cfg(doc)]
use super::ApiKeys;
use crate::Error;

/// What to change in a key, for [`ApiKeys::update`]: every field left unset stays as it is.
///
/// ```
/// use keyseal::{KeyUpdate, RateLimit};
/// let update = KeyUpdate::new()
///     .name("CI (new runner)")
///     .scopes(["deploy", "read"]) // replaces the whole set
///     .expires_at(None) // never expires
///     .rate_limit(Some(RateLimit::per_minute(100)))
///     .metadata(serde_json::json!({ "team": "infra" }));
/// # let _ = update;
/// ```
// `None`: unchanged; `Some(None)`: cleared. The three cases are the point.
#[allow(clippy::option_option)]
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    pub(crate) name: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) expires_at: Option<Option<Timestamp>>,
    pub(crate) rate_limit: Option<Option<RateLimit>>,
    pub(crate) metadata: Option<serde_json::Value>,
    pub(crate) enabled: Option<bool>,
}

impl KeyUpdate {
    /// Changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// A new name (1 to 256 bytes, no control characters).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// A new set of scopes, replacing the old one whole (at most 64, each 1 to 128 bytes
    /// without whitespace).
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }
    /// A new expiry: `Some(at)`, or `None` for never.
    #[must_use]
    pub fn expires_at(mut self, at: Option<Timestamp>) -> Self {
        self.expires_at = Some(at);
        self
    }
    /// Expires `d` from now.
    #[must_use]
    pub fn expires_in(self, d: Duration) -> Self {
        self.expires_at(Some(Timestamp::now().plus(d)))
    }
    /// A new rate limit: `Some(limit)`, or `None` for none.
    #[must_use]
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = Some(limit);
        self
    }
    /// New metadata, replacing the old whole: a JSON object of at most
    /// [`MAX_METADATA_BYTES`](super::MAX_METADATA_BYTES) serialized (an empty object clears
    /// it).
    #[must_use]
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
    /// Enables or disables the key (as [`ApiKeys::enable`] / [`ApiKeys::disable`] do).
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Checks the fields given, before anything is read: an empty update, a bad name, scope
    /// or metadata.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let empty = self.name.is_none()
            && self.scopes.is_none()
            && self.expires_at.is_none()
            && self.rate_limit.is_none()
            && self.metadata.is_none()
            && self.enabled.is_none();
        if empty {
            return Err(Error::InvalidArgument {
                what: "nothing to update".into(),
            });
        }
        // The user id was checked by the caller; "-" stands in for fields not changed.
        check_key_fields(
            "-",
            self.name.as_deref().unwrap_or("-"),
            self.scopes.as_deref().unwrap_or_default(),
        )?;
        if let Some(m) = &self.metadata {
            check_metadata(m.clone())?;
        }
        Ok(())
    }

    /// Writes the update's fields into `row` (metadata as checked by [`KeyUpdate::check`]).
    pub(crate) fn apply_to(&self, row: &mut Row) {
        if let Some(name) = &self.name {
            row.name.clone_from(name);
        }
        if let Some(scopes) = &self.scopes {
            row.scopes.clone_from(scopes);
        }
        if let Some(at) = self.expires_at {
            row.expires_at = at;
        }
        if let Some(limit) = self.rate_limit {
            row.rate_limit = limit;
        }
        if let Some(serde_json::Value::Object(map)) = &self.metadata {
            row.metadata.clone_from(map);
        }
        if let Some(enabled) = self.enabled {
            row.enabled = enabled;
        }
    }
}
