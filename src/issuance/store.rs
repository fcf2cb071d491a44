//! The storage interface behind [`super::ApiKeys`]: small on purpose, so that a `PostgreSQL`
//! backend can be added next to the `SQLite` one without changing the public API.

use super::format::Environment;
use super::time::Timestamp;
use super::RateLimit;
use crate::Error;

/// How a row's hash was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// keyseal keys: bcrypt of base64(HMAC-SHA256(prehash key, whole API key)).
    Prehashed,
    /// Imported keys: bcrypt of the key as it is (truncated by bcrypt at 72 bytes).
    Plain,
}

impl Scheme {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Prehashed => "ks1",
            Scheme::Plain => "bcrypt",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "ks1" => Some(Scheme::Prehashed),
            "bcrypt" => Some(Scheme::Plain),
            _ => None,
        }
    }
}

/// One stored key, everything but the secret (which is never stored).
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub row_id: i64,
    pub key_id: String,
    pub lookup: String,
    pub scheme: Scheme,
    pub hash: String,
    pub user_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub environment: Environment,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub rotated_to: Option<String>,
    pub rate_limit: Option<RateLimit>,
    pub last_used_at: Option<Timestamp>,
}

/// Most legacy keys one lookup value may have: a wrong key presenting that lookup costs one
/// bcrypt per key under it.
pub(crate) const MAX_LEGACY_PER_LOOKUP: u32 = 16;

/// What changed since a sequence number: enough to update in-memory state.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub row_id: i64,
    /// `None` when it could not be read.
    pub lookup: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
    /// Why the row could not be read, naming it; the other fields are then meaningless and
    /// the row's key fails closed.
    pub unreadable: Option<String>,
}

/// Outcome of an insert.
pub(crate) enum Inserted {
    Ok(i64),
    /// The key id is taken; the caller draws another.
    IdTaken,
}

/// The storage a backend provides. Every write bumps a store-wide sequence number so other
/// processes can catch up with [`Storage::changes_since`].
pub(crate) trait Storage: Send + Sync {
    /// Inserts `row` if the user has fewer than `quota` valid keys, those in a rotation's
    /// grace included (`None`: no check). A legacy row is refused with `InvalidArgument`
    /// when [`MAX_LEGACY_PER_LOOKUP`] rows already share its lookup. `row.row_id` is ignored.
    fn insert(&self, row: &Row, quota: Option<u32>, now: Timestamp) -> Result<Inserted, Error>;
    /// All rows with this lookup value (one for keyseal keys; rarely more for legacy prefixes).
    fn find(&self, lookup: &str) -> Result<Vec<Row>, Error>;
    /// One row by row id.
    fn get(&self, row_id: i64) -> Result<Option<Row>, Error>;
    /// A user's key by its public id.
    fn get_user_key(&self, user_id: &str, key_id: &str) -> Result<Option<Row>, Error>;
    /// A user's rows, newest first.
    fn list(&self, user_id: &str) -> Result<Vec<Row>, Error>;
    /// Marks a user's key revoked; returns its row (`None` if no such key for this user).
    fn revoke(&self, user_id: &str, key_id: &str, now: Timestamp) -> Result<Option<Row>, Error>;
    /// Atomically inserts `new` (the successor) and ends `old_key_id` at `old_expires_at`.
    /// Returns the old row as it was, and the new row id; `None` if the old key is not the
    /// user's, `Err(InvalidArgument)` if it was revoked or already rotated,
    /// `Err(QuotaExceeded)` if the user would hold more than `quota + 1` valid keys.
    fn rotate(
        &self,
        user_id: &str,
        old_key_id: &str,
        new: &Row,
        old_expires_at: Timestamp,
        quota: Option<u32>,
    ) -> Result<Option<(Row, Inserted)>, Error>;
    /// Records last use, one write transaction for the batch, waiting at most `wait` for the
    /// write lock (`ZERO`: not at all, not even for this process's own connection).
    fn touch(&self, uses: &[(i64, Timestamp)], wait: std::time::Duration) -> Result<(), Error>;
    /// Every lookup value, for the in-memory filter, and the current sequence number.
    fn all_lookups(&self) -> Result<(Vec<String>, i64), Error>;
    /// Rows written after `seq`, and the new sequence number. A row that cannot be read is
    /// reported as such, never an error for the whole batch.
    ///
    /// This, [`Storage::changed_elsewhere`] and [`Storage::legacy_formats`] are the change
    /// check: they must not wait for any write, this process's own included.
    fn changes_since(&self, seq: i64) -> Result<(Vec<Change>, i64), Error>;
    /// Whether anything was committed since the last call. Must be cheap.
    fn changed_elsewhere(&self) -> Result<bool, Error>;
    /// Legacy formats recorded by imports: (prefix, lookup length).
    fn legacy_formats(&self) -> Result<Vec<(String, usize)>, Error>;
    /// Records a legacy format.
    fn add_legacy_format(&self, prefix: &str, lookup_len: usize) -> Result<(), Error>;
}
