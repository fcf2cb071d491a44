//! The `SQLite` backend: one writer connection, a small pool of reader connections, WAL,
//! `synchronous=FULL`, prepared statements, and bounded retries when another process holds the
//! write lock.
//!
//! Tables: `encryption_keys` exactly as the Python module creates it, and
//! `keyseal_keystore_meta(name TEXT PRIMARY KEY, value BLOB NOT NULL)` for the master key check
//! value. Nothing else in the file is touched, so other components (the API key tables) can
//! share it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::backend::{Backend, CheckState, Guard, NewRow, Rewrap};
use super::wrap::WRAPPED_LEN;
use crate::Error;

/// The table, byte for byte as the Python module (seed 000) creates it, so that
/// `sqlite_master` reads the same whichever side created the file.
const CREATE_KEYS: &str = "CREATE TABLE IF NOT EXISTS encryption_keys (\nuser_id TEXT PRIMARY KEY,\nencrypted_key BLOB NOT NULL,\ncreated_at TEXT NOT NULL\n)";
const CREATE_META: &str =
    "CREATE TABLE IF NOT EXISTS keyseal_keystore_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)";
const CHECK_NAME: &str = "master_check";
const SELECT_CHECK: &str = "SELECT value FROM keyseal_keystore_meta WHERE name = 'master_check'";
const SELECT_KEY: &str = "SELECT encrypted_key FROM encryption_keys WHERE user_id = ?1";
const INSERT_KEY: &str = "INSERT OR IGNORE INTO encryption_keys (user_id, encrypted_key, created_at) VALUES (?1, ?2, ?3)";
/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 16;

/// A failure inside a transaction: from the database (maybe worth retrying) or final.
enum TxError {
    Db(rusqlite::Error),
    App(Error),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::App(e)
    }
}

fn storage(e: &rusqlite::Error) -> Error {
    Error::Storage {
        message: e.to_string(),
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

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

/// The `SQLite` implementation of [`Backend`].
pub(crate) struct SqliteBackend {
    path: PathBuf,
    busy_timeout: Duration,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteBackend {
    /// Opens (creating if needed) the file and its folder.
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Self, Error> {
        if crate::db_path::is_temporary(path) {
            return Err(Error::InvalidArgument {
                what: "the key store needs a file (not empty, not :memory:, not an in-memory \
                       file: URI): keys kept only in memory would be lost"
                    .into(),
            });
        }
        if let Some(parent) = crate::db_path::file_of(path)
            .as_deref()
            .and_then(Path::parent)
        {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| Error::Storage {
                    message: format!("cannot create folder {}: {e}", parent.display()),
                })?;
            }
        }
        // Created 0600 before SQLite would create it 0644 (its -wal and -shm follow).
        crate::file_mode::prepare_private_db(path)?;
        let backend = SqliteBackend {
            path: path.to_path_buf(),
            busy_timeout,
            writer: Mutex::new(Self::connect(path, busy_timeout)?),
            readers: Mutex::new(Vec::new()),
        };
        // Durable: every commit is fsynced before it returns (per connection; the file is
        // not changed until the master key has been verified).
        lock(&backend.writer)
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| storage(&e))?;
        Ok(backend)
    }

    /// Switches the file to WAL (readers never wait for the writer). Done only after the
    /// master key was verified, so a refused open leaves the file exactly as it was.
    fn enable_wal(&self) -> Result<(), Error> {
        let conn = lock(&self.writer);
        // Switching needs a moment of exclusive access: retry while others write.
        self.retry(|| {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if mode.eq_ignore_ascii_case("wal") {
                Ok(())
            } else {
                Err(TxError::App(Error::Storage {
                    message: format!("cannot switch the database to WAL (journal mode {mode})"),
                }))
            }
        })
    }

    fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection, Error> {
        let conn = Connection::open(path).map_err(|e| Error::Storage {
            message: format!("cannot open {}: {e}", path.display()),
        })?;
        conn.busy_timeout(busy_timeout).map_err(|e| storage(&e))?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }

    /// Runs `f`, retrying while the database is busy, for at most the busy timeout overall.
    fn retry<T>(&self, mut f: impl FnMut() -> Result<T, TxError>) -> Result<T, Error> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(TxError::App(e)) => return Err(e),
                Err(TxError::Db(e)) if is_busy(&e) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Storage {
                            message: format!(
                                "database busy: locked by another connection or process for \
                                 more than {:?} ({e})",
                                self.busy_timeout
                            ),
                        });
                    }
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TxError::Db(e)) => return Err(storage(&e)),
            }
        }
    }

    /// Runs `f` on a pooled reader connection.
    fn read<T>(&self, mut f: impl FnMut(&Connection) -> rusqlite::Result<T>) -> Result<T, Error> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => Self::connect(&self.path, self.busy_timeout)?,
        };
        let result = self.retry(|| f(&conn).map_err(TxError::Db));
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Runs `f` in an immediate (write-locked) transaction on the writer connection and
    /// commits, retrying the whole transaction while the database is busy.
    fn write<T>(
        &self,
        mut f: impl FnMut(&rusqlite::Transaction<'_>) -> Result<T, TxError>,
    ) -> Result<T, Error> {
        let mut conn = lock(&self.writer);
        self.retry(|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }
}

fn read_check(conn: &Connection) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(SELECT_CHECK)?
        .query_row([], |r| blob_at(r, 0))
        .optional()
}

