//! PostgreSQL faults: a server that never answers, one that goes silent mid-connection, and a
//! crash (`pg_ctl stop -m immediate`) in the middle of creates, verifies and data-key writes,
//! then a restart. Nothing panics or hangs, every failure is a typed [`Error::Storage`],
//! nothing acknowledged is lost, the pool reconnects by itself, and another process that
//! cached a key sees its revocation made after the restart.
//!
//! The crash test runs on a throwaway cluster of its own (`scripts/pg-start.sh` in
//! `target/pg-faults-PID`), so tests sharing the `make test-postgres` server are not killed;
//! it needs `KEYSEAL_REQUIRE_POSTGRES=1` (set by `make test-postgres`) or
//! `KEYSEAL_PG_FAULTS=1`, and is skipped with a note otherwise. `KEYSEAL_PG_FAULTS_KILLS=N`
//! repeats the crash N times (`make test-long` runs 20).
#![cfg(all(feature = "postgres", feature = "issuance", feature = "keystore"))]
#![allow(missing_docs)]

mod common;
#[path = "pg_faults/crash.rs"]
mod crash;
#[path = "pg_faults/proxy.rs"]
mod proxy;

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proxy::Proxy;

use keyseal::{ApiKeys, ApiKeysConfig, Error, KeyStore, MasterKey, NewKey, StorageKind};

pub(crate) const BUSY: Duration = Duration::from_secs(1);
/// What a call may take against a silent server: each round trip gives up after the busy
/// timeout plus 2 s, and a call makes at most two in a row here (a change check, then its
/// statement), plus slack for a loaded machine.
const BOUND: Duration = Duration::from_secs(8);

pub(crate) fn config() -> ApiKeysConfig {
    ApiKeysConfig::default()
        .bcrypt_cost(4)
        .max_active_keys(None)
        .busy_timeout(BUSY)
        .change_check_interval(Duration::from_millis(100))
}

pub(crate) fn storage_kind(e: &Error) -> Option<StorageKind> {
    match e {
        Error::Storage { kind, .. } => Some(*kind),
        _ => None,
    }
}

/// Runs `sql` at `url` outside keyseal (the shared helper; a failure fails the test).
pub(crate) fn run_sql(url: &str, sql: &str) {
    common::pg::run_sql(url, sql).unwrap();
}

/// A server that accepts connections and never answers: a connect must give up.
#[test]
fn a_server_that_never_answers_gives_a_typed_error_within_the_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let url = format!("postgres://app:pw@127.0.0.1:{port}/nothing?sslmode=disable");
    let started = Instant::now();
    let opened = ApiKeys::open_with(&url, config());
    let took = started.elapsed();
    let Err(err) = opened else {
        panic!("a silent server cannot be opened")
    };
    assert_eq!(storage_kind(&err), Some(StorageKind::Unavailable), "{err}");
    assert!(took < BOUND, "gave up after {took:?}");
    let started = Instant::now();
    let store = KeyStore::open_with(
        &url,
        MasterKey::generate().unwrap(),
        keyseal::KeyStoreOptions::default().busy_timeout(BUSY),
    );
    let Err(err) = store else {
        panic!("a silent server cannot be opened")
    };
    assert_eq!(storage_kind(&err), Some(StorageKind::Unavailable), "{err}");
    assert!(
        started.elapsed() < BOUND,
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(!held.lock().unwrap().is_empty(), "the client did connect");
}

/// A database of its own on the shared server (`scripts/pg-start.sh`'s `KEYSEAL_PG_*`),
/// migrated, the app role granted rows; dropped when dropped. `None` (after a note) without
/// a server, unless `KEYSEAL_REQUIRE_POSTGRES=1`.
struct TestDb {
    admin: String,
    host: String,
    port: String,
    app_pw: String,
    name: String,
}

