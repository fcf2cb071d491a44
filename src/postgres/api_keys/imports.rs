//! Imported keys on PostgreSQL: rows by source, and pending lookups.

use super::rows::COLUMNS;
use super::{next_seq, PgApiKeys};
use crate::issuance::backend::Row;
use crate::postgres::pool::write_tx;
use crate::postgres::query::p;
use crate::postgres::runtime::block;
use crate::Error;

impl PgApiKeys {
    pub(super) fn imported_rows(&self, source: &str) -> Result<Vec<Row>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE source = $1 ORDER BY row_id");
        block(self.many_rows(&sql, &[p(&source)]))?
    }

    pub(super) fn pending_rows(&self, lookup: &str, limit: usize) -> Result<Vec<Row>, Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys WHERE lookup = $1 \
             ORDER BY last_used_at DESC NULLS LAST, row_id LIMIT $2"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        block(self.many_rows(&sql, &[p(&lookup), p(&limit)]))?
    }

    pub(super) fn set_row_lookup(&self, row_id: i64, from: &str, to: &str) -> Result<bool, Error> {
        block(async {
            write_tx!(self.shared, self.busy_timeout, |conn| {
                let seq = next_seq(conn).await?;
                conn.execute(
                    "UPDATE api_keys SET lookup = $1, seq = $2 WHERE row_id = $3 AND lookup = $4",
                    &[p(&to), p(&seq), p(&row_id), p(&from)],
                )
                .await?
                    == 1
            })
        })?
    }
}
