//! Rate-limit leases on `SQLite`: table `api_key_leases` (created by `rows::upgrade`), read
//! on the reader connection first, written under the file's write lock.

use rusqlite::{params, Connection, OptionalExtension};

use crate::issuance::backend::{DecideLease, LeaseContext, LeaseRequest, LeaseRow, Leased};
use crate::sqlite::{storage_error as storage, with_busy_timeout, write, TxError};
use crate::{Error, Timestamp};

use super::SqliteBackend;

/// The table and its index; `IF NOT EXISTS`, run at every open.
pub(super) const LEASES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_key_leases (
    lease_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    row_id     INTEGER NOT NULL,
    holder     TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    tokens     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS api_key_leases_row ON api_key_leases(row_id, granted_at);
";

/// The key's leases and the clock. One machine shares a `SQLite` file, so its clock is the
/// store's.
fn context(conn: &Connection, row_id: i64) -> rusqlite::Result<LeaseContext> {
    let leases = conn
        .prepare_cached(
            "SELECT lease_id, holder, granted_at, tokens FROM api_key_leases WHERE row_id = ?1",
        )?
        .query_map([row_id], |r| {
            Ok(LeaseRow::new(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(LeaseContext::new(Timestamp::now().unix_millis(), leases))
}

impl SqliteBackend {
    pub(super) fn lease_in(
        &self,
        request: &LeaseRequest<'_>,
        decide: DecideLease<'_>,
    ) -> Result<Leased, Error> {
        if request.give_back.is_none() {
            // A full window is answered by a read: refused processes cost no write lock.
            let ctx = context(&self.reader(), request.row_id).map_err(|e| storage(&e))?;
            let decision = decide(&ctx);
            if decision.grant == 0 {
                return Ok(Leased {
                    decision,
                    lease_id: None,
                    wrote: false,
                });
            }
        }
        // As long as any other write: a verification that fails here fails closed.
        let wait = self.busy_timeout;
        let mut conn = self.conn();
        with_busy_timeout(&mut conn, wait, self.busy_timeout, |c| {
            write(c, wait, |tx| {
                if let Some((lease_id, tokens)) = request.give_back {
                    tx.prepare_cached(
                        "UPDATE api_key_leases SET tokens = MAX(tokens - ?1, 0) \
                         WHERE lease_id = ?2 AND row_id = ?3 AND holder = ?4",
                    )?
                    .execute(params![
                        tokens,
                        lease_id,
                        request.row_id,
                        request.holder
                    ])?;
                }
                let ctx = context(tx, request.row_id)?;
                let decision = decide(&ctx);
                let forgotten = tx
                    .prepare_cached(
                        "DELETE FROM api_key_leases WHERE row_id = ?1 \
                         AND (granted_at < ?2 OR tokens <= 0)",
                    )?
                    .execute(params![request.row_id, decision.forget_before_ms])?;
                let lease_id = if decision.grant > 0 {
                    tx.prepare_cached(
                        "INSERT INTO api_key_leases (row_id, holder, granted_at, tokens) \
                         VALUES (?1, ?2, ?3, ?4) RETURNING lease_id",
                    )?
                    .query_row(
                        params![request.row_id, request.holder, ctx.now_ms, decision.grant],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()?
                } else {
                    None
                };
                Ok::<_, TxError>(Leased {
                    decision,
                    lease_id,
                    wrote: request.give_back.is_some() || forgotten > 0 || lease_id.is_some(),
                })
            })
        })
    }
}
