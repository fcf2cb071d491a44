//! The key store's file on disk: never a database SQLite keeps only in memory, created readable
//! by its owner only.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

mod common;

use common::temp_db::TempDb;
use keyseal::{KeyStore, MasterKey};

/// A key store in memory hands out keys it never keeps: every form SQLite reads as an
/// in-memory (or temporary) database is refused, not only the literal `:memory:`.
#[test]
fn in_memory_uri_forms_are_refused() {
    let tmp = TempDb::new();
    let named = format!("file:{}?mode=memory", tmp.dir().join("k.db").display());
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
        std::fs::read_dir(tmp.dir()).unwrap().count(),
        0,
        "nothing created"
    );
}

/// A `file:` URI naming a file on disk is a file: it opens and is created private.
#[cfg(unix)]
#[test]
fn a_file_uri_store_is_created_0600() {
    let tmp = TempDb::named("uri keys.db");
    let file = tmp.path();
    let uri = format!(
        "file:{}?cache=private",
        tmp.dir().join("uri%20keys.db").display()
    );
    let store = KeyStore::open(&uri, MasterKey::generate().unwrap()).unwrap();
    store.get_or_create_user_key("alice").unwrap();
    assert_eq!(mode(file), 0o600);
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
    let tmp = TempDb::named("nested/keys.db");
    let path = tmp.path();
    let store = KeyStore::open(path, MasterKey::generate().unwrap()).unwrap();
    store.get_or_create_user_key("alice").unwrap();
    // The store holds its connections open: the WAL files exist now.
    for side in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{side}", path.display()));
        assert_eq!(mode(&file), 0o600, "keys.db{side}");
    }
}

/// Every file in `dir` with its bytes and modification time.
fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let modified = e.metadata().unwrap().modified().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
                modified,
            )
        })
        .collect();
    files.sort();
    files
}

/// `check_master_key` (what a dry run uses) answers as `open` would, on a keyseal store in WAL
/// mode and on a file written by the Python module, and leaves every file as it was.
#[test]
fn check_master_key_answers_like_open_and_changes_nothing() {
    let tmp = TempDb::named("keys.db");
    let path = tmp.path();
    let master = MasterKey::generate().unwrap();
    let copy = MasterKey::from_bytes(master.expose_secret()).unwrap();
    drop(
        KeyStore::open(path, master)
            .unwrap()
            .get_or_create_user_key("alice"),
    );
    let python = tmp.dir().join("python.sqlite");
    std::fs::copy(common::vectors::seed_keystore_db(), &python).unwrap();
    let python_master =
        MasterKey::from_base64(&common::vectors::seed_keystore().master_key_b64).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));

    let before = snapshot(tmp.dir());
    KeyStore::check_master_key(path, &copy).unwrap();
    KeyStore::check_master_key(&python, &python_master).unwrap();
    let wrong = MasterKey::generate().unwrap();
    for file in [path, python.as_path()] {
        let err = KeyStore::check_master_key(file, &wrong).unwrap_err();
        assert_eq!(err.code(), "wrong_master_key", "{file:?}");
    }
    KeyStore::check_master_key(tmp.dir().join("missing.db"), &wrong).unwrap();
    let err = KeyStore::check_master_key(":memory:", &wrong).unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    assert_eq!(snapshot(tmp.dir()), before, "a file changed or appeared");
}
