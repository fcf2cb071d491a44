//! The key store's file on disk: never a database SQLite keeps only in memory, created readable
//! by its owner only.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

use keyseal::{KeyStore, MasterKey};

/// A key store in memory hands out keys it never keeps: every form SQLite reads as an
/// in-memory (or temporary) database is refused, not only the literal `:memory:`.
#[test]
fn in_memory_uri_forms_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let named = format!("file:{}?mode=memory", dir.path().join("k.db").display());
    for path in [
        "",
        ":memory:",
        "file::memory:",
        "file::memory:?cache=shared",
        "file:k.db?mode=memory&cache=shared",
        named.as_str(),
    ] {
        let err = KeyStore::open(path, MasterKey::generate().unwrap()).unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{path:?}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );
}

/// A `file:` URI naming a file on disk is a file: it opens and is created private.
#[cfg(unix)]
#[test]
fn a_file_uri_store_is_created_0600() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("uri keys.db");
    let uri = format!(
        "file:{}?cache=private",
        dir.path().join("uri%20keys.db").display()
    );
    let store = KeyStore::open(&uri, MasterKey::generate().unwrap()).unwrap();
    store.get_or_create_user_key("alice").unwrap();
    assert_eq!(mode(&file), 0o600);
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The store file (and its `-wal` and `-shm`) used to be created 0644 under the usual umask:
/// readable by every user of the machine. They are 0600 now, and the umask cannot widen that.
#[cfg(unix)]
#[test]
fn new_store_file_and_side_files_are_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/keys.db");
    let store = KeyStore::open(&path, MasterKey::generate().unwrap()).unwrap();
    store.get_or_create_user_key("alice").unwrap();
    // The store holds its connections open: the WAL files exist now.
    for side in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{side}", path.display()));
        assert_eq!(mode(&file), 0o600, "keys.db{side}");
    }
}
