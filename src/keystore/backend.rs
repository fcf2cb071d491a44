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
//! The rows are the Python module's `encryption_keys(user_id, encrypted_key, created_at)`,
//! plus one nullable column, the id of the master key that wrapped the row (`NULL` for a row
//! the Python module wrote: the key store decides which master key that is). Beside them: the
//! legacy check value (one named value), the master keys the store knows (id, check value,
//! retired or not) and the data key versions (owner, version, wrapped key, master key id,
//! state). A blob
//! is returned exactly as stored (a value of another type as empty bytes, which the key store
//! reports as a corrupt key).
//!
//! # Master keys
//! Every write that wraps under a master key names it with a [`Guard`] (its id and the check
//! value the caller verified) and is refused ([`Written::CheckChanged`]) unless that key is
//! stored, with that check value, and not retired, read under the same lock as the write: so
//! no row is ever added under a retired master key. [`Backend::retire_master_key`] refuses
//! while any row still names the key.
//!
//! The trait is sealed: the backends live in this crate (`SQLite`, `PostgreSQL`), so that each one runs
//! the same conformance tests before it ships.

use crate::Error;

pub(crate) mod sealed {
    /// Keeps [`super::Backend`] implementable only inside keyseal.
    pub trait Sealed {}
}

/// The master key a write wraps under: the write is made only while the store holds this key,
/// with this check value, not retired.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Guard<'a> {
    /// The key's id.
    pub master_id: &'a str,
    /// Its check value, as the caller verified it.
    pub check: &'a [u8],
}

impl<'a> Guard<'a> {
    /// A guard for `master_id` with `check`.
    #[must_use]
    pub fn new(master_id: &'a str, check: &'a [u8]) -> Self {
        Guard { master_id, check }
    }
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

/// A stored row: a user, the wrapped key stored for it, and the master key that wrapped it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredRow {
    /// The user.
    pub user_id: String,
    /// The wrapped key, as stored.
    pub wrapped: Vec<u8>,
    /// The id of the master key that wrapped it; `None` for a row the Python module wrote.
    pub master_id: Option<String>,
}

/// A master key the store knows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MasterKeyRow {
    /// Its id.
    pub id: String,
    /// Its check value.
    pub check: Vec<u8>,
    /// Retired: no row may be written under it any more.
    pub retired: bool,
}

impl MasterKeyRow {
    /// An active key.
    #[must_use]
    pub fn new(id: String, check: Vec<u8>) -> Self {
        MasterKeyRow {
            id,
            check,
            retired: false,
        }
    }
}

/// The master keys a store knows, and which of them wraps the rows without a master key id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Keyring {
    /// Every key ever added, retired ones included.
    pub keys: Vec<MasterKeyRow>,
    /// The id of the master key of rows without one (Python's), once known.
    pub legacy_id: Option<String>,
}

/// The owner of the pool key's versions in [`VersionRow::owner`] (user ids are never empty).
pub const POOL_OWNER: &str = "";

/// The state of a key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyState {
    /// In use: decrypts, and encrypts when it is the newest active version.
    Active,
    /// Kept but refused: decrypting under it fails (reversible).
    Disabled,
    /// The key material is gone (irreversible).
    Destroyed,
}

impl KeyState {
    /// `active`, `disabled` or `destroyed`, as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Disabled => "disabled",
            KeyState::Destroyed => "destroyed",
        }
    }

    /// The state stored as `text`; anything unknown reads as disabled (refused, not lost).
    #[must_use]
    pub fn parse(text: &str) -> KeyState {
        match text {
            "active" => KeyState::Active,
            "destroyed" => KeyState::Destroyed,
            _ => KeyState::Disabled,
        }
    }
}

/// One version of a data key: the pool key's ([`POOL_OWNER`]) or a user's. A user's version 1
/// is the user's row of `encryption_keys`: its version row, if any, only holds its state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionRow {
    /// The user, or [`POOL_OWNER`].
    pub owner: String,
    /// The version, from 1.
    pub version: u32,
    /// The key wrapped under the master key; `None` once destroyed, and for the state row of
    /// a user's version 1.
    pub wrapped: Option<Vec<u8>>,
    /// The id of that master key.
    pub master_id: Option<String>,
    /// Its state.
    pub state: KeyState,
}

