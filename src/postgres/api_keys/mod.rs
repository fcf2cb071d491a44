//! The API keys' PostgreSQL backend: tables `api_keys`, `api_key_meta` and
//! `api_key_tombstones` with the same columns as on `SQLite`, and `keyseal_feed`, the change
//! feed's single-row counter.
//!
//! # The change feed
//! Every feed-writing transaction (insert, revocation, rotation, update, delete, a new legacy
//! format) first
//! takes the next `seq` with `UPDATE keyseal_feed SET seq = seq + 1 … RETURNING seq`. The row
//! lock that takes is held until commit, so these transactions run one at a time and their
//! numbers follow commit order: a row can never become visible with a `seq` at or below one a
//! reader has already passed. Last-use writes (`touch`) do not take it and do not change
//! `seq`. [`Backend::changed_elsewhere`] reads the counter: one indexed read of one row,
//! with the store's epoch (see [`Backend::epoch`]). The same statement that takes the number
//! sends a notification on `keyseal_feed`, delivered at commit, which wakes other
//! processes' feed threads at once (see `listen`).
//!
//! # Rules under concurrency
//! Because every guarded write holds the counter first, the rows a rule reads (a user's keys
//! for the quota, the old key of a rotation) cannot change before the transaction commits:
//! two servers can never both pass a quota. Plain reads (`find`, `get`, `list`, the change
//! check) take no lock and never wait for a write; the change check runs on a pool of its own
//! so it never waits for a connection a write holds.

mod feed;
mod imports;
mod leases;
mod listen;
mod rows;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use std::time::Duration;
use zeroize::Zeroizing;

use super::errors::TxError;
use super::pool::{write_tx, Conn, Shared};
use super::query::{p, Param};
use super::runtime::block;
use crate::issuance::backend::{
    is_pending, sealed, Backend, Change, DecideInsert, DecideLease, DecideRotation, DecideUpdate,
    FeedMode, InsertContext, Inserted, LeaseRequest, Leased, Row, Wake,
};
use crate::sqlite::api_keys::rows::{parse_format, FORMAT_NAME};
use crate::{Error, StorageKind, Timestamp};
use rows::{read_row, InsertParams, COLUMNS, NEXT_SEQ, SET_TAGS, UPDATE};

/// How long a change check may wait for a connection of the read pool.
const READ_WAIT: Duration = Duration::from_millis(500);

/// The PostgreSQL implementation of [`Backend`].
pub(crate) struct PgApiKeys {
    shared: Arc<Shared>,
    busy_timeout: Duration,
    /// The counter's value at the last [`Backend::changed_elsewhere`].
    last_seq: Mutex<Option<i64>>,
    /// The epoch read with it (0: not yet).
    epoch: AtomicU64,
    /// The store's URL, for a listener without a URL of its own (kept wiped).
    url: Zeroizing<String>,
    listener: Mutex<Option<listen::Listener>>,
}

impl sealed::Sealed for PgApiKeys {}

fn unreadable(why: String) -> Error {
    Error::storage(StorageKind::Corrupt, why)
}

/// Rows by one indexed column (`user_id` or `lookup`), oldest first.
async fn rows_where(conn: &Conn, column: &str, value: &str) -> Result<Vec<Row>, TxError> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM api_keys WHERE {column} = $1 ORDER BY row_id"),
        &[p(&value)],
    )
    .await?
    .iter()
    .map(|r| read_row(r).map_err(|why| TxError::App(unreadable(why))))
    .collect()
}

async fn next_seq(conn: &Conn) -> Result<i64, TxError> {
    let row = conn.query_opt(NEXT_SEQ, &[]).await?;
    row.map(|r| r.get(0)).ok_or_else(|| {
        TxError::App(Error::storage(
            StorageKind::Corrupt,
            "the change feed's counter row (keyseal_feed) is missing: run `keyseal db migrate` \
             (keyseal::postgres::migrate)",
        ))
    })
}

