//! What a database path given to SQLite means: a file on disk, or a database that lives only
//! as long as its connection (`:memory:`, `file::memory:`, `mode=memory`, an empty name).
//!
//! SQLite (as rusqlite opens it) reads `file:` names as URIs, so `file:keys.db?mode=memory`
//! is an in-memory database and `file:keys.db` a file. Only std: the `keyseal` binary uses
//! this file too, to refuse such stores before anything is done.
//!
//! # Errors
//! None: these only classify paths.

use std::path::{Path, PathBuf};

/// Whether `path` names a PostgreSQL database (text starting with `postgres://` or
/// `postgresql://`, any case) rather than a SQLite file: the one rule of backend selection.
pub(crate) fn is_postgres(path: &Path) -> bool {
    path.to_str().is_some_and(|s| {
        let head = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        head.starts_with("postgres://") || head.starts_with("postgresql://")
    })
}

/// Whether SQLite would open `path` as a database that is gone when the connection closes:
/// empty, `:memory:`, a `file:` URI naming `:memory:` or nothing, or with `mode=memory` or
/// `vfs=memdb`. A key store there would hand out keys it never keeps.
pub(crate) fn is_temporary(path: &Path) -> bool {
    let text = path.to_string_lossy();
    if text.is_empty() || text == ":memory:" {
        return true;
    }
    let Some(uri) = text.strip_prefix("file:") else {
        return false;
    };
    let (name, query) = split_uri(uri);
    if name.is_empty() || name == ":memory:" {
        return true;
    }
    query.split('&').any(|param| {
        let param = param.to_ascii_lowercase();
        param == "mode=memory" || param == "vfs=memdb"
    })
}

/// The file SQLite creates for `path`: the path itself, or the file a `file:` URI names
/// (authority and query dropped, percent escapes decoded). `None` for temporary databases
/// (and for a URI whose decoded name is not UTF-8).
pub(crate) fn file_of(path: &Path) -> Option<PathBuf> {
    if is_temporary(path) {
        return None;
    }
    // A plain path may be any bytes; only a UTF-8 `file:` name is read as a URI.
    let Some(uri) = path.to_str().and_then(|text| text.strip_prefix("file:")) else {
        return Some(path.to_path_buf());
    };
    let (name, _) = split_uri(uri);
    String::from_utf8(percent_decode(name))
        .ok()
        .map(PathBuf::from)
}

/// A `file:` URI's path (without `//localhost` or `//`) and its query.
fn split_uri(uri: &str) -> (&str, &str) {
    let end = uri.find('#').unwrap_or(uri.len());
    let uri = &uri[..end];
    let (name, query) = uri.split_once('?').unwrap_or((uri, ""));
    let name = match name.strip_prefix("//") {
        // `file://localhost/path` or `file:///path`.
        Some(rest) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => name,
    };
    (name, query)
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_databases() {
        for path in [
            "",
            ":memory:",
            "file::memory:",
            "file::memory:?cache=shared",
            "file:keys.db?mode=memory",
            "file:keys.db?cache=shared&MODE=MEMORY",
            "file:x?vfs=memdb",
            "file:",
            "file:?mode=rw",
        ] {
            assert!(is_temporary(Path::new(path)), "{path:?}");
            assert_eq!(file_of(Path::new(path)), None, "{path:?}");
        }
    }

    #[test]
    fn files() {
        for (path, file) in [
            ("keys.db", "keys.db"),
            ("/tmp/memory/keys.db", "/tmp/memory/keys.db"),
            ("./:memory:", "./:memory:"),
            ("file:keys.db", "keys.db"),
            ("file:/tmp/k%20s.db?mode=rwc", "/tmp/k s.db"),
            ("file:///tmp/k.db", "/tmp/k.db"),
            ("file://localhost/tmp/k.db#x", "/tmp/k.db"),
        ] {
            assert!(!is_temporary(Path::new(path)), "{path:?}");
            assert_eq!(
                file_of(Path::new(path)),
                Some(PathBuf::from(file)),
                "{path:?}"
            );
        }
    }
}
