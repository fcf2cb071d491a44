//! The key store's `SQLite` backend: one writer connection, a small pool of reader connections,
//! WAL once the master key is verified, `synchronous=FULL`, prepared statements, and bounded
//! retries when another process holds the write lock (all through [`super`]).
//!
//! Tables: `encryption_keys` exactly as the Python module creates it, and
//! `keyseal_keystore_meta(name TEXT PRIMARY KEY, value BLOB NOT NULL)` for the master key check
//! value. Nothing else in the file is touched, so other components (the API key tables) can
//! share it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{connect, open_private, retry, storage_error, write, TxError};
use crate::keystore::backend::{
    sealed, Backend, CheckState, FullRow, NewRow, Opened, Rewrapped, Rotation, StoredRow, Written,
};
use crate::keystore::WRAPPED_LEN;
use crate::{Error, StorageKind};

/// The table, byte for byte as the Python module creates it, so that `sqlite_master` reads the
/// same whichever side created the file.
const CREATE_KEYS: &str = "CREATE TABLE IF NOT EXISTS encryption_keys (\nuser_id TEXT PRIMARY KEY,\nencrypted_key BLOB NOT NULL,\ncreated_at TEXT NOT NULL\n)";
const CREATE_META: &str =
    "CREATE TABLE IF NOT EXISTS keyseal_keystore_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)";
const CHECK_NAME: &str = "master_check";
const SELECT_CHECK: &str = "SELECT value FROM keyseal_keystore_meta WHERE name = 'master_check'";
const SELECT_KEY: &str = "SELECT encrypted_key FROM encryption_keys WHERE user_id = ?1";
const SELECT_ALL: &str = "SELECT user_id, encrypted_key FROM encryption_keys";
const INSERT_KEY: &str = "INSERT OR IGNORE INTO encryption_keys (user_id, encrypted_key, created_at) VALUES (?1, ?2, ?3)";
/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A blob column read as bytes (Python writes BLOB; accept TEXT too; anything else is empty and
/// so reported as a corrupt key by the caller).
fn blob_at(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        _ => Vec::new(),
    })
}

fn stored_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
        user_id: r.get(0)?,
        wrapped: blob_at(r, 1)?,
    })
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

fn read_check(conn: &Connection) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(SELECT_CHECK)?
        .query_row([], |r| blob_at(r, 0))
        .optional()
}