impl TestDb {
    fn new(prefix: &str) -> Option<TestDb> {
        let var = |n: &str| std::env::var(n).ok();
        let Some((admin, host, port, app_pw)) = (|| {
            Some((
                var("KEYSEAL_PG_ADMIN_URL")?,
                var("KEYSEAL_PG_HOST")?,
                var("KEYSEAL_PG_PORT")?,
                var("KEYSEAL_PG_APP_PASSWORD")?,
            ))
        })() else {
            assert!(
                var("KEYSEAL_REQUIRE_POSTGRES").as_deref() != Some("1"),
                "KEYSEAL_REQUIRE_POSTGRES=1 but no server is configured"
            );
            eprintln!("note: skipped: no PostgreSQL server configured (make test-postgres)");
            return None;
        };
        let name = format!("{prefix}_{}", std::process::id());
        run_sql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
        run_sql(&admin, &format!("CREATE DATABASE {name}"));
        let admin_db = format!("{}/{name}", admin.strip_suffix("/postgres").unwrap());
        keyseal::postgres::migrate(&admin_db).unwrap();
        run_sql(
            &admin_db,
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO keyseal_app",
        );
        Some(TestDb {
            admin,
            host,
            port,
            app_pw,
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        run_sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// A server that goes silent on open pooled connections: each call gives a typed error
/// within the bound instead of waiting forever, and the silent connections are not reused.
#[test]
fn a_server_gone_silent_mid_connection_gives_typed_errors_within_the_bound() {
    let Some(test_db) = TestDb::new("silent") else {
        return;
    };
    let (host, port, app_pw, db) = (&test_db.host, &test_db.port, &test_db.app_pw, &test_db.name);
    let proxy = Proxy::start(format!("{host}:{port}"));
    let url = format!(
        "postgres://keyseal_app:{app_pw}@127.0.0.1:{}/{db}?sslmode=disable",
        proxy.port
    );
    let keys = ApiKeys::open_with(&url, config()).unwrap();
    let made = keys.create(&NewKey::new("u", "k")).unwrap();
    assert!(keys.verify(&made.key).unwrap().is_valid());

    proxy.frozen.store(true, Ordering::Relaxed);
    for attempt in 0..2 {
        let started = Instant::now();
        let err = keys.create(&NewKey::new("u", "k2")).unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(
                storage_kind(&err),
                Some(StorageKind::Unavailable | StorageKind::Busy)
            ),
            "attempt {attempt}: {err}"
        );
        assert!(took < BOUND, "attempt {attempt}: gave up after {took:?}");
        let started = Instant::now();
        let err = keys.list("u").unwrap_err();
        assert!(storage_kind(&err).is_some(), "{err}");
        assert!(
            started.elapsed() < BOUND,
            "list gave up after {:?}",
            started.elapsed()
        );
    }
    drop(keys);
}

/// A connection lost after `COMMIT` was sent: the create or data-key write returns
/// `outcome_unknown` (not a plain `unavailable`), and what the README says the caller can
/// find afterwards is there: the created key is listed and can be revoked, and asking for
/// the data key again gives the one that was stored.
#[test]
fn a_connection_lost_after_commit_was_sent_gives_outcome_unknown_and_the_write_is_findable() {
    let Some(test_db) = TestDb::new("unknown") else {
        return;
    };
    let (host, port, app_pw, db) = (&test_db.host, &test_db.port, &test_db.app_pw, &test_db.name);
    let proxy = Proxy::start(format!("{host}:{port}"));
    let proxied = format!(
        "postgres://keyseal_app:{app_pw}@127.0.0.1:{}/{db}?sslmode=disable",
        proxy.port
    );
    let direct = format!("postgres://keyseal_app:{app_pw}@{host}:{port}/{db}?sslmode=disable");

    let keys = ApiKeys::open_with(&proxied, config()).unwrap();
    proxy.cut_after_commit.store(true, Ordering::SeqCst);
    let err = keys.create(&NewKey::new("u", "lost answer")).unwrap_err();
    assert_eq!(
        storage_kind(&err),
        Some(StorageKind::OutcomeUnknown),
        "{err}"
    );
    let other = ApiKeys::open_with(&direct, config()).unwrap();
    let listed = other.list("u").unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the commit went through: the key is listed"
    );
    other.revoke("u", &listed[0].key_id).unwrap();
    assert!(keys.list("u").unwrap()[0].revoked_at.is_some());

    let master = MasterKey::generate().unwrap();
    let same_master = || MasterKey::from_base64(&master.to_base64()).unwrap();
    let options = keyseal::KeyStoreOptions::default().busy_timeout(BUSY);
    let store = KeyStore::open_with(&proxied, same_master(), options.clone()).unwrap();
    proxy.cut_after_commit.store(true, Ordering::SeqCst);
    let err = store.get_or_create_user_key("d").unwrap_err();
    assert_eq!(
        storage_kind(&err),
        Some(StorageKind::OutcomeUnknown),
        "{err}"
    );
    let again = store.get_or_create_user_key("d").unwrap();
    let elsewhere = KeyStore::open_with(&direct, same_master(), options).unwrap();
    assert!(
        elsewhere.get_user_key("d").unwrap().as_ref() == Some(&again),
        "asking again gives the stored key, the same everywhere"
    );
    drop((keys, other, store, elsewhere));
}
