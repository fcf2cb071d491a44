//! The `SQLite` backend: tables `api_keys` and `api_key_meta` in the same file as the key
//! store (whose tables it never touches). Connections, pragmas, busy waits and error mapping
//! come from the crate's one `SQLite` module, with the key store's policy: the file is switched
//! to WAL only once its schema was accepted, so a refused file is left as it was.

mod imports;
pub(crate) mod rows;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::issuance::backend::{
    is_pending, Backend, Change, DecideInsert, DecideRotation, DecideUpdate, InsertContext,
    Inserted, Row,
};
use crate::sqlite::{
    connect_query_only, enable_wal, open_private, storage_error as storage, with_busy_timeout,
    write, TxError,
};
use crate::Timestamp;
use crate::{Error, StorageKind};
use rows::{
    find_user_key, insert_row, is_unique_violation, next_seq, parse_format, read_change, read_row,
    rows_where, tag_in, touch_in, upgrade, COLUMNS, FORMAT_NAME, MAX_SEQ, SCHEMA,
};

/// How long a change check may wait for a read to be allowed.
const READ_WAIT: Duration = Duration::from_millis(200);

pub(crate) struct SqliteBackend {
    conn: Mutex<Connection>,
    /// A second connection used only to look for other processes' changes: in WAL mode it
    /// reads while `conn` waits for (or holds) the write lock, so a busy write never delays
    /// the revocation check. `None` for an in-memory database, which no one else can see.
    reader: Option<Mutex<Connection>>,
    data_version: Mutex<Option<i64>>,
    /// How long a write waits for, and retries against, other writers.
    busy_timeout: Duration,
}

impl SqliteBackend {
    /// Opens (creating it 0600) the database at `path` and its API key tables.
    ///
    /// # Errors
    /// [`Error::Storage`] when the file cannot be opened, is not a database, holds tables of
    /// these names with another shape, or stays busy past `busy_timeout`. The file is then left
    /// as it was (the tables are created in one transaction, WAL is switched on after).
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Self, Error> {
        // FULL sync (set by open_private): a created key (shown to its user once) or a
        // revocation that was reported done must survive a power loss; writes are rare
        // (last-use updates are batched), so the fsync costs little.
        let mut conn = open_private(path, busy_timeout)?;
        write(&mut conn, busy_timeout, |tx| {
            tx.execute_batch(SCHEMA)?;
            upgrade(tx)
        })?;
        // WAL lets readers in other processes run while one writes.
        enable_wal(&conn, busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(32);
        let in_memory = path.as_os_str().is_empty() || path.as_os_str() == ":memory:";
        let reader = if in_memory {
            None
        } else {
            // Readers never wait for writers in WAL mode; the short timeout only covers the
            // rare moments (recovery, a checkpoint restart) when a read can be refused.
            Some(Mutex::new(connect_query_only(path, READ_WAIT)?))
        };
        Ok(SqliteBackend {
            conn: Mutex::new(conn),
            reader,
            data_version: Mutex::new(None),
            busy_timeout,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection for a background write (last uses, tags): with `wait` zero, only if
    /// no other thread holds it.
    fn write_conn(&self, wait: Duration) -> Result<MutexGuard<'_, Connection>, Error> {
        if !wait.is_zero() {
            return Ok(self.conn());
        }
        match self.conn.try_lock() {
            Ok(c) => Ok(c),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => {
                Err(Error::storage(StorageKind::Busy, "the connection is busy"))
            }
        }
    }

    /// The connection for change checks: the reader, or the only connection in memory.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        match &self.reader {
            Some(r) => r.lock().unwrap_or_else(PoisonError::into_inner),
            None => self.conn(),
        }
    }
}

impl crate::issuance::backend::sealed::Sealed for SqliteBackend {}

impl Backend for SqliteBackend {
    fn insert(&self, row: &Row, decide: DecideInsert<'_>) -> Result<Inserted, Error> {
        write(&mut self.conn(), self.busy_timeout, |tx| {
            let ctx = InsertContext {
                user_rows: rows_where(tx, "user_id", &row.user_id)?,
                // A pending import's marker is shared by every such key, and no rule needs them.
                same_lookup: if is_pending(&row.lookup) {
                    Vec::new()
                } else {
                    rows_where(tx, "lookup", &row.lookup)?
                },
            };
            decide(&ctx)?;
            let seq = next_seq(tx)?;
            match insert_row(tx, row, seq) {
                Ok(id) => Ok(Inserted::Ok(id)),
                // The failed statement wrote nothing: committing the rest commits nothing.
                Err(e) if is_unique_violation(&e) => Ok(Inserted::IdTaken),
                Err(e) => Err(TxError::Db(e)),
            }
        })
    }