fn first_row(conn: &Connection, filter: &str) -> rusqlite::Result<Option<(String, Vec<u8>)>> {
    conn.query_row(
        &format!(
            "SELECT user_id, encrypted_key FROM encryption_keys {filter} ORDER BY rowid LIMIT 1"
        ),
        [],
        |r| Ok((r.get::<_, String>(0)?, blob_at(r, 1)?)),
    )
    .optional()
}

/// The check state: the stored check value, else the oldest row of the right length (so that
/// one damaged row does not lock the whole store out), else the oldest row (reported as
/// corrupt).
fn check_state(conn: &Connection) -> rusqlite::Result<CheckState> {
    match read_check(conn)? {
        Some(check) => Ok(CheckState::Present(check)),
        None => oldest_row(conn),
    }
}

fn oldest_row(conn: &Connection) -> rusqlite::Result<CheckState> {
    let right_length = format!("WHERE length(encrypted_key) = {WRAPPED_LEN}");
    let first_row = match first_row(conn, &right_length)? {
        Some(row) => Some(row),
        None => first_row(conn, "")?,
    };
    Ok(CheckState::Absent { first_row })
}

/// The check state of the store at `path`, read without changing anything on disk (no file,
/// table, journal mode or side file created); `None` when there is no store there yet.
pub(crate) fn peek_check_state(path: &Path) -> Result<Option<CheckState>, Error> {
    let Some(file) = crate::db_path::file_of(path) else {
        return Ok(None);
    };
    if !file.exists() {
        return Ok(None);
    }
    let conn = open_read_only(&file)?;
    let has = |table: &str| {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    let read = || -> rusqlite::Result<Option<CheckState>> {
        let (keys, meta) = (has("encryption_keys")?, has("keyseal_keystore_meta")?);
        if meta {
            if let Some(check) = read_check(&conn)? {
                return Ok(Some(CheckState::Present(check)));
            }
        }
        // A file written by the Python module has only its table: its oldest row decides.
        if keys {
            return oldest_row(&conn).map(Some);
        }
        Ok(meta.then_some(CheckState::Absent { first_row: None }))
    };
    read().map_err(|e| storage(&e))
}

/// A read-only connection that leaves no trace. A read-only connection to a WAL database
/// still creates `-wal` and `-shm` beside it (and cannot remove them): when they do not exist,
/// no other connection is open and every row is in the main file, so it is opened immutable
/// (no locks, no side files). Otherwise the side files are already there.
///
/// # Errors
/// [`Error::InvalidArgument`] for a path that is not UTF-8; [`Error::Storage`] when SQLite
/// cannot open the file.
pub(crate) fn open_read_only(db: &Path) -> Result<Connection, Error> {
    let side = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let quiet = is_wal(db) && !side("-wal").exists() && !side("-shm").exists();
    let uri = format!(
        "file:{}?mode=ro{}",
        uri_path(db)?,
        if quiet { "&immutable=1" } else { "" }
    );
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(uri, flags).map_err(|e| storage(&e))
}

/// Whether the file's header says WAL (read and write versions 2).
fn is_wal(db: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(db)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header.starts_with(b"SQLite format 3\0") && header[18] == 2)
}

