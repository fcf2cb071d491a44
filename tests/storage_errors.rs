//! Storage failures keep a kind a caller can act on and, when it can hold no value, the
//! driver's error as `source()` (they used to be one message string, the driver's error lost).
#![cfg(all(
    feature = "keystore",
    feature = "issuance",
    not(target_arch = "wasm32")
))]
#![allow(missing_docs)]

use std::error::Error as _;
use std::time::{Duration, Instant};

use keyseal::{
    ApiKeys, ApiKeysConfig, Error, KeyStore, KeyStoreOptions, MasterKey, NewKey, StorageKind,
};
use rusqlite::ErrorCode;

fn sqlite_code(e: &Error) -> Option<ErrorCode> {
    e.source()?
        .downcast_ref::<rusqlite::Error>()?
        .sqlite_error_code()
}

/// Holds the write lock of `path` until dropped.
fn lock_for_writing(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

#[test]
fn a_busy_database_is_kind_busy_with_the_driver_error_as_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let wait = Duration::from_millis(100);
    let keys = ApiKeys::open_with(
        &path,
        ApiKeysConfig::default().bcrypt_cost(4).busy_timeout(wait),
    )
    .unwrap();
    let store = KeyStore::open_with(
        &path,
        MasterKey::generate().unwrap(),
        KeyStoreOptions::default().busy_timeout(wait),
    )
    .unwrap();

    let lock = lock_for_writing(&path);
    let started = Instant::now();
    let err = keys.create(&NewKey::new("user-1", "ci")).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "busy_timeout ignored"
    );
    assert_eq!(err.code(), "storage");
    assert_eq!(err.storage_kind(), Some(StorageKind::Busy), "{err}");
    assert!(matches!(
        err,
        Error::Storage {
            kind: StorageKind::Busy,
            ..
        }
    ));
    assert_eq!(sqlite_code(&err), Some(ErrorCode::DatabaseBusy), "{err:?}");

    let err = store.get_or_create_user_key("user-1").unwrap_err();
    assert_eq!(err.storage_kind(), Some(StorageKind::Busy), "{err}");
    assert_eq!(sqlite_code(&err), Some(ErrorCode::DatabaseBusy), "{err:?}");

    drop(lock);
    assert!(keys.create(&NewKey::new("user-1", "ci")).is_ok());
}

#[test]
fn a_file_that_is_not_a_database_is_kind_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
    for err in [
        ApiKeys::open(&path).expect_err("refused"),
        KeyStore::open(&path, MasterKey::generate().unwrap()).expect_err("refused"),
    ] {
        assert_eq!(err.code(), "storage");
        assert_eq!(err.storage_kind(), Some(StorageKind::Corrupt), "{err}");
        assert_eq!(sqlite_code(&err), Some(ErrorCode::NotADatabase), "{err:?}");
    }
}

#[test]
fn errors_other_than_storage_have_no_storage_kind_and_no_source() {
    let err = Error::Authentication;
    assert_eq!(err.storage_kind(), None);
    assert!(err.source().is_none());
}