    // `find` and `get` serve verifications: on the reader, so they never wait for this
    // process's own writes (a flush or a create waiting for another process's lock).
    fn find(&self, lookup: &str) -> Result<Vec<Row>, Error> {
        rows_where(&self.reader(), "lookup", lookup).map_err(|e| storage(&e))
    }

    fn get(&self, row_id: i64) -> Result<Option<Row>, Error> {
        let conn = self.reader();
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE row_id = ?1"))
            .and_then(|mut s| s.query_row([row_id], read_row).optional())
            .map_err(|e| storage(&e))
    }

    fn get_user_key(&self, user_id: &str, key_id: &str) -> Result<Option<Row>, Error> {
        find_user_key(&self.conn(), user_id, key_id).map_err(|e| storage(&e))
    }

    fn list(&self, user_id: &str) -> Result<Vec<Row>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM api_keys WHERE user_id = ?1 ORDER BY created_at DESC, \
                 row_id DESC"
            ))
            .map_err(|e| storage(&e))?;
        let rows = stmt
            .query_map([user_id], read_row)
            .map_err(|e| storage(&e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| storage(&e))?;
        Ok(rows)
    }

    fn revoke(&self, user_id: &str, key_id: &str, now: Timestamp) -> Result<Option<Row>, Error> {
        write(&mut self.conn(), self.busy_timeout, |tx| {
            let Some(mut row) = find_user_key(tx, user_id, key_id)? else {
                return Ok(None);
            };
            if row.revoked_at.is_none() {
                let seq = next_seq(tx)?;
                tx.execute(
                    "UPDATE api_keys SET revoked_at = ?1, seq = ?2 WHERE row_id = ?3",
                    params![now.unix_millis(), seq, row.row_id],
                )?;
                row.revoked_at = Some(now);
            }
            Ok(Some(row))
        })
    }

    fn rotate(
        &self,
        user_id: &str,
        old_key_id: &str,
        new: &Row,
        decide: DecideRotation<'_>,
    ) -> Result<Option<(Row, Inserted)>, Error> {
        write(&mut self.conn(), self.busy_timeout, |tx| {
            let user_rows = rows_where(tx, "user_id", user_id)?;
            let Some(mut old) = user_rows.iter().find(|r| r.key_id == old_key_id).cloned() else {
                return Ok(None);
            };
            let ends = decide(&old, &user_rows)?;
            let seq = next_seq(tx)?;
            let new_id = match insert_row(tx, new, seq) {
                Ok(id) => id,
                // Nothing written yet: the old key is left as it was.
                Err(e) if is_unique_violation(&e) => return Ok(Some((old, Inserted::IdTaken))),
                Err(e) => return Err(TxError::Db(e)),
            };
            tx.execute(
                "UPDATE api_keys SET expires_at = ?1, rotated_to = ?2, seq = ?3 WHERE row_id = ?4",
                params![ends.unix_millis(), new.key_id, seq, old.row_id],
            )?;
            old.expires_at = Some(ends);
            old.rotated_to = Some(new.key_id.clone());
            Ok(Some((old, Inserted::Ok(new_id))))
        })
    }

    fn update(
        &self,
        user_id: &str,
        key_id: &str,
        decide: DecideUpdate<'_>,
    ) -> Result<Option<Row>, Error> {
        write(&mut self.conn(), self.busy_timeout, |tx| {
            let user_rows = rows_where(tx, "user_id", user_id)?;
            let Some(old) = user_rows.iter().find(|r| r.key_id == key_id) else {
                return Ok(None);
            };
            let new = decide(old, &user_rows)?;
            let seq = next_seq(tx)?;
            let (rate_n, rate_ms) = new.rate_columns();
            tx.prepare_cached(
                "UPDATE api_keys SET name = ?1, scopes = ?2, expires_at = ?3, rate_requests = ?4, \
                 rate_period_ms = ?5, metadata = ?6, enabled = ?7, seq = ?8 WHERE row_id = ?9",
            )?
            .execute(params![
                new.name,
                new.scopes.join(" "),
                new.expires_at.map(Timestamp::unix_millis),
                rate_n,
                rate_ms,
                new.metadata_text(),
                i64::from(new.enabled),
                seq,
                old.row_id,
            ])?;
            // Read back: the row as stored, whatever `decide` put in other fields.
            Ok(find_user_key(tx, user_id, key_id)?)
        })
    }

    fn delete(&self, user_id: &str, key_id: &str) -> Result<Option<Row>, Error> {
        write(&mut self.conn(), self.busy_timeout, |tx| {
            let Some(row) = find_user_key(tx, user_id, key_id)? else {
                return Ok(None);
            };
            let seq = next_seq(tx)?;
            tx.execute(
                "INSERT OR REPLACE INTO api_key_tombstones (row_id, lookup, seq) \
                 VALUES (?1, ?2, ?3)",
                params![row.row_id, row.lookup, seq],
            )?;
            tx.execute("DELETE FROM api_keys WHERE row_id = ?1", [row.row_id])?;
            Ok(Some(row))
        })
    }

    fn page(
        &self,
        user_id: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, Error> {
        // Two statements, so that one user's page uses the user index (row ids in it are
        // in order) and the admin's walks the primary key.
        let sql = if user_id.is_some() {
            format!(
                "SELECT {COLUMNS} FROM api_keys WHERE user_id = ?1 AND row_id < ?2 \
                 ORDER BY row_id DESC LIMIT ?3"
            )
        } else {
            format!(
                "SELECT {COLUMNS} FROM api_keys WHERE ?1 IS NULL AND row_id < ?2 \
                 ORDER BY row_id DESC LIMIT ?3"
            )
        };
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| storage(&e))?;
        let rows = stmt
            .query_map(
                params![
                    user_id,
                    before.unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                read_row,
            )
            .map_err(|e| storage(&e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| storage(&e))?;
        Ok(rows)
    }

    fn touch(&self, uses: &[(i64, Timestamp)], wait: Duration) -> Result<(), Error> {
        let mut conn = self.write_conn(wait)?;
        // The lock wait of this connection is `wait` for these writes only.
        with_busy_timeout(&mut conn, wait, self.busy_timeout, |c| {
            touch_in(c, uses, wait)
        })
    }

    fn set_verifier_tags(&self, tags: &[(i64, String)], wait: Duration) -> Result<(), Error> {
        if tags.is_empty() {
            return Ok(());
        }
        let mut conn = self.write_conn(wait)?;
        with_busy_timeout(&mut conn, wait, self.busy_timeout, |c| {
            tag_in(c, tags, wait)
        })
    }

    fn all_lookups(&self) -> Result<(Vec<String>, i64), Error> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| storage(&e))?;
        let lookups = tx
            .prepare("SELECT lookup FROM api_keys")
            .and_then(|mut s| {
                // A lookup that is not text matches no presented key: leave it out.
                Ok(s.query_map([], |r| r.get::<_, String>(0))?
                    .filter_map(Result::ok)
                    .collect::<Vec<String>>())
            })
            .map_err(|e| storage(&e))?;
        let seq = tx
            .query_row(MAX_SEQ, [], |r| r.get(0))
            .map_err(|e| storage(&e))?;
        Ok((lookups, seq))
    }

    fn changes_since(&self, seq: i64) -> Result<(Vec<Change>, i64), Error> {
        let conn = self.reader();
        // One snapshot for both tables: read apart, a tombstone committed between the two
        // reads could carry the highest `seq` past a row change the first read missed.
        let snapshot = conn.unchecked_transaction().map_err(|e| storage(&e))?;
        let mut stmt = snapshot
            .prepare_cached(
                "SELECT row_id, lookup, expires_at, revoked_at, seq, key_id, enabled \
                 FROM api_keys WHERE seq > ?1",
            )
            .map_err(|e| storage(&e))?;
        let mut max = seq;
        let mut changes = Vec::new();
        let mut rows = stmt.query([seq]).map_err(|e| storage(&e))?;
        while let Some(r) = rows.next().map_err(|e| storage(&e))? {
            let (change, row_seq) = read_change(r).map_err(|e| storage(&e))?;
            if let Some(s) = row_seq {
                max = max.max(s);
            }
            changes.push(change);
        }
        drop(rows);
        drop(stmt);
        let mut stmt = snapshot
            .prepare_cached("SELECT row_id, lookup, seq FROM api_key_tombstones WHERE seq > ?1")
            .map_err(|e| storage(&e))?;
        let gone = stmt
            .query_map([seq], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| storage(&e))?;
        for t in gone {
            let (row_id, lookup, row_seq) = t.map_err(|e| storage(&e))?;
            max = max.max(row_seq);
            changes.push(Change {
                row_id,
                lookup: Some(lookup),
                expires_at: None,
                revoked: false,
                disabled: false,
                deleted: true,
                unreadable: None,
            });
        }
        drop(stmt);
        snapshot.commit().map_err(|e| storage(&e))?;
        Ok((changes, max))
    }

    fn changed_elsewhere(&self) -> Result<bool, Error> {
        if self.reader.is_none() {
            return Ok(false); // in memory: no one else can write
        }
        let v: i64 = self
            .reader()
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| storage(&e))?;
        let mut last = self
            .data_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let changed = last.is_some_and(|l| l != v);
        *last = Some(v);
        Ok(changed)
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn schema_version(&self) -> Result<i64, Error> {
        let version: Option<String> = self
            .reader()
            .query_row(
                "SELECT value FROM api_key_meta WHERE name = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| storage(&e))?;
        Ok(version.and_then(|v| v.parse().ok()).unwrap_or(1))
    }

    fn legacy_formats(&self) -> Result<Vec<(String, usize)>, Error> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached("SELECT name, value FROM api_key_meta WHERE name LIKE 'legacy%'")
            .map_err(|e| storage(&e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| storage(&e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| storage(&e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(n, v)| parse_format(&n, &v))
            .collect())
    }

    fn add_legacy_format(&self, prefix: &str, lookup_len: usize) -> Result<(), Error> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR REPLACE INTO api_key_meta (name, value) VALUES (?1, ?2)",
            params![
                format!("{FORMAT_NAME}{lookup_len}:{prefix}"),
                lookup_len.to_string()
            ],
        )
        .map_err(|e| storage(&e))?;
        Ok(())
    }

    fn export(&self) -> Result<crate::issuance::backend::Exported, Error> {
        write(&mut self.conn(), self.busy_timeout, |tx| {
            let rows = tx
                .prepare(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY row_id"))?
                .query_map([], read_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let legacy = tx
                .prepare("SELECT name, value FROM api_key_meta WHERE name LIKE 'legacy%'")?
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter_map(|(n, v)| parse_format(&n, &v))
                .collect();
            Ok((rows, legacy))
        })
    }

    fn import(&self, rows: &[Row], legacy: &[(String, usize)]) -> Result<bool, Error> {
        write(&mut self.conn(), self.busy_timeout, |tx| {
            let there: i64 = tx.query_row("SELECT count(*) FROM api_keys", [], |r| r.get(0))?;
            if there > 0 {
                return Ok(false);
            }
            for row in rows {
                let seq = next_seq(tx)?;
                insert_row(tx, row, seq)?;
            }
            for (prefix, lookup_len) in legacy {
                tx.execute(
                    "INSERT OR REPLACE INTO api_key_meta (name, value) VALUES (?1, ?2)",
                    params![
                        format!("{FORMAT_NAME}{lookup_len}:{prefix}"),
                        lookup_len.to_string()
                    ],
                )?;
            }
            Ok(true)
        })
    }

    fn imported(&self, source: &str) -> Result<Vec<Row>, Error> {
        imports::imported(&self.conn(), source).map_err(|e| storage(&e))
    }

    fn pending(&self, lookup: &str, limit: usize) -> Result<Vec<Row>, Error> {
        imports::pending(&self.reader(), lookup, limit).map_err(|e| storage(&e))
    }

    fn set_lookup(&self, row_id: i64, from: &str, to: &str) -> Result<bool, Error> {
        write(&mut self.conn(), self.busy_timeout, |tx| {
            let seq = next_seq(tx)?;
            Ok(imports::set_lookup(tx, row_id, from, to, seq)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_store_has_no_reader_and_sees_its_own_writes() {
        let s = SqliteBackend::open(Path::new(":memory:"), Duration::from_secs(5)).unwrap();
        assert!(s.reader.is_none());
        assert!(!s.changed_elsewhere().unwrap());
        s.add_legacy_format("mhu_", 8).unwrap();
        s.add_legacy_format("mhu_", 12).unwrap();
        let mut formats = s.legacy_formats().unwrap();
        formats.sort();
        assert_eq!(formats, [("mhu_".into(), 8), ("mhu_".into(), 12)]);
    }
}
