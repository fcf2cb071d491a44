//! Imported keys in `SQLite`: rows by source, and pending lookups.

use rusqlite::{params, Connection};

use super::rows::{read_row, COLUMNS};
use crate::issuance::backend::Row;

pub(super) fn imported(conn: &Connection, source: &str) -> rusqlite::Result<Vec<Row>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE source = ?1 ORDER BY row_id"
    ))?
    .query_map([source], read_row)?
    .collect()
}

pub(super) fn pending(conn: &Connection, lookup: &str, limit: usize) -> rusqlite::Result<Vec<Row>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE lookup = ?1 \
         ORDER BY last_used_at IS NULL, last_used_at DESC, row_id LIMIT ?2"
    ))?
    .query_map(
        params![lookup, i64::try_from(limit).unwrap_or(i64::MAX)],
        read_row,
    )?
    .collect()
}

pub(super) fn set_lookup(
    tx: &Connection,
    row_id: i64,
    from: &str,
    to: &str,
    seq: i64,
) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "UPDATE api_keys SET lookup = ?1, seq = ?2 WHERE row_id = ?3 AND lookup = ?4",
        params![to, seq, row_id, from],
    )?;
    Ok(n == 1)
}
