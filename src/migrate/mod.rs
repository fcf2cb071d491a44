//! In-place migration of legacy plaintext: encrypts every plaintext value of one column of one
//! table into `v2:` tokens, with per-user keys from a [`KeyStore`] or the pool key. The table
//! is in a SQLite file, or (feature `postgres`) in a PostgreSQL database given by a
//! `postgres://` URL, where the column to encrypt must be text (`text`, `varchar`) and the id
//! and user columns integers or text.
//!
//! The Python systems keep API keys and credentials as plaintext beside `v2:` tokens (the
//! legacy values `is_encrypted` tells apart). [`migrate_column`] encrypts the plaintext ones:
//! - values already encrypted (`v2:` prefix) and NULLs are skipped;
//! - each batch of rows is one transaction, so an interrupted run leaves whole batches done
//!   and the rest untouched; running again resumes, and never encrypts a value twice (only
//!   values without the prefix are selected, and each update is a compare-and-set on the old
//!   value, so a concurrent writer is not overwritten);
//! - odd rows never stop the run: values that are not text (INTEGER, REAL, BLOB) or are TEXT
//!   that is not UTF-8, and rows without a usable user id (NULL, REAL, BLOB, empty, not UTF-8,
//!   over [`MAX_USER_ID_LEN`](crate::MAX_USER_ID_LEN) bytes, holding NUL), are left as they
//!   are, counted as failed and listed with their ids ([`MigrateReport::failed_rows`]);
//!   integer user ids are used in decimal;
//! - user keys are fetched (and minted) before each batch's write transaction, so the table may
//!   live in the key store's own file;
//! - a dry run ([`MigrateOptions::dry_run`], or [`count_column`] without a key store) reads
//!   through a read-only connection and changes nothing on disk: no row, no key, no journal
//!   mode, no `-wal` or `-shm` file left behind.
//!
//! [`verify_column`] decrypts every value and counts what opens.
//!
//! # Errors
//! [`Error::InvalidArgument`] for a table or column name that is not a plain SQL identifier
//! (letters, digits, `_`; this is what keeps SQL out of the names) or does not exist, one column
//! given two roles (the user column or the id column is the column to encrypt), a database
//! file that does not exist, an id column with NULL or repeated values, or a batch size of 0;
//! [`Error::Storage`] for database failures; key store errors from
//! [`KeyStore::get_or_create_user_keys`].
//!
//! # Security
//! Plaintext values are read into memory one batch at a time and zeroized after encryption.
//! Tokens carry no associated data, so the Python module reads them.
//!
//! # Example
//! ```
//! use keyseal::migrate::{migrate_column, KeySource, MigrateOptions};
//! use keyseal::{KeyStore, MasterKey};
//! # let dir = tempfile::tempdir().unwrap();
//! let db = dir.path().join("app.db");
//! let conn = rusqlite::Connection::open(&db).unwrap();
//! conn.execute_batch(
//!     "CREATE TABLE creds(id INTEGER PRIMARY KEY, owner TEXT, secret TEXT);
//!      INSERT INTO creds(owner, secret) VALUES ('alice', 'sk-1'), ('bob', 'sk-2');",
//! ).unwrap();
//! let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
//! let options = MigrateOptions::new("creds", "secret", "id", KeySource::UserColumn("owner".into()));
//! let report = migrate_column(&db, &store, options.clone(), |_| {})?;
//! assert_eq!((report.migrated, report.skipped, report.failed), (2, 0, 0));
//! // A second run finds nothing left to do.
//! let again = migrate_column(&db, &store, options, |_| {})?;
//! assert_eq!((again.migrated, again.skipped), (0, 2));
//! # Ok::<(), keyseal::Error>(())
//! ```

pub(crate) mod data_db;
#[cfg(feature = "postgres")]
mod pg;
mod report;
pub(crate) mod sql;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroize;

use crate::{decrypt_bytes, encrypt, DataKey, Error, KeyStore, ENCRYPTED_PREFIX};
use data_db::DataDb;
pub use report::{FailReason, FailedRow, MigrateReport, Progress, VerifyReport, MAX_FAILED_ROWS};
use sql::{check_roles, user_id, Raw};

/// Where the key of each row comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// The user id is in this column; each user's data key comes from the key store.
    UserColumn(String),
    /// Every row uses the shared pool key ([`KeyStore::pool_key`]).
    Pool,
}

