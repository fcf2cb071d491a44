//! The `SQLite` tables of API keys and how rows map to them.

use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use crate::issuance::backend::{Change, Row, Scheme};
use crate::sqlite::TxError;
use crate::Environment;
use crate::Error;
use crate::RateLimit;
use crate::Timestamp;

pub(super) const SCHEMA: &str = "
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

/// The schema version this code writes, kept in `api_key_meta` as `schema_version`. 1: the
/// first tables (no version row); 2: `enabled`, `metadata`, and `api_key_tombstones`; 3:
/// `verifier_tag` (the fast verifier's tag; nullable, so older keyseal versions that open a
/// version-3 file are refused by the version check, not by the column); 4: `source` and
/// `source_id` (imported keys; unique together), and pending lookups (`*{tag}`) of keys
/// imported without one.
pub(super) const SCHEMA_VERSION: i64 = 4;

/// Brings tables of an older version up to [`SCHEMA_VERSION`], inside the opening write
/// transaction (all or nothing). Idempotent: each step looks before it adds.
pub(super) fn upgrade(tx: &Connection) -> Result<(), TxError> {
    let version: i64 = tx
        .query_row(
            "SELECT value FROM api_key_meta WHERE name = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .map_or(Ok(1), |v| v.parse())
        .map_err(|_| bad_schema("unreadable api_key_meta schema_version"))?;
    if version > SCHEMA_VERSION {
        return Err(bad_schema(&format!(
            "api key tables of schema version {version}, made by a newer keyseal (this one \
             knows up to {SCHEMA_VERSION}); nothing was changed"
        )));
    }
    let has = |column: &str| -> rusqlite::Result<bool> {
        tx.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('api_keys') WHERE name = ?1",
            [column],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if !has("enabled")? {
        tx.execute_batch("ALTER TABLE api_keys ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1")?;
    }
    if !has("metadata")? {
        tx.execute_batch("ALTER TABLE api_keys ADD COLUMN metadata TEXT")?;
    }
    if !has("verifier_tag")? {
        tx.execute_batch("ALTER TABLE api_keys ADD COLUMN verifier_tag TEXT")?;
    }
    if !has("source")? {
        tx.execute_batch(
            "ALTER TABLE api_keys ADD COLUMN source TEXT;
             ALTER TABLE api_keys ADD COLUMN source_id TEXT;",
        )?;
    }
    tx.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_source ON api_keys(source, source_id) \
         WHERE source IS NOT NULL",
    )?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS api_key_tombstones (
             row_id INTEGER PRIMARY KEY,
             lookup TEXT NOT NULL,
             seq    INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS api_key_tombstones_seq ON api_key_tombstones(seq);",
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO api_key_meta (name, value) VALUES ('schema_version', ?1)",
        [SCHEMA_VERSION.to_string()],
    )?;
    Ok(())
}

fn bad_schema(what: &str) -> TxError {
    TxError::App(Error::storage(crate::StorageKind::Corrupt, what.to_owned()))
}

pub(super) const COLUMNS: &str =
    "row_id, key_id, lookup, scheme, hash, user_id, name, scopes, environment, \
     created_at, expires_at, revoked_at, rotated_to, rate_requests, rate_period_ms, last_used_at, \
     enabled, metadata, verifier_tag, source, source_id";

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

pub(super) fn opt_ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_unix_millis)
}

/// Reads a row; an unreadable one gives an error naming it (row id and key id), so a bad
/// row written by some other tool can be found and repaired.
pub(super) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    read_row_fields(r).map_err(|e| {
        let row_id: Option<i64> = r.get(0).ok();
        let key_id: Option<String> = r.get(1).ok();
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Null,
            format!(
                "api_keys row {} (key id {}) cannot be read: {e}",
                row_id.map_or_else(|| "?".into(), |v| v.to_string()),
                key_id.as_deref().unwrap_or("?")
            )
            .into(),
        )
    })
}

pub(super) fn read_row_fields(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
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
        enabled: r.get::<_, i64>(16)? != 0,
        metadata: Row::metadata_from_text(r.get::<_, Option<String>>(17)?.as_deref())
            .map_err(|_| bad("metadata"))?,
        // A tag that is not text is no tag: bcrypt decides, and a new tag replaces it.
        verifier_tag: r.get::<_, Option<String>>(18).unwrap_or(None),
        source: r.get(19)?,
        source_id: r.get(20)?,
    })
}

/// The highest sequence number handed out, tombstones included (a deleted row's `seq` must
/// never be handed out again).
pub(super) const MAX_SEQ: &str = "SELECT MAX( \
     (SELECT COALESCE(MAX(seq), 0) FROM api_keys WHERE seq <= 9223372036854775807), \
     (SELECT COALESCE(MAX(seq), 0) FROM api_key_tombstones))";

pub(super) fn next_seq(tx: &Connection) -> rusqlite::Result<i64> {
    // Text sorts above every number in SQLite: the bound skips a hand-written text `seq`
    // (that row is reported as unreadable instead) and keeps the index's max lookup.
    tx.query_row(MAX_SEQ, [], |r| r.get::<_, i64>(0))
        .map(|s| s + 1)
}

