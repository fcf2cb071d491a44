//! Copying a key store between SQLite and PostgreSQL: every wrapped key and the check value
//! arrive byte for byte and open with the same master key; a store that is not empty is
//! never written to.

use keyseal::{copy_store, Error, KeyStore, MasterKey};

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

// --- API keys ------------------------------------------------------------------------------

/// Fills API keys at `from` (valid, revoked, rotated, a legacy import), copies them to `to`,
/// and checks that every key verifies there exactly as in the source.
fn copy_api_keys_and_check(from: &std::path::Path, to: &std::path::Path) {
    use crate::harness::{config, legacy_key, reason};
    use keyseal::{ApiKeys, NewKey};
    let master = MasterKey::generate().unwrap();
    // A store is its data keys and its API keys: `copy_store` carries both.
    KeyStore::open(from, copy(&master))
        .unwrap()
        .get_or_create_user_key("u")
        .unwrap();
    let source = ApiKeys::open_with(from, config().max_active_keys(None)).unwrap();
    let valid = source
        .create(&NewKey::new("u", "valid").scope("read"))
        .unwrap();
    let revoked = source.create(&NewKey::new("u", "revoked")).unwrap();
    source.revoke("u", &revoked.key_id).unwrap();
    let old = source.create(&NewKey::new("v", "old")).unwrap();
    let new = source
        .rotate("v", &old.key_id, std::time::Duration::from_secs(600))
        .unwrap();
    let legacy = "mhu_abcdefgh_the_rest_of_a_legacy_key";
    source
        .import_legacy(&legacy_key(
            "mhu_",
            "abcdefgh",
            bcrypt::hash(legacy.as_bytes(), 4).unwrap(),
        ))
        .unwrap();
    let report = copy_store(from, to, &master).unwrap();
    assert_eq!(
        (report.data_keys, report.api_keys, report.legacy_formats),
        (1, 5, 1)
    );

    let target = ApiKeys::open_with(to, config()).unwrap();
    for key in [
        &valid.key,
        &revoked.key,
        &old.key,
        &new.key,
        &legacy.to_owned(),
    ] {
        assert_eq!(
            reason(&target.verify(key)),
            reason(&source.verify(key)),
            "{key}"
        );
    }
    assert_eq!(reason(&target.verify(&revoked.key)), "revoked");
    assert_eq!(reason(&target.verify(&valid.key)), "valid");
    assert_eq!(target.list("u").unwrap().len(), 3);
    // Not empty any more: refused.
    match copy_store(from, to, &master) {
        Err(Error::InvalidArgument { what }) => assert!(what.contains("not empty"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sqlite_api_keys_copy_to_postgres() {
    if !available() {
        return;
    }
    let (file, db) = (TempDb::new(), PgDb::new());
    copy_api_keys_and_check(file.path(), &db.url);
}

#[test]
fn postgres_api_keys_copy_to_sqlite() {
    if !available() {
        return;
    }
    let (db, file) = (PgDb::new(), TempDb::new());
    copy_api_keys_and_check(&db.url, file.path());
}
