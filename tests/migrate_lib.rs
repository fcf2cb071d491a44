//! `keyseal::migrate` called as a library: the same refusals and odd-row handling as the CLI.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

mod common;

use common::temp_db::TempDb;
use keyseal::migrate::{count_column, migrate_column, FailReason, KeySource, MigrateOptions};
use keyseal::{KeyStore, MasterKey};

fn table(dir: &std::path::Path) -> std::path::PathBuf {
    let db = dir.join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, owner, secret);
             INSERT INTO t VALUES (1, 'a', 'sk-1'), (2, 'b', CAST(X'FF' AS TEXT)),
                                  (3, CAST(X'FF' AS TEXT), 'sk-3'), (4, 'd', 7);",
        )
        .unwrap();
    db
}

/// The user column may not be the column to encrypt (each secret would become the user id of
/// its own key, stored in plaintext in the key store), nor may the id column: refused by
/// `migrate_column` itself, in any letter case, before a row or key is touched.
#[test]
fn one_column_in_two_roles_is_refused() {
    let tmp = TempDb::new();
    let db = table(tmp.dir());
    let before = std::fs::read(&db).unwrap();
    let store = KeyStore::open(tmp.dir().join("keys.db"), MasterKey::generate().unwrap()).unwrap();
    for options in [
        MigrateOptions::new("t", "secret", "id", KeySource::UserColumn("secret".into())),
        MigrateOptions::new("t", "secret", "id", KeySource::UserColumn("SECRET".into())),
        MigrateOptions::new("t", "secret", "Secret", KeySource::Pool),
    ] {
        let err = migrate_column(&db, &store, &options, |_| {}).unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{options:?}");
        assert_eq!(options.validate().unwrap_err().code(), "invalid_argument");
        let err = count_column(&db, &options, |_| {}).unwrap_err();
        assert_eq!(err.code(), "invalid_argument");
    }
    assert_eq!(store.user_count().unwrap(), 0);
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// Non-UTF-8 TEXT in the value or user column made the migration panic; such rows (and values
/// of other types) are listed with their ids and reasons, the others migrated, and a dry run
/// reports the same rows.
#[test]
fn odd_rows_are_listed_not_fatal() {
    let tmp = TempDb::new();
    let db = table(tmp.dir());
    let store = KeyStore::open(tmp.dir().join("keys.db"), MasterKey::generate().unwrap()).unwrap();
    let options = MigrateOptions::new("t", "secret", "id", KeySource::UserColumn("owner".into()));
    let dry = count_column(&db, &options, |_| {}).unwrap();
    let report = migrate_column(&db, &store, &options, |_| {}).unwrap();
    assert_eq!(dry.failed_rows, report.failed_rows);
    assert_eq!((report.migrated, report.failed), (1, 3));
    let rows: Vec<(&str, FailReason)> = report
        .failed_rows
        .iter()
        .map(|r| (r.id.as_str(), r.reason))
        .collect();
    assert_eq!(
        rows,
        [
            ("2", FailReason::ValueNotUtf8),
            ("3", FailReason::UserIdNotUtf8),
            ("4", FailReason::ValueNotText)
        ]
    );
    assert_eq!(
        store.user_count().unwrap(),
        1,
        "no key for an unusable user id"
    );
}

/// The wait for a database another process holds locked is the caller's to choose (it was a
/// fixed 10 s): options are a builder passed by value.
#[test]
fn a_locked_database_fails_after_the_chosen_busy_timeout() {
    let tmp = TempDb::new();
    let db = table(tmp.dir());
    let store = KeyStore::open(tmp.dir().join("keys.db"), MasterKey::generate().unwrap()).unwrap();
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let options = MigrateOptions::new("t", "secret", "id", KeySource::UserColumn("owner".into()))
        .busy_timeout(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = migrate_column(&db, &store, options, |_| {}).unwrap_err();
    assert_eq!(err.code(), "storage", "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "waited {:?}",
        started.elapsed()
    );
    holder.execute_batch("ROLLBACK").unwrap();
}
