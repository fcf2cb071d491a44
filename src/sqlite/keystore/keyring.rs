//! The master keys, pool key versions, rewraps, retirement and rotation of the `SQLite`
//! key store backend: each function runs inside the transaction its caller opened.

use std::sync::MutexGuard;

use rusqlite::{params, Connection, OptionalExtension};

use super::schema::{
    self, master_key_row, read_check, read_keyring, read_pool_keys, select_all, stored_row,
    SELECT_MASTER_KEY,
};
use crate::keystore::backend::{
    Guard, MasterKeyRow, PoolKeyRow, Retired, Rewrapped, Rotation, RotationState, Slot, StoredRow,
    Written,
};
use crate::keystore::now_iso8601;
use crate::sqlite::storage_error;
use crate::Error;

/// `Ok(())` when `guard` holds (its key stored with that check value, not retired); else
/// `Err` with the stored row of that key, if any, for [`Written::CheckChanged`].
pub(super) fn check_guard(
    conn: &Connection,
    guard: Guard<'_>,
) -> rusqlite::Result<Result<(), Option<MasterKeyRow>>> {
    let stored = conn
        .prepare_cached(SELECT_MASTER_KEY)?
        .query_row([guard.master_id], master_key_row)
        .optional()?;
    Ok(match stored {
        Some(row) if !row.retired && row.check == guard.check => Ok(()),
        other => Err(other),
    })
}

pub(super) fn add_master_key(
    conn: &Connection,
    key: &MasterKeyRow,
    legacy: bool,
) -> rusqlite::Result<MasterKeyRow> {
    conn.execute(
        "INSERT OR IGNORE INTO keyseal_master_keys (id, check_value, retired, added_at) \
         VALUES (?1, ?2, 0, ?3)",
        params![key.id, key.check, now_iso8601()],
    )?;
    let stored = conn.query_row(SELECT_MASTER_KEY, [&key.id], master_key_row)?;
    if legacy && read_keyring(conn)?.legacy_id.is_none() {
        conn.execute(
            "INSERT OR IGNORE INTO keyseal_keystore_meta (name, value) VALUES (?1, ?2)",
            params![schema::LEGACY_NAME, key.id],
        )?;
    }
    Ok(stored)
}

pub(super) fn insert_pool_key(
    conn: &Connection,
    guard: Guard<'_>,
    row: &PoolKeyRow,
) -> rusqlite::Result<Written<PoolKeyRow>> {
    if let Err(stored) = check_guard(conn, guard)? {
        return Ok(Written::CheckChanged(stored));
    }
    conn.execute(
        "INSERT OR IGNORE INTO keyseal_pool_keys (version, wrapped, master_key_id, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![row.version, row.wrapped, guard.master_id, now_iso8601()],
    )?;
    conn.query_row(
        "SELECT version, wrapped, master_key_id FROM keyseal_pool_keys WHERE version = ?1",
        [row.version],
        schema::pool_key_row,
    )
    .map(Written::Done)
}

pub(super) fn stale_rows(
    conn: &Connection,
    master_id: &str,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<StoredRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "SELECT user_id, encrypted_key, master_key_id FROM encryption_keys \
         WHERE (master_key_id IS NULL OR master_key_id <> ?1) AND (?2 IS NULL OR user_id > ?2) \
         ORDER BY user_id LIMIT ?3",
    )?
    .query_map(params![master_id, after, limit], stored_row)?
    .collect()
}

/// Stores each rewrapped key where its slot still holds `previous`; how many were stored.
fn update_slots(conn: &Connection, rows: &[Rewrapped], compare: bool) -> rusqlite::Result<u64> {
    let mut user = conn.prepare_cached(
        "UPDATE encryption_keys SET encrypted_key = ?2, master_key_id = ?3 \
         WHERE user_id = ?1 AND (?5 = 0 OR encrypted_key = ?4)",
    )?;
    let mut pool = conn.prepare_cached(
        "UPDATE keyseal_pool_keys SET wrapped = ?2, master_key_id = ?3 \
         WHERE version = ?1 AND (?5 = 0 OR wrapped = ?4)",
    )?;
    let mut stored = 0;
    for row in rows {
        let n = match &row.slot {
            Slot::User(user_id) => user.execute(params![
                user_id,
                row.wrapped,
                row.master_id,
                row.previous,
                compare
            ])?,
            Slot::Pool(version) => pool.execute(params![
                version,
                row.wrapped,
                row.master_id,
                row.previous,
                compare
            ])?,
        };
        stored += n as u64;
    }
    Ok(stored)
}

pub(super) fn store_rewrapped(
    conn: &Connection,
    guard: Guard<'_>,
    rows: &[Rewrapped],
) -> rusqlite::Result<Written<u64>> {
    if let Err(stored) = check_guard(conn, guard)? {
        return Ok(Written::CheckChanged(stored));
    }
    update_slots(conn, rows, true).map(Written::Done)
}

