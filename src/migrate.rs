//! In-place migration of legacy plaintext: encrypts every plaintext value of one column of one
//! SQLite table into `v2:` tokens, with per-user keys from a [`KeyStore`] or the pool key.
//!
//! The Python systems keep API keys and credentials as plaintext beside `v2:` tokens (the
//! legacy values `is_encrypted` tells apart). [`migrate_column`] encrypts the plaintext ones:
//! - values already encrypted (`v2:` prefix) and NULLs are skipped;
//! - each batch of rows is one transaction, so an interrupted run leaves whole batches done
//!   and the rest untouched; running again resumes, and never encrypts a value twice (only
//!   values without the prefix are selected, and each update is a compare-and-set on the old
//!   value, so a concurrent writer is not overwritten);
//! - values that are not text, and rows without a usable user id (NULL, empty, over
//!   [`MAX_USER_ID_LEN`](crate::MAX_USER_ID_LEN) bytes, holding NUL), are counted as failed and
//!   left as they are; integer user ids are used in decimal;
//! - user keys are fetched (and minted) before each batch's write transaction, so the table may
//!   live in the key store's own file.
//!
//! [`verify_column`] decrypts every value and counts what opens.
//!
//! # Errors
//! [`Error::InvalidArgument`] for a table or column name that is not a plain SQL identifier
//! (letters, digits, `_`; this is what keeps SQL out of the names) or does not exist, an id
//! column with NULL or repeated values, or a batch size of 0; [`Error::Storage`] for SQLite failures; key store errors from
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
//! let report = migrate_column(&db, &store, &options, |_| {})?;
//! assert_eq!((report.migrated, report.skipped, report.failed), (2, 0, 0));
//! // A second run finds nothing left to do.
//! let again = migrate_column(&db, &store, &options, |_| {})?;
//! assert_eq!((again.migrated, again.skipped), (0, 2));
//! # Ok::<(), keyseal::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, Connection, TransactionBehavior};
use zeroize::Zeroize;

use crate::{decrypt_bytes, encrypt, is_encrypted, DataKey, Error, KeyStore, MAX_USER_ID_LEN};

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
        }
    }

    /// Sets the batch size.
    #[must_use]
    pub fn batch(mut self, rows: usize) -> Self {
        self.batch = rows;
        self
    }

    /// Sets dry-run mode.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// Counts at the end of [`migrate_column`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrateReport {
    /// Values encrypted by this run (in a dry run: that would be).
    pub migrated: u64,
    /// Values already encrypted, or NULL.
    pub skipped: u64,
    /// Values left as they were: not text, no user id, or changed by someone else meanwhile.
    pub failed: u64,
}

/// Progress of a running migration or verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Rows handled so far.
    pub done: u64,
    /// Rows to handle in all (counted at the start).
    pub total: u64,
}

/// Counts at the end of [`verify_column`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Tokens that decrypt with their key.
    pub ok: u64,
    /// Values still in plaintext (no `v2:` prefix).
    pub plaintext: u64,
    /// NULL values.
    pub null: u64,
    /// Tokens that do not decrypt (wrong key, altered), or rows without a user id.
    pub failed: u64,
}

/// Checks that `name` is a plain SQL identifier and returns it quoted.
fn identifier(name: &str, what: &str) -> Result<String, Error> {
    let mut chars = name.chars();
    let plain = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128;
    if plain {
        Ok(format!("\"{name}\""))
    } else {
        Err(Error::InvalidArgument {
            what: format!(
                "{what} {name:?} is not a plain identifier (letters, digits and _, not starting with a digit)"
            ),
        })
    }
}

fn storage(err: &rusqlite::Error) -> Error {
    Error::Storage {
        message: err.to_string(),
    }
}

/// The parts of the statements, checked against the table's real columns.
struct Shape {
    table: String,
    column: String,
    id: String,
    user: Option<String>,
}

impl Shape {
    fn new(conn: &Connection, options: &MigrateOptions) -> Result<Shape, Error> {
        if options.batch == 0 {
            return Err(Error::InvalidArgument {
                what: "batch must be at least 1".into(),
            });
        }
        let table = identifier(&options.table, "table")?;
        let column = identifier(&options.column, "column")?;
        let id = identifier(&options.id_column, "id column")?;
        let user = match &options.keys {
            KeySource::UserColumn(name) => Some(identifier(name, "user column")?),
            KeySource::Pool => None,
        };
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .map_err(|e| storage(&e))?;
        let columns: Vec<String> = stmt
            .query_map([&options.table], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| storage(&e))?;
        if columns.is_empty() {
            return Err(Error::InvalidArgument {
                what: format!("no table {:?} in the database", options.table),
            });
        }
        let mut wanted = vec![&options.column, &options.id_column];
        if let KeySource::UserColumn(name) = &options.keys {
            wanted.push(name);
        }
        for name in wanted {
            if !columns.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                return Err(Error::InvalidArgument {
                    what: format!("table {:?} has no column {name:?}", options.table),
                });
            }
        }
        Ok(Shape {
            table,
            column,
            id,
            user,
        })
    }

    fn user_expr(&self) -> &str {
        self.user.as_deref().unwrap_or("NULL")
    }
}

