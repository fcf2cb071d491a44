//! The storage interface behind [`ApiKeys`](crate::ApiKeys), and its contract.
//!
//! The trait is public so that its contract can be read, and sealed: it is implemented by
//! keyseal's own backends (`SQLite`, `PostgreSQL`), which [`ApiKeys`](crate::ApiKeys) opens. A new
//! backend is a new module next to the `SQLite` one, checked by the same behaviour tests.
//!
//! # What a backend does, and what it does not
//! A backend stores rows and reads them back; it decides nothing. Every business rule (the
//! quota, which keys are valid, the rotation refusals, when a rotated key's grace ends, the
//! cap on legacy keys sharing a lookup) is a pure function of the layer above the backend. Writes that a rule
//! guards take that rule as a `decide` argument: the backend reads the rows the method names,
//! inside its write transaction and locked against other writers (`SQLite`: the write lock
//! taken by `BEGIN IMMEDIATE`; `PostgreSQL`: `SELECT … FOR UPDATE`, or `SERIALIZABLE`), hands
//! them to `decide`, and writes only what `decide` allowed, before committing. `decide` does
//! no I/O, takes no lock and returns at once, so an async backend calls it between two
//! awaits, inside its transaction, without blocking. SQL filters rows only by the keys given
//! (user id, key id, lookup, row id, sequence number); it never evaluates validity itself.
//!
//! The methods are synchronous, as [`ApiKeys`](crate::ApiKeys)'s are; because `decide` is
//! pure and `Sync`, the same signatures carry over to an async trait (`async fn insert(&self,
//! row, decide)`) for a driver such as `tokio-postgres`, with no rule moving into the backend.
//!
//! # The change feed
//! Every write (insert, revocation, rotation, update, disable / enable, delete) gives the
//! rows it writes a store-wide sequence number `seq`, and [`Backend::changes_since`] returns
//! the rows whose `seq` is above a given one. Other processes use it to see revocations and
//! every other change to a key they may hold in their cache. A deleted row is gone from the
//! table, so [`Backend::delete`] leaves a tombstone (row id, lookup, `seq`) that
//! [`Backend::changes_since`] reports as a [`Change`] with `deleted` set; tombstones are kept
//! (a reader may be arbitrarily far behind), and their `seq` counts when the next one is
//! taken, so a sequence number is never handed out twice. Last use is not a change (see
//! [`Backend::touch`]), nor is a fast-verifier tag ([`Backend::set_verifier_tags`]). It is only correct if **a row can never
//! become visible with a `seq` at or below one that a reader has already passed**. `SQLite`
//! keeps this with `seq = MAX(seq) + 1` inside the write transaction: it has one writer at a
//! time, so sequence numbers are handed out in commit order. A backend with concurrent
//! writers must not copy that (two transactions would read the same `MAX`, or commit out of
//! order); it must instead either take the next `seq` from a single-row counter updated inside
//! the same transaction (which serializes writers on that row, so numbers follow commit
//! order), or track visibility itself (e.g. `PostgreSQL`'s transaction ids and snapshots,
//! `pg_snapshot_xmin`), or re-read an overlap window below the last `seq` seen and tolerate
//! seeing a change twice (applying a change is idempotent). The `PostgreSQL` backend takes
//! the counter: every feed-writing transaction first runs `UPDATE keyseal_feed SET seq =
//! seq + 1 … RETURNING seq`, whose row lock it holds to its commit.
//!
//! # Waiting
//! The change check ([`Backend::changes_since`], [`Backend::changed_elsewhere`],
//! [`Backend::legacy_formats`]) must never wait for a write, this process's own included:
//! revocations made elsewhere must be seen while a write is stuck. [`Backend::touch`] waits
//! at most the time it is given. Other calls may wait for the write lock for a bounded time
//! and then fail with [`Error::Storage`].

use super::format::Environment;
use super::rate_limit::RateLimit;
use super::time::Timestamp;
use crate::Error;

