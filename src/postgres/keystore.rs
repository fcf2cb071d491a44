//! The key store's PostgreSQL backend.
//!
//! Tables (made by the schema migrations): `encryption_keys(user_id TEXT PRIMARY KEY,
//! encrypted_key BYTEA, created_at TEXT, master_key_id TEXT)`, the same columns as `SQLite`'s,
//! `keyseal_keystore_meta(name TEXT PRIMARY KEY, value BYTEA)` holding the legacy check value,
//! `keyseal_master_keys` and `keyseal_key_versions` (see `keystore_keyring.rs`).
//! - insert: one transaction that reads the check value `FOR SHARE` and its master key's row
//!   (the guard), inserts the batch with
//!   `INSERT … SELECT … FROM unnest(…) ORDER BY user_id ON CONFLICT DO NOTHING` (one
//!   statement; sorted so that two batches never deadlock), then re-reads the stored blobs;
//! - rotation: one transaction that locks the check value `FOR UPDATE` (excluding every
//!   insert, which reads it `FOR SHARE`), reads every row, rewrites them with `unnest`
//!   updates in batches, stores the new check value and commits: all or nothing.

use std::sync::Arc;
use std::time::Duration;

use super::errors::TxError;
use super::keystore_keyring as keyring;
use super::pool::{write_tx, Conn, Shared};
use super::query::p;
use super::runtime::block;
use crate::keystore::backend::{
    sealed, Backend, CheckState, FullRow, Guard, KeyState, Keyring, MasterKeyRow, NewRow, Opened,
    Retired, Rewrapped, Rotation, StateChange, StoredRow, VersionRow, Written,
};
use crate::keystore::WRAPPED_LEN;
use crate::{Error, StorageKind};

const SELECT_CHECK: &str = "SELECT value FROM keyseal_keystore_meta WHERE name = 'master_check'";
const SELECT_KEY: &str =
    "SELECT user_id, encrypted_key, master_key_id FROM encryption_keys WHERE user_id = $1";
/// Group commit batches in flight at once (within the pool's connections).
const CONCURRENT_WRITERS: usize = 8;
/// Rows rewritten per statement in a rotation.
pub(super) const ROTATION_BATCH: usize = 1024;

/// The PostgreSQL implementation of [`Backend`].
pub(crate) struct PgKeyStore {
    shared: Arc<Shared>,
    busy_timeout: Duration,
}

impl sealed::Sealed for PgKeyStore {}

/// The check value, read `FOR SHARE` (a rotation's transaction holds it `FOR UPDATE`), and
/// the insert of the batch only if it is the expected one: one statement, so that a batch
/// costs one round trip. Returns the check value as read (no row: none stored).
/// The guard (the check value, then the master key's row, both `FOR SHARE`, in the order a
/// rotation locks them) and the insert, in one statement.
const INSERT_CHECKED: &str = "WITH chk AS (SELECT value FROM keyseal_keystore_meta \
     WHERE name = 'master_check' FOR SHARE), \
     mk AS (SELECT id, check_value, retired FROM keyseal_master_keys \
     WHERE id = $5 AND EXISTS (SELECT 1 FROM chk) FOR SHARE), \
     ins AS (INSERT INTO encryption_keys (user_id, encrypted_key, created_at, master_key_id) \
     SELECT n.u, n.b, n.c, $5 FROM unnest($1::text[], $2::bytea[], $3::text[]) AS n(u, b, c) \
     WHERE (SELECT check_value FROM mk) = $4 AND (SELECT NOT retired FROM mk) \
     ORDER BY 1 ON CONFLICT (user_id) DO NOTHING) \
     SELECT id, check_value, retired FROM mk";
/// The blobs stored for a batch, read after its insert in the same transaction (a statement
/// of its own: its snapshot sees rows other writers committed while the insert waited).
const SELECT_MANY: &str = "SELECT user_id, encrypted_key, master_key_id FROM encryption_keys \
     WHERE user_id = ANY($1::text[])";

