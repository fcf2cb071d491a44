//! The database holding the application's table, as a migration (and any later tool that
//! rewrites a column of tokens) uses it: a small trait with a SQLite and a PostgreSQL
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

/// One row as selected: its id, its user id (`Raw::Null` with the pool key), its value.
pub(crate) type DataRow = (Raw, Raw, Raw);

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

    /// Up to `limit` rows whose id is after `after` (`Raw::Null`: from the first), in id
    /// order; with `plaintext_only`, only rows whose value is neither NULL nor a `v2:` token.
    ///
    /// # Errors
    /// [`Error::Storage`].
    fn rows_after(
        &mut self,
        after: &Raw,
        limit: usize,
        plaintext_only: bool,
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
