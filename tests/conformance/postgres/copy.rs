//! Copying a key store between SQLite and PostgreSQL: every wrapped key and the check value
//! arrive byte for byte and open with the same master key; a store that is not empty is
//! never written to.

use keyseal::{Error, KeyStore, MasterKey};

use super::{available, PgDb};
use crate::common::temp_db::TempDb;

fn copy(m: &MasterKey) -> MasterKey {
    MasterKey::from_bytes(m.expose_secret()).unwrap()
}

fn users() -> Vec<String> {
    (0..300).map(|i| format!("user-{i}")).collect()
}

/// Fills the store at `from` with users, copies it to `to`, and checks the copy.
fn copy_and_check(from: &std::path::Path, to: &std::path::Path) {
    let master = MasterKey::generate().unwrap();
    let source = KeyStore::open(from, copy(&master)).unwrap();
    let ids = users();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let keys = source.get_or_create_user_keys(&refs).unwrap();
    assert_eq!(source.copy_to(to).unwrap().rows, 300);

    // Wrong master key: the copy carries the source's check value.
    assert_eq!(
        KeyStore::open(to, MasterKey::generate().unwrap()).unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    let target = KeyStore::open(to, master).unwrap();
    assert_eq!(target.user_count().unwrap(), 300);
    for (id, key) in ids.iter().zip(&keys) {
        assert_eq!(target.get_user_key(id).unwrap().as_ref(), Some(key), "{id}");
    }
    // Not empty any more: refused, nothing written.
    source.get_or_create_user_key("late").unwrap();
    match source.copy_to(to) {
        Err(Error::InvalidArgument { what }) => assert!(what.contains("already holds"), "{what}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(target.user_count().unwrap(), 300);
    assert_eq!(target.get_user_key("late").unwrap(), None);
}

#[test]
fn a_sqlite_key_store_copies_to_postgres() {
    if !available() {
        return;
    }
    let (file, db) = (TempDb::new(), PgDb::new());
    copy_and_check(file.path(), &db.url);
}

#[test]
fn a_postgres_key_store_copies_to_sqlite() {
    if !available() {
        return;
    }
    let (db, file) = (PgDb::new(), TempDb::new());
    copy_and_check(&db.url, file.path());
}

#[test]
fn a_postgres_key_store_copies_to_another_database() {
    if !available() {
        return;
    }
    let (a, b) = (PgDb::new(), PgDb::new());
    copy_and_check(&a.url, &b.url);
}