/// How a row's hash was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// keyseal keys: bcrypt of base64(HMAC-SHA256(prehash key, whole API key)).
    Prehashed,
    /// Imported keys: bcrypt of the key as it is (truncated by bcrypt at 72 bytes).
    Plain,
}

impl Scheme {
    /// The name stored in the `scheme` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Prehashed => "ks1",
            Scheme::Plain => "bcrypt",
        }
    }
    /// The scheme stored as `s`, if known.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ks1" => Some(Scheme::Prehashed),
            "bcrypt" => Some(Scheme::Plain),
            _ => None,
        }
    }
}

/// One stored key, everything but the secret (which is never stored). `Debug` hides the
/// hash.
#[allow(clippy::struct_field_names)]
#[derive(Clone)]
#[non_exhaustive]
pub struct Row {
    /// The backend's own id of the row (an integer primary key).
    pub row_id: i64,
    /// Public id of the key; unique in the store.
    pub key_id: String,
    /// What a presented key is looked up by: the key id for keyseal keys, the stored clear
    /// prefix for legacy keys. Indexed; not unique.
    pub lookup: String,
    /// How `hash` was made.
    pub scheme: Scheme,
    /// The bcrypt hash.
    pub hash: String,
    /// Owner. Indexed.
    pub user_id: String,
    /// Name given at creation.
    pub name: String,
    /// Scopes (no whitespace in any of them).
    pub scopes: Vec<String>,
    /// `live` or `test`.
    pub environment: Environment,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any; after a rotation, the end of the grace period.
    pub expires_at: Option<Timestamp>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// The key id of the successor, if rotated.
    pub rotated_to: Option<String>,
    /// Per-key rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Last recorded use.
    pub last_used_at: Option<Timestamp>,
    /// `false` when disabled (reversible; a disabled key is refused as `disabled`).
    pub enabled: bool,
    /// Free-form metadata: a JSON object (empty when none), at most
    /// [`MAX_METADATA_BYTES`](crate::issuance::MAX_METADATA_BYTES) serialized.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The fast verifier's tag, `v1:{verifier key id}:{tag}`, if a process holding a
    /// verifier key wrote one (see [`VerifierKey`](crate::VerifierKey)): useless without
    /// that key, which is never stored. Written at creation or by
    /// [`Backend::set_verifier_tags`]; not a change others need to see.
    pub verifier_tag: Option<String>,
    /// Where an imported key came from (e.g. `egregore`), with `source_id`; `None` for keys
    /// made here. (`source`, `source_id`) is unique in the store.
    pub source: Option<String>,
    /// The key's id in its source (with `source`).
    pub source_id: Option<String>,
}

/// The first character of a lookup that no presented key can have: an imported key with no
/// stored lookup waits under `*{tag}` until its first verification records a lookup derived
/// from the key (see [`Backend::set_lookup`]).
pub const PENDING_MARK: char = '*';

/// Whether `lookup` is a pending import's marker (see [`PENDING_MARK`]).
pub(crate) fn is_pending(lookup: &str) -> bool {
    lookup.starts_with(PENDING_MARK)
}

impl Row {
    /// The metadata as backends store it: compact JSON text, `None` when empty.
    pub(crate) fn metadata_text(&self) -> Option<String> {
        (!self.metadata.is_empty())
            .then(|| serde_json::Value::Object(self.metadata.clone()).to_string())
    }

    /// Metadata read back from its stored text (`None`: empty).
    pub(crate) fn metadata_from_text(
        text: Option<&str>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, &'static str> {
        text.map_or_else(
            || Ok(serde_json::Map::new()),
            |t| serde_json::from_str(t).map_err(|_| "api_keys: unreadable metadata"),
        )
    }

    /// The rate limit as backends store it: (requests, period in ms), both `None` for none.
    pub(crate) fn rate_columns(&self) -> (Option<i64>, Option<i64>) {
        self.rate_limit.map_or((None, None), |r| {
            (
                Some(i64::from(r.requests())),
                Some(i64::try_from(r.period().as_millis()).unwrap_or(i64::MAX)),
            )
        })
    }
}

