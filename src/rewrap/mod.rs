//! Re-encryption in place: every token of one column of one table (in a SQLite file or, with
//! the `postgres` feature, a PostgreSQL database given by its URL) brought to the newest
//! active version of its owner's key, or from `v2:` to `v3:` bound to a context built from its
//! row.
//!
//! The guarantees are the migration's ([`crate::migrate`]), whose checks and connections this
//! shares:
//! - each batch of rows is one transaction; an interrupted run (even `kill -9`) leaves whole
//!   batches done and the rest untouched;
//! - running again resumes and never re-encrypts a value twice: a token already in its target
//!   form (the newest active version; with a context, `v3:` bound to its row, which one
//!   decryption checks) is skipped, and each update is a compare-and-set on the old token, so
//!   a concurrent writer is not overwritten;
//! - odd rows never stop the run: NULLs are skipped; plaintext, values that are not text,
//!   tokens that do not decrypt (another owner's, another context, a disabled or destroyed
//!   key version) and rows without a usable user id are left as they are, counted as refused
//!   and listed with their ids ([`RewrapReport::refused_rows`]);
//! - keys are fetched before each batch's write transaction, so the table may live in the key
//!   store's own file; a dry run reads through a read-only connection and changes nothing.
//!
//! # Context
//! With [`RewrapOptions::to_v3`], each value is bound to the context
//! `(table, value of each context column…, column)`: parts are length-prefixed, so no two
//! rows share one. Integer columns are used in decimal, text as it is. Decrypting the value
//! later needs the same context ([`rewrap_context`] builds it).
//!
//! # Python
//! The Python module reads only `v2:` tokens under a user's version 1 (or the pool key it
//! derives). A run that writes `v3:` or a newer version makes those values unreadable to it.
//!
//! # Example
//! ```
//! use keyseal::rewrap::{rewrap_column, rewrap_context, RewrapOptions};
//! use keyseal::{Context, KeyOwner, KeyStore, MasterKey};
//! # let dir = tempfile::tempdir().unwrap();
//! let db = dir.path().join("app.db");
//! let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
//! store.set_shared_with_python(false)?; // v3: tokens are for keyseal only
//! let token = store.encrypt_value(KeyOwner::User("alice"), "sk-1", &Context::none())?;
//! let conn = rusqlite::Connection::open(&db).unwrap();
//! conn.execute_batch("CREATE TABLE creds(id INTEGER PRIMARY KEY, owner TEXT, secret TEXT)").unwrap();
//! conn.execute("INSERT INTO creds VALUES (7, 'alice', ?1)", [&token]).unwrap();
//! let options = RewrapOptions::user_column("creds", "secret", "id", "owner").to_v3(vec!["id".into()]);
//! let report = rewrap_column(&db, &store, &options, |_| {})?;
//! assert_eq!((report.rewrapped, report.skipped, report.refused), (1, 0, 0));
//! let token: String = conn.query_row("SELECT secret FROM creds", [], |r| r.get(0)).unwrap();
//! let ctx = rewrap_context(&options, &["7"]);
//! let value = store.decrypt_value(KeyOwner::User("alice"), &token, &ctx)?;
//! assert_eq!(value.plaintext.as_str(), "sk-1");
//! // Done: a second run changes nothing.
//! assert_eq!(rewrap_column(&db, &store, &options, |_| {})?.skipped, 1);
//! # Ok::<(), keyseal::Error>(())
//! ```

mod batch;

use std::path::Path;
use std::time::Duration;

use crate::migrate::data_db::{self, DataDb};
use crate::migrate::sql::identifier;
use crate::migrate::{KeySource, MigrateOptions, Progress};
use crate::{Context, Error, KeyStore};

pub use batch::{RefuseReason, RefusedRow, RewrapReport, VerifyReport, MAX_REFUSED_ROWS};

/// What to rewrap, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapOptions {
    /// The table.
    pub table: String,
    /// The column of tokens.
    pub column: String,
    /// A column that identifies rows (the primary key); rows are visited in its order.
    pub id_column: String,
    /// Per-user keys (the user id in a column) or the pool key.
    pub keys: KeySource,
    /// Write `v3:` tokens bound to a context of these columns' values (see the module docs);
    /// `None` keeps the format each version needs (`v2:` for version 1, else `v3:` without
    /// context).
    pub context_columns: Option<Vec<String>>,
    /// Rows per transaction (default 1 000).
    pub batch: usize,
    /// Write `v3:` tokens ([`RewrapOptions::to_v3`]) even though the store is shared with the
    /// Python module, which cannot read them.
    pub force: bool,
    /// Count what would be done, change nothing.
    pub dry_run: bool,
    /// How long to wait for a lock held by another connection (default 10 s).
    pub busy_timeout: Duration,
}

impl RewrapOptions {
    /// Options for per-user tokens, the user id in `user_column`.
    #[must_use]
    pub fn user_column(
        table: impl Into<String>,
        column: impl Into<String>,
        id_column: impl Into<String>,
        user_column: impl Into<String>,
    ) -> Self {
        Self::new(
            table,
            column,
            id_column,
            KeySource::UserColumn(user_column.into()),
        )
    }

