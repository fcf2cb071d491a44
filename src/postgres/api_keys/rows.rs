//! How API key rows map to PostgreSQL's `api_keys` table (the same columns as `SQLite`'s).

use std::time::Duration;

use tokio_postgres::Row as PgRow;

use crate::postgres::errors::TxError;
use crate::postgres::pool::Conn;
use crate::postgres::query::p;

use crate::issuance::backend::{Change, Row, Scheme};
use crate::{Environment, RateLimit, Timestamp};

pub(super) const COLUMNS: &str =
    "row_id, key_id, lookup, scheme, hash, user_id, name, scopes, environment, \
     created_at, expires_at, revoked_at, rotated_to, rate_requests, rate_period_ms, last_used_at, \
     enabled, metadata, verifier_tag, source, source_id";

/// The column after [`COLUMNS`] in `SELECT {COLUMNS}, seq`.
const SEQ_AT: usize = 21;

/// Takes the next change sequence number from the single-row counter. Every feed-writing
/// transaction runs this first: the row lock it takes is held until commit, so writers are
/// serialized and numbers follow commit order.
pub(super) const NEXT_SEQ: &str = "UPDATE keyseal_feed SET seq = seq + 1 WHERE id = 1 \
     RETURNING seq, pg_notify('keyseal_feed', '')";

/// Any unique column taken (key id; source and source id) gives no row, read as `IdTaken`
/// as in `SQLite`: an import racing another one of the same key finds it stored.
pub(super) const INSERT: &str = "INSERT INTO api_keys (key_id, lookup, scheme, hash, user_id, \
     name, scopes, environment, created_at, expires_at, revoked_at, rotated_to, rate_requests, \
     rate_period_ms, last_used_at, seq, enabled, metadata, verifier_tag, source, source_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21) \
     ON CONFLICT DO NOTHING RETURNING row_id";

/// The fast verifier's tags, written outside the change feed (no `seq`), as last uses are.
pub(super) const SET_TAGS: &str = "UPDATE api_keys AS k SET verifier_tag = v.tag \
     FROM (SELECT * FROM unnest($1::bigint[], $2::text[]) ORDER BY 1) AS v(id, tag) \
     WHERE k.row_id = v.id";

/// An update's write: the fields an update may change, and the next `seq`.
pub(super) const UPDATE: &str = "UPDATE api_keys SET name = $1, scopes = $2, expires_at = $3, \
     rate_requests = $4, rate_period_ms = $5, metadata = $6, enabled = $7, seq = $8 \
     WHERE row_id = $9";

fn opt_ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_unix_millis)
}

/// A row as stored, or why it cannot be read (naming the row and its key id, so that a row
/// another tool wrote badly can be found and repaired).
pub(super) fn read_row(r: &PgRow) -> Result<Row, String> {
    read_fields(r).map_err(|why| {
        let row_id: Option<i64> = r.try_get(0).ok();
        let key_id: Option<String> = r.try_get(1).ok();
        format!(
            "api_keys row {} (key id {}) cannot be read: {why}",
            row_id.map_or_else(|| "?".into(), |v| v.to_string()),
            key_id.as_deref().unwrap_or("?")
        )
    })
}

