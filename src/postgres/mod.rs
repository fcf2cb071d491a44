//! The PostgreSQL backend (feature `postgres`): the key store and the API keys in one
//! PostgreSQL database, shared by any number of servers.
//!
//! A location whose text starts with `postgres://` or `postgresql://` selects it in
//! [`crate::KeyStore::open`] and [`crate::ApiKeys::open`] (see the URL rules in the README).
//! Both opened on the same URL in one process share one connection pool.
//!
//! Layout: `url` (reading and redacting URLs), `tls` (rustls), `runtime` (the bridge
//! from the synchronous API to the async driver), `pool` (one pool per URL), `query` (unnamed statements in one
//! round trip each, bounded in time: what a transaction-mode pooler allows), `errors`
//! (driver errors as [`crate::Error`]), `schema` (versioned migrations), `keystore` and
//! `api_keys` (the two backends).

pub(crate) mod api_keys;
pub(crate) mod errors;
pub(crate) mod keystore;
mod keystore_keyring;
mod keystore_rotation;
pub(crate) mod pool;
pub(crate) mod query;
pub(crate) mod runtime;
mod schema;
mod tls;
mod url;

pub use schema::SchemaVersion;
pub(crate) use url::is_postgres;

use std::time::Duration;

use crate::Error;

/// Applies the schema migrations the database at `url` lacks (creating every keyseal table
/// on a new database), under an advisory lock so that servers starting at the same time
/// apply each migration once. Run it with a role that may create tables; servers can then
/// use a role that may only read and write rows. Idempotent.
///
/// [`crate::KeyStore::open`] and [`crate::ApiKeys::open`] do the same when their role may
/// create tables, so a single-role deployment needs no separate step.
///
/// # Errors
/// - [`Error::InvalidArgument`]: `url` is not a `postgres://` / `postgresql://` URL keyseal
///   can read;
/// - [`Error::Storage`] with kind [`crate::StorageKind::Schema`]: the database was migrated
///   by a newer keyseal and marked incompatible with this one;
/// - [`Error::Storage`] (`unavailable`): the server cannot be reached, refuses the login,
///   the database does not exist, or the role may not create tables.
///
/// # Security
/// The URL's password is never shown: messages give `user@host:port/database`.
pub fn migrate(url: &str) -> Result<SchemaVersion, Error> {
    if !is_postgres(std::path::Path::new(url)) {
        return Err(Error::InvalidArgument {
            what: "not a PostgreSQL URL (postgres://… or postgresql://…)".into(),
        });
    }
    let shared = pool::shared(url)?;
    runtime::block(async {
        let mut conn = shared.conn(Duration::from_secs(30)).await?;
        // Migrations may wait for servers' locks and rewrite tables: as long as it takes.
        conn.set_limit(Duration::from_secs(24 * 3600));
        schema::migrate(&shared, &mut conn).await
    })?
}

/// The newest schema version this keyseal knows and applies with [`migrate`].
pub const SCHEMA_VERSION: i32 = schema::SCHEMA_VERSION;

/// The URL with its password replaced by `***`, for showing it.
#[must_use]
pub fn redact_url(url: &str) -> String {
    url::redact(url)
}

/// Every row of `table` in the database at `url`, each as one JSON object as PostgreSQL's
/// `row_to_json` writes it (column names as keys, times in ISO 8601 with their offset, arrays
/// as arrays, NULL as null), read by one statement, so from one snapshot. For reading another
/// system's table, such as the source of an import; keyseal's own tables are read through its
/// types.
///
/// # Errors
/// - [`Error::InvalidArgument`]: `url` is not a PostgreSQL URL keyseal can read, or `table`
///   is not a plain name (`name` or `schema.name`: ASCII letters, digits and `_`, not starting
///   with a digit; matched as PostgreSQL matches unquoted names, ignoring case);
/// - [`Error::Storage`] (`unavailable`): the server cannot be reached or refuses the login, or
///   the table does not exist or may not be read.
///
/// # Security
/// The URL's password is never shown: messages give `user@host:port/database`.
pub fn read_table_json(url: &str, table: &str) -> Result<Vec<String>, Error> {
    if !is_postgres(std::path::Path::new(url)) {
        return Err(Error::InvalidArgument {
            what: "not a PostgreSQL URL (postgres://… or postgresql://…)".into(),
        });
    }
    let plain = |part: &str| {
        part.bytes().next().is_some_and(|c| !c.is_ascii_digit())
            && part.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    };
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| plain(p)) {
        return Err(Error::InvalidArgument {
            what: format!("table {table:?}: expected a plain name or schema.name"),
        });
    }
    // Quoted as PostgreSQL stores an unquoted name: folded to lower case.
    let quoted: Vec<String> = parts
        .iter()
        .map(|p| format!("\"{}\"", p.to_ascii_lowercase()))
        .collect();
    let sql = format!("SELECT row_to_json(t)::text FROM {} t", quoted.join("."));
    let shared = pool::shared(url)?;
    runtime::block(async {
        shared
            .read(Duration::from_secs(30), true, |mut conn| {
                let sql = &sql;
                async move {
                    conn.set_limit(pool::BULK_ROUND_TRIP);
                    let rows = conn.query(sql, &[]).await?;
                    rows.iter()
                        .map(|row| row.try_get::<_, String>(0).map_err(Into::into))
                        .collect()
                }
            })
            .await
    })?
}