impl core::fmt::Debug for Row {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Row")
            .field("row_id", &self.row_id)
            .field("key_id", &self.key_id)
            .field("scheme", &self.scheme)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// What changed since a sequence number: enough to update in-memory state.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Change {
    /// The row written.
    pub row_id: i64,
    /// Its lookup value; `None` when it could not be read.
    pub lookup: Option<String>,
    /// Its expiry now.
    pub expires_at: Option<Timestamp>,
    /// Whether it is revoked.
    pub revoked: bool,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Whether the row was deleted (a tombstone): its key is unknown from now on.
    pub deleted: bool,
    /// Why the row could not be read, naming it; the other fields are then meaningless and
    /// the row's key fails closed.
    pub unreadable: Option<String>,
}

/// A whole API-key store as [`Backend::export`] reads it: every row, and the legacy formats
/// as (prefix, lookup length).
pub type Exported = (Vec<Row>, Vec<(String, usize)>);

/// Outcome of an insert.
#[derive(Debug)]
#[non_exhaustive]
pub enum Inserted {
    /// Inserted, with this row id.
    Ok(i64),
    /// The key id is taken; the caller draws another.
    IdTaken,
}

/// The rows an insert's rule looks at, read in the insert's transaction.
#[derive(Debug)]
#[non_exhaustive]
pub struct InsertContext {
    /// Every row of the new row's user.
    pub user_rows: Vec<Row>,
    /// Every row whose lookup is the new row's.
    pub same_lookup: Vec<Row>,
}

/// The rule an insert applies to what it read (see the module docs): pure, no I/O.
pub type DecideInsert<'a> = &'a (dyn Fn(&InsertContext) -> Result<(), Error> + Sync);

/// The rule a rotation applies to the old row and the user's rows: pure, no I/O; returns
/// when the old key's validity ends.
pub type DecideRotation<'a> = &'a (dyn Fn(&Row, &[Row]) -> Result<Timestamp, Error> + Sync);

/// The rule an update applies to the user's key as stored and all the user's rows: pure, no
/// I/O; returns the row to write. Only the fields an update may change are written (name,
/// scopes, expiry, rate limit, metadata, enabled); everything else stays as stored.
pub type DecideUpdate<'a> = &'a (dyn Fn(&Row, &[Row]) -> Result<Row, Error> + Sync);