/// What to migrate, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrateOptions {
    /// The table.
    pub table: String,
    /// The column whose values are encrypted.
    pub column: String,
    /// A column that identifies rows (the primary key); rows are visited in its order.
    pub id_column: String,
    /// Per-user keys or the pool key.
    pub keys: KeySource,
    /// Rows per transaction (default 1 000).
    pub batch: usize,
    /// Count what would be done, change nothing, create no key.
    pub dry_run: bool,
    /// How long to wait for another connection or process that holds a lock on the database
    /// before failing with [`Error::Storage`] (default 10 s; longer than one day counts as one
    /// day).
    pub busy_timeout: Duration,
}

impl MigrateOptions {
    /// Options with the default batch of 1 000 rows, not a dry run.
    #[must_use]
    pub fn new(
        table: impl Into<String>,
        column: impl Into<String>,
        id_column: impl Into<String>,
        keys: KeySource,
    ) -> Self {
        MigrateOptions {
            table: table.into(),
            column: column.into(),
            id_column: id_column.into(),
            keys,
            batch: 1_000,
            dry_run: false,
            busy_timeout: Duration::from_secs(10),
        }
    }

    /// Sets the batch size.
    #[must_use]
    pub fn batch(mut self, rows: usize) -> Self {
        self.batch = rows;
        self
    }

    /// Checks the options on their own, before any file is opened (every function here does
    /// it first).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a batch of 0, or one column given two roles: the user
    /// column or the id column is the column to encrypt (compared as SQL does, ignoring ASCII
    /// case). The names themselves are checked against the table later.
    pub fn validate(&self) -> Result<(), Error> {
        check_roles(self)
    }

    /// Sets dry-run mode.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Sets [`MigrateOptions::busy_timeout`].
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
}

/// The functions here take options by value; a reference is cloned.
impl From<&MigrateOptions> for MigrateOptions {
    fn from(options: &MigrateOptions) -> Self {
        options.clone()
    }
}

/// Keys for the users of one batch, from the store (created if new) or the pool key.
struct Keys<'a> {
    store: &'a KeyStore,
    pool: Option<DataKey>,
}

impl Keys<'_> {
    /// One key per distinct user of `users` (created if new), in a map.
    fn for_users(&self, users: &[&str]) -> Result<HashMap<String, DataKey>, Error> {
        let mut distinct: Vec<&str> = users.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let keys = self.store.get_or_create_user_keys(&distinct)?;
        Ok(distinct.iter().map(|u| (*u).to_owned()).zip(keys).collect())
    }
}

/// Encrypts the plaintext values of `options.column` in place; see the module docs. With
/// `options.dry_run`, only counts, as [`count_column`] does (the store is not used).
///
/// `progress` is called after each batch.
///
/// # Errors
/// See the module docs. A failure mid-way leaves every committed batch encrypted and the rest
/// as it was; run again to resume.
pub fn migrate_column(
    db: &Path,
    store: &KeyStore,
    options: impl Into<MigrateOptions>,
    progress: impl FnMut(Progress),
) -> Result<MigrateReport, Error> {
    let options = &options.into();
    if options.dry_run {
        return count_column(db, options, progress);
    }
    let keys = Keys {
        store,
        pool: match options.keys {
            KeySource::Pool => Some(store.pool_key()?),
            _ => None,
        },
    };
    run(db, options, Some(&keys), progress)
}

/// What [`migrate_column`] would do, without a key store: counts the values it would encrypt,
/// skip and leave (with their ids), through a read-only connection. Nothing on disk changes.
/// `options.dry_run` is not consulted: this is always a dry run.
///
/// # Errors
/// As [`migrate_column`], without the key store's.
pub fn count_column(
    db: &Path,
    options: impl Into<MigrateOptions>,
    progress: impl FnMut(Progress),
) -> Result<MigrateReport, Error> {
    run(db, &options.into(), None, progress)
}

/// A selected row's user id (`None` with the pool key) and plaintext, or why it is left.
type Prepared = Result<(Option<String>, String), FailReason>;

/// Where a selected value stands before it is encrypted.
fn plaintext_of(mut value: Raw) -> Result<String, FailReason> {
    match &mut value {
        Raw::Text(bytes) => String::from_utf8(std::mem::take(bytes)).map_err(|e| {
            e.into_bytes().zeroize();
            FailReason::ValueNotUtf8
        }),
        // Dropping `value` wipes it.
        _ => Err(FailReason::ValueNotText),
    }
}

