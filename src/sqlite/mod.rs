//! The one place keyseal talks to `SQLite` about connections: opening (files created 0600),
//! pragmas, busy handling with a bounded wait and retries, read-only connections that leave
//! no trace, and the mapping of driver errors to [`Error`].
//!
//! Policy, the same for every component that stores in `SQLite`:
//! - a file is opened with [`open_private`]: created with mode 0600 before `SQLite` would create
//!   it 0644, `synchronous=FULL` (a commit is on disk before it returns), the journal mode left
//!   as it is, so that a caller that refuses the file (wrong master key) leaves it untouched;
//! - the caller switches to WAL with [`enable_wal`] once it has accepted the file;
//! - a busy database is waited for, up to a bound the caller chooses ([`cap_busy_timeout`]),
//!   and whole transactions are retried ([`retry`], [`write`]) within that bound;
//! - every driver error becomes an [`Error`] through [`storage_error`], so the mapping (and
//!   what it keeps of the driver's error) is decided once.
//!
//! The key store's tables are in [`keystore`], the API keys' in [`api_keys`]; the migration
//! opens existing databases with [`open_existing`].

// The API keys' tables.
#[cfg(feature = "issuance")]
pub(crate) mod api_keys;
#[cfg(feature = "keystore")]
pub(crate) mod keystore;
// Read-only opening serves the key store and the migration only.
mod errors;
#[cfg(feature = "keystore")]
mod read_only;

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use crate::{Error, StorageKind};
pub(crate) use errors::{is_busy, storage_error, storage_error_saying};
#[cfg(feature = "keystore")]
pub(crate) use read_only::open_read_only;

/// The longest busy timeout used: `SQLite` takes it in milliseconds as an `i32`.
pub(crate) const MAX_BUSY_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 16;

/// `timeout`, cut to [`MAX_BUSY_TIMEOUT`] (one day).
pub(crate) fn cap_busy_timeout(timeout: Duration) -> Duration {
    timeout.min(MAX_BUSY_TIMEOUT)
}

/// A failure inside a transaction: from the database (retried while busy) or final.
pub(crate) enum TxError {
    /// From `SQLite`.
    Db(rusqlite::Error),
    /// Decided by keyseal: returned as it is, never retried.
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

/// Creates the folder that will hold the database file of `path`, if any is named.
///
/// # Errors
/// [`Error::Storage`] when the folder cannot be created.
#[cfg(feature = "keystore")]
pub(crate) fn create_parent_dir(path: &Path) -> Result<(), Error> {
    if let Some(parent) = crate::db_path::file_of(path)
        .as_deref()
        .and_then(Path::parent)
    {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::storage_caused_by(
                    StorageKind::Unavailable,
                    format!("cannot create folder {}: {e}", parent.display()),
                    e,
                )
            })?;
        }
    }
    Ok(())
}

