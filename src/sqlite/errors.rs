//! Driver errors as keyseal reports them: one mapper, so the kind and what is kept of the
//! driver's error are decided once.

use rusqlite::ErrorCode;

use crate::{Error, StorageKind};

/// A driver error as keyseal reports it: every storage failure goes through here.
///
/// Its kind comes from `SQLite`'s result code. The message is the driver's text, except for
/// the driver errors that can quote a value (an integer read, text with a NUL, a conversion
/// or the SQL input itself), which are described without it. keyseal's SQL binds every value,
/// so the text `SQLite` reports (names of tables, columns, constraints) holds none. The driver's
/// error is kept as the source only when it is a failure reported by `SQLite` itself, rebuilt
/// from its result code and text, so nothing else can ride along.
pub(crate) fn storage_error(e: &rusqlite::Error) -> Error {
    storage_error_saying(value_free_text(e), e)
}

/// As [`storage_error`], with `message` in place of the driver's text. `message` must not
/// quote a value: build it from [`value_free_text`]-safe parts (a path, a duration).
pub(crate) fn storage_error_saying(message: String, e: &rusqlite::Error) -> Error {
    let kind = storage_kind(e);
    let source = match e {
        rusqlite::Error::SqliteFailure(code, text) => Some((*code, text.clone())),
        rusqlite::Error::SqlInputError { error, msg, .. } => Some((*error, Some(msg.clone()))),
        _ => None,
    };
    match source {
        Some((code, text)) => {
            Error::storage_caused_by(kind, message, rusqlite::Error::SqliteFailure(code, text))
        }
        None => Error::storage(kind, message),
    }
}

/// The driver's text for `e`, or a description without the value for errors that quote one.
fn value_free_text(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::IntegralValueOutOfRange(column, _) => {
            format!("a stored integer is out of range (column {column})")
        }
        rusqlite::Error::NulError(_) => "text holds a NUL character".to_owned(),
        rusqlite::Error::ToSqlConversionFailure(_) => {
            "a value could not be converted for SQLite".to_owned()
        }
        rusqlite::Error::SqlInputError { msg, offset, .. } => {
            format!("{msg} (at offset {offset} of the statement)")
        }
        _ => e.to_string(),
    }
}

/// What a caller can do about `e`.
fn storage_kind(e: &rusqlite::Error) -> StorageKind {
    match e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StorageKind::Busy,
            ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::NoLargeFileSupport => StorageKind::Unavailable,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StorageKind::Corrupt,
            ErrorCode::ConstraintViolation => StorageKind::Constraint,
            _ => StorageKind::Other,
        },
        // A stored value keyseal cannot read: the row was damaged or written by another tool.
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(_) => StorageKind::Corrupt,
        rusqlite::Error::InvalidPath(_) => StorageKind::Unavailable,
        _ => StorageKind::Other,
    }
}

/// Whether `e` means another connection holds a lock (worth waiting and retrying).
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use rusqlite::Connection;

    use super::*;

    const SECRET: &str = "ks_live_secret-value-that-must-not-leak";

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT NOT NULL UNIQUE, n INTEGER)")
            .unwrap();
        conn.execute("INSERT INTO t (v, n) VALUES (?1, ?2)", (SECRET, i64::MAX))
            .unwrap();
        conn
    }

    fn assert_no_secret(err: &Error) {
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(SECRET), "{text}");
        }
        if let Some(source) = err.source() {
            assert!(!source.to_string().contains(SECRET));
            assert!(!format!("{source:?}").contains(SECRET));
        }
    }

    #[test]
    fn a_unique_violation_is_kind_constraint_without_the_value() {
        let conn = table();
        let e = conn
            .execute("INSERT INTO t (v, n) VALUES (?1, 1)", [SECRET])
            .unwrap_err();
        let err = storage_error(&e);
        assert_eq!(err.code(), "storage");
        assert_eq!(err.storage_kind(), Some(StorageKind::Constraint), "{err}");
        let source = err.source().expect("the driver's error is kept");
        assert_eq!(
            source
                .downcast_ref::<rusqlite::Error>()
                .and_then(rusqlite::Error::sqlite_error_code),
            Some(ErrorCode::ConstraintViolation)
        );
        assert_no_secret(&err);
    }

    #[test]
    fn driver_errors_that_can_hold_a_value_are_not_kept_as_source() {
        let conn = table();
        // Reading the big integer as an i32 gives an error carrying the stored value.
        let e = conn
            .query_row("SELECT n FROM t", [], |r| r.get::<_, i32>(0))
            .unwrap_err();
        assert!(matches!(e, rusqlite::Error::IntegralValueOutOfRange(..)));
        let err = storage_error(&e);
        assert_eq!(err.storage_kind(), Some(StorageKind::Corrupt));
        assert!(err.source().is_none());
        assert!(!err.to_string().contains(&i64::MAX.to_string()), "{err}");
        // The SQL input is quoted by the driver: only SQLite's own text is kept.
        let e = conn.execute_batch(SECRET).unwrap_err();
        assert!(matches!(e, rusqlite::Error::SqlInputError { .. }), "{e:?}");
        let err = storage_error(&e);
        assert!(err.source().is_some());
        assert_no_secret(&err);
        // Text with a NUL where the driver needs a C string: its error holds the bytes.
        let e =
            rusqlite::Error::NulError(std::ffi::CString::new(format!("{SECRET}\0")).unwrap_err());
        let err = storage_error(&e);
        assert!(err.source().is_none());
        assert_no_secret(&err);
    }
}