    /// Options for tokens under the pool key.
    #[must_use]
    pub fn pool(
        table: impl Into<String>,
        column: impl Into<String>,
        id_column: impl Into<String>,
    ) -> Self {
        Self::new(table, column, id_column, KeySource::Pool)
    }

    fn new(
        table: impl Into<String>,
        column: impl Into<String>,
        id_column: impl Into<String>,
        keys: KeySource,
    ) -> Self {
        RewrapOptions {
            table: table.into(),
            column: column.into(),
            id_column: id_column.into(),
            keys,
            context_columns: None,
            batch: 1_000,
            force: false,
            dry_run: false,
            busy_timeout: Duration::from_secs(10),
        }
    }

    /// Writes `v3:` tokens bound to the context of these columns (see the module docs).
    #[must_use]
    pub fn to_v3(mut self, context_columns: Vec<String>) -> Self {
        self.context_columns = Some(context_columns);
        self
    }

    /// Sets the batch size.
    #[must_use]
    pub fn batch(mut self, rows: usize) -> Self {
        self.batch = rows;
        self
    }

    /// Sets [`RewrapOptions::force`].
    #[must_use]
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Sets dry-run mode.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The migration options that share the checks (names, roles, ids, batch).
    fn as_migrate(&self) -> MigrateOptions {
        MigrateOptions::new(
            &self.table,
            &self.column,
            &self.id_column,
            self.keys.clone(),
        )
        .batch(self.batch)
        .busy_timeout(self.busy_timeout)
    }
}

/// The context a value of `options`' column is bound to, from its row's context column
/// values (as text: integers in decimal), in the order of [`RewrapOptions::context_columns`].
///
/// # Errors
/// None: a context is built from any parts.
#[must_use]
pub fn rewrap_context(options: &RewrapOptions, values: &[&str]) -> Context {
    let mut ctx = Context::new().part(&options.table);
    for v in values {
        ctx.push(v.as_bytes());
    }
    ctx.part(&options.column)
}

/// Rewraps the tokens of `options.column` in place, in the table at `db` (an existing SQLite
/// file, or a PostgreSQL URL); see the module docs. `progress` is called after each batch.
///
/// # Errors
/// - [`Error::InvalidArgument`]: `v3:` asked for on a store shared with the Python module
///   without [`RewrapOptions::force`] (see [`KeyStore::shared_with_python`]); a table or column
///   name that is not a plain identifier or does not exist, one column given two roles, an empty list of context columns or one naming the
///   column itself, an id column with NULL or repeated values, a batch of 0, a missing file, a PostgreSQL
///   URL in a keyseal built without its `postgres` feature;
/// - [`Error::Storage`]; key store errors (a missing master key).
///
/// A failure mid-way leaves every committed batch rewrapped and the rest as it was; run again
/// to resume.
pub fn rewrap_column(
    db: &Path,
    store: &KeyStore,
    options: &RewrapOptions,
    progress: impl FnMut(Progress),
) -> Result<RewrapReport, Error> {
    if options.context_columns.is_some() && !options.force && store.shared_with_python()? {
        return Err(Error::InvalidArgument {
            what: "this store is shared with the Python module, which cannot read v3: tokens: \
                   force it, or mark the store as no longer shared"
                .into(),
        });
    }
    let mut data = prepare(db, options, options.dry_run)?;
    batch::run(data.as_mut(), store, options, progress)
}

/// Decrypts every value of `options.column` (with the context of its row when
/// [`RewrapOptions::to_v3`]) and counts what opens and what is not yet in its target form.
/// Changes nothing in the table (it opens read-only) and creates no key.
///
/// # Errors
/// As [`rewrap_column`], for the names and the storage.
pub fn verify_rewrapped(
    db: &Path,
    store: &KeyStore,
    options: &RewrapOptions,
) -> Result<VerifyReport, Error> {
    let mut data = prepare(db, options, true)?;
    batch::verify(data.as_mut(), store, options)
}

/// The data database of a run, its table, columns and context columns checked.
fn prepare(db: &Path, options: &RewrapOptions, read_only: bool) -> Result<Box<dyn DataDb>, Error> {
    let migrate = options.as_migrate();
    migrate.validate()?;
    check_context(options)?;
    let mut data = data_db::open(db, read_only, &migrate)?;
    data.prepare(&migrate)?;
    data.context_columns(options.context_columns.as_deref().unwrap_or_default())?;
    Ok(data)
}

/// Checks the context columns before anything is opened: not empty, not the column itself,
/// plain identifiers.
fn check_context(options: &RewrapOptions) -> Result<(), Error> {
    let Some(columns) = &options.context_columns else {
        return Ok(());
    };
    if columns.is_empty() {
        return Err(Error::InvalidArgument {
            what: "--to-v3 needs at least one context column (say the id column)".into(),
        });
    }
    columns.iter().try_for_each(|c| {
        if c.eq_ignore_ascii_case(&options.column) {
            return Err(Error::InvalidArgument {
                what: format!("context column {c:?} is the column being rewrapped"),
            });
        }
        identifier(c, "context column").map(drop)
    })
}