/// Storage of API keys. See the module docs for the contract every method keeps. Sealed.
pub trait Backend: Send + Sync + sealed::Sealed {
    /// In one write transaction: reads the user's rows and the rows sharing `row.lookup`,
    /// gives them to `decide`, and inserts `row` (with the next `seq`) if it returns `Ok`;
    /// `decide`'s error is returned as it is, and nothing is written. `row.row_id` is
    /// ignored. A key id already in use gives `Inserted::IdTaken`, nothing written.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written; `decide`'s error.
    fn insert(&self, row: &Row, decide: DecideInsert<'_>) -> Result<Inserted, Error>;
    /// All rows with this lookup value (one for keyseal keys; rarely more for legacy keys).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn find(&self, lookup: &str) -> Result<Vec<Row>, Error>;
    /// One row by row id.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn get(&self, row_id: i64) -> Result<Option<Row>, Error>;
    /// A user's key by its public id.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn get_user_key(&self, user_id: &str, key_id: &str) -> Result<Option<Row>, Error>;
    /// A user's rows, newest first (by `created_at`, then `row_id`).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn list(&self, user_id: &str) -> Result<Vec<Row>, Error>;
    /// Sets a user's key's `revoked_at` to `now` (with the next `seq`) unless it is set
    /// already: a compare-and-set, so the first revocation's time is kept. Returns the row as
    /// it is afterwards (`None` if the user has no such key).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn revoke(&self, user_id: &str, key_id: &str, now: Timestamp) -> Result<Option<Row>, Error>;
    /// In one write transaction: reads the user's rows, finds `old_key_id` among them
    /// (`Ok(None)` if absent), and gives the old row and all the user's rows to `decide`,
    /// which returns when the old key's validity ends. If it returns `Ok`, inserts `new` and
    /// sets the old row's `expires_at` to that end and its `rotated_to` to `new.key_id`, both
    /// with the same next `seq`. Returns the old row as written, and the new row id (or
    /// `IdTaken`, nothing written). `decide`'s error is returned as it is, nothing written.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written; `decide`'s error.
    fn rotate(
        &self,
        user_id: &str,
        old_key_id: &str,
        new: &Row,
        decide: DecideRotation<'_>,
    ) -> Result<Option<(Row, Inserted)>, Error>;
    /// In one write transaction: reads the user's rows, finds `key_id` among them (`Ok(None)`
    /// if absent: another user's key is absent too), gives that row and all the user's rows
    /// to `decide`, and if it returns `Ok(new)`, writes `new`'s name, scopes, expiry, rate
    /// limit, metadata and enabled flag to the row, with the next `seq`. Returns the row as
    /// written. `decide`'s error is returned as it is, nothing written.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written; `decide`'s error.
    fn update(
        &self,
        user_id: &str,
        key_id: &str,
        decide: DecideUpdate<'_>,
    ) -> Result<Option<Row>, Error>;
    /// In one write transaction: deletes the user's key `key_id` and writes its tombstone
    /// (row id, lookup) with the next `seq`. Returns the row as it was (`None` if the user
    /// has no such key; nothing written).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn delete(&self, user_id: &str, key_id: &str) -> Result<Option<Row>, Error>;
    /// One page of rows, newest first by row id: those of `user_id` (every user's when
    /// `None`) whose row id is below `before` (no bound when `None`), at most `limit`. Row ids
    /// only grow, so paging by them is stable while keys are inserted.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn page(
        &self,
        user_id: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, Error>;
    /// Records last use (keeping the latest time per row), one write transaction for the
    /// batch, waiting at most `wait` for the write lock (`ZERO`: not at all, not even for
    /// this process's own connection). Does not change `seq`: last use is not a change others
    /// need to see.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written within `wait` (the uses are
    /// then not written).
    fn touch(&self, uses: &[(i64, Timestamp)], wait: std::time::Duration) -> Result<(), Error>;
    /// Writes fast-verifier tags (row id, tag), one write transaction for the batch,
    /// waiting at most `wait` for the write lock, as [`Backend::touch`]: a row that is gone
    /// is skipped, and `seq` does not change (a tag is not a change others need to see: it
    /// never changes which keys are valid). Only ever called with a tag made from a key
    /// that bcrypt accepted against the row's hash, which never changes.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written within `wait` (the tags
    /// are then not written).
    fn set_verifier_tags(
        &self,
        tags: &[(i64, String)],
        wait: std::time::Duration,
    ) -> Result<(), Error>;
    /// Every lookup value, for the in-memory filter, and the current sequence number, read
    /// in one snapshot.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn all_lookups(&self) -> Result<(Vec<String>, i64), Error>;
    /// Rows written after `seq`, and the highest sequence number seen. A row that cannot be
    /// read is reported as such, never an error for the whole batch.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn changes_since(&self, seq: i64) -> Result<(Vec<Change>, i64), Error>;
    /// Whether another connection committed anything since the last call. Must be cheap: it
    /// runs at every change check.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn changed_elsewhere(&self) -> Result<bool, Error>;
    /// The store's epoch as read by the last [`Backend::changed_elsewhere`], if the backend
    /// has one: a value that changes when the store was restarted, replaced or restored from
    /// a backup. A reader that sees it change re-reads what it cached (see the module docs).
    /// No I/O.
    fn epoch(&self) -> Option<u64> {
        None
    }
    /// The store's newest sequence number as read by the last
    /// [`Backend::changed_elsewhere`], if the backend reads it there. No I/O. A value below a
    /// reader's position means the store went back in time (restored from a backup).
    fn store_seq(&self) -> Option<i64> {
        None
    }
    /// Starts waking the caller (`wake`, called from any thread, cheap) soon after another
    /// connection commits a change, if the backend can; `listen_url` is where to listen
    /// (`None`: the store's own location). Never required for correctness: readers still
    /// read the feed on their interval; a wake-up only makes them read it sooner. The
    /// default does nothing.
    fn watch(&self, wake: Wake, listen_url: Option<&str>) {
        let _ = (wake, listen_url);
    }
    /// The backend's name: `sqlite`, `postgres`.
    fn name(&self) -> &'static str;
    /// The schema version the store holds (for status reports).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read.
    fn schema_version(&self) -> Result<i64, Error>;
    /// How changes elsewhere reach this process now (for status reports).
    fn feed_mode(&self) -> FeedMode {
        FeedMode::Poll
    }
    /// Legacy formats recorded by imports: (prefix, lookup length).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn legacy_formats(&self) -> Result<Vec<(String, usize)>, Error>;
    /// Records a legacy format (recording one twice is fine).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read or written.
    fn add_legacy_format(&self, prefix: &str, lookup_len: usize) -> Result<(), Error>;
    /// For copying a store: every row, in row id order, and the legacy formats, read in one
    /// transaction.
    ///
    /// # Errors
    /// [`Error::Storage`]; [`Error::Storage`] with kind `corrupt` naming a row that cannot
    /// be read.
    fn export(&self) -> Result<Exported, Error>;
    /// For copying a store, into this one: in one transaction, when it holds no row, inserts
    /// `rows` in order (each every column as given but the row id, which is the backend's
    /// own, and the change feed's number, taken as for any insert) and records `legacy`,
    /// returning `true`; otherwise writes nothing and returns `false`.
    ///
    /// # Errors
    /// [`Error::Storage`] (a key id given twice included); nothing is changed.
    fn import(&self, rows: &[Row], legacy: &[(String, usize)]) -> Result<bool, Error>;
    /// Every row imported from `source`, in row id order.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn imported(&self, source: &str) -> Result<Vec<Row>, Error>;
    /// Up to `limit` rows whose lookup is `lookup` (a pending import's marker), most recently
    /// used first (never used last), then by row id. Never waits for a write.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn pending(&self, lookup: &str, limit: usize) -> Result<Vec<Row>, Error>;
    /// Replaces row `row_id`'s lookup `from` by `to`, with the next `seq` (a change: other
    /// processes learn the new lookup from the feed). `false`, nothing written, when the row
    /// is gone or its lookup is no longer `from` (another process got there first).
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn set_lookup(&self, row_id: i64, from: &str, to: &str) -> Result<bool, Error>;
}

/// A wake-up callback given to [`Backend::watch`].
pub type Wake = std::sync::Arc<dyn Fn() + Send + Sync>;

/// How another process's change reaches this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedMode {
    /// The feed is read on its interval only.
    Poll,
    /// The feed is read on its interval and when the store notifies a commit.
    Notify,
    /// Notifications are set up but their connection is down (being re-made); the feed is
    /// read on its interval meanwhile.
    NotifyDown,
    /// Notifications cannot be had at the listening location (e.g. a pooler in transaction
    /// mode): the feed is read on its interval only.
    NotifyUnavailable,
}

impl FeedMode {
    /// A short name: `poll`, `notify`, `notify-down`, `notify-unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedMode::Poll => "poll",
            FeedMode::Notify => "notify",
            FeedMode::NotifyDown => "notify-down",
            FeedMode::NotifyUnavailable => "notify-unavailable",
        }
    }
}

pub(crate) mod sealed {
    /// Implemented by keyseal's own backends only.
    pub trait Sealed {}
}
