//! The data database on PostgreSQL (feature `postgres`): the application's table reached by a
//! `postgres://` URL, through keyseal's pool and runtime. Names are matched to the table's
//! real columns ignoring ASCII case (as unquoted SQL names are) and then quoted as they are
//! stored; the column to encrypt must be text (`text`, `varchar`, `character`), the id and
//! user columns integers or text.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::types::Type;

use super::data_db::{DataDb, DataRow, Rows, Write};
use super::sql::{identifier, Raw};
use super::{KeySource, MigrateOptions};
use crate::postgres::pool::{self, Shared};
use crate::postgres::query::{p, Param as Typed};
use crate::postgres::runtime::block;
use crate::Error;

/// How a key column is read and bound.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Text,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        match data_type {
            "smallint" | "integer" | "bigint" => Some(Kind::Integer),
            "text" | "character varying" | "character" => Some(Kind::Text),
            _ => None,
        }
    }

    fn cast(self) -> &'static str {
        match self {
            Kind::Integer => "bigint",
            Kind::Text => "text",
        }
    }
}

/// The checked names (quoted as stored) and the kinds of the id and user columns.
struct PgShape {
    table: String,
    column: String,
    id: String,
    id_kind: Kind,
    user: Option<(String, Kind)>,
    /// The table's columns as stored, with their types.
    columns: Vec<(String, String)>,
    /// The quoted context columns.
    context: Vec<String>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table in a PostgreSQL database.
pub(crate) struct PgData {
    shared: Arc<Shared>,
    wait: Duration,
    shape: Option<PgShape>,
}

fn invalid(what: String) -> Error {
    Error::InvalidArgument { what }
}

/// A bound value of a key column.
enum Param {
    Integer(Option<i64>),
    Text(Option<String>),
}

impl Param {
    fn of(kind: Kind, raw: &Raw) -> Param {
        match (kind, raw) {
            (Kind::Integer, Raw::Integer(n)) => Param::Integer(Some(*n)),
            (Kind::Text, Raw::Text(bytes)) => {
                Param::Text(Some(String::from_utf8_lossy(bytes).into_owned()))
            }
            (Kind::Integer, _) => Param::Integer(None),
            (Kind::Text, _) => Param::Text(None),
        }
    }

    /// The value with its type (the statements cast it to the column's type).
    fn sql(&self) -> Typed<'_> {
        match self {
            Param::Integer(v) => (v, Type::INT8),
            Param::Text(v) => (v, Type::TEXT),
        }
    }
}

fn raw_at(row: &tokio_postgres::Row, i: usize, kind: Kind) -> Result<Raw, tokio_postgres::Error> {
    Ok(match kind {
        Kind::Integer => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Raw::Null, Raw::Integer),
        Kind::Text => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Raw::Null, |s| Raw::Text(s.into_bytes())),
    })
}

impl PgData {
    /// Connects (through the process's pool for `url`); no keyseal table is needed.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL keyseal cannot read; [`Error::Storage`].
    pub(crate) fn open(url: &str, wait: Duration) -> Result<Self, Error> {
        Ok(PgData {
            shared: pool::shared(url)?,
            wait,
            shape: None,
        })
    }

    fn shape(&self) -> Result<&PgShape, Error> {
        self.shape
            .as_ref()
            .ok_or_else(|| invalid("the table was not checked first".into()))
    }

    /// Runs one query on a pooled connection, outside a transaction.
    fn query(&self, sql: &str, params: &[Typed<'_>]) -> Result<Vec<tokio_postgres::Row>, Error> {
        block(self.shared.read(self.wait, false, |conn| async move {
            conn.query(sql, params).await
        }))?
    }
}

/// The one stored name matching `wanted` ignoring ASCII case (an exact match first).
fn stored_name<'a>(names: &'a [(String, String)], wanted: &str) -> Option<&'a (String, String)> {
    names
        .iter()
        .find(|(n, _)| n == wanted)
        .or_else(|| names.iter().find(|(n, _)| n.eq_ignore_ascii_case(wanted)))
}