/// What a migration does with one row, without a database: `value` and `user` are stored
/// values given as a SQLite type (0 NULL, 1 INTEGER, 2 REAL, 3 TEXT, anything else BLOB) and
/// bytes (INTEGER and REAL from up to 8 little-endian bytes). `Ok(None)`: skipped (NULL, or
/// TEXT already starting with `v2:`, as the migration's SELECT skips it); `Ok(Some((user id,
/// plaintext)))`: what would be encrypted, for that user; `Err`: why the row is left as it is.
/// Also returns the row's description as a report shows it, for the value used as an id.
/// For fuzzing and tests; not part of the API.
///
/// # Errors
/// The [`FailReason`] a migration would report for the row.
#[doc(hidden)]
#[allow(clippy::type_complexity)]
pub fn value_path(
    value: (u8, &[u8]),
    user: (u8, &[u8]),
) -> (String, Result<Option<(String, String)>, FailReason>) {
    fn raw((kind, bytes): (u8, &[u8])) -> Raw {
        let mut le = [0u8; 8];
        let n = bytes.len().min(8);
        le[..n].copy_from_slice(&bytes[..n]);
        match kind {
            0 => Raw::Null,
            1 => Raw::Integer(i64::from_le_bytes(le)),
            2 => Raw::Real(f64::from_le_bytes(le)),
            3 => Raw::Text(bytes.to_vec()),
            _ => Raw::Blob(bytes.to_vec()),
        }
    }
    let value = raw(value);
    let described = value.describe();
    let skipped = match &value {
        Raw::Null => true,
        Raw::Text(bytes) => bytes.starts_with(ENCRYPTED_PREFIX.as_bytes()),
        _ => false,
    };
    if skipped {
        return (described, Ok(None));
    }
    // The same order as a migration: the value first, so it is wiped whatever else is wrong.
    let result = plaintext_of(value)
        .and_then(|plaintext| user_id(raw(user)).map(|user| Some((user, plaintext))));
    (described, result)
}

/// A migration (`keys` given) or a dry run (`keys` is `None`: read only, nothing written).
fn run(
    db: &Path,
    options: &MigrateOptions,
    keys: Option<&Keys<'_>>,
    mut progress: impl FnMut(Progress),
) -> Result<MigrateReport, Error> {
    check_roles(options)?;
    let dry_run = keys.is_none();
    let mut data = data_db::open(db, dry_run, options)?;
    data.prepare(options)?;

    let mut report = MigrateReport::default();
    let (total, encrypted_or_null) = data.counts()?;
    report.skipped = encrypted_or_null;
    let todo = total - encrypted_or_null;
    progress(Progress {
        done: 0,
        total: todo,
    });

    let mut last = Raw::Null;
    loop {
        // Read the batch and get its users' keys before the write transaction: the key store
        // may live in the same database and needs its own write transaction to mint keys. The
        // compare-and-set updates keep this safe against concurrent writers.
        let rows = data.rows_after(&last, options.batch, true)?;
        let Some((last_id, _, _)) = rows.last() else {
            break;
        };
        last = last_id.clone();
        // Each row with its user id and plaintext, or why it is left as it is.
        let rows: Vec<(Raw, Prepared)> = rows
            .into_iter()
            .map(|(row_id, row_user, value)| {
                // The value first, so that it is wiped whatever is wrong with the row.
                let row = plaintext_of(value).and_then(|mut plaintext| {
                    let user = match options.keys {
                        KeySource::Pool => Ok(None),
                        _ => user_id(row_user).map(Some),
                    };
                    if user.is_err() {
                        plaintext.zeroize();
                    }
                    user.map(|u| (u, plaintext))
                });
                (row_id, row)
            })
            .collect();
        let Some(keys) = keys else {
            // A dry run: no key is created, no transaction taken.
            for (row_id, row) in rows {
                match row {
                    Ok((_, mut plaintext)) => {
                        plaintext.zeroize();
                        report.migrated += 1;
                    }
                    Err(reason) => report.fail(&row_id, reason),
                }
            }
            progress(Progress {
                done: report.migrated + report.failed,
                total: todo,
            });
            continue;
        };
        let user_keys = if keys.pool.is_some() {
            HashMap::new()
        } else {
            let users: Vec<&str> = rows
                .iter()
                .filter_map(|(_, row)| row.as_ref().ok()?.0.as_deref())
                .collect();
            keys.for_users(&users)?
        };
        migrate_batch(&mut *data, rows, keys, &user_keys, &mut report)?;
        progress(Progress {
            done: report.migrated + report.failed,
            total: todo,
        });
    }
    Ok(report)
}