pub(super) fn insert_row(tx: &Connection, row: &Row, seq: i64) -> rusqlite::Result<i64> {
    let (rate_n, rate_ms) = row.rate_columns();
    tx.prepare_cached(
        "INSERT INTO api_keys (key_id, lookup, scheme, hash, user_id, name, scopes, environment, \
         created_at, expires_at, revoked_at, rotated_to, rate_requests, rate_period_ms, \
         last_used_at, seq, enabled, metadata, verifier_tag, source, source_id) VALUES (?1, ?2, \
         ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
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
        i64::from(row.enabled),
        row.metadata_text(),
        row.verifier_tag,
        row.source,
        row.source_id,
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Rows by one indexed column (`user_id` or `lookup`), oldest first.
pub(super) fn rows_where(tx: &Connection, column: &str, value: &str) -> rusqlite::Result<Vec<Row>> {
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE {column} = ?1 ORDER BY row_id"
    ))?
    .query_map([value], read_row)?
    .collect()
}

pub(super) fn find_user_key(
    tx: &Connection,
    user_id: &str,
    key_id: &str,
) -> rusqlite::Result<Option<Row>> {
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_id = ?1 AND user_id = ?2"
    ))?
    .query_row(params![key_id, user_id], read_row)
    .optional()
}

/// Writes the last uses in one transaction, waiting and retrying for at most `wait`.
pub(super) fn touch_in(
    conn: &mut Connection,
    uses: &[(i64, Timestamp)],
    wait: Duration,
) -> Result<(), Error> {
    crate::sqlite::write(conn, wait, |tx| {
        let mut stmt = tx.prepare_cached(
            "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?1) \
             WHERE row_id = ?2",
        )?;
        for (row_id, at) in uses {
            stmt.execute(params![at.unix_millis(), row_id])?;
        }
        Ok(())
    })
}

/// Writes fast-verifier tags in one transaction, waiting and retrying for at most `wait`;
/// `seq` is left alone.
pub(super) fn tag_in(
    conn: &mut Connection,
    tags: &[(i64, String)],
    wait: Duration,
) -> Result<(), Error> {
    crate::sqlite::write(conn, wait, |tx| {
        let mut stmt =
            tx.prepare_cached("UPDATE api_keys SET verifier_tag = ?1 WHERE row_id = ?2")?;
        for (row_id, tag) in tags {
            stmt.execute(params![tag, row_id])?;
        }
        Ok(())
    })
}

/// Reads one row of `SELECT row_id, lookup, expires_at, revoked_at, seq, key_id, enabled`,
/// and its `seq` if readable. One unreadable row must not hide the others: it is reported as such
/// (an error only when even its row id cannot be read).
pub(super) fn read_change(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Change, Option<i64>)> {
    let row_id: i64 = r.get(0)?;
    let seq = r.get::<_, i64>(4).ok();
    let lookup = r.get::<_, String>(1);
    let fields = (|| {
        Ok::<_, rusqlite::Error>((
            opt_ts(r.get(2)?),
            r.get::<_, Option<i64>>(3)?.is_some(),
            r.get::<_, i64>(6)? == 0,
        ))
    })();
    let change = match (lookup, fields) {
        (Ok(lookup), Ok((expires_at, revoked, disabled))) => Change {
            row_id,
            lookup: Some(lookup),
            expires_at,
            revoked,
            disabled,
            deleted: false,
            unreadable: None,
        },
        (lookup, fields) => {
            let why = match (lookup.as_ref(), fields) {
                (_, Err(e)) => e.to_string(),
                (Err(e), Ok(_)) => e.to_string(),
                (Ok(_), Ok(_)) => String::new(),
            };
            let key_id: Option<String> = r.get(5).ok();
            Change {
                row_id,
                lookup: lookup.ok(),
                expires_at: None,
                revoked: true,
                disabled: true,
                deleted: false,
                unreadable: Some(format!(
                    "api_keys row {row_id} (key id {}) cannot be read: {why}",
                    key_id.as_deref().unwrap_or("?"),
                )),
            }
        }
    };
    Ok((change, seq))
}

/// One meta row per (prefix, lookup length), so that one prefix can have several formats.
pub(crate) const FORMAT_NAME: &str = "legacy-format:";

/// A legacy format from `api_key_meta`: `legacy-format:{len}:{prefix}`, or the older
/// `legacy:{prefix}` = `{len}` (one format per prefix), still read.
pub(crate) fn parse_format(name: &str, value: &str) -> Option<(String, usize)> {
    if let Some(rest) = name.strip_prefix(FORMAT_NAME) {
        let (len, prefix) = rest.split_once(':')?;
        return Some((prefix.to_owned(), len.parse().ok()?));
    }
    Some((
        name.strip_prefix("legacy:")?.to_owned(),
        value.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_format_rows_old_and_new() {
        assert_eq!(parse_format("legacy:mhu_", "8"), Some(("mhu_".into(), 8)));
        assert_eq!(
            parse_format("legacy-format:12:mhu_", "12"),
            Some(("mhu_".into(), 12))
        );
        assert_eq!(
            parse_format("legacy-format:8:a:b_", "8"),
            Some(("a:b_".into(), 8))
        );
        assert_eq!(parse_format("legacy-format:x:mhu_", "8"), None);
        assert_eq!(parse_format("legacy:mhu_", "eight"), None);
        assert_eq!(parse_format("other", "8"), None);
    }
}
