//! The `SQLite` backend: tables `api_keys` and `api_key_meta` in the same file as the key
//! store (whose tables it never touches), WAL journal, busy timeout.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::format::Environment;
use super::store::{Change, Inserted, Row, Scheme, Storage};
use super::time::Timestamp;
use super::RateLimit;
use crate::Error;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    row_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id        TEXT NOT NULL UNIQUE,
    lookup        TEXT NOT NULL,
    scheme        TEXT NOT NULL,
    hash          TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    environment   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    rotated_to    TEXT,
    rate_requests INTEGER,
    rate_period_ms INTEGER,
    last_used_at  INTEGER,
    seq           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_lookup ON api_keys(lookup);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys(user_id);
CREATE INDEX IF NOT EXISTS api_keys_seq ON api_keys(seq);
CREATE TABLE IF NOT EXISTS api_key_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

const COLUMNS: &str = "row_id, key_id, lookup, scheme, hash, user_id, name, scopes, environment, \
     created_at, expires_at, revoked_at, rotated_to, rate_requests, rate_period_ms, last_used_at";

fn storage(e: &rusqlite::Error) -> Error {
    Error::Storage {
        message: e.to_string(),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

pub(crate) struct SqliteStorage {
    conn: Mutex<Connection>,
    data_version: Mutex<Option<i64>>,
}

impl SqliteStorage {
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        crate::file_mode::prepare_private_db(path)?;
        let conn = Connection::open(path).map_err(|e| storage(&e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| storage(&e))?;
        // WAL lets readers in other processes run while one writes. FULL sync: a created key
        // (shown to its user once) or a revocation that was reported done must survive a power
        // loss; writes are rare (last-use updates are batched), so the fsync costs little.
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .map_err(|e| storage(&e))?;
        conn.execute_batch("PRAGMA synchronous=FULL;")
            .map_err(|e| storage(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| storage(&e))?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
            data_version: Mutex::new(None),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn opt_ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_unix_millis)
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let scheme: String = r.get(3)?;
    let scopes: String = r.get(7)?;
    let env: String = r.get(8)?;
    let bad = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("api_keys: unknown {what}").into(),
        )
    };
    let rate = match (r.get::<_, Option<i64>>(13)?, r.get::<_, Option<i64>>(14)?) {
        (Some(n), Some(ms)) => Some(RateLimit::new(
            u32::try_from(n).unwrap_or(u32::MAX),
            Duration::from_millis(u64::try_from(ms).unwrap_or(1)),
        )),
        _ => None,
    };
    Ok(Row {
        row_id: r.get(0)?,
        key_id: r.get(1)?,
        lookup: r.get(2)?,
        scheme: Scheme::parse(&scheme).ok_or_else(|| bad("scheme"))?,
        hash: r.get(4)?,
        user_id: r.get(5)?,
        name: r.get(6)?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        environment: Environment::parse(&env).ok_or_else(|| bad("environment"))?,
        created_at: Timestamp::from_unix_millis(r.get(9)?),
        expires_at: opt_ts(r.get(10)?),
        revoked_at: opt_ts(r.get(11)?),
        rotated_to: r.get(12)?,
        rate_limit: rate,
        last_used_at: opt_ts(r.get(15)?),
    })
}

fn next_seq(tx: &Connection) -> rusqlite::Result<i64> {
    tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM api_keys", [], |r| {
        r.get(0)
    })
}

fn insert_row(tx: &Connection, row: &Row, seq: i64) -> rusqlite::Result<i64> {
    let (rate_n, rate_ms) = row.rate_limit.map_or((None, None), |r| {
        (
            Some(i64::from(r.requests())),
            Some(i64::try_from(r.period().as_millis()).unwrap_or(i64::MAX)),
        )
    });
    tx.prepare_cached(
        "INSERT INTO api_keys (key_id, lookup, scheme, hash, user_id, name, scopes, environment, \
         created_at, expires_at, revoked_at, rotated_to, rate_requests, rate_period_ms, \
         last_used_at, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
         ?15, ?16)",
    )?
    .execute(params![
        row.key_id,
        row.lookup,
        row.scheme.as_str(),
        row.hash,
        row.user_id,
        row.name,
        row.scopes.join(" "),
        row.environment.as_str(),
        row.created_at.unix_millis(),
        row.expires_at.map(Timestamp::unix_millis),
        row.revoked_at.map(Timestamp::unix_millis),
        row.rotated_to,
        rate_n,
        rate_ms,
        row.last_used_at.map(Timestamp::unix_millis),
        seq,
    ])?;
    Ok(tx.last_insert_rowid())
}