impl VersionRow {
    /// An active version.
    #[must_use]
    pub fn new(
        owner: &str,
        version: u32,
        wrapped: Option<Vec<u8>>,
        master_id: Option<String>,
    ) -> Self {
        VersionRow {
            owner: owner.to_owned(),
            version,
            wrapped,
            master_id,
            state: KeyState::Active,
        }
    }
}

/// What [`Backend::change_state`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateChange {
    /// Changed.
    Done,
    /// Nothing changed: the version is in this state, not the one expected.
    Was(KeyState),
    /// Nothing changed: no such version.
    Missing,
}

/// Which stored key a [`Rewrapped`] replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Slot {
    /// A user's row in `encryption_keys`.
    User(String),
    /// A key version.
    Version {
        /// The user, or [`POOL_OWNER`].
        owner: String,
        /// The version.
        version: u32,
    },
}

/// A key rewrapped under another master key: the blob to store instead of `previous`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Rewrapped {
    /// Which key.
    pub slot: Slot,
    /// The blob read (a rewrap stores only where it is still the one stored).
    pub previous: Vec<u8>,
    /// The blob under the new master key.
    pub wrapped: Vec<u8>,
    /// The id of the new master key.
    pub master_id: String,
}

impl Rewrapped {
    /// `previous` at `slot` replaced by `wrapped` under `master_id`.
    #[must_use]
    pub fn new(slot: Slot, previous: Vec<u8>, wrapped: Vec<u8>, master_id: String) -> Self {
        Rewrapped {
            slot,
            previous,
            wrapped,
            master_id,
        }
    }
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
    /// The id of the master key that wrapped it (`None` for a row the Python module wrote).
    pub master_id: Option<String>,
}

/// What a store holds about its master key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckState {
    /// A check value is stored (the legacy one: of the master key of rows without an id).
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
    /// Nothing written: the guard's master key is not stored with that check value, or is
    /// retired. Holds the stored row of that key, if any.
    CheckChanged(Option<MasterKeyRow>),
}

/// What [`Backend::retire_master_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retired {
    /// Retired (or it already was).
    Done,
    /// Nothing changed: this many stored keys still need it.
    InUse(u64),
    /// Nothing changed: the store does not know this key.
    Unknown,
}

/// What a rotation's transaction read.
#[derive(Debug)]
#[non_exhaustive]
pub struct RotationState {
    /// The legacy check value.
    pub legacy_check: Option<Vec<u8>>,
    /// The master keys.
    pub keyring: Keyring,
    /// Every user's row.
    pub rows: Vec<StoredRow>,
    /// Every key version that holds a wrapped key.
    pub versions: Vec<VersionRow>,
}

/// Transactional storage of wrapped per-user keys; see the module docs for the contract.
///
/// Every method may fail with [`Error::Storage`] (unreachable, busy past its bound, damaged);
/// a failed write has changed nothing.
pub trait Backend: sealed::Sealed + Send + Sync {
    /// The legacy master key state, read without writing anything (the tables may not exist
    /// yet: then `Absent { first_row: None }`).
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn check_state(&self) -> Result<CheckState, Error>;

    /// Called once the key store has verified its master key against `seen` (read by
    /// [`Backend::check_state`]). In one transaction: creates the tables (and adds the master
    /// key id column to a table the Python module created) if absent and, when the state is
    /// still `seen`, stores `new_check` if given (a new store, or one without a check value);
    /// returns [`Opened::Stored`] with the check value stored. When the state changed
    /// meanwhile, writes nothing and returns [`Opened::Changed`]. A refused open must leave an
    /// existing store untouched, so nothing may be written before this call.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn confirm_open(&self, seen: &CheckState, new_check: Option<&[u8]>) -> Result<Opened, Error>;

    /// The master keys the store knows (empty when the tables do not exist yet).
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn keyring(&self) -> Result<Keyring, Error>;

    /// Adds `key` unless a key with its id is stored, and sets it as the legacy key when
    /// `legacy` and none is set yet; returns the row stored for that id (the one given, or
    /// the one that was there, perhaps retired). Only after [`Backend::confirm_open`].
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn add_master_key(&self, key: &MasterKeyRow, legacy: bool) -> Result<MasterKeyRow, Error>;

    /// The stored row of `user_id`, if any.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn load(&self, user_id: &str) -> Result<Option<StoredRow>, Error>;

