//! The storage role behind [`crate::KeyStore`], and the contract a backend keeps.
//!
//! # What a backend does, and what it does not
//! Everything cryptographic and every rule lives above this trait, in the key store: wrapping
//! and unwrapping, which master key the store belongs to, what a caller gets when two
//! creators race for one user, group commit, the cache, and the rule that a rotation is all or
//! nothing. A backend only stores opaque bytes, with three kinds of write, each one
//! transaction that either commits whole or changes nothing:
//! - **insert-if-absent, then re-read** ([`Backend::insert_if_absent`]): a row whose user
//!   already has one is left as it is, and the caller gets the stored blob back;
//! - **compare-and-set** on the master key check value: every write names the check value the
//!   caller verified, and the backend writes nothing (reporting [`Written::CheckChanged`]) when
//!   the stored one differs, so rows are never added under a master key that is not the
//!   store's;
//! - **one transaction for a rotation** ([`Backend::begin_rotation`]): the rows are read under
//!   a lock that keeps other writers out, the key store rewraps them, and [`Rotation::commit`]
//!   stores them all with the new check value, so no row is left under the old key.
//!
//! No method calls back into the key store's rules while a transaction is open (the one
//! callback, a rotation's progress, only reports); a rotation is a transaction handle the key
//! store drives step by step, so a backend whose driver is async (`PostgreSQL` with `SELECT … FOR UPDATE` and
//! `INSERT … ON CONFLICT DO NOTHING`) implements each method as one transaction of its own.
//!
//! # Tables
//! The rows are the Python module's `encryption_keys(user_id, encrypted_key, created_at)`; the
//! check value is one extra named value. A blob is returned exactly as stored (a value of
//! another type as empty bytes, which the key store reports as a corrupt key).
//!
//! The trait is sealed: the backends live in this crate (`SQLite`, `PostgreSQL`), so that each one runs
//! the same conformance tests before it ships.

use crate::Error;

pub(crate) mod sealed {
    /// Keeps [`super::Backend`] implementable only inside keyseal.
    pub trait Sealed {}
}

/// One row to insert unless the user already has one.
#[derive(Debug)]
#[non_exhaustive]
pub struct NewRow<'a> {
    /// The user.
    pub user_id: &'a str,
    /// The data key wrapped under the master key.
    pub wrapped: Vec<u8>,
    /// When it was created, as the Python module writes it (ISO 8601, UTC).
    pub created_at: &'a str,
}

/// A stored row: a user and the wrapped key stored for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredRow {
    /// The user.
    pub user_id: String,
    /// The wrapped key, as stored.
    pub wrapped: Vec<u8>,
}

/// A row of a rotation: the blob to store instead of the one read.
#[derive(Debug)]
#[non_exhaustive]
pub struct Rewrapped {
    /// The user.
    pub user_id: String,
    /// The blob under the new master key.
    pub wrapped: Vec<u8>,
}

/// A row as a copy reads and writes it: everything the table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FullRow {
    /// The user.
    pub user_id: String,
    /// The wrapped key, as stored.
    pub wrapped: Vec<u8>,
    /// When it was created, as stored.
    pub created_at: String,
}

/// What a store holds about its master key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckState {
    /// A check value is stored.
    Present(Vec<u8>),
    /// No check value (no store yet, or one written by the Python module): the oldest row of
    /// the right length (so that one damaged row does not lock the store out), else the
    /// oldest row, else `None`; the master key is verified against it.
    Absent {
        /// That row.
        first_row: Option<StoredRow>,
    },
}

/// What [`Backend::confirm_open`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Opened {
    /// The state was as seen: the check value now stored.
    Stored(Vec<u8>),
    /// Another writer changed the state since it was read: decide again on this one.
    Changed(CheckState),
}

/// The outcome of a compare-and-set write.
#[derive(Debug)]
#[non_exhaustive]
pub enum Written<T> {
    /// Committed.
    Done(T),
    /// Nothing written: the stored check value (or its absence) is not the one expected.
    CheckChanged(Option<Vec<u8>>),
}

/// Transactional storage of wrapped per-user keys; see the module docs for the contract.
///
/// Every method may fail with [`Error::Storage`] (unreachable, busy past its bound, damaged);
/// a failed write has changed nothing.
pub trait Backend: sealed::Sealed + Send + Sync {
    /// The master key state, read without writing anything (the tables may not exist yet:
    /// then `Absent { first_row: None }`).
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn check_state(&self) -> Result<CheckState, Error>;