/// `db` as the path of a `file:` URI: every byte outside the unreserved set and `/` escaped.
fn uri_path(db: &Path) -> Result<String, Error> {
    use std::fmt::Write as _;
    let text = db.to_str().ok_or_else(|| Error::InvalidArgument {
        what: format!("database path {} is not UTF-8", db.display()),
    })?;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Ok(out)
}

impl Backend for SqliteBackend {
    fn initialize(
        &self,
        decide: &mut dyn FnMut(CheckState) -> Result<Option<Vec<u8>>, Error>,
    ) -> Result<Vec<u8>, Error> {
        let check = self.write(|tx| {
            tx.execute_batch(&format!("{CREATE_KEYS};\n{CREATE_META};"))?;
            let state = check_state(tx)?;
            if let Some(check) = decide(state)? {
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
            read_check(tx)?.ok_or_else(|| {
                TxError::App(Error::Storage {
                    message: "the master key check value could not be stored".into(),
                })
            })
        })?;
        self.enable_wal()?;
        Ok(check)
    }

    fn load(&self, user_id: &str) -> Result<Option<Vec<u8>>, Error> {
        self.read(|conn| {
            conn.prepare_cached(SELECT_KEY)?
                .query_row([user_id], |r| blob_at(r, 0))
                .optional()
        })
    }

    fn insert_batch(&self, rows: &[NewRow<'_>], guard: Guard<'_>) -> Result<Vec<Vec<u8>>, Error> {
        self.write(|tx| {
            guard(read_check(tx)?.as_deref())?;
            let mut insert = tx.prepare_cached(INSERT_KEY)?;
            let mut select = tx.prepare_cached(SELECT_KEY)?;
            let mut stored = Vec::with_capacity(rows.len());
            for row in rows {
                insert.execute(params![row.user_id, row.wrapped, row.created_at])?;
                stored.push(select.query_row([row.user_id], |r| blob_at(r, 0))?);
            }
            Ok(stored)
        })
    }

    fn rewrap_all(
        &self,
        guard: Guard<'_>,
        rewrap: Rewrap<'_>,
        new_check: &[u8],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<usize, Error> {
        self.write(|tx| {
            guard(read_check(tx)?.as_deref())?;
            let rows: Vec<(String, Vec<u8>)> = {
                let mut all = tx.prepare("SELECT user_id, encrypted_key FROM encryption_keys")?;
                let mapped = all.query_map([], |r| Ok((r.get::<_, String>(0)?, blob_at(r, 1)?)))?;
                mapped.collect::<rusqlite::Result<_>>()?
            };
            let total = rows.len();
            progress(0, total);
            let mut update =
                tx.prepare("UPDATE encryption_keys SET encrypted_key = ?2 WHERE user_id = ?1")?;
            for (done, (user_id, blob)) in rows.iter().enumerate() {
                let wrapped = rewrap(user_id, blob)?;
                update.execute(params![user_id, wrapped])?;
                if (done + 1) % 1024 == 0 {
                    progress(done + 1, total);
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO keyseal_keystore_meta (name, value) VALUES (?1, ?2)",
                params![CHECK_NAME, new_check],
            )?;
            progress(total, total);
            Ok(total)
        })
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
        backend
            .initialize(&mut |_| Ok(Some(vec![1, 2, 3])))
            .unwrap();
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
}