fn open(db: &Path) -> Result<Connection, Error> {
    if !db.exists() {
        return Err(Error::InvalidArgument {
            what: format!("database {} does not exist", db.display()),
        });
    }
    let conn = Connection::open(db).map_err(|e| storage(&e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| storage(&e))?;
    Ok(conn)
}

/// Keys for the users of one batch, from the store (created if new) or the pool key.
struct Keys<'a> {
    store: &'a KeyStore,
    pool: Option<DataKey>,
    create: bool,
}

impl Keys<'_> {
    /// One key per distinct user of `users`, in a map; users without a row are absent when
    /// keys are not created.
    fn for_users(&self, users: &[&str]) -> Result<HashMap<String, DataKey>, Error> {
        let mut distinct: Vec<&str> = users.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let mut map = HashMap::with_capacity(distinct.len());
        if self.create {
            let keys = self.store.get_or_create_user_keys(&distinct)?;
            map.extend(distinct.iter().map(|u| (*u).to_owned()).zip(keys));
        } else {
            for user in distinct {
                if let Some(key) = self.store.get_user_key(user)? {
                    map.insert(user.to_owned(), key);
                }
            }
        }
        Ok(map)
    }
}

/// Encrypts the plaintext values of `options.column` in place; see the module docs.
///
/// `progress` is called after each batch.
///
/// # Errors
/// See the module docs. A failure mid-way leaves every committed batch encrypted and the rest
/// as it was; run again to resume.
pub fn migrate_column(
    db: &Path,
    store: &KeyStore,
    options: &MigrateOptions,
    mut progress: impl FnMut(Progress),
) -> Result<MigrateReport, Error> {
    let mut conn = open(db)?;
    let shape = Shape::new(&conn, options)?;
    let Shape {
        table, column, id, ..
    } = &shape;
    let user = shape.user_expr();

    check_ids(&conn, &shape, options)?;

    let mut report = MigrateReport::default();
    let (total, encrypted_or_null): (u64, u64) = conn
        .query_row(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE {column} IS NULL OR \
                 (typeof({column}) = 'text' AND substr({column}, 1, 3) = 'v2:')) FROM {table}"
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(|e| storage(&e))?;
    report.skipped = encrypted_or_null;
    let todo = total - encrypted_or_null;
    progress(Progress {
        done: 0,
        total: todo,
    });

    let keys = Keys {
        store,
        pool: matches!(options.keys, KeySource::Pool).then(|| store.pool_key()),
        create: !options.dry_run,
    };
    let select = format!(
        "SELECT {id}, {user}, {column} FROM {table} \
         WHERE {column} IS NOT NULL AND NOT (typeof({column}) = 'text' AND substr({column}, 1, 3) = 'v2:') \
         AND (?1 IS NULL OR {id} > ?1) ORDER BY {id} LIMIT ?2"
    );
    let update = format!("UPDATE {table} SET {column} = ?1 WHERE {id} = ?2 AND {column} = ?3");
    let batch = i64::try_from(options.batch).unwrap_or(i64::MAX);
    let mut last: Value = Value::Null;
    loop {
        // Read the batch and get its users' keys before taking the write lock: the key store
        // may live in the same file and needs its own write transaction to mint keys. The
        // compare-and-set update below keeps this safe against concurrent writers.
        let rows: Vec<(Value, Value, Value)> = {
            let mut stmt = conn.prepare_cached(&select).map_err(|e| storage(&e))?;
            stmt.query_map(params![last, batch], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .and_then(Iterator::collect)
            .map_err(|e| storage(&e))?
        };
        let Some((last_id, _, _)) = rows.last() else {
            break;
        };
        last = last_id.clone();
        let rows: Vec<(Value, Option<String>, Value)> = rows
            .into_iter()
            .map(|(row_id, row_user, value)| (row_id, user_id(row_user), value))
            .collect();
        let user_keys = if keys.pool.is_some() {
            HashMap::new()
        } else {
            let users: Vec<&str> = rows.iter().filter_map(|(_, u, _)| u.as_deref()).collect();
            keys.for_users(&users)?
        };

        let behavior = if options.dry_run {
            TransactionBehavior::Deferred
        } else {
            TransactionBehavior::Immediate
        };
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(|e| storage(&e))?;
        migrate_batch(
            &tx,
            &update,
            rows,
            &keys,
            &user_keys,
            options.dry_run,
            &mut report,
        )?;
        let done = report.migrated + report.failed;
        if options.dry_run {
            tx.rollback().map_err(|e| storage(&e))?;
        } else {
            tx.commit().map_err(|e| storage(&e))?;
        }
        progress(Progress { done, total: todo });
    }
    Ok(report)
}

/// Rows are visited in id order and updated by id: the id must name one row each.
fn check_ids(conn: &Connection, shape: &Shape, options: &MigrateOptions) -> Result<(), Error> {
    let Shape { table, id, .. } = shape;
    let (null_ids, repeated_ids): (u64, u64) = conn
        .query_row(
            &format!(
                "SELECT count(*) FILTER (WHERE {id} IS NULL), count({id}) - count(DISTINCT {id}) \
                 FROM {table}"
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(|e| storage(&e))?;
    if null_ids > 0 || repeated_ids > 0 {
        return Err(Error::InvalidArgument {
            what: format!(
                "id column {:?} must be unique and never NULL ({null_ids} NULL, {repeated_ids} repeated)",
                options.id_column
            ),
        });
    }
    Ok(())
}

/// A row's user id as text (integer ids in decimal), or `None` when it cannot name a user:
/// NULL, empty, too long, or holding NUL. Such rows are counted as failed, not fatal.
fn user_id(value: Value) -> Option<String> {
    let text = match value {
        Value::Text(text) => text,
        Value::Integer(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty() && text.len() <= MAX_USER_ID_LEN && !text.contains('\0')).then_some(text)
}

/// Encrypts one batch of selected rows inside `tx`, counting into `report`.
fn migrate_batch(
    tx: &rusqlite::Transaction<'_>,
    update: &str,
    rows: Vec<(Value, Option<String>, Value)>,
    keys: &Keys<'_>,
    user_keys: &HashMap<String, DataKey>,
    dry_run: bool,
    report: &mut MigrateReport,
) -> Result<(), Error> {
    let mut stmt = tx.prepare_cached(update).map_err(|e| storage(&e))?;
    for (row_id, row_user, value) in rows {
        let key = match (&keys.pool, &row_user) {
            (Some(pool), _) => Some(pool),
            (None, Some(u)) => user_keys.get(u.as_str()),
            (None, None) => None,
        };
        let Value::Text(mut plaintext) = value else {
            report.failed += 1;
            continue;
        };
        if dry_run {
            // No key is created in a dry run: a row with a user id would get one.
            if keys.pool.is_some() || row_user.is_some() {
                report.migrated += 1;
            } else {
                report.failed += 1;
            }
            plaintext.zeroize();
            continue;
        }
        let Some(key) = key else {
            report.failed += 1;
            plaintext.zeroize();
            continue;
        };
        let token = encrypt(&plaintext, key)?;
        let changed = stmt
            .execute(params![token, row_id, plaintext])
            .map_err(|e| storage(&e))?;
        plaintext.zeroize();
        if changed == 1 {
            report.migrated += 1;
        } else {
            report.failed += 1;
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
    options: &MigrateOptions,
    mut progress: impl FnMut(Progress),
) -> Result<VerifyReport, Error> {
    let conn = open(db)?;
    let shape = Shape::new(&conn, options)?;
    let user = shape.user_expr();
    let (table, column) = (&shape.table, &shape.column);
    let total: u64 = conn
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .map_err(|e| storage(&e))?;
    let pool = matches!(options.keys, KeySource::Pool).then(|| store.pool_key());
    let mut user_keys: HashMap<String, Option<DataKey>> = HashMap::new();
    let mut report = VerifyReport::default();
    let mut stmt = conn
        .prepare(&format!("SELECT {user}, {column} FROM {table}"))
        .map_err(|e| storage(&e))?;
    let mut rows = stmt.query([]).map_err(|e| storage(&e))?;
    let mut done = 0u64;
    while let Some(row) = rows.next().map_err(|e| storage(&e))? {
        let row_user = user_id(row.get(0).map_err(|e| storage(&e))?);
        let value: Value = row.get(1).map_err(|e| storage(&e))?;
        match value {
            Value::Null => report.null += 1,
            Value::Text(text) if is_encrypted(&text) => {
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
                match key.map(|k| decrypt_bytes(&text, k)) {
                    Some(Ok(mut bytes)) => {
                        bytes.zeroize();
                        report.ok += 1;
                    }
                    _ => report.failed += 1,
                }
            }
            Value::Text(mut text) => {
                text.zeroize();
                report.plaintext += 1;
            }
            _ => report.failed += 1,
        }
        done += 1;
        if done % 10_000 == 0 {
            progress(Progress { done, total });
        }
    }
    progress(Progress { done, total });
    Ok(report)
}
