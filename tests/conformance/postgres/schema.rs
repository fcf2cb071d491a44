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
    assert_eq!(
        denied.code().map(tokio_postgres::error::SqlState::code),
        Some("42501"),
        "{denied}"
    );

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

/// A dry-run check of a master key against a PostgreSQL store reads the store's check value:
/// it used to take the URL for a missing SQLite file and accept any key. It writes nothing.
#[test]
fn check_master_key_reads_a_postgres_store_and_refuses_a_wrong_key() {
    if !available() {
        return;
    }
    let db = PgDb::empty();
    let master = MasterKey::generate().unwrap();
    // No store yet: any key, and nothing is created.
    KeyStore::check_master_key(db.admin_url(), &master).unwrap();
    assert_eq!(
        query_text(
            &db.admin_url(),
            "SELECT to_regclass('keyseal_schema') IS NULL"
        )
        .as_deref(),
        Some("t")
    );
    let copy = MasterKey::from_bytes(master.expose_secret()).unwrap();
    KeyStore::open(db.admin_url(), master)
        .unwrap()
        .get_or_create_user_key("alice")
        .unwrap();
    KeyStore::check_master_key(db.admin_url(), &copy).unwrap();
    assert_eq!(
        KeyStore::check_master_key(db.admin_url(), &MasterKey::generate().unwrap()),
        Err(Error::WrongMasterKey { user_id: None })
    );
}

/// A database at schema version 1 (no `enabled`, `metadata` or tombstones) holding keys:
/// migrated to the current version on open by a privileged role, its keys still valid, and
/// the new operations working on them. Version 2 is marked incompatible with servers that
/// know only version 1 (they would keep validating disabled and deleted keys).
#[test]
fn a_version_1_api_key_schema_is_upgraded_and_its_keys_keep_working() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let made = {
        let keys = ApiKeys::open_with(db.app_url(), config()).unwrap();
        keys.create(&NewKey::new("u", "old").scope("read")).unwrap()
    };
    // Back to version 1 as it was: the version-2 additions removed.
    run_sql(
        &db.admin_url(),
        "ALTER TABLE api_keys DROP COLUMN enabled; ALTER TABLE api_keys DROP COLUMN metadata; \
         DROP TABLE api_key_tombstones; \
         UPDATE keyseal_schema SET version = 1, min_compatible_version = 1",
    )
    .unwrap();
    let keys = ApiKeys::open_with(db.admin_url(), config()).unwrap();
    assert_eq!(
        query_text(
            &db.admin_url(),
            "SELECT version || '/' || min_compatible_version FROM keyseal_schema"
        )
        .as_deref(),
        // Version 2 made every later schema incompatible with version-1 servers.
        Some(format!("{}/2", keyseal::postgres::SCHEMA_VERSION).as_str())
    );
    run_sql(&db.admin_url(), super::APP_GRANTS).unwrap();
    assert!(keys.verify(&made.key).unwrap().is_valid());
    keys.disable("u", &made.key_id).unwrap();
    let app = ApiKeys::open_with(db.app_url(), config()).unwrap();
    assert_eq!(
        app.verify(&made.key).unwrap().refusal().unwrap().reason(),
        "disabled"
    );
    app.delete("u", &made.key_id).unwrap();
    assert_eq!(
        app.verify(&made.key).unwrap().refusal().unwrap().reason(),
        "unknown"
    );
}
