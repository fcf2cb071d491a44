//! Driver errors as keyseal reports them, decided once for the PostgreSQL backend.
//!
//! Every message names where the connection went as `user@host:port/database` (never the
//! password), says what happened in words an operator can act on, and carries the server's
//! SQLSTATE when there is one. The driver's error is never kept as the source: a server's
//! `DETAIL` can quote a row's values, and its messages for bad data can quote the data. The
//! server's main message is kept except for data errors (SQLSTATE class 22), which may quote
//! a value.

use tokio_postgres::error::SqlState;

use crate::{Error, StorageKind};

/// A failure inside a transaction: from the database (retried when transient) or decided
/// by keyseal (returned as it is).
pub(crate) enum TxError {
    Db(tokio_postgres::Error),
    App(Error),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::App(e)
    }
}

impl TxError {
    /// As keyseal reports it; `target` is where the connection goes.
    pub(crate) fn into_error(self, target: &str) -> Error {
        match self {
            TxError::Db(e) => storage_error(target, &e),
            TxError::App(e) => e,
        }
    }
}

/// A round trip the server did not answer within `limit`.
pub(crate) fn timed_out(target: &str, limit: std::time::Duration) -> Error {
    Error::storage(
        StorageKind::Unavailable,
        format!(
            "PostgreSQL {target}: the server did not answer within {} ms (the busy timeout \
             plus {} ms); the connection was closed",
            limit.as_millis(),
            super::pool::ROUND_TRIP_GRACE.as_millis()
        ),
    )
}

/// A `COMMIT` sent on a connection that was lost (or went silent) before its answer.
pub(crate) fn outcome_unknown(target: &str) -> Error {
    Error::storage(
        StorageKind::OutcomeUnknown,
        format!(
            "PostgreSQL {target}: the connection was lost after COMMIT was sent: the change \
             may or may not have been stored (read it back to find out)"
        ),
    )
}

/// Whether `e` says the connection (not the statement) failed: closed, an I/O error, or the
/// server (or a pooler in front of it) ending the session. The transaction it ran, if any,
/// is then rolled back unless its `COMMIT` had been sent.
pub(crate) fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            let state = db.code().code();
            state.starts_with("08") || matches!(state, "57P01" | "57P02" | "57P03")
        }
        None => {
            e.is_closed()
                || std::error::Error::source(e)
                    .is_some_and(<dyn std::error::Error>::is::<std::io::Error>)
        }
    }
}

/// Whether trying the whole transaction again may succeed: a serialization failure or a
/// deadlock the server broke.
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The innermost cause's text (I/O and TLS errors say what failed: "Connection refused",
/// "invalid peer certificate: …").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// `e` as keyseal reports it; `target` is where the connection goes (`user@host:port/db`).
pub(crate) fn storage_error(target: &str, e: &tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let state = code.code();
        let text = if state.starts_with("22") {
            "a value could not be converted".to_owned()
        } else {
            db.message().to_owned()
        };
        let (kind, what) = match state {
            "28P01" | "28000" => (
                StorageKind::Unavailable,
                format!(
                    "PostgreSQL refused the login: wrong password, or the role may not connect \
                     ({text})"
                ),
            ),
            "3D000" => (
                StorageKind::Unavailable,
                format!("the database does not exist ({text})"),
            ),
            "42501" => (
                StorageKind::Unavailable,
                format!("permission denied: the role lacks a privilege keyseal needs ({text})"),
            ),
            "55P03" | "57014" => (
                StorageKind::Busy,
                format!("locked by another connection for longer than the busy timeout ({text})"),
            ),
            "40001" | "40P01" => (
                StorageKind::Busy,
                format!("a concurrent transaction conflicted ({text})"),
            ),
            _ if state.starts_with("23") => (StorageKind::Constraint, text),
            _ if state.starts_with("22") || state == "XX001" || state == "XX002" => {
                (StorageKind::Corrupt, text)
            }
            _ if state.starts_with("08")
                || state.starts_with("53")
                || state.starts_with("57")
                || state.starts_with("58") =>
            {
                (StorageKind::Unavailable, text)
            }
            _ => (StorageKind::Other, text),
        };
        return Error::storage(
            kind,
            format!("PostgreSQL {target}: {what} [SQLSTATE {state}]"),
        );
    }
    if e.is_closed() {
        return Error::storage(
            StorageKind::Unavailable,
            format!("PostgreSQL {target}: the connection was closed"),
        );
    }
    let cause = root_cause(e);
    let what = e.to_string();
    let message = if what.contains("error connecting") || what.contains("communicating") {
        format!("cannot reach the PostgreSQL server {target}: {cause}")
    } else if what.contains("TLS") {
        format!("PostgreSQL {target}: TLS handshake failed: {cause}")
    } else if what.contains("timeout") {
        format!("PostgreSQL {target}: the server did not answer in time")
    } else if what.contains("deserializing") {
        return Error::storage(
            StorageKind::Corrupt,
            format!("PostgreSQL {target}: a stored value has an unexpected type ({what})"),
        );
    } else if what.contains("authentication") || what.contains("password") {
        format!("PostgreSQL {target}: authentication failed: {cause} (give the password in the URL from the environment, PGPASSWORD, or a password file)")
    } else {
        format!("PostgreSQL {target}: {what}: {cause}")
    };
    Error::storage(StorageKind::Unavailable, message)
}

/// A pool failure (no connection within the wait, or the connection failed).
pub(crate) fn pool_error(target: &str, e: deadpool_postgres::PoolError) -> Error {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => storage_error(target, &e),
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => Error::storage(
            StorageKind::Busy,
            format!("PostgreSQL {target}: no free connection within the busy timeout"),
        ),
        PoolError::Timeout(_) => Error::storage(
            StorageKind::Unavailable,
            format!(
                "cannot reach the PostgreSQL server {target}: no answer within the busy timeout"
            ),
        ),
        other => Error::storage(
            StorageKind::Unavailable,
            format!("PostgreSQL {target}: connection pool: {other}"),
        ),
    }
}
