//! The public values of API key issuance: what to create, and what comes back.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::backend::{is_pending, Row, Scheme};
use super::format::Environment;
use super::rate_limit::RateLimit;
use super::time::Timestamp;
#[cfg(doc)]
use super::ApiKeys;

/// What to create: builder for [`ApiKeys::create`].
#[derive(Debug, Clone)]
pub struct NewKey {
    pub(crate) user_id: String,
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: Option<Timestamp>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) environment: Environment,
    pub(crate) metadata: Option<serde_json::Value>,
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
            metadata: None,
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
    /// Free-form metadata: a JSON object of at most
    /// [`MAX_METADATA_BYTES`](super::MAX_METADATA_BYTES) serialized ([`ApiKeys::create`]
    /// refuses anything else).
    #[must_use]
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// A key just made: the only time the key itself is ever available. Serializes to the CLI's
/// `{"key","key_id","user_id","name","scopes","created_at","expires_at"}`. `Debug` hides the
/// key, and it is wiped from memory on drop.
#[derive(Clone, Serialize)]
#[non_exhaustive]
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

impl CreatedKey {
    pub(crate) fn new(key: &str, row: &Row) -> Self {
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

/// State of a key in a listing. When several apply, the first of revoked, expired,
/// disabled, rotated wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Valid now.
    Active,
    /// Replaced by a rotation, valid until its grace period ends.
    Rotated,
    /// Past its expiry (or its grace period).
    Expired,
    /// Revoked.
    Revoked,
    /// Disabled (reversible: [`ApiKeys::enable`]).
    Disabled,
}

impl KeyStatus {
    /// `active`, `rotated`, `expired`, `revoked` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Rotated => "rotated",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Disabled => "disabled",
        }
    }

    /// The status named `s` (as [`KeyStatus::as_str`] gives it), if any.
    ///
    /// ```
    /// use keyseal::KeyStatus;
    /// assert_eq!(KeyStatus::parse("disabled"), Some(KeyStatus::Disabled));
    /// assert_eq!(KeyStatus::Rotated.as_str(), "rotated");
    /// assert_eq!(KeyStatus::parse("gone"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        [
            KeyStatus::Active,
            KeyStatus::Rotated,
            KeyStatus::Expired,
            KeyStatus::Revoked,
            KeyStatus::Disabled,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl core::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's metadata, as [`ApiKeys::list`] gives it: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
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
    /// `false` when disabled.
    pub enabled: bool,
    /// Free-form metadata (an empty object when none was set).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Its state now.
    pub status: KeyStatus,
    /// Where it was imported from, if it was (see [`ApiKeys::import_keys`]).
    pub imported: Option<ImportedFrom>,
}

/// Where an imported key came from, in [`KeyInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImportedFrom {
    /// The system (e.g. `egregore`).
    pub source: String,
    /// The key's id there.
    pub source_id: String,
    /// `false` while the key, imported without a lookup, waits for its first verification
    /// (which checks it against every such key of its tag); `true` once it has a lookup.
    pub upgraded: bool,
}

impl KeyInfo {
    pub(crate) fn from_row(r: Row, now: Timestamp) -> Self {
        KeyInfo {
            status: r.status_at(now),
            legacy: r.scheme == Scheme::Plain,
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
            enabled: r.enabled,
            imported: match (r.source, r.source_id) {
                (Some(source), Some(source_id)) => Some(ImportedFrom {
                    source,
                    source_id,
                    upgraded: !is_pending(&r.lookup),
                }),
                _ => None,
            },
            metadata: r.metadata,
        }
    }
}

/// Who a valid key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
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
///
/// Checked in this order, the first that applies answers: malformed, unknown (deleted keys
/// included), revoked, expired, disabled, rate limited, forbidden. Revoked and expired are
/// read from the stored row before the secret is checked (a key id is public, and a dead key
/// is not worth a bcrypt); disabled and forbidden are only said once the secret is proven,
/// so a wrong secret is `unknown` whatever the key's flags and scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Not a key of this format, or a wrong checksum: refused without touching storage.
    Malformed,
    /// Well formed, but no such key (or a wrong secret for a key id, or a deleted key).
    Unknown,
    /// Past its expiry, or its grace period after a rotation.
    Expired,
    /// Revoked.
    Revoked,
    /// Disabled by an admin ([`ApiKeys::disable`]); enabling it makes it valid again.
    Disabled,
    /// Valid, but without the scopes the caller required ([`ApiKeys::verify_with`]).
    Forbidden,
    /// Over the key's rate limit (or too much work in flight); try again after `retry_after`.
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
}

impl Refusal {
    /// `malformed`, `unknown`, `expired`, `revoked`, `disabled`, `forbidden` or
    /// `rate_limited`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Unknown => "unknown",
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
            Refusal::Disabled => "disabled",
            Refusal::Forbidden => "forbidden",
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
#[non_exhaustive]
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
    /// Who the key belongs to, if valid.
    pub fn validated(&self) -> Option<&Validated> {
        match self {
            Verification::Valid(v) => Some(v),
            Verification::Refused(_) => None,
        }
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