impl PgApiKeys {
    /// Opens the API keys at `url` (sharing the process's pool for it) and makes sure the
    /// schema is current (see [`super::schema::ensure`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL that cannot be read; [`Error::Storage`] when the
    /// server cannot be reached or refuses the login, or the schema cannot be used.
    pub(crate) fn open(url: &str, busy_timeout: Duration) -> Result<Self, Error> {
        let shared = super::pool::shared(url)?;
        block(shared.ensure_schema(busy_timeout))??;
        Ok(PgApiKeys {
            shared,
            busy_timeout,
            last_seq: Mutex::new(None),
            epoch: AtomicU64::new(0),
            url: Zeroizing::new(url.to_owned()),
            listener: Mutex::new(None),
        })
    }

    /// The row `sql` selects, if any (retried once on a fresh connection when the pooled
    /// one turns out to be lost).
    async fn one_row(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, Error> {
        let row = self
            .shared
            .read(self.busy_timeout, false, |conn| async move {
                conn.query_opt(sql, params).await
            })
            .await?;
        row.map(|r| read_row(&r).map_err(unreadable)).transpose()
    }

    /// The rows `sql` selects (retried as [`PgApiKeys::one_row`]).
    async fn many_rows(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        self.shared
            .read(self.busy_timeout, false, |conn| async move {
                conn.query(sql, params).await
            })
            .await?
            .iter()
            .map(|r| read_row(r).map_err(unreadable))
            .collect()
    }
}

impl Backend for PgApiKeys {
    fn insert(&self, row: &Row, decide: DecideInsert<'_>) -> Result<Inserted, Error> {
        let params = InsertParams::of(row);
        let params = &params;
        block(async {
            write_tx!(self.shared, self.busy_timeout, |conn| {
                let seq = next_seq(conn).await?;
                let ctx = InsertContext {
                    user_rows: rows_where(conn, "user_id", &row.user_id).await?,
                    // A pending import's marker is shared by every such key; no rule needs them.
                    same_lookup: if is_pending(&row.lookup) {
                        Vec::new()
                    } else {
                        rows_where(conn, "lookup", &row.lookup).await?
                    },
                };
                decide(&ctx)?;
                match params.insert(conn, row, seq).await? {
                    Some(id) => Inserted::Ok(id),
                    None => Inserted::IdTaken,
                }
            })
        })?
    }

    fn find(&self, lookup: &str) -> Result<Vec<Row>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE lookup = $1 ORDER BY row_id");
        block(self.many_rows(&sql, &[p(&lookup)]))?
    }

