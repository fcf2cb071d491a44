//! The SQL side of a migration: checked names, values exactly as stored, and the SQLite data
//! database ([`SqliteData`]), whose dry-run connection changes nothing on disk.

use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, ToSql, TransactionBehavior};
use zeroize::Zeroize;

use super::data_db::{context_text, DataDb, DataRow, Rows, Write};
use super::{FailReason, KeySource, MigrateOptions};
use crate::Error;

/// A value as SQLite stores it. TEXT is kept as bytes: SQLite does not check that it is UTF-8,
/// and such a value must be reported (and bound back as the id it is), never a panic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Drop for Raw {
    /// Values may be plaintext secrets: wiped when dropped (ids are wiped too; they cost
    /// little).
    fn drop(&mut self) {
        if let Raw::Text(bytes) | Raw::Blob(bytes) = self {
            bytes.zeroize();
        }
    }
}

impl FromSql for Raw {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(match value {
            ValueRef::Null => Raw::Null,
            ValueRef::Integer(n) => Raw::Integer(n),
            ValueRef::Real(x) => Raw::Real(x),
            ValueRef::Text(bytes) => Raw::Text(bytes.to_vec()),
            ValueRef::Blob(bytes) => Raw::Blob(bytes.to_vec()),
        })
    }
}

impl ToSql for Raw {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        // Borrowed text is bound byte for byte, so a non-UTF-8 id still names its row.
        Ok(ToSqlOutput::Borrowed(match self {
            Raw::Null => ValueRef::Null,
            Raw::Integer(n) => ValueRef::Integer(*n),
            Raw::Real(x) => ValueRef::Real(*x),
            Raw::Text(bytes) => ValueRef::Text(bytes),
            Raw::Blob(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

impl Raw {
    /// How a row id is shown in reports: numbers as they are, text quoted (escaped, with
    /// U+FFFD for bytes that are not UTF-8), blobs in hex; at most about 80 characters.
    pub(crate) fn describe(&self) -> String {
        let text = match self {
            Raw::Null => "NULL".to_owned(),
            Raw::Integer(n) => n.to_string(),
            Raw::Real(x) => x.to_string(),
            Raw::Text(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
            Raw::Blob(bytes) => format!("X'{}'", crate::encoding::hex_lower(bytes)),
        };
        match text.char_indices().nth(80) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        }
    }
}

/// A row's user id as text (integer ids in decimal), or why it cannot name a user.
pub(crate) fn user_id(mut value: Raw) -> Result<String, FailReason> {
    let text = match &mut value {
        Raw::Text(bytes) => {
            String::from_utf8(std::mem::take(bytes)).map_err(|_| FailReason::UserIdNotUtf8)?
        }
        Raw::Integer(n) => n.to_string(),
        _ => return Err(FailReason::NoUserId),
    };
    // The key store's own rule, so a row is failed here exactly when the store would refuse it.
    crate::user_id::check_user_id(&text).map_err(|_| FailReason::NoUserId)?;
    Ok(text)
}

/// Checks that `name` is a plain SQL identifier and returns it quoted.
pub(crate) fn identifier(name: &str, what: &str) -> Result<String, Error> {
    let mut chars = name.chars();
    let plain = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128;
    if plain {
        Ok(format!("\"{name}\""))
    } else {
        Err(Error::InvalidArgument {
            what: format!(
                "{what} {name:?} is not a plain identifier (letters, digits and _, not starting with a digit)"
            ),
        })
    }
}

pub(crate) use crate::sqlite::storage_error as storage;

/// The parts of the statements, checked against the table's real columns.
pub(crate) struct Shape {
    pub(crate) table: String,
    pub(crate) column: String,
    pub(crate) id: String,
    pub(crate) user: Option<String>,
}

/// Refuses options that name one column for two jobs; checked before any file is opened.
pub(crate) fn check_roles(options: &MigrateOptions) -> Result<(), Error> {
    if options.batch == 0 {
        return Err(Error::InvalidArgument {
            what: "batch must be at least 1".into(),
        });
    }
    // SQL names are case-insensitive: `Secret` and `secret` are one column.
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if let KeySource::UserColumn(user) = &options.keys {
        if same(user, &options.column) {
            return Err(Error::InvalidArgument {
                what: format!(
                    "the user column {user:?} is the column to encrypt: each secret would \
                     become the user id of its own key"
                ),
            });
        }
    }
    if same(&options.id_column, &options.column) {
        return Err(Error::InvalidArgument {
            what: format!(
                "the id column {:?} is the column to encrypt: rows would lose their ids",
                options.id_column
            ),
        });
    }
    Ok(())
}

impl Shape {
    pub(crate) fn new(conn: &Connection, options: &MigrateOptions) -> Result<Shape, Error> {
        check_roles(options)?;
        let table = identifier(&options.table, "table")?;
        let column = identifier(&options.column, "column")?;
        let id = identifier(&options.id_column, "id column")?;
        let user = match &options.keys {
            KeySource::UserColumn(name) => Some(identifier(name, "user column")?),
            KeySource::Pool => None,
        };
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .map_err(|e| storage(&e))?;
        let columns: Vec<String> = stmt
            .query_map([&options.table], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| storage(&e))?;
        if columns.is_empty() {
            return Err(Error::InvalidArgument {
                what: format!("no table {:?} in the database", options.table),
            });
        }
        let mut wanted = vec![&options.column, &options.id_column];
        if let KeySource::UserColumn(name) = &options.keys {
            wanted.push(name);
        }
        for name in wanted {
            if !columns.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                return Err(Error::InvalidArgument {
                    what: format!("table {:?} has no column {name:?}", options.table),
                });
            }
        }
        Ok(Shape {
            table,
            column,
            id,
            user,
        })
    }

    pub(crate) fn user_expr(&self) -> &str {
        self.user.as_deref().unwrap_or("NULL")
    }
}

/// Rows are visited in id order and updated by id: the id must name one row each.
pub(crate) fn check_ids(
    conn: &Connection,
    shape: &Shape,
    options: &MigrateOptions,
) -> Result<(), Error> {
    let Shape { table, id, .. } = shape;
    let (null_ids, repeated_ids): (u64, u64) = conn
        .query_row(
            &format!(
                "SELECT count(*) FILTER (WHERE {id} IS NULL), count({id}) - count(DISTINCT {id}) \
                 FROM {table}"
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(|e| storage(&e))?;
    if null_ids > 0 || repeated_ids > 0 {
        return Err(Error::InvalidArgument {
            what: format!(
                "id column {:?} must be unique and never NULL ({null_ids} NULL, {repeated_ids} repeated)",
                options.id_column
            ),
        });
    }
    Ok(())
}

/// A table in a SQLite file.
pub(crate) struct SqliteData {
    conn: Connection,
    shape: Option<Shape>,
    /// The quoted context columns.
    context: Vec<String>,
}

impl SqliteData {
    pub(super) fn new(conn: Connection) -> Self {
        SqliteData {
            conn,
            shape: None,
            context: Vec::new(),
        }
    }

    fn shape(&self) -> Result<&Shape, Error> {
        self.shape.as_ref().ok_or_else(|| Error::InvalidArgument {
            what: "the table was not checked first".into(),
        })
    }
}

impl DataDb for SqliteData {
    fn prepare(&mut self, options: &MigrateOptions) -> Result<(), Error> {
        let shape = Shape::new(&self.conn, options)?;
        check_ids(&self.conn, &shape, options)?;
        self.shape = Some(shape);
        Ok(())
    }

    fn counts(&mut self) -> Result<(u64, u64), Error> {
        let Shape { table, column, .. } = self.shape()?;
        self.conn
            .query_row(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE {column} IS NULL OR \
                     (typeof({column}) = 'text' AND substr({column}, 1, 3) = 'v2:')) FROM {table}"
                ),
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(|e| storage(&e))
    }

    fn context_columns(&mut self, names: &[String]) -> Result<(), Error> {
        let table = self.shape()?.table.clone();
        let mut quoted = Vec::with_capacity(names.len());
        for name in names {
            let column = identifier(name, "context column")?;
            let known: bool = self
                .conn
                .query_row(
                    "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2 COLLATE NOCASE",
                    [&table[1..table.len() - 1], name],
                    |r| r.get(0),
                )
                .map_err(|e| storage(&e))?;
            if !known {
                return Err(Error::InvalidArgument {
                    what: format!("table {table} has no column {name:?}"),
                });
            }
            quoted.push(column);
        }
        self.context = quoted;
        Ok(())
    }

    fn rows_after(
        &mut self,
        after: &Raw,
        limit: usize,
        filter: Rows,
    ) -> Result<Vec<DataRow>, Error> {
        let shape = self.shape()?;
        let Shape {
            table, column, id, ..
        } = shape;
        let user = shape.user_expr();
        let filter = match filter {
            Rows::Plaintext => format!(
                "{column} IS NOT NULL AND NOT (typeof({column}) = 'text' AND \
                 substr({column}, 1, 3) = 'v2:') AND"
            ),
            Rows::Every => String::new(),
        };
        let context: String = self
            .context
            .iter()
            .map(|c| format!(", {c}"))
            .collect::<Vec<_>>()
            .concat();
        let select = format!(
            "SELECT {id}, {user}, {column}{context} FROM {table} \
             WHERE {filter} (?1 IS NULL OR {id} > ?1) ORDER BY {id} LIMIT ?2"
        );
        let parts = self.context.len();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(&select).map_err(|e| storage(&e))?;
        stmt.query_map(params![after, limit], |row| {
            let context = (0..parts)
                .map(|i| row.get::<_, Raw>(3 + i).map(|v| context_text(&v)))
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, context))
        })
        .and_then(Iterator::collect)
        .map_err(|e| storage(&e))
    }

    fn update(&mut self, writes: &[Write<'_>]) -> Result<Vec<bool>, Error> {
        let Shape {
            table, column, id, ..
        } = self.shape.as_ref().ok_or_else(|| Error::InvalidArgument {
            what: "the table was not checked first".into(),
        })?;
        let update = format!("UPDATE {table} SET {column} = ?1 WHERE {id} = ?2 AND {column} = ?3");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(&e))?;
        let mut changed = Vec::with_capacity(writes.len());
        {
            let mut stmt = tx.prepare_cached(&update).map_err(|e| storage(&e))?;
            for (row_id, old, new) in writes {
                let n = stmt
                    .execute(params![new, row_id, old])
                    .map_err(|e| storage(&e))?;
                changed.push(n == 1);
            }
        }
        tx.commit().map_err(|e| storage(&e))?;
        Ok(changed)
    }
}