fn first_row(conn: &Connection, filter: &str) -> rusqlite::Result<Option<StoredRow>> {
    conn.query_row(
        &format!("{SELECT_ALL} {filter} ORDER BY rowid LIMIT 1"),
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
    let has = |table: &str| {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    let (keys, meta) = (has("encryption_keys")?, has("keyseal_keystore_meta")?);
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

/// The check state of the store at `path`, read without changing anything on disk (no file,
/// table, journal mode or side file created); `None` when there is no store there yet.
///
/// # Errors
/// As [`super::open_read_only`]; [`Error::Storage`] when the file cannot be read.
pub(crate) fn peek_check_state(path: &Path) -> Result<Option<CheckState>, Error> {
    let Some(file) = crate::db_path::file_of(path) else {
        return Ok(None);
    };
    if !file.exists() {
        return Ok(None);
    }
    let conn = super::open_read_only(&file)?;
    state_of(&conn).map_err(|e| storage_error(&e))
}

/// A rotation's write transaction on the writer connection (held until commit or drop).
struct SqliteRotation<'a> {
    conn: MutexGuard<'a, Connection>,
    /// Whether the transaction still needs a `ROLLBACK` when dropped.
    open: bool,
}

impl Drop for SqliteRotation<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report: if even the rollback fails, SQLite rolls back the journal
            // on the next open.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl Rotation for SqliteRotation<'_> {
    fn rows(&mut self) -> Result<(Option<Vec<u8>>, Vec<StoredRow>), Error> {
        let read = || -> rusqlite::Result<_> {
            let check = read_check(&self.conn)?;
            let rows = self
                .conn
                .prepare(SELECT_ALL)?
                .query_map([], stored_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok((check, rows))
        };
        read().map_err(|e| storage_error(&e))
    }

    fn commit(
        mut self: Box<Self>,
        new_check: &[u8],
        rows: &[Rewrapped],
        written: &mut dyn FnMut(usize),
    ) -> Result<(), Error> {
        let conn = &*self.conn;
        let mut write = || -> rusqlite::Result<()> {
            let mut update =
                conn.prepare("UPDATE encryption_keys SET encrypted_key = ?2 WHERE user_id = ?1")?;
            for (done, row) in rows.iter().enumerate() {
                update.execute(params![row.user_id, row.wrapped])?;
                if (done + 1) % 1024 == 0 {
                    written(done + 1);
                }
            }
            written(rows.len());
            conn.execute(
                "INSERT OR REPLACE INTO keyseal_keystore_meta (name, value) VALUES (?1, ?2)",
                params![CHECK_NAME, new_check],
            )?;
            conn.execute_batch("COMMIT")
        };
        // On error, dropping `self` rolls back.
        write().map_err(|e| storage_error(&e))?;
        self.open = false;
        Ok(())
    }
}

impl Backend for SqliteBackend {
    fn check_state(&self) -> Result<CheckState, Error> {
        self.read(|conn| Ok(state_of(conn)?.unwrap_or(CheckState::Absent { first_row: None })))
    }

    fn confirm_open(&self, seen: &CheckState, new_check: Option<&[u8]>) -> Result<Opened, Error> {
        let mut writer = lock(&self.writer);
        let opened = retry(self.busy_timeout, || {
            let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(&format!("{CREATE_KEYS};\n{CREATE_META};"))?;
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
                tx.execute(
                    "INSERT OR IGNORE INTO keyseal_keystore_meta (name, value) \
                     VALUES ('schema_version', 1)",
                    [],
                )?;
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

    fn load(&self, user_id: &str) -> Result<Option<Vec<u8>>, Error> {
        self.read(|conn| {
            conn.prepare_cached(SELECT_KEY)?
                .query_row([user_id], |r| blob_at(r, 0))
                .optional()
        })
    }

    fn insert_if_absent(
        &self,
        expected_check: &[u8],
        rows: &[NewRow<'_>],
    ) -> Result<Written<Vec<Vec<u8>>>, Error> {
        self.write(|tx| {
            let check = read_check(tx)?;
            if check.as_deref() != Some(expected_check) {
                return Ok(Written::CheckChanged(check));
            }
            let mut insert = tx.prepare_cached(INSERT_KEY)?;
            let mut select = tx.prepare_cached(SELECT_KEY)?;
            let mut stored = Vec::with_capacity(rows.len());
            for row in rows {
                insert.execute(params![row.user_id, row.wrapped, row.created_at])?;
                stored.push(select.query_row([row.user_id], |r| blob_at(r, 0))?);
            }
            Ok(Written::Done(stored))
        })
    }

    fn begin_rotation(&self) -> Result<Box<dyn Rotation + '_>, Error> {
        let conn = lock(&self.writer);
        retry(self.busy_timeout, || {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(TxError::Db)
        })?;
        Ok(Box::new(SqliteRotation { conn, open: true }))
    }

    fn export(&self) -> Result<(Option<Vec<u8>>, Vec<FullRow>), Error> {
        self.write(|tx| {
            if state_of(tx)?.is_none() {
                return Ok((None, Vec::new()));
            }
            let check = read_check(tx)?;
            let rows = tx
                .prepare(
                    "SELECT user_id, encrypted_key, created_at FROM encryption_keys ORDER BY rowid",
                )?
                .query_map([], |r| {
                    Ok(FullRow {
                        user_id: r.get(0)?,
                        wrapped: blob_at(r, 1)?,
                        created_at: r.get(2)?,
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
            tx.execute_batch(&format!("{CREATE_KEYS};\n{CREATE_META};"))?;
            let rows_there: i64 =
                tx.query_row("SELECT COUNT(*) FROM encryption_keys", [], |r| r.get(0))?;
            if rows_there > 0 || read_check(tx)?.is_some() {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO keyseal_keystore_meta (name, value) VALUES (?1, ?2)",
                params![CHECK_NAME, check],
            )?;
            let mut insert = tx.prepare(
                "INSERT INTO encryption_keys (user_id, encrypted_key, created_at) VALUES (?1, ?2, ?3)",
            )?;
            for row in rows {
                insert.execute(params![row.user_id, row.wrapped, row.created_at])?;
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
        assert_eq!(
            peek_check_state(&path).unwrap(),
            None,
            "no table was left behind"
        );
    }
}
