//! The storage interface behind [`super::KeyStore`].
//!
//! Everything cryptographic (wrapping, the check value, the cache, group commit) lives above
//! this trait; a backend only stores opaque wrapped blobs transactionally. `SQLite` implements
//! it today; a `PostgreSQL` backend would implement the same five methods (with
//! `INSERT .. ON CONFLICT DO NOTHING` and `SELECT .. FOR UPDATE`) without changing the public
//! API.

use crate::Error;

/// One row to insert unless the user already has one.
pub(crate) struct NewRow<'a> {
    pub(crate) user_id: &'a str,
    pub(crate) wrapped: Vec<u8>,
    pub(crate) created_at: &'a str,
}

/// What [`Backend::initialize`] found about the master key record.
pub(crate) enum CheckState {
    /// A check value is stored.
    Present(Vec<u8>),
    /// No check value (a new store, or one written by the Python module): the oldest row, if
    /// any, so that the master key can be verified against it.
    Absent {
        first_row: Option<(String, Vec<u8>)>,
    },
}

/// Called inside every write transaction with the stored check value; refuses to write rows
/// wrapped under a master key that is not the store's.
/// Rewraps one row: `(user_id, old_blob) -> new_blob`.
pub(crate) type Rewrap<'a> = &'a mut dyn FnMut(&str, &[u8]) -> Result<Vec<u8>, Error>;

pub(crate) type Guard<'a> = &'a mut dyn FnMut(Option<&[u8]>) -> Result<(), Error>;

/// Transactional storage of wrapped per-user keys.
pub(crate) trait Backend: Send + Sync {
    /// Creates the schema if absent and, in the same write transaction, hands the check state
    /// to `decide`, which verifies the master key and returns a check value to store when none
    /// is. Returns the check value stored at commit.
    fn initialize(
        &self,
        decide: &mut dyn FnMut(CheckState) -> Result<Option<Vec<u8>>, Error>,
    ) -> Result<Vec<u8>, Error>;

    /// The wrapped key of `user_id`, if any.
    fn load(&self, user_id: &str) -> Result<Option<Vec<u8>>, Error>;

    /// In one durable write transaction: runs `guard`, inserts each row unless its user already
    /// has one, and returns the blob stored for each row afterwards (the row's own, or the one
    /// that was there first).
    fn insert_batch(&self, rows: &[NewRow<'_>], guard: Guard<'_>) -> Result<Vec<Vec<u8>>, Error>;

    /// In one durable write transaction (all or nothing): runs `guard`, replaces every wrapped
    /// key by `rewrap(user_id, old_blob)`, stores `new_check`, and calls `progress(done, total)`
    /// along the way. Returns the number of rows rewrapped.
    fn rewrap_all(
        &self,
        guard: Guard<'_>,
        rewrap: Rewrap<'_>,
        new_check: &[u8],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<usize, Error>;

    /// The number of users with a key.
    fn count(&self) -> Result<u64, Error>;
}
