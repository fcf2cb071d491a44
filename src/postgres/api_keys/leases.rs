//! Rate-limit leases on PostgreSQL: table `api_key_leases` (migration 6), the clock of the
//! database server (every process counts in one time, whatever its own clock says), and a
//! transaction-scoped advisory lock per key, so lease writes of one key run one at a time
//! (and nothing outlives the transaction: it works behind a pooler in transaction mode).

use super::PgApiKeys;
use crate::issuance::backend::{DecideLease, LeaseContext, LeaseRequest, LeaseRow, Leased};
use crate::postgres::errors::TxError;
use crate::postgres::pool::{write_tx, Conn};
use crate::postgres::query::p;
use crate::postgres::runtime::block;
use crate::Error;

/// The advisory lock class of leases ("ksle"); the key's row id (folded into 31 bits: two
/// keys sharing a lock only wait for each other) is the object.
const LOCK_CLASS: i32 = 0x6b73_6c65;

/// The server's clock and the key's leases: one row with NULL lease columns when it has
/// none.
const CONTEXT: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, \
     l.lease_id, l.holder, l.granted_at, l.tokens \
     FROM (SELECT 1) AS one LEFT JOIN api_key_leases AS l ON l.row_id = $1";

async fn context(conn: &Conn, row_id: i64) -> Result<LeaseContext, TxError> {
    let rows = conn.query(CONTEXT, &[p(&row_id)]).await?;
    let now_ms = rows.first().map_or(0, |r| r.get::<_, i64>(0));
    let leases = rows
        .iter()
        .filter_map(|r| {
            Some(LeaseRow::new(
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .collect();
    Ok(LeaseContext::new(now_ms, leases))
}

impl PgApiKeys {
    pub(super) fn lease_in(
        &self,
        request: &LeaseRequest<'_>,
        decide: DecideLease<'_>,
    ) -> Result<Leased, Error> {
        // As long as any other write: a verification that fails here fails closed.
        let wait = self.busy_timeout;
        let row_id = request.row_id;
        if request.give_back.is_none() {
            // A full window is answered by a read: refused processes take no lock.
            let ctx = block(self.shared.read(wait, false, |conn| async move {
                context(&conn, row_id).await
            }))??;
            let decision = decide(&ctx);
            if decision.grant == 0 {
                return Ok(Leased {
                    decision,
                    lease_id: None,
                    wrote: false,
                });
            }
        }
        let holder = request.holder;
        let give_back = request.give_back;
        block(async {
            write_tx!(self.shared, wait, |conn| {
                conn.execute(
                    "SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::integer)",
                    &[p(&LOCK_CLASS), p(&row_id)],
                )
                .await?;
                if let Some((lease_id, tokens)) = give_back {
                    conn.execute(
                        "UPDATE api_key_leases SET tokens = GREATEST(tokens - $1, 0) \
                         WHERE lease_id = $2 AND row_id = $3 AND holder = $4",
                        &[p(&i64::from(tokens)), p(&lease_id), p(&row_id), p(&holder)],
                    )
                    .await?;
                }
                let ctx = context(conn, row_id).await?;
                let decision = decide(&ctx);
                let forgotten = conn
                    .execute(
                        "DELETE FROM api_key_leases WHERE row_id = $1 \
                         AND (granted_at < $2 OR tokens <= 0)",
                        &[p(&row_id), p(&decision.forget_before_ms)],
                    )
                    .await?;
                let lease_id = if decision.grant > 0 {
                    let row = conn
                        .query_one(
                            "INSERT INTO api_key_leases (row_id, holder, granted_at, tokens) \
                             VALUES ($1, $2, $3, $4) RETURNING lease_id",
                            &[
                                p(&row_id),
                                p(&holder),
                                p(&ctx.now_ms),
                                p(&i64::from(decision.grant)),
                            ],
                        )
                        .await?;
                    Some(row.get::<_, i64>(0))
                } else {
                    None
                };
                Leased {
                    decision,
                    lease_id,
                    wrote: give_back.is_some() || forgotten > 0 || lease_id.is_some(),
                }
            })
        })?
    }
}
