//! The key store's `SQLite` backend: one writer connection, a small pool of reader connections,
//! WAL once the master key is verified, `synchronous=FULL`, prepared statements, and bounded
//! retries when another process holds the write lock (all through [`super`]).
//!
//! Tables: `encryption_keys` as the Python module creates it (plus a nullable master key id
//! column), `keyseal_keystore_meta(name TEXT PRIMARY KEY, value BLOB NOT NULL)` for the legacy
//! master key check value, and the master keys and pool key versions (see `schema.rs`).
//! Nothing else in the file is touched, so other components (the API key tables) can share it.

mod keyring;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{connect, open_private, retry, storage_error, write, TxError};
use crate::keystore::backend::{
    sealed, Backend, CheckState, FullRow, Guard, KeyState, Keyring, MasterKeyRow, NewRow, Opened,
    Retired, Rewrapped, Rotation, StateChange, StoredRow, VersionRow, Written,
};
use crate::keystore::WRAPPED_LEN;
use crate::{Error, StorageKind};
use schema::{has_table, read_check, select_all, stored_row, CHECK_NAME, INSERT_KEY, SELECT_KEY};

/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `SQLite` implementation of [`Backend`].
pub(crate) struct SqliteBackend {
    path: PathBuf,
    busy_timeout: Duration,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl sealed::Sealed for SqliteBackend {}

impl SqliteBackend {
    /// Opens (creating if needed) the file and its folder; nothing in an existing file is
    /// changed until [`Backend::confirm_open`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a database that would live only in memory;
    /// [`Error::Storage`] when the folder or file cannot be created or opened.
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Self, Error> {
        if crate::db_path::is_temporary(path) {
            return Err(Error::InvalidArgument {
                what: "the key store needs a file (not empty, not :memory:, not an in-memory \
                       file: URI): keys kept only in memory would be lost"
                    .into(),
            });
        }
        super::create_parent_dir(path)?;
        let busy_timeout = super::cap_busy_timeout(busy_timeout);
        Ok(SqliteBackend {
            path: path.to_path_buf(),
            busy_timeout,
            writer: Mutex::new(open_private(path, busy_timeout)?),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on a pooled reader connection.
    fn read<T>(&self, mut f: impl FnMut(&Connection) -> rusqlite::Result<T>) -> Result<T, Error> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.path, self.busy_timeout)?,
        };
        let result = retry(self.busy_timeout, || f(&conn).map_err(TxError::Db));
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Runs `f` in one write transaction on the writer connection.
    fn write<T>(
        &self,
        f: impl FnMut(&rusqlite::Transaction<'_>) -> Result<T, TxError>,
    ) -> Result<T, Error> {
        write(&mut lock(&self.writer), self.busy_timeout, f)
    }
}

fn first_row(conn: &Connection, filter: &str) -> rusqlite::Result<Option<StoredRow>> {
    conn.query_row(
        &format!("{} {filter} ORDER BY rowid LIMIT 1", select_all(conn)?),
        [],
        stored_row,
    )
    .optional()
}

fn oldest_row(conn: &Connection) -> rusqlite::Result<CheckState> {
    let right_length = format!("WHERE length(encrypted_key) = {WRAPPED_LEN}");
    let first_row = match first_row(conn, &right_length)? {
        Some(row) => Some(row),
        None => first_row(conn, "")?,
    };
    Ok(CheckState::Absent { first_row })
}

/// The check state in `conn`; `None` when the file holds neither key store table.
fn state_of(conn: &Connection) -> rusqlite::Result<Option<CheckState>> {
    let (keys, meta) = (
        has_table(conn, "encryption_keys")?,
        has_table(conn, "keyseal_keystore_meta")?,
    );
    if meta {
        if let Some(check) = read_check(conn)? {
            return Ok(Some(CheckState::Present(check)));
        }
    }
    // A file written by the Python module has only its table: its oldest row decides.
    if keys {
        return oldest_row(conn).map(Some);
    }
    Ok(meta.then_some(CheckState::Absent { first_row: None }))
}

/// The check state and master keys of the store at `path`, read without changing anything on
/// disk (no file, table, journal mode or side file created); `None` when there is no store
/// there yet.
///
/// # Errors
/// As [`super::open_read_only`]; [`Error::Storage`] when the file cannot be read.
pub(crate) fn peek_state(path: &Path) -> Result<Option<(CheckState, Keyring)>, Error> {
    let Some(file) = crate::db_path::file_of(path) else {
        return Ok(None);
    };
    if !file.exists() {
        return Ok(None);
    }
    let conn = super::open_read_only(&file)?;
    let read = || -> rusqlite::Result<_> {
        Ok(match state_of(&conn)? {
            Some(state) => Some((state, schema::read_keyring(&conn)?)),
            None => None,
        })
    };
    read().map_err(|e| storage_error(&e))
}

impl Backend for SqliteBackend {
    fn check_state(&self) -> Result<CheckState, Error> {
        self.read(|conn| Ok(state_of(conn)?.unwrap_or(CheckState::Absent { first_row: None })))
    }

    fn confirm_open(&self, seen: &CheckState, new_check: Option<&[u8]>) -> Result<Opened, Error> {
        let mut writer = lock(&self.writer);
        let opened = retry(self.busy_timeout, || {
            let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            schema::upgrade(&tx)?;
            let now = state_of(&tx)?.unwrap_or(CheckState::Absent { first_row: None });
            if now != *seen {
                // Dropping `tx` rolls back: not even the tables stay.
                return Ok(Opened::Changed(now));
            }
            if let Some(check) = new_check {
                tx.execute(
                    "INSERT OR IGNORE INTO keyseal_keystore_meta (name, value) VALUES (?1, ?2)",
                    params![CHECK_NAME, check],
                )?;
            }
            if read_check(&tx)?.is_some() {
                schema::record_version(&tx)?;
            }
            let stored = read_check(&tx)?.ok_or_else(|| {
                TxError::App(Error::storage(
                    StorageKind::Other,
                    "the master key check value could not be stored",
                ))
            })?;
            tx.commit()?;
            Ok(Opened::Stored(stored))
        })?;
        if matches!(opened, Opened::Stored(_)) {
            // Only now that the master key is verified: a refused open leaves the file as it
            // was, journal mode included.
            super::enable_wal(&writer, self.busy_timeout)?;
        }
        Ok(opened)
    }

    fn load(&self, user_id: &str) -> Result<Option<StoredRow>, Error> {
        self.read(|conn| {
            conn.prepare_cached(SELECT_KEY)?
                .query_row([user_id], stored_row)
                .optional()
        })
    }

    fn keyring(&self) -> Result<Keyring, Error> {
        self.read(schema::read_keyring)
    }

    fn add_master_key(&self, key: &MasterKeyRow, legacy: bool) -> Result<MasterKeyRow, Error> {
        self.write(|tx| keyring::add_master_key(tx, key, legacy).map_err(TxError::Db))
    }

    fn versions(&self, owner: &str) -> Result<Vec<VersionRow>, Error> {
        self.read(|conn| schema::read_versions(conn, Some(owner)))
    }

    fn insert_version(
        &self,
        guard: Guard<'_>,
        row: &VersionRow,
    ) -> Result<Written<VersionRow>, Error> {
        self.write(|tx| keyring::insert_version(tx, guard, row).map_err(TxError::Db))
    }

    fn add_version(
        &self,
        guard: Guard<'_>,
        owner: &str,
        first: u32,
        wrapped: &[u8],
    ) -> Result<Written<VersionRow>, Error> {
        self.write(|tx| keyring::add_version(tx, guard, owner, first, wrapped).map_err(TxError::Db))
    }

    fn change_state(
        &self,
        owner: &str,
        version: u32,
        from: KeyState,
        to: KeyState,
    ) -> Result<StateChange, Error> {
        self.write(|tx| keyring::change_state(tx, owner, version, from, to).map_err(TxError::Db))
    }

    fn stale_versions(
        &self,
        master_id: &str,
        after: Option<(&str, u32)>,
        limit: usize,
    ) -> Result<Vec<VersionRow>, Error> {
        self.read(|conn| keyring::stale_versions(conn, master_id, after, limit))
    }

    fn stale_rows(
        &self,
        master_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRow>, Error> {
        self.read(|conn| keyring::stale_rows(conn, master_id, after, limit))
    }

    fn store_rewrapped(&self, guard: Guard<'_>, rows: &[Rewrapped]) -> Result<Written<u64>, Error> {
        self.write(|tx| keyring::store_rewrapped(tx, guard, rows).map_err(TxError::Db))
    }

    fn usage(&self) -> Result<Vec<(Option<String>, u64)>, Error> {
        self.read(keyring::usage)
    }

    fn retire_master_key(
        &self,
        id: &str,
        untagged_rows_need_it: bool,
        new_legacy: Option<&MasterKeyRow>,
    ) -> Result<Retired, Error> {
        self.write(|tx| {
            keyring::retire(tx, id, untagged_rows_need_it, new_legacy).map_err(TxError::Db)
        })
    }

    fn insert_if_absent(
        &self,
        guard: Guard<'_>,
        rows: &[NewRow<'_>],
    ) -> Result<Written<Vec<StoredRow>>, Error> {
        self.write(|tx| {
            if let Err(stored) = keyring::check_guard(tx, guard)? {
                return Ok(Written::CheckChanged(stored));
            }
            let mut insert = tx.prepare_cached(INSERT_KEY)?;
            let mut select = tx.prepare_cached(SELECT_KEY)?;
            let mut stored = Vec::with_capacity(rows.len());
            for row in rows {
                insert.execute(params![
                    row.user_id,
                    row.wrapped,
                    row.created_at,
                    guard.master_id
                ])?;
                stored.push(select.query_row([row.user_id], stored_row)?);
            }
            Ok(Written::Done(stored))
        })
    }

    fn begin_rotation(&self) -> Result<Box<dyn Rotation + '_>, Error> {
        let conn = lock(&self.writer);
        retry(self.busy_timeout, || {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(TxError::Db)
        })?;
        Ok(Box::new(keyring::SqliteRotation::new(conn)))
    }

    fn export(&self) -> Result<(Option<Vec<u8>>, Vec<FullRow>), Error> {
        self.write(|tx| {
            if state_of(tx)?.is_none() {
                return Ok((None, Vec::new()));
            }
            let check = read_check(tx)?;
            let rows = tx
                .prepare(
                    "SELECT user_id, encrypted_key, created_at, master_key_id FROM encryption_keys \
                     ORDER BY rowid",
                )?
                .query_map([], |r| {
                    Ok(FullRow {
                        user_id: r.get(0)?,
                        wrapped: schema::blob_at(r, 1)?,
                        created_at: r.get(2)?,
                        master_id: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok((check, rows))
        })
    }

    fn undo_import(&self, check: &[u8], user_ids: &[String]) -> Result<(), Error> {
        self.write(|tx| {
            if read_check(tx)?.as_deref() != Some(check) {
                return Ok(());
            }
            let mut delete = tx.prepare("DELETE FROM encryption_keys WHERE user_id = ?1")?;
            for user in user_ids {
                delete.execute([user])?;
            }
            tx.execute(
                "DELETE FROM keyseal_keystore_meta WHERE name IN (?1, 'schema_version')",
                [CHECK_NAME],
            )?;
            Ok(())
        })
    }

    fn import(&self, check: &[u8], rows: &[FullRow]) -> Result<bool, Error> {
        let imported = self.write(|tx| {
            schema::upgrade(tx)?;
            let rows_there: i64 =
                tx.query_row("SELECT COUNT(*) FROM encryption_keys", [], |r| r.get(0))?;
            if rows_there > 0 || read_check(tx)?.is_some() {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO keyseal_keystore_meta (name, value) VALUES (?1, ?2)",
                params![CHECK_NAME, check],
            )?;
            schema::record_version(tx)?;
            let mut insert = tx.prepare(
                "INSERT INTO encryption_keys (user_id, encrypted_key, created_at, master_key_id) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for row in rows {
                insert.execute(params![
                    row.user_id,
                    row.wrapped,
                    row.created_at,
                    row.master_id
                ])?;
            }
            Ok(true)
        })?;
        if imported {
            super::enable_wal(&lock(&self.writer), self.busy_timeout)?;
        }
        Ok(imported)
    }

    fn count(&self) -> Result<u64, Error> {
        self.read(|conn| {
            conn.prepare_cached("SELECT COUNT(*) FROM encryption_keys")?
                .query_row([], |r| r.get::<_, i64>(0))
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
    }

    fn shared_with_python(&self) -> Result<Option<bool>, Error> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT value FROM keyseal_keystore_meta WHERE name = 'shared_with_python'",
            )?
            .query_row([], |r| r.get::<_, i64>(0))
            .optional()
            .map(|v| v.map(|v| v != 0))
        })
    }

    fn set_shared_with_python(&self, shared: bool) -> Result<(), Error> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO keyseal_keystore_meta (name, value) \
                 VALUES ('shared_with_python', ?1)",
                [i64::from(shared)],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_is_durable_wal() {
        let dir = tempfile::tempdir().unwrap();
        let backend =
            SqliteBackend::open(&dir.path().join("k.db"), Duration::from_secs(1)).unwrap();
        let seen = backend.check_state().unwrap();
        assert!(matches!(
            backend.confirm_open(&seen, Some(&[1, 2, 3])).unwrap(),
            Opened::Stored(c) if c == [1, 2, 3]
        ));
        let conn = lock(&backend.writer);
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// Another writer changing the state between the read and the confirmation makes the
    /// confirmation write nothing, not even the tables.
    #[test]
    fn confirm_open_on_a_changed_state_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let backend = SqliteBackend::open(&path, Duration::from_secs(1)).unwrap();
        let seen = CheckState::Present(vec![9]);
        let opened = backend.confirm_open(&seen, None).unwrap();
        assert!(matches!(
            opened,
            Opened::Changed(CheckState::Absent { first_row: None })
        ));
        assert_eq!(peek_state(&path).unwrap(), None, "no table was left behind");
    }
}
