//! Schema versions and roles: migrations under an advisory lock, an app role without DDL
//! rights, schemas newer than this keyseal (compatible or not).

use keyseal::{ApiKeys, Error, KeyStore, MasterKey, NewKey, StorageKind};

use super::{available, query_text, run_sql, PgDb};
use crate::harness::config;

fn schema_error(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Storage {
            kind: StorageKind::Schema,
            message,
            ..
        }) => message,
        other => panic!("expected a schema error, got {other:?}"),
    }
}

/// The role the servers use may only read and write rows: it cannot create a table, yet
/// runs the whole flow (key store, API keys) on a database a privileged role migrated.
#[test]
fn app_role_with_row_rights_only_runs_the_whole_flow() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let denied = run_sql(db.app_url(), "CREATE TABLE sneaky (x int)").unwrap_err();
    assert_eq!(denied.code().map(|c| c.code()), Some("42501"), "{denied}");

    let master = MasterKey::generate().unwrap();
    let store = KeyStore::open(db.app_url(), master).unwrap();
    let key = store.get_or_create_user_key("alice").unwrap();
    assert_eq!(store.get_user_key("alice").unwrap(), Some(key));
    store
        .rotate_master_key(MasterKey::generate().unwrap())
        .unwrap();

    let keys = ApiKeys::open_with(db.app_url(), config()).unwrap();
    let made = keys.create(&NewKey::new("alice", "ci")).unwrap();
    assert!(keys.verify(&made.key).unwrap().is_valid());
    let next = keys
        .rotate("alice", &made.key_id, std::time::Duration::from_secs(60))
        .unwrap();
    keys.revoke("alice", &next.key_id).unwrap();
    keys.flush().unwrap();
    assert_eq!(keys.list("alice").unwrap().len(), 2);
}

/// On a database nobody migrated, the app role gets a clear error saying what to run, and
/// nothing is created.
#[test]
fn app_role_on_an_unmigrated_database_is_told_to_run_db_migrate() {
    if !available() {
        return;
    }
    let db = PgDb::empty();
    let message = schema_error(KeyStore::open(db.app_url(), MasterKey::generate().unwrap()));
    assert!(message.contains("keyseal db migrate"), "{message}");
    assert!(message.contains("no keyseal schema"), "{message}");
    let message = schema_error(ApiKeys::open_with(db.app_url(), config()));
    assert!(message.contains("keyseal db migrate"), "{message}");
    assert_eq!(
        query_text(
            &db.admin_url(),
            "SELECT to_regclass('keyseal_schema') IS NULL"
        )
        .as_deref(),
        Some("t")
    );
    // Once migrated by a privileged role, the same app role opens it.
    let done = keyseal::postgres::migrate(&db.admin_url()).unwrap();
    assert_eq!(
        (done.before, done.after),
        (0, keyseal::postgres::SCHEMA_VERSION)
    );
    run_sql(&db.admin_url(), super::APP_GRANTS).unwrap();
    KeyStore::open(db.app_url(), MasterKey::generate().unwrap()).unwrap();
}

/// A role that may create tables migrates on open, as `SQLite` creates its tables.
#[test]
fn a_privileged_role_migrates_on_open() {
    if !available() {
        return;
    }
    let db = PgDb::empty();
    let store = KeyStore::open(db.admin_url(), MasterKey::generate().unwrap()).unwrap();
    store.get_or_create_user_key("a").unwrap();
    assert_eq!(
        query_text(&db.admin_url(), "SELECT version FROM keyseal_schema"),
        Some(keyseal::postgres::SCHEMA_VERSION.to_string())
    );
}

/// Servers starting together on a new database: every migration succeeds, one applies it.
#[test]
fn concurrent_migrations_apply_once() {
    if !available() {
        return;
    }
    let db = PgDb::empty();
    let url = db.admin_url();
    let results: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|_| s.spawn(|| keyseal::postgres::migrate(&url).unwrap()))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.before == 0).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|r| r.after == keyseal::postgres::SCHEMA_VERSION));
    // Idempotent.
    let again = keyseal::postgres::migrate(&url).unwrap();
    assert_eq!(again.before, again.after);
}

/// A schema a newer keyseal migrated but kept compatible (expand-then-contract) still runs:
/// an older server keeps working during a rolling deploy.
#[test]
fn a_newer_compatible_schema_still_runs() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    run_sql(
        &db.admin_url(),
        "UPDATE keyseal_schema SET version = 7, min_compatible_version = 1, min_keyseal = '0.1.0'",
    )
    .unwrap();
    let keys = ApiKeys::open_with(db.app_url(), config()).unwrap();
    let made = keys.create(&NewKey::new("u", "x")).unwrap();
    assert!(keys.verify(&made.key).unwrap().is_valid());
    KeyStore::open(db.app_url(), MasterKey::generate().unwrap()).unwrap();
    // And migrating with this keyseal leaves the newer version as it is.
    let kept = keyseal::postgres::migrate(&db.admin_url()).unwrap();
    assert_eq!((kept.before, kept.after), (7, 7));
}

/// A schema marked incompatible with this keyseal is refused, saying which release it needs.
#[test]
fn a_schema_marked_incompatible_is_refused_with_the_release_it_needs() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    run_sql(
        &db.admin_url(),
        "UPDATE keyseal_schema SET version = 9, min_compatible_version = 9, min_keyseal = '3.1.0'",
    )
    .unwrap();
    for message in [
        schema_error(KeyStore::open(db.app_url(), MasterKey::generate().unwrap())),
        schema_error(ApiKeys::open_with(db.app_url(), config())),
        schema_error(keyseal::postgres::migrate(&db.admin_url())),
    ] {
        assert!(message.contains("schema is version 9"), "{message}");
        assert!(message.contains("requires keyseal ≥ 3.1.0"), "{message}");
    }
}