impl PgKeyStore {
    /// [`Backend::insert_if_absent`] as one pipeline: `BEGIN`, the checked insert, the
    /// re-read and `COMMIT` are sent together and cost one round trip and one WAL flush (the
    /// server runs them in order; a failed statement makes the `COMMIT` a rollback).
    /// Deadlocks and serialization failures retry within the busy timeout.
    async fn insert_pipelined(
        &self,
        guard: Guard<'_>,
        ids: &[&str],
        blobs: &[&[u8]],
        created: &[&str],
    ) -> Result<Written<Vec<StoredRow>>, Error> {
        let db = self.db();
        let deadline = std::time::Instant::now() + self.busy_timeout;
        let mut conn = self.shared.conn(self.busy_timeout).await?;
        loop {
            if conn.is_broken() {
                // Died in the pool (a server restart): nothing was sent on it yet.
                conn = self.shared.conn(self.busy_timeout).await?;
            }
            let insert_params = [
                p(&ids),
                p(&blobs),
                p(&created),
                p(&guard.check),
                p(&guard.master_id),
            ];
            let select_params = [p(&ids)];
            // With a statement cache, prepared first: the pipeline must not wait inside.
            conn.prepare_ahead(INSERT_CHECKED, &insert_params)
                .await
                .map_err(&db)?;
            conn.prepare_ahead(SELECT_MANY, &select_params)
                .await
                .map_err(&db)?;
            let begin = super::pool::begin_sql(self.busy_timeout);
            conn.set_in_tx(true);
            let c = &conn;
            let (opened, checked, found, committed) = futures_util::future::join4(
                c.batch(&begin),
                c.query_opt(INSERT_CHECKED, &insert_params),
                c.query(SELECT_MANY, &select_params),
                c.batch("COMMIT"),
            )
            .await;
            // All four were sent: a connection lost before the answer leaves the outcome
            // unknown, whichever answer it cut off.
            let committed = match conn.committed(committed) {
                Err(TxError::App(e)) => return Err(e),
                other => other,
            };
            let outcome = opened
                .and(checked)
                .and_then(|c| Ok((c, found?, committed?)));
            let (checked, found, ()) = match outcome {
                Ok(v) => v,
                Err(TxError::Db(e))
                    if super::errors::is_transient(&e) && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                Err(e) => return Err(db(e)),
            };
            let key = checked.map(|r| MasterKeyRow {
                id: r.get(0),
                check: r.get(1),
                retired: r.get(2),
            });
            match &key {
                Some(k) if !k.retired && k.check == guard.check => {}
                _ => return Ok(Written::CheckChanged(key)),
            }
            let found: std::collections::HashMap<String, StoredRow> =
                found.iter().map(|r| (r.get(0), stored_row(r))).collect();
            let stored = ids
                .iter()
                .map(|id| {
                    found.get(*id).cloned().ok_or_else(|| {
                        Error::storage(
                            StorageKind::Other,
                            "a row inserted in this transaction could not be read back",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Written::Done(stored));
        }
    }

    /// Opens the store at `url` (sharing the process's pool for it) and makes sure its schema
    /// is current (see [`super::schema::ensure`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL that cannot be read; [`Error::Storage`] when the
    /// server cannot be reached or refuses the login, or the schema cannot be used.
    pub(crate) fn open(url: &str, busy_timeout: Duration) -> Result<Self, Error> {
        let shared = super::pool::shared(url)?;
        block(shared.ensure_schema(busy_timeout))??;
        Ok(PgKeyStore {
            shared,
            busy_timeout,
        })
    }

    /// The check state of the store at `url`, read without writing anything (no migration,
    /// no table created); `None` when the database holds no key store yet.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL that cannot be read; [`Error::Storage`] when the
    /// server cannot be reached or read.
    pub(crate) fn peek_check_state(
        url: &str,
        busy_timeout: Duration,
    ) -> Result<Option<CheckState>, Error> {
        let shared = super::pool::shared(url)?;
        block(async {
            let conn = shared.conn(busy_timeout).await?;
            let db = |e: TxError| shared.tx_error(e);
            let exists: bool = conn
                .query_one(
                    "SELECT to_regclass('encryption_keys') IS NOT NULL \
                     AND to_regclass('keyseal_keystore_meta') IS NOT NULL",
                    &[],
                )
                .await
                .map_err(db)?
                .get(0);
            if !exists {
                return Ok(None);
            }
            match state_of(&conn).await.map_err(db)? {
                CheckState::Absent { first_row: None } => Ok(None),
                state => Ok(Some(state)),
            }
        })?
    }

    /// The URL without its password.
    pub(crate) fn display(&self) -> &str {
        &self.shared.display
    }

    pub(super) fn db(&self) -> impl Fn(TxError) -> Error + '_ {
        |e| self.shared.tx_error(e)
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(super) fn busy_timeout(&self) -> Duration {
        self.busy_timeout
    }
}

/// A `user_id, encrypted_key, master_key_id` row.
pub(super) fn stored_row(r: &tokio_postgres::Row) -> StoredRow {
    StoredRow {
        user_id: r.get(0),
        wrapped: r.get(1),
        master_id: r.get(2),
    }
}

pub(super) async fn read_check(conn: &Conn, suffix: &str) -> Result<Option<Vec<u8>>, TxError> {
    Ok(conn
        .query_opt(&format!("{SELECT_CHECK}{suffix}"), &[])
        .await?
        .map(|r| r.get::<_, Vec<u8>>(0)))
}

/// The check state: the check value, else the oldest row of the right length, else the
/// oldest row ("oldest" by `created_at`, then user id: PostgreSQL has no row order).
async fn state_of(conn: &Conn) -> Result<CheckState, TxError> {
    if let Some(check) = read_check(conn, "").await? {
        return Ok(CheckState::Present(check));
    }
    let first = |filter: &'static str| async move {
        conn.query_opt(
            &format!(
                "SELECT user_id, encrypted_key, master_key_id FROM encryption_keys {filter} \
                     ORDER BY created_at, user_id LIMIT 1"
            ),
            &[],
        )
        .await
        .map(|r| r.as_ref().map(stored_row))
    };
    let right_length: &'static str = match WRAPPED_LEN {
        60 => "WHERE length(encrypted_key) = 60",
        _ => "WHERE false",
    };
    let first_row = match first(right_length).await? {
        Some(row) => Some(row),
        None => first("").await?,
    };
    Ok(CheckState::Absent { first_row })
}

impl Backend for PgKeyStore {
    fn check_state(&self) -> Result<CheckState, Error> {
        let db = self.db();
        block(async {
            let conn = self.shared.conn(self.busy_timeout).await?;
            state_of(&conn).await.map_err(&db)
        })?
    }

    fn confirm_open(&self, seen: &CheckState, new_check: Option<&[u8]>) -> Result<Opened, Error> {
        block(async {
            write_tx!(self.shared, self.busy_timeout, |conn| {
                // The check row (or its absence) is locked against other openers.
                conn.execute(
                    "LOCK TABLE keyseal_keystore_meta IN SHARE ROW EXCLUSIVE MODE",
                    &[],
                )
                .await?;
                let now = state_of(conn).await?;
                if now != *seen {
                    // Nothing was written: committing the empty transaction is harmless.
                    return Ok(Opened::Changed(now));
                }
                if let Some(check) = new_check {
                    conn.execute(
                        "INSERT INTO keyseal_keystore_meta (name, value) \
                             VALUES ('master_check', $1) ON CONFLICT DO NOTHING",
                        &[p(&check)],
                    )
                    .await?;
                }
                let stored = read_check(conn, "").await?.ok_or_else(|| {
                    TxError::App(Error::storage(
                        StorageKind::Other,
                        "the master key check value could not be stored",
                    ))
                })?;
                Opened::Stored(stored)
            })
        })?
    }

    fn load(&self, user_id: &str) -> Result<Option<StoredRow>, Error> {
        block(async {
            let row = self
                .shared
                .read(self.busy_timeout, false, |conn| async move {
                    conn.query_opt(SELECT_KEY, &[p(&user_id)]).await
                })
                .await?;
            Ok(row.as_ref().map(stored_row))
        })?
    }

    fn insert_if_absent(
        &self,
        guard: Guard<'_>,
        rows: &[NewRow<'_>],
    ) -> Result<Written<Vec<StoredRow>>, Error> {
        let ids: Vec<&str> = rows.iter().map(|r| r.user_id).collect();
        let blobs: Vec<&[u8]> = rows.iter().map(|r| r.wrapped.as_slice()).collect();
        let created: Vec<&str> = rows.iter().map(|r| r.created_at).collect();
        block(self.insert_pipelined(guard, &ids, &blobs, &created))?
    }

    fn keyring(&self) -> Result<Keyring, Error> {
        keyring::keyring(self)
    }

    fn add_master_key(&self, key: &MasterKeyRow, legacy: bool) -> Result<MasterKeyRow, Error> {
        keyring::add_master_key(self, key, legacy)
    }

    fn versions(&self, owner: &str) -> Result<Vec<VersionRow>, Error> {
        keyring::versions(self, owner)
    }

    fn insert_version(
        &self,
        guard: Guard<'_>,
        row: &VersionRow,
    ) -> Result<Written<VersionRow>, Error> {
        keyring::insert_version(self, guard, row)
    }

    fn add_version(
        &self,
        guard: Guard<'_>,
        owner: &str,
        first: u32,
        wrapped: &[u8],
    ) -> Result<Written<VersionRow>, Error> {
        keyring::add_version(self, guard, owner, first, wrapped)
    }

    fn change_state(
        &self,
        owner: &str,
        version: u32,
        from: KeyState,
        to: KeyState,
    ) -> Result<StateChange, Error> {
        keyring::change_state(self, owner, version, from, to)
    }

    fn stale_rows(
        &self,
        master_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRow>, Error> {
        keyring::stale_rows(self, master_id, after, limit)
    }

    fn stale_versions(
        &self,
        master_id: &str,
        after: Option<(&str, u32)>,
        limit: usize,
    ) -> Result<Vec<VersionRow>, Error> {
        keyring::stale_versions(self, master_id, after, limit)
    }

    fn store_rewrapped(&self, guard: Guard<'_>, rows: &[Rewrapped]) -> Result<Written<u64>, Error> {
        keyring::store_rewrapped(self, guard, rows)
    }

    fn usage(&self) -> Result<Vec<(Option<String>, u64)>, Error> {
        keyring::usage(self)
    }

    fn retire_master_key(
        &self,
        id: &str,
        untagged_rows_need_it: bool,
        new_legacy: Option<&MasterKeyRow>,
    ) -> Result<Retired, Error> {
        keyring::retire(self, id, untagged_rows_need_it, new_legacy)
    }

    fn shared_with_python(&self) -> Result<Option<bool>, Error> {
        keyring::shared_with_python(self)
    }

    fn set_shared_with_python(&self, shared: bool) -> Result<(), Error> {
        keyring::set_shared_with_python(self, shared)
    }

    fn begin_rotation(&self) -> Result<Box<dyn Rotation + '_>, Error> {
        let db = self.db();
        let conn = block(async {
            let mut conn = self.shared.conn(self.busy_timeout).await?;
            conn.set_limit(super::pool::BULK_ROUND_TRIP);
            let locked = async {
                conn.begin(self.busy_timeout).await?;
                // Excludes every insert and rewrap (they read the check value FOR SHARE) until
                // commit, and locks the master keys it retires.
                conn.execute(
                    "LOCK TABLE keyseal_keystore_meta IN SHARE ROW EXCLUSIVE MODE",
                    &[],
                )
                .await?;
                // In the order every guarded write takes them: the check value, then the keys.
                let check = read_check(&conn, " FOR UPDATE").await?;
                conn.execute("SELECT id FROM keyseal_master_keys FOR UPDATE", &[])
                    .await?;
                Ok(check)
            }
            .await;
            match locked {
                Ok(_) => Ok(conn),
                Err(e) => {
                    conn.rollback().await;
                    Err(db(e))
                }
            }
        })??;
        Ok(Box::new(super::keystore_rotation::PgRotation {
            store: self,
            conn: Some(conn),
        }))
    }

    fn export(&self) -> Result<(Option<Vec<u8>>, Vec<FullRow>), Error> {
        let db = self.db();
        block(async {
            let mut conn = self.shared.conn(self.busy_timeout).await?;
            conn.set_limit(super::pool::BULK_ROUND_TRIP);
            let read = async {
                conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                let check = read_check(&conn, "").await?;
                let rows = conn
                    .query(
                        "SELECT user_id, encrypted_key, created_at, master_key_id \
                         FROM encryption_keys ORDER BY created_at, user_id",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|r| FullRow {
                        user_id: r.get(0),
                        wrapped: r.get(1),
                        created_at: r.get(2),
                        master_id: r.get(3),
                    })
                    .collect();
                conn.batch("COMMIT").await?;
                Ok::<_, TxError>((check, rows))
            };
            match read.await {
                Ok(v) => Ok(v),
                Err(e) => {
                    conn.rollback().await;
                    Err(db(e))
                }
            }
        })?
    }

    fn undo_import(&self, check: &[u8], user_ids: &[String]) -> Result<(), Error> {
        block(async {
            write_tx!(
                self.shared,
                self.busy_timeout,
                limit = Some(super::pool::BULK_ROUND_TRIP),
                |conn| {
                    if read_check(conn, " FOR UPDATE").await?.as_deref() == Some(check) {
                        conn.execute(
                            "DELETE FROM encryption_keys WHERE user_id = ANY($1::text[])",
                            &[p(&user_ids)],
                        )
                        .await?;
                        conn.execute(
                            "DELETE FROM keyseal_keystore_meta WHERE name = 'master_check'",
                            &[],
                        )
                        .await?;
                    }
                }
            )
        })?
    }

    fn import(&self, check: &[u8], rows: &[FullRow]) -> Result<bool, Error> {
        let ids: Vec<&str> = rows.iter().map(|r| r.user_id.as_str()).collect();
        let blobs: Vec<&[u8]> = rows.iter().map(|r| r.wrapped.as_slice()).collect();
        let created: Vec<&str> = rows.iter().map(|r| r.created_at.as_str()).collect();
        let masters: Vec<Option<&str>> = rows.iter().map(|r| r.master_id.as_deref()).collect();
        let (ids, blobs, created, masters) = (&ids, &blobs, &created, &masters);
        block(async {
            write_tx!(
                self.shared,
                self.busy_timeout,
                limit = Some(super::pool::BULK_ROUND_TRIP),
                |conn| {
                    conn.execute(
                        "LOCK TABLE keyseal_keystore_meta IN SHARE ROW EXCLUSIVE MODE",
                        &[],
                    )
                    .await?;
                    let there: bool = conn.query_one(
                        "SELECT EXISTS (SELECT 1 FROM encryption_keys) \
                         OR EXISTS (SELECT 1 FROM keyseal_keystore_meta WHERE name = 'master_check')",
                        &[],)
                    .await?
                    .get(0);
                    if there {
                        return Ok(false);
                    }
                    conn.execute(
                    "INSERT INTO keyseal_keystore_meta (name, value) VALUES ('master_check', $1)",
                    &[p(&check)],
                )
                .await?;
                    for chunk in 0..ids.len().div_ceil(ROTATION_BATCH) {
                        let range =
                            chunk * ROTATION_BATCH..((chunk + 1) * ROTATION_BATCH).min(ids.len());
                        conn.execute(
                            "INSERT INTO encryption_keys \
                             (user_id, encrypted_key, created_at, master_key_id) \
                             SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[])",
                            &[
                                p(&&ids[range.clone()]),
                                p(&&blobs[range.clone()]),
                                p(&&created[range.clone()]),
                                p(&&masters[range]),
                            ],
                        )
                        .await?;
                    }
                    true
                }
            )
        })?
    }

    /// PostgreSQL merges the WAL flushes of concurrent commits: several batches in flight
    /// share one disk flush, which a single leader waiting for each flush cannot.
    fn concurrent_writers(&self) -> usize {
        CONCURRENT_WRITERS
    }

    fn count(&self) -> Result<u64, Error> {
        let db = self.db();
        block(async {
            let conn = self.shared.conn(self.busy_timeout).await?;
            let n: i64 = conn
                .query_one("SELECT COUNT(*) FROM encryption_keys", &[])
                .await
                .map_err(&db)?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })?
    }
}