fn active_count(tx: &Connection, user_id: &str, now: Timestamp) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "SELECT COUNT(*) FROM api_keys WHERE user_id = ?1 AND revoked_at IS NULL \
         AND rotated_to IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
    )?
    .query_row(params![user_id, now.unix_millis()], |r| r.get(0))
}

fn find_user_key(tx: &Connection, user_id: &str, key_id: &str) -> rusqlite::Result<Option<Row>> {
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_id = ?1 AND user_id = ?2"
    ))?
    .query_row(params![key_id, user_id], read_row)
    .optional()
}

fn touch_in(conn: &mut Connection, uses: &[(i64, Timestamp)]) -> Result<(), Error> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| storage(&e))?;
    {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?1) \
                     WHERE row_id = ?2",
            )
            .map_err(|e| storage(&e))?;
        for (row_id, at) in uses {
            stmt.execute(params![at.unix_millis(), row_id])
                .map_err(|e| storage(&e))?;
        }
    }
    tx.commit().map_err(|e| storage(&e))
}

impl Storage for SqliteStorage {
    fn insert(&self, row: &Row, quota: Option<u32>, now: Timestamp) -> Result<Inserted, Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(&e))?;
        if let Some(limit) = quota {
            if active_count(&tx, &row.user_id, now).map_err(|e| storage(&e))? >= i64::from(limit) {
                return Err(Error::QuotaExceeded { limit });
            }
        }
        let seq = next_seq(&tx).map_err(|e| storage(&e))?;
        match insert_row(&tx, row, seq) {
            Ok(id) => {
                tx.commit().map_err(|e| storage(&e))?;
                Ok(Inserted::Ok(id))
            }
            Err(e) if is_unique_violation(&e) => Ok(Inserted::IdTaken),
            Err(e) => Err(storage(&e)),
        }
    }

    fn find(&self, lookup: &str) -> Result<Vec<Row>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM api_keys WHERE lookup = ?1 LIMIT 16"
            ))
            .map_err(|e| storage(&e))?;
        let rows = stmt
            .query_map([lookup], read_row)
            .map_err(|e| storage(&e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| storage(&e))?;
        Ok(rows)
    }

    fn get(&self, row_id: i64) -> Result<Option<Row>, Error> {
        let conn = self.conn();
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
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(&e))?;
        let Some(mut row) = find_user_key(&tx, user_id, key_id).map_err(|e| storage(&e))? else {
            return Ok(None);
        };
        if row.revoked_at.is_none() {
            let seq = next_seq(&tx).map_err(|e| storage(&e))?;
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?1, seq = ?2 WHERE row_id = ?3",
                params![now.unix_millis(), seq, row.row_id],
            )
            .map_err(|e| storage(&e))?;
            tx.commit().map_err(|e| storage(&e))?;
            row.revoked_at = Some(now);
        }
        Ok(Some(row))
    }

    fn rotate(
        &self,
        user_id: &str,
        old_key_id: &str,
        new: &Row,
        old_expires_at: Timestamp,
    ) -> Result<Option<(Row, Inserted)>, Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(&e))?;
        let Some(old) = find_user_key(&tx, user_id, old_key_id).map_err(|e| storage(&e))? else {
            return Ok(None);
        };
        if old.revoked_at.is_some() {
            return Err(Error::InvalidArgument {
                what: format!("api key {old_key_id} is revoked and cannot be rotated"),
            });
        }
        if old.rotated_to.is_some() {
            return Err(Error::InvalidArgument {
                what: format!("api key {old_key_id} was already rotated"),
            });
        }
        // Rotation is not counted against the quota; an expired key would otherwise turn into
        // a new active one past it. Create a new key instead.
        if old.expires_at.is_some_and(|at| at <= new.created_at) {
            return Err(Error::InvalidArgument {
                what: format!("api key {old_key_id} has expired; create a new key instead"),
            });
        }
        let seq = next_seq(&tx).map_err(|e| storage(&e))?;
        let new_id = match insert_row(&tx, new, seq) {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => return Ok(Some((old, Inserted::IdTaken))),
            Err(e) => return Err(storage(&e)),
        };
        let ends = old
            .expires_at
            .map_or(old_expires_at, |e| e.min(old_expires_at));
        tx.execute(
            "UPDATE api_keys SET expires_at = ?1, rotated_to = ?2, seq = ?3 WHERE row_id = ?4",
            params![ends.unix_millis(), new.key_id, seq, old.row_id],
        )
        .map_err(|e| storage(&e))?;
        tx.commit().map_err(|e| storage(&e))?;
        Ok(Some((old, Inserted::Ok(new_id))))
    }

    fn touch(&self, uses: &[(i64, Timestamp)]) -> Result<(), Error> {
        let mut conn = self.conn();
        // Last use is bookkeeping done from a verification: never wait long for the write
        // lock another process holds; the caller keeps the batch for next time.
        conn.busy_timeout(Duration::from_millis(50))
            .map_err(|e| storage(&e))?;
        let result = touch_in(&mut conn, uses);
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| storage(&e))?;
        result
    }

    fn all_lookups(&self) -> Result<(Vec<String>, i64), Error> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| storage(&e))?;
        let lookups = tx
            .prepare("SELECT lookup FROM api_keys")
            .and_then(|mut s| {
                s.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(|e| storage(&e))?;
        let seq = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM api_keys", [], |r| {
                r.get(0)
            })
            .map_err(|e| storage(&e))?;
        Ok((lookups, seq))
    }

    fn changes_since(&self, seq: i64) -> Result<(Vec<Change>, i64), Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT row_id, lookup, expires_at, revoked_at, seq FROM api_keys WHERE seq > ?1",
            )
            .map_err(|e| storage(&e))?;
        let mut max = seq;
        let changes = stmt
            .query_map([seq], |r| {
                let s: i64 = r.get(4)?;
                Ok((
                    Change {
                        row_id: r.get(0)?,
                        lookup: r.get(1)?,
                        expires_at: opt_ts(r.get(2)?),
                        revoked: r.get::<_, Option<i64>>(3)?.is_some(),
                    },
                    s,
                ))
            })
            .map_err(|e| storage(&e))?
            .map(|c| {
                c.map(|(c, s)| {
                    max = max.max(s);
                    c
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| storage(&e))?;
        Ok((changes, max))
    }

    fn changed_elsewhere(&self) -> Result<Option<bool>, Error> {
        let conn = match self.conn.try_lock() {
            Ok(c) => c,
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        let v: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| storage(&e))?;
        drop(conn);
        let mut last = self
            .data_version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = last.is_some_and(|l| l != v);
        *last = Some(v);
        Ok(Some(changed))
    }

    fn legacy_formats(&self) -> Result<Vec<(String, usize)>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT name, value FROM api_key_meta WHERE name LIKE 'legacy:%'")
            .map_err(|e| storage(&e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| storage(&e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| storage(&e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(n, v)| Some((n.strip_prefix("legacy:")?.to_owned(), v.parse().ok()?)))
            .collect())
    }

    fn add_legacy_format(&self, prefix: &str, lookup_len: usize) -> Result<(), Error> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR REPLACE INTO api_key_meta (name, value) VALUES (?1, ?2)",
            params![format!("legacy:{prefix}"), lookup_len.to_string()],
        )
        .map_err(|e| storage(&e))?;
        Ok(())
    }
}
