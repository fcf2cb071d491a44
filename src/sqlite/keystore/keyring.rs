//! The master keys, pool key versions, rewraps, retirement and rotation of the `SQLite`
//! key store backend: each function runs inside the transaction its caller opened.

use std::sync::MutexGuard;

use rusqlite::{params, Connection, OptionalExtension};

use super::schema::{
    self, master_key_row, read_check, read_keyring, read_versions, select_all, stored_row,
    version_row, SELECT_MASTER_KEY, VERSION_COLUMNS,
};
use crate::keystore::backend::{
    Guard, KeyState, MasterKeyRow, Retired, Rewrapped, Rotation, RotationState, Slot, StateChange,
    StoredRow, VersionRow, Written,
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

fn select_version(
    conn: &Connection,
    owner: &str,
    version: u32,
) -> rusqlite::Result<Option<VersionRow>> {
    conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM keyseal_key_versions WHERE owner = ?1 AND version = ?2"
    ))?
    .query_row(params![owner, version], version_row)
    .optional()
}

fn found(row: Option<VersionRow>) -> rusqlite::Result<VersionRow> {
    row.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

pub(super) fn insert_version(
    conn: &Connection,
    guard: Guard<'_>,
    row: &VersionRow,
) -> rusqlite::Result<Written<VersionRow>> {
    if let Err(stored) = check_guard(conn, guard)? {
        return Ok(Written::CheckChanged(stored));
    }
    let master = row.wrapped.as_ref().map(|_| guard.master_id);
    conn.prepare_cached(
        "INSERT OR IGNORE INTO keyseal_key_versions \
         (owner, version, wrapped, master_key_id, state, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        row.owner,
        row.version,
        row.wrapped,
        master,
        row.state.as_str(),
        now_iso8601()
    ])?;
    found(select_version(conn, &row.owner, row.version)?).map(Written::Done)
}

pub(super) fn add_version(
    conn: &Connection,
    guard: Guard<'_>,
    owner: &str,
    first: u32,
    wrapped: &[u8],
) -> rusqlite::Result<Written<VersionRow>> {
    if let Err(stored) = check_guard(conn, guard)? {
        return Ok(Written::CheckChanged(stored));
    }
    let highest: Option<u32> = conn.query_row(
        "SELECT MAX(version) FROM keyseal_key_versions WHERE owner = ?1",
        [owner],
        |r| r.get(0),
    )?;
    let version = highest.map_or(first, |h| (h + 1).max(first));
    let row = VersionRow::new(owner, version, Some(wrapped.to_vec()), None);
    insert_version(conn, guard, &row)
}

pub(super) fn change_state(
    conn: &Connection,
    owner: &str,
    version: u32,
    from: KeyState,
    to: KeyState,
) -> rusqlite::Result<StateChange> {
    let Some(row) = select_version(conn, owner, version)? else {
        return Ok(StateChange::Missing);
    };
    if row.state != from {
        return Ok(StateChange::Was(row.state));
    }
    if to == KeyState::Destroyed {
        conn.execute(
            "UPDATE keyseal_key_versions SET state = ?3, wrapped = NULL, master_key_id = NULL \
             WHERE owner = ?1 AND version = ?2",
            params![owner, version, to.as_str()],
        )?;
    } else {
        conn.execute(
            "UPDATE keyseal_key_versions SET state = ?3 WHERE owner = ?1 AND version = ?2",
            params![owner, version, to.as_str()],
        )?;
    }
    Ok(StateChange::Done)
}

pub(super) fn stale_versions(
    conn: &Connection,
    master_id: &str,
    after: Option<(&str, u32)>,
    limit: usize,
) -> rusqlite::Result<Vec<VersionRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (after_owner, after_version) = after.map_or((None, 0), |(o, v)| (Some(o), v));
    conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM keyseal_key_versions \
         WHERE wrapped IS NOT NULL AND (master_key_id IS NULL OR master_key_id <> ?1) \
         AND (?2 IS NULL OR (owner, version) > (?2, ?3)) \
         ORDER BY owner, version LIMIT ?4"
    ))?
    .query_map(
        params![master_id, after_owner, after_version, limit],
        version_row,
    )?
    .collect()
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
    let mut version_update = conn.prepare_cached(
        "UPDATE keyseal_key_versions SET wrapped = ?3, master_key_id = ?4 \
         WHERE owner = ?1 AND version = ?2 AND wrapped IS NOT NULL AND (?6 = 0 OR wrapped = ?5)",
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
            Slot::Version { owner, version } => version_update.execute(params![
                owner,
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
    if schema::has_table(conn, "keyseal_key_versions")? {
        let mut versions = conn.prepare_cached(
            "SELECT master_key_id, COUNT(*) FROM keyseal_key_versions \
             WHERE wrapped IS NOT NULL GROUP BY master_key_id",
        )?;
        for row in versions.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
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
        + count(
            "SELECT COUNT(*) FROM keyseal_key_versions \
             WHERE master_key_id = ?1 AND wrapped IS NOT NULL",
        )?;
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
                versions: read_versions(conn, None)?
                    .into_iter()
                    .filter(|v| v.wrapped.is_some())
                    .collect(),
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
