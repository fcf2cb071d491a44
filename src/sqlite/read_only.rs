//! Read-only connections that leave no trace on disk (for dry runs and master key checks).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::storage_error;
use crate::Error;

/// A read-only connection that leaves no trace. A read-only connection to a WAL database
/// still creates `-wal` and `-shm` beside it (and cannot remove them): when they do not exist,
/// no other connection is open and every row is in the main file, so it is opened immutable
/// (no locks, no side files). Otherwise the side files are already there.
///
/// # Errors
/// [`Error::InvalidArgument`] for a path that is not UTF-8; [`Error::Storage`] when `SQLite`
/// cannot open the file.
pub(crate) fn open_read_only(db: &Path) -> Result<Connection, Error> {
    let side = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let quiet = is_wal(db) && !side("-wal").exists() && !side("-shm").exists();
    let uri = format!(
        "file:{}?mode=ro{}",
        uri_path(db)?,
        if quiet { "&immutable=1" } else { "" }
    );
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(uri, flags).map_err(|e| storage_error(&e))
}

/// Whether the file's header says WAL (read and write versions 2).
fn is_wal(db: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(db)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header.starts_with(b"SQLite format 3\0") && header[18] == 2)
}

/// `db` as the path of a `file:` URI: every byte outside the unreserved set and `/` escaped.
fn uri_path(db: &Path) -> Result<String, Error> {
    use std::fmt::Write as _;
    let text = db.to_str().ok_or_else(|| Error::InvalidArgument {
        what: format!("database path {} is not UTF-8", db.display()),
    })?;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Ok(out)
}