pub(super) fn usage(conn: &Connection) -> rusqlite::Result<Vec<(Option<String>, u64)>> {
    let mut counts: Vec<(Option<String>, u64)> = Vec::new();
    let mut add = |id: Option<String>, n: i64| {
        let n = u64::try_from(n).unwrap_or(0);
        match counts.iter_mut().find(|(i, _)| *i == id) {
            Some((_, c)) => *c += n,
            None => counts.push((id, n)),
        }
    };
    let mut users = conn.prepare_cached(
        "SELECT master_key_id, COUNT(*) FROM encryption_keys GROUP BY master_key_id",
    )?;
    for row in users.query_map([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get(1)?)))? {
        let (id, n) = row?;
        add(id, n);
    }
    if schema::has_table(conn, "keyseal_pool_keys")? {
        let mut pool = conn.prepare_cached(
            "SELECT master_key_id, COUNT(*) FROM keyseal_pool_keys GROUP BY master_key_id",
        )?;
        for row in pool.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
            let (id, n) = row?;
            add(Some(id), n);
        }
    }
    counts.sort();
    Ok(counts)
}

pub(super) fn retire(
    conn: &Connection,
    id: &str,
    untagged_rows_need_it: bool,
    new_legacy: Option<&MasterKeyRow>,
) -> rusqlite::Result<Retired> {
    let known = conn
        .query_row(SELECT_MASTER_KEY, [id], master_key_row)
        .optional()?;
    if known.is_none() {
        return Ok(Retired::Unknown);
    }
    let count = |sql: &str| conn.query_row(sql, [id], |r| r.get::<_, i64>(0));
    let mut in_use = count("SELECT COUNT(*) FROM encryption_keys WHERE master_key_id = ?1")?
        + count("SELECT COUNT(*) FROM keyseal_pool_keys WHERE master_key_id = ?1")?;
    if untagged_rows_need_it {
        in_use += conn.query_row(
            "SELECT COUNT(*) FROM encryption_keys WHERE master_key_id IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )?;
    }
    if in_use > 0 {
        return Ok(Retired::InUse(u64::try_from(in_use).unwrap_or(0)));
    }
    conn.execute(
        "UPDATE keyseal_master_keys SET retired = 1 WHERE id = ?1",
        [id],
    )?;
    if let Some(legacy) = new_legacy {
        schema::set_legacy(conn, legacy)?;
    }
    Ok(Retired::Done)
}

/// A rotation's write transaction on the writer connection (held until commit or drop).
pub(super) struct SqliteRotation<'a> {
    conn: MutexGuard<'a, Connection>,
    /// Whether the transaction still needs a `ROLLBACK` when dropped.
    open: bool,
}

impl<'a> SqliteRotation<'a> {
    /// Takes over a connection in which `BEGIN IMMEDIATE` succeeded.
    pub(super) fn new(conn: MutexGuard<'a, Connection>) -> Self {
        SqliteRotation { conn, open: true }
    }
}

impl Drop for SqliteRotation<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report: if even the rollback fails, SQLite rolls back the journal
            // on the next open.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl Rotation for SqliteRotation<'_> {
    fn state(&mut self) -> Result<RotationState, Error> {
        let conn = &*self.conn;
        let read = || -> rusqlite::Result<_> {
            let rows = conn
                .prepare(select_all(conn)?)?
                .query_map([], stored_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(RotationState {
                legacy_check: read_check(conn)?,
                keyring: read_keyring(conn)?,
                rows,
                pool: read_pool_keys(conn)?,
            })
        };
        read().map_err(|e| storage_error(&e))
    }

    fn commit(
        mut self: Box<Self>,
        new: &MasterKeyRow,
        rows: &[Rewrapped],
        written: &mut dyn FnMut(usize),
    ) -> Result<(), Error> {
        let conn = &*self.conn;
        let mut write = || -> rusqlite::Result<()> {
            for (i, chunk) in rows.chunks(1024).enumerate() {
                update_slots(conn, chunk, false)?;
                written((i * 1024 + chunk.len()).min(rows.len()));
            }
            written(rows.len());
            conn.execute(
                "UPDATE keyseal_master_keys SET retired = 1 WHERE id <> ?1",
                [&new.id],
            )?;
            conn.execute(
                "INSERT OR REPLACE INTO keyseal_master_keys (id, check_value, retired, added_at) \
                 VALUES (?1, ?2, 0, ?3)",
                params![new.id, new.check, now_iso8601()],
            )?;
            schema::set_legacy(conn, new)?;
            conn.execute_batch("COMMIT")
        };
        // On error, dropping `self` rolls back.
        write().map_err(|e| storage_error(&e))?;
        self.open = false;
        Ok(())
    }
}