/// A read-write connection to `path` waiting up to `busy_timeout` (capped) for locks.
///
/// # Errors
/// [`Error::Storage`] when `SQLite` cannot open the file.
pub(crate) fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection, Error> {
    let conn = Connection::open(path)
        .map_err(|e| storage_error_saying(format!("cannot open {}: {e}", path.display()), &e))?;
    conn.busy_timeout(cap_busy_timeout(busy_timeout))
        .map_err(|e| storage_error(&e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// A connection to `path` that refuses every write (`query_only`), for readers that must never
/// change the file, waiting up to `busy_timeout` (capped) for locks.
///
/// # Errors
/// [`Error::Storage`] when `SQLite` cannot open the file.
#[cfg(feature = "issuance")]
pub(crate) fn connect_query_only(path: &Path, busy_timeout: Duration) -> Result<Connection, Error> {
    let conn = connect(path, busy_timeout)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| storage_error(&e))?;
    Ok(conn)
}

/// Runs `f` with `conn` waiting up to `wait` (capped) for locks, then puts its usual
/// `busy_timeout` back, whatever `f` returned.
///
/// # Errors
/// [`Error::Storage`] when the wait cannot be set; otherwise `f`'s error.
#[cfg(feature = "issuance")]
pub(crate) fn with_busy_timeout<T>(
    conn: &mut Connection,
    wait: Duration,
    busy_timeout: Duration,
    f: impl FnOnce(&mut Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    conn.busy_timeout(cap_busy_timeout(wait))
        .map_err(|e| storage_error(&e))?;
    let result = f(conn);
    conn.busy_timeout(cap_busy_timeout(busy_timeout))
        .map_err(|e| storage_error(&e))?;
    result
}

/// Opens (creating it with mode 0600 if missing; its folder must exist) a database that holds
/// secrets, with `synchronous=FULL` and the journal mode unchanged: nothing in an existing
/// file is written until the caller writes, so a caller that refuses the file leaves it as it
/// was. Switch to WAL with [`enable_wal`] once the file is accepted.
///
/// # Errors
/// [`Error::Storage`] when the file cannot be created or opened.
pub(crate) fn open_private(path: &Path, busy_timeout: Duration) -> Result<Connection, Error> {
    // Created 0600 before SQLite would create it 0644 (its -wal and -shm follow).
    crate::file_mode::prepare_private_db(path)?;
    let conn = connect(path, busy_timeout)?;
    // Durable: every commit is fsynced before it returns (a per-connection setting).
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| storage_error(&e))?;
    Ok(conn)
}

/// Switches the file to WAL (readers never wait for the writer), retrying while other
/// connections write, for at most `busy_timeout`.
///
/// # Errors
/// [`Error::Storage`] when the database stays busy or refuses WAL (an in-memory database
/// reports `memory` and is accepted).
pub(crate) fn enable_wal(conn: &Connection, busy_timeout: Duration) -> Result<(), Error> {
    retry(busy_timeout, || {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") || mode.eq_ignore_ascii_case("memory") {
            Ok(())
        } else {
            Err(TxError::App(Error::storage(
                StorageKind::Other,
                format!("cannot switch the database to WAL (journal mode {mode})"),
            )))
        }
    })
}

/// Runs `f`, retrying while the database is busy, for at most `busy_timeout` overall.
///
/// # Errors
/// The [`TxError::App`] error `f` returned; [`Error::Storage`] for a database error, or when
/// the database is still busy at the deadline.
pub(crate) fn retry<T>(
    busy_timeout: Duration,
    mut f: impl FnMut() -> Result<T, TxError>,
) -> Result<T, Error> {
    let busy_timeout = cap_busy_timeout(busy_timeout);
    let deadline = Instant::now() + busy_timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(TxError::App(e)) => return Err(e),
            Err(TxError::Db(e)) if is_busy(&e) => {
                if Instant::now() >= deadline {
                    return Err(storage_error_saying(
                        format!(
                            "database busy: locked by another connection or process for more \
                             than {busy_timeout:?} ({e})"
                        ),
                        &e,
                    ));
                }
                sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(TxError::Db(e)) => return Err(storage_error(&e)),
        }
    }
}

/// Runs `f` in an immediate (write-locked) transaction and commits, retrying the whole
/// transaction while the database is busy (see [`retry`]). An error from `f` rolls back.
///
/// # Errors
/// As [`retry`].
pub(crate) fn write<T>(
    conn: &mut Connection,
    busy_timeout: Duration,
    mut f: impl FnMut(&rusqlite::Transaction<'_>) -> Result<T, TxError>,
) -> Result<T, Error> {
    retry(busy_timeout, || {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    })
}

/// Opens the existing database `db` (never creating one) for a tool that works on the
/// caller's own tables: read-write, or with `read_only` through [`open_read_only`] so that
/// nothing on disk changes. Waits up to `busy_timeout` (capped) for locks.
///
/// # Errors
/// [`Error::InvalidArgument`] when `db` does not exist (or, read-only, is not UTF-8);
/// [`Error::Storage`] when `SQLite` cannot open it.
#[cfg(feature = "keystore")]
pub(crate) fn open_existing(
    db: &Path,
    read_only: bool,
    busy_timeout: Duration,
) -> Result<Connection, Error> {
    if !db.exists() {
        return Err(Error::InvalidArgument {
            what: format!("database {} does not exist", db.display()),
        });
    }
    let conn = if read_only {
        open_read_only(db)?
    } else {
        Connection::open(db).map_err(|e| storage_error(&e))?
    };
    conn.busy_timeout(cap_busy_timeout(busy_timeout))
        .map_err(|e| storage_error(&e))?;
    Ok(conn)
}