    /// Called once the key store has verified its master key against `seen` (read by
    /// [`Backend::check_state`]). In one transaction: creates the tables if absent and, when
    /// the state is still `seen`, stores `new_check` if given (a new store, or one without a
    /// check value); returns [`Opened::Stored`] with the check value stored. When the state
    /// changed meanwhile, writes nothing and returns [`Opened::Changed`]. A refused open must
    /// leave an existing store untouched, so nothing may be written before this call.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn confirm_open(&self, seen: &CheckState, new_check: Option<&[u8]>) -> Result<Opened, Error>;

    /// The wrapped key of `user_id`, if any.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn load(&self, user_id: &str) -> Result<Option<Vec<u8>>, Error>;

    /// In one durable transaction, if the stored check value is `expected_check`: inserts each
    /// row unless its user already has one, and returns the blob stored for each row afterwards
    /// (the row's own, or the one that was there first), in order. The check value is read
    /// under a lock that a rotation's transaction excludes (`SQLite`'s single writer lock;
    /// `SELECT … FOR SHARE` in `PostgreSQL`), so no row lands between a rotation's read and
    /// its commit.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn insert_if_absent(
        &self,
        expected_check: &[u8],
        rows: &[NewRow<'_>],
    ) -> Result<Written<Vec<Vec<u8>>>, Error>;

    /// Begins a rotation: one write transaction that keeps every other writer out (`BEGIN
    /// IMMEDIATE` in `SQLite`, `SELECT … FOR UPDATE` on the check value in `PostgreSQL`, which
    /// every insert reads `FOR SHARE`) until [`Rotation::commit`] or the drop of the handle,
    /// which rolls back.
    ///
    /// # Errors
    /// [`Error::Storage`], also when the lock cannot be had within the busy bound.
    fn begin_rotation(&self) -> Result<Box<dyn Rotation + '_>, Error>;

    /// The number of users with a key.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn count(&self) -> Result<u64, Error>;

    /// For copying a store: the check value and every row (with its creation time), read in
    /// one transaction.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn export(&self) -> Result<(Option<Vec<u8>>, Vec<FullRow>), Error>;

    /// For copying a store into this one: in one transaction, if this store holds neither a
    /// row nor a check value, stores `check` and `rows` exactly as given and returns `true`;
    /// otherwise writes nothing and returns `false`. The tables are created if absent.
    ///
    /// # Errors
    /// [`Error::Storage`]; nothing is written then.
    fn import(&self, check: &[u8], rows: &[FullRow]) -> Result<bool, Error>;

    /// How many [`Backend::insert_if_absent`] transactions one key store may run at once.
    /// `SQLite` has one writer at a time: 1 (the default). A server that merges the flushes of
    /// concurrent commits (`PostgreSQL`) returns more, and the key store's group commit then
    /// runs that many batches at once, each still one transaction keeping the contract above
    /// (two batches may name the same new user: the second one's insert finds the first's
    /// row and returns it).
    fn concurrent_writers(&self) -> usize {
        1
    }

    /// Takes back an [`Backend::import`] whose other half (the API keys) failed: in one
    /// transaction, when the stored check value is still `check`, deletes the rows of
    /// `user_ids` and the check value; otherwise (someone else's store now) changes nothing.
    ///
    /// # Errors
    /// [`Error::Storage`]; nothing is changed.
    fn undo_import(&self, check: &[u8], user_ids: &[String]) -> Result<(), Error>;
}

/// An open rotation transaction (see [`Backend::begin_rotation`]); dropping it without
/// [`Rotation::commit`] rolls back.
pub trait Rotation {
    /// The stored check value and every row, as the transaction sees them.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn rows(&mut self) -> Result<(Option<Vec<u8>>, Vec<StoredRow>), Error>;

    /// Replaces the blob of each of `rows` (every row [`Rotation::rows`] returned), stores
    /// `new_check`, and commits: all or nothing. Calls `written(rows_stored)` every 1 024 rows
    /// and once after the last, before the commit, so that a progress bar follows the
    /// transaction; it only reports (no I/O, cannot fail), so an async backend calls it
    /// between its own awaits.
    ///
    /// # Errors
    /// [`Error::Storage`]; nothing is changed.
    fn commit(
        self: Box<Self>,
        new_check: &[u8],
        rows: &[Rewrapped],
        written: &mut dyn FnMut(usize),
    ) -> Result<(), Error>;
}