fn read_fields(r: &PgRow) -> Result<Row, String> {
    let text = |e: tokio_postgres::Error| e.to_string();
    let scheme: String = r.try_get(3).map_err(text)?;
    let scopes: String = r.try_get(7).map_err(text)?;
    let env: String = r.try_get(8).map_err(text)?;
    let rate = match (
        r.try_get::<_, Option<i64>>(13).map_err(text)?,
        r.try_get::<_, Option<i64>>(14).map_err(text)?,
    ) {
        (Some(n), Some(ms)) => Some(RateLimit::new(
            u32::try_from(n).unwrap_or(u32::MAX),
            Duration::from_millis(u64::try_from(ms).unwrap_or(1)),
        )),
        _ => None,
    };
    Ok(Row {
        row_id: r.try_get(0).map_err(text)?,
        key_id: r.try_get(1).map_err(text)?,
        lookup: r.try_get(2).map_err(text)?,
        scheme: Scheme::parse(&scheme).ok_or("api_keys: unknown scheme")?,
        hash: r.try_get(4).map_err(text)?,
        user_id: r.try_get(5).map_err(text)?,
        name: r.try_get(6).map_err(text)?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        environment: Environment::parse(&env).ok_or("api_keys: unknown environment")?,
        created_at: Timestamp::from_unix_millis(r.try_get(9).map_err(text)?),
        expires_at: opt_ts(r.try_get(10).map_err(text)?),
        revoked_at: opt_ts(r.try_get(11).map_err(text)?),
        rotated_to: r.try_get(12).map_err(text)?,
        rate_limit: rate,
        last_used_at: opt_ts(r.try_get(15).map_err(text)?),
        enabled: r.try_get(16).map_err(text)?,
        metadata: Row::metadata_from_text(r.try_get::<_, Option<&str>>(17).map_err(text)?)?,
        // Absent (an older schema) or unreadable: no tag, bcrypt decides.
        verifier_tag: r.try_get::<_, Option<String>>(18).unwrap_or(None),
        source: r.try_get(19).map_err(text)?,
        source_id: r.try_get(20).map_err(text)?,
    })
}

/// A change from a row of `SELECT {COLUMNS}, seq`: the whole row is read, so that a row
/// with any unreadable field fails closed (reported, never an error for the batch).
pub(super) fn read_change(r: &PgRow) -> (Change, Option<i64>) {
    let row_id: i64 = r.try_get(0).unwrap_or(-1);
    let seq = r.try_get::<_, i64>(SEQ_AT).ok();
    let change = match read_row(r) {
        Ok(row) => Change {
            row_id,
            lookup: Some(row.lookup),
            expires_at: row.expires_at,
            revoked: row.revoked_at.is_some(),
            disabled: !row.enabled,
            deleted: false,
            unreadable: None,
        },
        Err(why) => Change {
            row_id,
            lookup: r.try_get(2).ok(),
            expires_at: None,
            revoked: true,
            disabled: true,
            deleted: false,
            unreadable: Some(why),
        },
    };
    (change, seq)
}

/// The parameters of [`INSERT`] for `row` with sequence number `seq`.
pub(super) struct InsertParams {
    scheme: &'static str,
    scopes: String,
    environment: &'static str,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    rate_requests: Option<i64>,
    rate_period_ms: Option<i64>,
    last_used_at: Option<i64>,
    metadata: Option<String>,
}

impl InsertParams {
    pub(super) fn of(row: &Row) -> InsertParams {
        let (rate_requests, rate_period_ms) = row.rate_columns();
        InsertParams {
            scheme: row.scheme.as_str(),
            scopes: row.scopes.join(" "),
            environment: row.environment.as_str(),
            created_at: row.created_at.unix_millis(),
            expires_at: row.expires_at.map(Timestamp::unix_millis),
            revoked_at: row.revoked_at.map(Timestamp::unix_millis),
            rate_requests,
            rate_period_ms,
            last_used_at: row.last_used_at.map(Timestamp::unix_millis),
            metadata: row.metadata_text(),
        }
    }

    /// Inserts `row` with `seq`: its row id, or `None` when its key id is taken.
    pub(super) async fn insert(
        &self,
        conn: &Conn,
        row: &Row,
        seq: i64,
    ) -> Result<Option<i64>, TxError> {
        let found = conn
            .query_opt(
                INSERT,
                &[
                    p(&row.key_id),
                    p(&row.lookup),
                    p(&self.scheme),
                    p(&row.hash),
                    p(&row.user_id),
                    p(&row.name),
                    p(&self.scopes),
                    p(&self.environment),
                    p(&self.created_at),
                    p(&self.expires_at),
                    p(&self.revoked_at),
                    p(&row.rotated_to),
                    p(&self.rate_requests),
                    p(&self.rate_period_ms),
                    p(&self.last_used_at),
                    p(&seq),
                    p(&row.enabled),
                    p(&self.metadata),
                    p(&row.verifier_tag),
                    p(&row.source),
                    p(&row.source_id),
                ],
            )
            .await?;
        Ok(found.map(|r| r.get(0)))
    }
}
