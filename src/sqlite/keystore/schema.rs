//! The key store's tables in `SQLite`, their idempotent upgrade, and reading their rows.
//!
//! Schema version 1: `encryption_keys` as the Python module creates it, and
//! `keyseal_keystore_meta(name, value)` holding the master key check value.
//! Version 2 adds, without touching what the Python module reads or writes:
//! - `encryption_keys.master_key_id TEXT` (nullable: the Python module inserts naming its own
//!   three columns, so its rows get `NULL`);
//! - `keyseal_master_keys(id, check_value, retired, added_at)`: every master key the store
//!   knows;
//! - `keyseal_key_versions(owner, version, wrapped, master_key_id, state, created_at)`: the
//!   versions of the pool key (owner `''`) and of users' keys (a user's version 1 is its
//!   `encryption_keys` row; a version row for it holds only its state);
//! - `legacy_master_id` in the meta table: the master key of rows without an id.
//!
//! The upgrade runs inside the open's write transaction, after the master key is verified, and
//! only adds what is missing, so running it again (or from two processes at once) is harmless.

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

use crate::keystore::backend::{KeyState, Keyring, MasterKeyRow, StoredRow, VersionRow};

/// The table, byte for byte as the Python module creates it, so that `sqlite_master` reads the
/// same whichever side created the file (the id column is added by [`upgrade`]).
pub(super) const CREATE_KEYS: &str = "CREATE TABLE IF NOT EXISTS encryption_keys (\nuser_id TEXT PRIMARY KEY,\nencrypted_key BLOB NOT NULL,\ncreated_at TEXT NOT NULL\n)";
pub(super) const CREATE_META: &str =
    "CREATE TABLE IF NOT EXISTS keyseal_keystore_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)";
const CREATE_MASTER_KEYS: &str = "CREATE TABLE IF NOT EXISTS keyseal_master_keys (id TEXT PRIMARY KEY, check_value BLOB NOT NULL, retired INTEGER NOT NULL DEFAULT 0, added_at TEXT NOT NULL)";
const CREATE_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS keyseal_key_versions (owner TEXT NOT NULL, version INTEGER NOT NULL, wrapped BLOB, master_key_id TEXT, state TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (owner, version))";
pub(super) const VERSION_COLUMNS: &str = "owner, version, wrapped, master_key_id, state";
pub(super) const SCHEMA_VERSION: i64 = 2;

pub(super) const CHECK_NAME: &str = "master_check";
pub(super) const LEGACY_NAME: &str = "legacy_master_id";
pub(super) const SELECT_CHECK: &str =
    "SELECT value FROM keyseal_keystore_meta WHERE name = 'master_check'";
pub(super) const SELECT_KEY: &str =
    "SELECT user_id, encrypted_key, master_key_id FROM encryption_keys WHERE user_id = ?1";
pub(super) const INSERT_KEY: &str = "INSERT OR IGNORE INTO encryption_keys (user_id, encrypted_key, created_at, master_key_id) VALUES (?1, ?2, ?3, ?4)";
pub(super) const SELECT_MASTER_KEY: &str =
    "SELECT id, check_value, retired FROM keyseal_master_keys WHERE id = ?1";

/// A blob column read as bytes (Python writes BLOB; accept TEXT too; anything else is empty and
/// so reported as a corrupt key by the caller).
pub(super) fn blob_at(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        _ => Vec::new(),
    })
}

/// A text column read as text when it is one (anything else reads as no id).
fn text_at(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(i)? {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    })
}

/// `user_id, encrypted_key[, master_key_id]`.
pub(super) fn stored_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    let master_id = match r.as_ref().column_count() {
        3 => text_at(r, 2)?,
        _ => None,
    };
    Ok(StoredRow {
        user_id: r.get(0)?,
        wrapped: blob_at(r, 1)?,
        master_id,
    })
}

pub(super) fn master_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MasterKeyRow> {
    Ok(MasterKeyRow {
        id: r.get(0)?,
        check: blob_at(r, 1)?,
        retired: r.get::<_, i64>(2)? != 0,
    })
}

/// A row of [`VERSION_COLUMNS`].
pub(super) fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    let wrapped = match r.get_ref(2)? {
        ValueRef::Null => None,
        _ => Some(blob_at(r, 2)?),
    };
    Ok(VersionRow {
        owner: r.get(0)?,
        version: r.get(1)?,
        wrapped,
        master_id: text_at(r, 3)?,
        state: KeyState::parse(&String::from_utf8_lossy(&blob_at(r, 4)?)),
    })
}

pub(super) fn has_table(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn has_id_column(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info('encryption_keys') WHERE name = 'master_key_id'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The columns to select from `encryption_keys`, with the id column when the file has it.
pub(super) fn select_all(conn: &Connection) -> rusqlite::Result<&'static str> {
    Ok(if has_id_column(conn)? {
        "SELECT user_id, encrypted_key, master_key_id FROM encryption_keys"
    } else {
        "SELECT user_id, encrypted_key FROM encryption_keys"
    })
}

/// Creates the tables and adds what schema version 2 needs; idempotent. Call inside a write
/// transaction.
pub(super) fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "{CREATE_KEYS};\n{CREATE_META};\n{CREATE_MASTER_KEYS};\n{CREATE_VERSIONS};"
    ))?;
    if !has_id_column(conn)? {
        conn.execute_batch("ALTER TABLE encryption_keys ADD COLUMN master_key_id TEXT")?;
    }
    Ok(())
}

/// Records the schema version (once there is a check value, as version 1 did).
pub(super) fn record_version(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO keyseal_keystore_meta (name, value) VALUES ('schema_version', ?1)",
        [SCHEMA_VERSION],
    )
    .map(drop)
}

pub(super) fn read_check(conn: &Connection) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(SELECT_CHECK)?
        .query_row([], |r| blob_at(r, 0))
        .optional()
}

/// The master keys and the legacy id (empty before the upgrade).
pub(super) fn read_keyring(conn: &Connection) -> rusqlite::Result<Keyring> {
    if !has_table(conn, "keyseal_master_keys")? {
        return Ok(Keyring::default());
    }
    let keys = conn
        .prepare_cached("SELECT id, check_value, retired FROM keyseal_master_keys ORDER BY id")?
        .query_map([], master_key_row)?
        .collect::<rusqlite::Result<_>>()?;
    let legacy_id = conn
        .prepare_cached("SELECT value FROM keyseal_keystore_meta WHERE name = ?1")?
        .query_row([LEGACY_NAME], |r| text_at(r, 0))
        .optional()?
        .flatten();
    Ok(Keyring { keys, legacy_id })
}

/// Makes `key` the legacy key: its id and its check value.
pub(super) fn set_legacy(conn: &Connection, key: &MasterKeyRow) -> rusqlite::Result<()> {
    let mut set = conn.prepare_cached(
        "INSERT OR REPLACE INTO keyseal_keystore_meta (name, value) VALUES (?1, ?2)",
    )?;
    set.execute(params![LEGACY_NAME, key.id])?;
    set.execute(params![CHECK_NAME, key.check])?;
    Ok(())
}

/// Every version of `owner` (all owners when `None`) holding a wrapped key or not.
pub(super) fn read_versions(
    conn: &Connection,
    owner: Option<&str>,
) -> rusqlite::Result<Vec<VersionRow>> {
    if !has_table(conn, "keyseal_key_versions")? {
        return Ok(Vec::new());
    }
    conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM keyseal_key_versions \
         WHERE ?1 IS NULL OR owner = ?1 ORDER BY owner, version"
    ))?
    .query_map([owner], version_row)?
    .collect()
}
