//! The database holding the application's table, as a migration and a rewrap
//! ([`crate::rewrap`]) use it: a small trait with a SQLite and a PostgreSQL
//! implementation, chosen by the location as the key store chooses its backend.
//!
//! Every implementation keeps the migration's guarantees: names checked against the table
//! before any statement uses them, rows visited in id order, each batch of updates one
//! transaction of compare-and-set writes (a value changed meanwhile is left alone), and
//! nothing written by a dry run.

use std::path::Path;

use super::sql::Raw;
use super::MigrateOptions;
use crate::Error;

/// One row as selected: its id, its user id (`Raw::Null` with the pool key), its value, and
/// the values of the context columns ([`DataDb::context_columns`]; none unless set) as text.
pub(crate) type DataRow = (Raw, Raw, Raw, Vec<String>);

/// Which rows [`DataDb::rows_after`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    /// Only rows whose value is neither NULL nor a `v2:` token (what a migration encrypts).
    Plaintext,
    /// Every row.
    Every,
}

/// A context column's value as text, the same on every backend: text as it is, integers in
/// decimal, anything else as the migration's reports show it (NULL as `NULL`).
pub(crate) fn context_text(value: &Raw) -> String {
    match value {
        Raw::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Raw::Integer(n) => n.to_string(),
        other => other.describe(),
    }
}

/// One compare-and-set write: the row's id, the value it must still hold, the new value.
pub(crate) type Write<'a> = (&'a Raw, &'a str, &'a str);

/// A table of the application's database; see the module docs.
pub(crate) trait DataDb {
    /// Checks the names of `options` against the table (which must exist with each column),
    /// and the id column (unique, never NULL); later calls use them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming what is wrong; [`Error::Storage`].
    fn prepare(&mut self, options: &MigrateOptions) -> Result<(), Error>;

    /// The number of rows, and of those whose value is NULL or already a `v2:` token.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn counts(&mut self) -> Result<(u64, u64), Error>;

    /// Checks that the table has each of `names` (plain identifiers) and makes
    /// [`DataDb::rows_after`] return their values, in this order; after
    /// [`DataDb::prepare`]. An empty list returns none (the default).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a column that is not a plain identifier or does not
    /// exist; [`Error::Storage`].
    fn context_columns(&mut self, names: &[String]) -> Result<(), Error>;

    /// Up to `limit` rows whose id is after `after` (`Raw::Null`: from the first), in id
    /// order, among those `filter` keeps.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn rows_after(
        &mut self,
        after: &Raw,
        limit: usize,
        filter: Rows,
    ) -> Result<Vec<DataRow>, Error>;

    /// In one transaction, each write as a compare-and-set; whether each row was changed.
    ///
    /// # Errors
    /// [`Error::Storage`]; nothing is changed.
    fn update(&mut self, writes: &[Write<'_>]) -> Result<Vec<bool>, Error>;
}

/// The data database at `location`: a PostgreSQL URL, else an existing SQLite file
/// (`read_only`: opened so that nothing on disk changes).
///
/// # Errors
/// [`Error::InvalidArgument`] for a SQLite file that does not exist, or a PostgreSQL URL
/// in a keyseal built without its `postgres` feature; [`Error::Storage`].
pub(crate) fn open(
    location: &Path,
    read_only: bool,
    options: &MigrateOptions,
) -> Result<Box<dyn DataDb>, Error> {
    if crate::db_path::is_postgres(location) {
        #[cfg(feature = "postgres")]
        {
            let url = location.to_str().unwrap_or_default();
            return Ok(Box::new(super::pg::PgData::open(
                url,
                options.busy_timeout,
            )?));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(Error::postgres_not_built());
    }
    let conn = crate::sqlite::open_existing(location, read_only, options.busy_timeout)?;
    Ok(Box::new(super::sql::SqliteData::new(conn)))
}