impl DataDb for PgData {
    fn prepare(&mut self, options: &MigrateOptions) -> Result<(), Error> {
        // The names must be plain identifiers even though they are matched, not spliced.
        identifier(&options.table, "table")?;
        let tables: Vec<(String, String)> = self
            .query(
                "SELECT table_name::text, table_schema::text FROM information_schema.tables \
                 WHERE lower(table_name) = lower($1) AND table_schema = ANY(current_schemas(false))",
                &[p(&options.table)],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let (table, schema) = stored_name(&tables, &options.table)
            .cloned()
            .ok_or_else(|| invalid(format!("no table {:?} in the database", options.table)))?;
        let columns: Vec<(String, String)> = self
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2",
                &[p(&schema), p(&table)],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let column_of = |name: &str, what: &str| -> Result<(String, String), Error> {
            identifier(name, what)?;
            stored_name(&columns, name)
                .cloned()
                .ok_or_else(|| invalid(format!("table {:?} has no column {name:?}", options.table)))
        };
        let (column, column_type) = column_of(&options.column, "column")?;
        if Kind::of(&column_type) != Some(Kind::Text) {
            return Err(invalid(format!(
                "column {:?} is {column_type}, not text: only text values can become tokens",
                options.column
            )));
        }
        let key_column = |name: &str, what: &str| -> Result<(String, Kind), Error> {
            let (stored, data_type) = column_of(name, what)?;
            let kind = Kind::of(&data_type).ok_or_else(|| {
                invalid(format!(
                    "{what} {name:?} is {data_type}: it must be an integer or text column"
                ))
            })?;
            Ok((quote(&stored), kind))
        };
        let (id, id_kind) = key_column(&options.id_column, "id column")?;
        let user = match &options.keys {
            KeySource::UserColumn(name) => Some(key_column(name, "user column")?),
            KeySource::Pool => None,
        };
        let shape = PgShape {
            table: format!("{}.{}", quote(&schema), quote(&table)),
            column: quote(&column),
            id,
            id_kind,
            user,
            columns,
            context: Vec::new(),
        };
        let PgShape { table, id, .. } = &shape;
        let row = self.query(
            &format!(
                "SELECT count(*) FILTER (WHERE {id} IS NULL), count({id}) - count(DISTINCT {id}) \
                 FROM {table}"
            ),
            &[],
        )?;
        let (nulls, repeated): (i64, i64) = (row[0].get(0), row[0].get(1));
        if nulls > 0 || repeated > 0 {
            return Err(invalid(format!(
                "id column {:?} must be unique and never NULL ({nulls} NULL, {repeated} repeated)",
                options.id_column
            )));
        }
        self.shape = Some(shape);
        Ok(())
    }

    fn counts(&mut self) -> Result<(u64, u64), Error> {
        let PgShape { table, column, .. } = self.shape()?;
        let rows = self.query(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE {column} IS NULL OR \
                 left({column}, 3) = 'v2:') FROM {table}"
            ),
            &[],
        )?;
        let (total, done): (i64, i64) = (rows[0].get(0), rows[0].get(1));
        Ok((
            u64::try_from(total).unwrap_or(0),
            u64::try_from(done).unwrap_or(0),
        ))
    }

    fn context_columns(&mut self, names: &[String]) -> Result<(), Error> {
        let shape = self
            .shape
            .as_mut()
            .ok_or_else(|| invalid("the table was not checked first".into()))?;
        let mut quoted = Vec::with_capacity(names.len());
        for name in names {
            identifier(name, "context column")?;
            let (stored, _) = stored_name(&shape.columns, name).ok_or_else(|| {
                invalid(format!(
                    "table {} has no column {name:?}",
                    shape.table.rsplit('.').next().unwrap_or_default()
                ))
            })?;
            quoted.push(quote(stored));
        }
        shape.context = quoted;
        Ok(())
    }

    fn rows_after(
        &mut self,
        after: &Raw,
        limit: usize,
        filter: Rows,
    ) -> Result<Vec<DataRow>, Error> {
        let shape = self.shape()?;
        let PgShape {
            table,
            column,
            id,
            id_kind,
            user,
            context,
            ..
        } = shape;
        let cast = id_kind.cast();
        let user_expr = match user {
            Some((name, kind)) => format!("{name}::{}", kind.cast()),
            None => "NULL::text".into(),
        };
        let filter = match filter {
            Rows::Plaintext => {
                format!("{column} IS NOT NULL AND left({column}, 3) <> 'v2:' AND")
            }
            Rows::Every => String::new(),
        };
        // As text, so every backend builds a row's context alike (integers in decimal). A
        // context column may be the id column too: rows are ordered by position, not name.
        let context_exprs: String = context
            .iter()
            .map(|c| format!(", {c}::text"))
            .collect::<Vec<_>>()
            .concat();
        let sql = format!(
            "SELECT {id}::{cast}, {user_expr}, {column}::text{context_exprs} FROM {table} \
             WHERE {filter} ($1::{cast} IS NULL OR {id} > $1::{cast}) ORDER BY 1 LIMIT $2"
        );
        let after = Param::of(*id_kind, after);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(&sql, &[after.sql(), p(&limit)])?;
        let user_kind = user.as_ref().map_or(Kind::Text, |(_, kind)| *kind);
        rows.iter()
            .map(|r| {
                let parts = (0..context.len())
                    .map(|i| {
                        // NULL as SQLite's rows show it, so both backends agree.
                        Ok(r.try_get::<_, Option<String>>(3 + i)?
                            .unwrap_or_else(|| "NULL".into()))
                    })
                    .collect::<Result<Vec<String>, tokio_postgres::Error>>()?;
                Ok((
                    raw_at(r, 0, *id_kind)?,
                    raw_at(r, 1, user_kind)?,
                    raw_at(r, 2, Kind::Text)?,
                    parts,
                ))
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.shared.error(&e))
    }

    fn update(&mut self, writes: &[Write<'_>]) -> Result<Vec<bool>, Error> {
        let PgShape {
            table,
            column,
            id,
            id_kind,
            ..
        } = self.shape()?;
        let cast = id_kind.cast();
        let sql =
            format!("UPDATE {table} SET {column} = $1 WHERE {id} = $2::{cast} AND {column} = $3");
        let params: Vec<Param> = writes
            .iter()
            .map(|(row_id, _, _)| Param::of(*id_kind, row_id))
            .collect();
        let (sql, params, shared, wait) = (&sql, &params, &self.shared, self.wait);
        block(async move {
            let mut conn = shared.conn(wait).await?;
            let result = async {
                conn.begin(wait).await?;
                let mut changed = Vec::with_capacity(writes.len());
                for ((_, old, new), row_id) in writes.iter().zip(params) {
                    let n = conn.execute(sql, &[p(new), row_id.sql(), p(old)]).await?;
                    changed.push(n == 1);
                }
                Ok::<_, crate::postgres::errors::TxError>(changed)
            }
            .await;
            let result = match result {
                Ok(changed) => conn.commit().await.map(|()| changed),
                Err(e) => Err(e),
            };
            match result {
                Ok(changed) => Ok(changed),
                Err(e) => {
                    conn.rollback().await;
                    Err(shared.tx_error(e))
                }
            }
        })?
    }
}