/// Encrypts one batch of selected rows and writes them in one transaction, counting into
/// `report`.
fn migrate_batch(
    data: &mut dyn DataDb,
    rows: Vec<(Raw, Prepared)>,
    keys: &Keys<'_>,
    user_keys: &HashMap<String, DataKey>,
    report: &mut MigrateReport,
) -> Result<(), Error> {
    // (id, plaintext, token): the plaintexts are wiped when this is dropped, on error too.
    struct Pending(Vec<(Raw, String, String)>);
    impl Drop for Pending {
        fn drop(&mut self) {
            for (_, plaintext, _) in &mut self.0 {
                plaintext.zeroize();
            }
        }
    }
    let mut pending = Pending(Vec::with_capacity(rows.len()));
    for (row_id, row) in rows {
        let (row_user, mut plaintext) = match row {
            Ok(row) => row,
            Err(reason) => {
                report.fail(&row_id, reason);
                continue;
            }
        };
        let key = match (&keys.pool, &row_user) {
            (Some(pool), _) => Some(pool),
            (None, Some(u)) => user_keys.get(u.as_str()),
            (None, None) => None,
        };
        let Some(key) = key else {
            report.fail(&row_id, FailReason::NoUserId);
            plaintext.zeroize();
            continue;
        };
        let token = match encrypt(&plaintext, key) {
            Ok(token) => token,
            Err(e) => {
                plaintext.zeroize();
                return Err(e);
            }
        };
        pending.0.push((row_id, plaintext, token));
    }
    let writes: Vec<data_db::Write<'_>> = pending
        .0
        .iter()
        .map(|(id, plaintext, token)| (id, plaintext.as_str(), token.as_str()))
        .collect();
    let changed = data.update(&writes)?;
    for ((row_id, _, _), changed) in pending.0.iter().zip(changed) {
        if changed {
            report.migrated += 1;
        } else {
            report.fail(row_id, FailReason::Changed);
        }
    }
    Ok(())
}

/// Decrypts every value of `options.column` with its key and counts what opens; changes
/// nothing and creates no key (`options.batch` and `options.dry_run` are not used).
///
/// # Errors
/// As [`migrate_column`], for the names, the storage and the key store.
pub fn verify_column(
    db: &Path,
    store: &KeyStore,
    options: impl Into<MigrateOptions>,
    mut progress: impl FnMut(Progress),
) -> Result<VerifyReport, Error> {
    let options = &options.into();
    check_roles(options)?;
    let mut data = data_db::open(db, false, options)?;
    data.prepare(options)?;
    let (total, _) = data.counts()?;
    let pool = match options.keys {
        KeySource::Pool => Some(store.pool_key()?),
        _ => None,
    };
    let mut user_keys: HashMap<String, Option<DataKey>> = HashMap::new();
    let mut report = VerifyReport::default();
    let mut done = 0u64;
    let mut last = Raw::Null;
    loop {
        let rows = data.rows_after(&last, 10_000, false)?;
        let Some((last_id, _, _)) = rows.last() else {
            break;
        };
        last = last_id.clone();
        for (_, row_user, value) in rows {
            let row_user = user_id(row_user).ok();
            match &value {
                Raw::Null => report.null += 1,
                Raw::Text(bytes) if bytes.starts_with(ENCRYPTED_PREFIX.as_bytes()) => {
                    let key = match (&pool, row_user) {
                        (Some(pool), _) => Some(pool),
                        (None, Some(u)) => {
                            if !user_keys.contains_key(&u) {
                                let key = store.get_user_key(&u)?;
                                user_keys.insert(u.clone(), key);
                            }
                            user_keys.get(&u).and_then(Option::as_ref)
                        }
                        (None, None) => None,
                    };
                    // A token is ASCII: bytes that are not UTF-8 are a damaged token.
                    let token = std::str::from_utf8(bytes).ok();
                    match key.zip(token).map(|(k, t)| decrypt_bytes(t, k)) {
                        Some(Ok(mut plaintext)) => {
                            plaintext.zeroize();
                            report.ok += 1;
                        }
                        _ => report.failed += 1,
                    }
                }
                // Wiped when `value` is dropped.
                Raw::Text(_) => report.plaintext += 1,
                _ => report.failed += 1,
            }
            done += 1;
        }
        progress(Progress { done, total });
    }
    progress(Progress { done, total });
    Ok(report)
}