    /// In one durable transaction, if `guard` holds: inserts each row (naming the guard's
    /// master key) unless its user already has one, and returns the row stored for each
    /// afterwards (its own, or the one that was there first), in order. The guard is read
    /// under a lock that a rotation's transaction excludes (`SQLite`'s single writer lock;
    /// `SELECT … FOR SHARE` in `PostgreSQL`), so no row lands between a rotation's read and
    /// its commit.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn insert_if_absent(
        &self,
        guard: Guard<'_>,
        rows: &[NewRow<'_>],
    ) -> Result<Written<Vec<StoredRow>>, Error>;

    /// The versions of `owner`'s key ([`POOL_OWNER`] for the pool key), oldest first.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn versions(&self, owner: &str) -> Result<Vec<VersionRow>, Error>;

    /// If `guard` holds and `row` holds no key or one wrapped under the guard's key: stores
    /// `row` unless its version is stored; returns the row stored for that version.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn insert_version(
        &self,
        guard: Guard<'_>,
        row: &VersionRow,
    ) -> Result<Written<VersionRow>, Error>;

    /// If `guard` holds: stores `wrapped` (under the guard's key) as `owner`'s next version,
    /// one more than the highest stored and at least `first`; returns the stored row.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn add_version(
        &self,
        guard: Guard<'_>,
        owner: &str,
        first: u32,
        wrapped: &[u8],
    ) -> Result<Written<VersionRow>, Error>;

    /// In one transaction: when `owner`'s `version` is in state `from`, sets it to `to`
    /// (dropping the wrapped key when `to` is [`KeyState::Destroyed`]).
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn change_state(
        &self,
        owner: &str,
        version: u32,
        from: KeyState,
        to: KeyState,
    ) -> Result<StateChange, Error>;

    /// Up to `limit` versions holding a key not wrapped under `master_id`, in (owner, version)
    /// order, after `after` when given.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn stale_versions(
        &self,
        master_id: &str,
        after: Option<(&str, u32)>,
        limit: usize,
    ) -> Result<Vec<VersionRow>, Error>;

    /// Up to `limit` user rows not wrapped under `master_id` (rows without an id included),
    /// in user id order, after `after` when given.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn stale_rows(
        &self,
        master_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRow>, Error>;

    /// In one durable transaction, if `guard` holds: stores each of `rows` where its slot
    /// still holds `previous` (a row changed meanwhile is left as it is); returns how many
    /// were stored.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn store_rewrapped(&self, guard: Guard<'_>, rows: &[Rewrapped]) -> Result<Written<u64>, Error>;

    /// How many stored keys (user rows and key versions) each master key id wraps
    /// (`None`: user rows without an id), in id order.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn usage(&self) -> Result<Vec<(Option<String>, u64)>, Error>;

    /// In one transaction: unless a stored key names `id` (or, when `untagged_rows_need_it`,
    /// a user row has no id), marks it retired, and makes `new_legacy` the legacy key (its
    /// check value the legacy check value) when given.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn retire_master_key(
        &self,
        id: &str,
        untagged_rows_need_it: bool,
        new_legacy: Option<&MasterKeyRow>,
    ) -> Result<Retired, Error>;

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

    /// Whether the store was marked as shared with the Python module; `None` when never set.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn shared_with_python(&self) -> Result<Option<bool>, Error>;

    /// Marks the store as shared with the Python module or not.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn set_shared_with_python(&self, shared: bool) -> Result<(), Error>;

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
    /// Everything the rotation rewraps, as the transaction sees it.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn state(&mut self) -> Result<RotationState, Error>;

    /// Replaces every stored key by its [`Rewrapped`] (`rows`: every user row and key version
    /// [`Rotation::state`] returned), adds `new` as the only active master key (every
    /// other one retired) and the legacy key, with its check value as the legacy check value,
    /// and commits: all or nothing. Calls `written(rows_stored)` every 1 024 rows and once
    /// after the last, before the commit, so that a progress bar follows the transaction; it
    /// only reports (no I/O, cannot fail), so an async backend calls it between its own
    /// awaits.
    ///
    /// # Errors
    /// [`Error::Storage`]; nothing is changed.
    fn commit(
        self: Box<Self>,
        new: &MasterKeyRow,
        rows: &[Rewrapped],
        written: &mut dyn FnMut(usize),
    ) -> Result<(), Error>;
}