    fn get(&self, row_id: i64) -> Result<Option<Row>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE row_id = $1");
        block(self.one_row(&sql, &[p(&row_id)]))?
    }

    fn get_user_key(&self, user_id: &str, key_id: &str) -> Result<Option<Row>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE key_id = $1 AND user_id = $2");
        block(self.one_row(&sql, &[p(&key_id), p(&user_id)]))?
    }

    fn list(&self, user_id: &str) -> Result<Vec<Row>, Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 \
             ORDER BY created_at DESC, row_id DESC"
        );
        block(self.many_rows(&sql, &[p(&user_id)]))?
    }

    fn revoke(&self, user_id: &str, key_id: &str, now: Timestamp) -> Result<Option<Row>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE key_id = $1 AND user_id = $2");
        let sql = &sql;
        block(async {
            write_tx!(self.shared, self.busy_timeout, |conn| {
                let seq = next_seq(conn).await?;
                let found = conn.query_opt(sql, &[p(&key_id), p(&user_id)]).await?;
                let Some(found) = found else {
                    return Ok(None);
                };
                let mut row = read_row(&found).map_err(|why| TxError::App(unreadable(why)))?;
                if row.revoked_at.is_none() {
                    conn.execute(
                        "UPDATE api_keys SET revoked_at = $1, seq = $2 WHERE row_id = $3",
                        &[p(&now.unix_millis()), p(&seq), p(&row.row_id)],
                    )
                    .await?;
                    row.revoked_at = Some(now);
                }
                Some(row)
            })
        })?
    }

    fn rotate(
        &self,
        user_id: &str,
        old_key_id: &str,
        new: &Row,
        decide: DecideRotation<'_>,
    ) -> Result<Option<(Row, Inserted)>, Error> {
        let params = InsertParams::of(new);
        let params = &params;
        block(async {
            write_tx!(self.shared, self.busy_timeout, |conn| {
                let seq = next_seq(conn).await?;
                let user_rows = rows_where(conn, "user_id", user_id).await?;
                let Some(mut old) = user_rows.iter().find(|r| r.key_id == old_key_id).cloned()
                else {
                    return Ok(None);
                };
                let ends = decide(&old, &user_rows)?;
                let Some(new_id) = params.insert(conn, new, seq).await? else {
                    // Nothing written to the old key.
                    return Ok(Some((old, Inserted::IdTaken)));
                };
                conn.execute(
                    "UPDATE api_keys SET expires_at = $1, rotated_to = $2, seq = $3 \
                     WHERE row_id = $4",
                    &[
                        p(&ends.unix_millis()),
                        p(&new.key_id),
                        p(&seq),
                        p(&old.row_id),
                    ],
                )
                .await?;
                old.expires_at = Some(ends);
                old.rotated_to = Some(new.key_id.clone());
                Some((old, Inserted::Ok(new_id)))
            })
        })?
    }

    fn update(
        &self,
        user_id: &str,
        key_id: &str,
        decide: DecideUpdate<'_>,
    ) -> Result<Option<Row>, Error> {
        block(async {
            write_tx!(self.shared, self.busy_timeout, |conn| {
                let seq = next_seq(conn).await?;
                let user_rows = rows_where(conn, "user_id", user_id).await?;
                let Some(old) = user_rows.iter().find(|r| r.key_id == key_id) else {
                    return Ok(None);
                };
                let mut new = decide(old, &user_rows)?;
                let (rate_requests, rate_period_ms) = new.rate_columns();
                let (scopes, expires_at, metadata) = (
                    new.scopes.join(" "),
                    new.expires_at.map(Timestamp::unix_millis),
                    new.metadata_text(),
                );
                conn.execute(
                    UPDATE,
                    &[
                        p(&new.name),
                        p(&scopes),
                        p(&expires_at),
                        p(&rate_requests),
                        p(&rate_period_ms),
                        p(&metadata),
                        p(&new.enabled),
                        p(&seq),
                        p(&old.row_id),
                    ],
                )
                .await?;
                // What was written; everything else as stored.
                let mut stored = old.clone();
                stored.name = std::mem::take(&mut new.name);
                stored.scopes = std::mem::take(&mut new.scopes);
                stored.expires_at = new.expires_at;
                stored.rate_limit = new.rate_limit;
                stored.metadata = std::mem::take(&mut new.metadata);
                stored.enabled = new.enabled;
                Some(stored)
            })
        })?
    }

    fn delete(&self, user_id: &str, key_id: &str) -> Result<Option<Row>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE key_id = $1 AND user_id = $2");
        let sql = &sql;
        block(async {
            write_tx!(self.shared, self.busy_timeout, |conn| {
                let seq = next_seq(conn).await?;
                let found = conn.query_opt(sql, &[p(&key_id), p(&user_id)]).await?;
                let Some(found) = found else {
                    return Ok(None);
                };
                let row = read_row(&found).map_err(|why| TxError::App(unreadable(why)))?;
                conn.execute(
                    "INSERT INTO api_key_tombstones (row_id, lookup, seq) VALUES ($1, $2, $3) \
                     ON CONFLICT (row_id) DO UPDATE SET seq = EXCLUDED.seq",
                    &[p(&row.row_id), p(&row.lookup), p(&seq)],
                )
                .await?;
                conn.execute("DELETE FROM api_keys WHERE row_id = $1", &[p(&row.row_id)])
                    .await?;
                conn.execute(
                    "DELETE FROM api_key_leases WHERE row_id = $1",
                    &[p(&row.row_id)],
                )
                .await?;
                Some(row)
            })
        })?
    }

    fn page(
        &self,
        user_id: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, Error> {
        let before = before.unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if let Some(user) = user_id {
            let sql = format!(
                "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 AND row_id < $2 \
                 ORDER BY row_id DESC LIMIT $3"
            );
            block(self.many_rows(&sql, &[p(&user), p(&before), p(&limit)]))?
        } else {
            let sql = format!(
                "SELECT {COLUMNS} FROM api_keys WHERE row_id < $1 ORDER BY row_id DESC \
                 LIMIT $2"
            );
            block(self.many_rows(&sql, &[p(&before), p(&limit)]))?
        }
    }

    fn touch(&self, uses: &[(i64, Timestamp)], wait: Duration) -> Result<(), Error> {
        if uses.is_empty() {
            return Ok(());
        }
        // Sorted by row: two batches lock their rows in the same order.
        let mut sorted: Vec<(i64, i64)> = uses
            .iter()
            .map(|(id, at)| (*id, at.unix_millis()))
            .collect();
        sorted.sort_unstable();
        let ids: Vec<i64> = sorted.iter().map(|u| u.0).collect();
        let ats: Vec<i64> = sorted.iter().map(|u| u.1).collect();
        let (ids, ats) = (&ids, &ats);
        block(async {
            write_tx!(self.shared, wait, |conn| {
                conn.execute(
                    "UPDATE api_keys AS k \
                     SET last_used_at = GREATEST(COALESCE(k.last_used_at, 0), v.at) \
                     FROM (SELECT * FROM unnest($1::bigint[], $2::bigint[]) \
                           ORDER BY 1) AS v(id, at) \
                     WHERE k.row_id = v.id",
                    &[p(ids), p(ats)],
                )
                .await?;
            })
        })?
    }

    fn set_verifier_tags(&self, tags: &[(i64, String)], wait: Duration) -> Result<(), Error> {
        if tags.is_empty() {
            return Ok(());
        }
        // Sorted by row, as last uses: two batches lock their rows in the same order.
        let mut sorted: Vec<&(i64, String)> = tags.iter().collect();
        sorted.sort_unstable_by_key(|t| t.0);
        let ids: Vec<i64> = sorted.iter().map(|t| t.0).collect();
        let values: Vec<&str> = sorted.iter().map(|t| t.1.as_str()).collect();
        let (ids, values) = (&ids, &values);
        block(async {
            write_tx!(self.shared, wait, |conn| {
                conn.execute(SET_TAGS, &[p(ids), p(values)]).await?;
            })
        })?
    }

    fn lease(&self, request: &LeaseRequest<'_>, decide: DecideLease<'_>) -> Result<Leased, Error> {
        self.lease_in(request, decide)
    }

    fn all_lookups(&self) -> Result<(Vec<String>, i64), Error> {
        self.feed_all_lookups()
    }

    fn changes_since(&self, seq: i64) -> Result<(Vec<Change>, i64), Error> {
        self.feed_changes_since(seq)
    }

    fn changed_elsewhere(&self) -> Result<bool, Error> {
        self.feed_changed_elsewhere()
    }

    fn epoch(&self) -> Option<u64> {
        self.feed_epoch()
    }

    fn store_seq(&self) -> Option<i64> {
        self.feed_store_seq()
    }

    fn watch(&self, wake: Wake, listen_url: Option<&str>) {
        self.feed_watch(wake, listen_url);
    }

    fn feed_mode(&self) -> FeedMode {
        self.feed_mode_now()
    }

    fn name(&self) -> &'static str {
        "postgres"
    }

    fn schema_version(&self) -> Result<i64, Error> {
        let version: i32 = block(self.shared.read(READ_WAIT, true, |conn| async move {
            Ok(conn
                .query_opt("SELECT version FROM keyseal_schema WHERE id = 1", &[])
                .await?
                .map_or(0, |r| r.get(0)))
        }))??;
        Ok(i64::from(version))
    }

    fn legacy_formats(&self) -> Result<Vec<(String, usize)>, Error> {
        block(self.shared.read(READ_WAIT, true, |conn| async move {
            Ok(conn
                .query(
                    "SELECT name, value FROM api_key_meta WHERE name LIKE 'legacy%'",
                    &[],
                )
                .await?
                .iter()
                .filter_map(|r| parse_format(r.get(0), r.get(1)))
                .collect())
        }))?
    }

    fn add_legacy_format(&self, prefix: &str, lookup_len: usize) -> Result<(), Error> {
        let name = format!("{FORMAT_NAME}{lookup_len}:{prefix}");
        let value = lookup_len.to_string();
        let (name, value) = (&name, &value);
        block(async {
            write_tx!(self.shared, self.busy_timeout, |conn| {
                // A change others must see: a key of this format may follow.
                next_seq(conn).await?;
                conn.execute(
                    "INSERT INTO api_key_meta (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                    &[p(name), p(value)],
                )
                .await?;
            })
        })?
    }

    fn export(&self) -> Result<crate::issuance::backend::Exported, Error> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY row_id");
        let sql = &sql;
        block(async {
            write_tx!(
                self.shared,
                self.busy_timeout,
                limit = Some(super::pool::BULK_ROUND_TRIP),
                |conn| {
                    // Holding the feed's counter keeps every other writer out: one snapshot.
                    next_seq(conn).await?;
                    let rows = conn
                        .query(sql.as_str(), &[])
                        .await?
                        .iter()
                        .map(|r| read_row(r).map_err(|why| TxError::App(unreadable(why))))
                        .collect::<Result<Vec<_>, _>>()?;
                    let legacy = conn
                        .query(
                            "SELECT name, value FROM api_key_meta WHERE name LIKE 'legacy%'",
                            &[],
                        )
                        .await?
                        .iter()
                        .filter_map(|r| parse_format(r.get(0), r.get(1)))
                        .collect();
                    (rows, legacy)
                }
            )
        })?
    }

    fn import(&self, rows: &[Row], legacy: &[(String, usize)]) -> Result<bool, Error> {
        let params: Vec<InsertParams> = rows.iter().map(InsertParams::of).collect();
        let params = &params;
        block(async {
            write_tx!(
                self.shared,
                self.busy_timeout,
                limit = Some(super::pool::BULK_ROUND_TRIP),
                |conn| {
                    // Taken first, as by every insert: no other writer until commit.
                    next_seq(conn).await?;
                    let there: i64 = conn
                        .query_one("SELECT count(*) FROM api_keys", &[])
                        .await?
                        .get(0);
                    if there > 0 {
                        false
                    } else {
                        for (row, params) in rows.iter().zip(params) {
                            let seq = next_seq(conn).await?;
                            if params.insert(conn, row, seq).await?.is_none() {
                                return Err(TxError::App(Error::storage(
                                    StorageKind::Corrupt,
                                    format!(
                                        "key id {} (or its source id) appears twice in the copied rows",
                                        row.key_id
                                    ),
                                )));
                            }
                        }
                        for (prefix, lookup_len) in legacy {
                            let (name, value) = (
                                format!("{FORMAT_NAME}{lookup_len}:{prefix}"),
                                lookup_len.to_string(),
                            );
                            conn.execute(
                                "INSERT INTO api_key_meta (name, value) VALUES ($1, $2) \
                             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                                &[p(&name), p(&value)],
                            )
                            .await?;
                        }
                        true
                    }
                }
            )
        })?
    }

    fn imported(&self, source: &str) -> Result<Vec<Row>, Error> {
        self.imported_rows(source)
    }

    fn pending(&self, lookup: &str, limit: usize) -> Result<Vec<Row>, Error> {
        self.pending_rows(lookup, limit)
    }

    fn set_lookup(&self, row_id: i64, from: &str, to: &str) -> Result<bool, Error> {
        self.set_row_lookup(row_id, from, to)
    }
}
