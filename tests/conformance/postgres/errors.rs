//! Bad connections give clear, typed errors that never show the password.

use std::time::{Duration, Instant};

use keyseal::{ApiKeys, Error, KeyStore, MasterKey, StorageKind};

use super::{available, server, PgDb};
use crate::harness::config;

const WRONG: &str = "not-the-password-4711";

/// The error of opening both stores at `url`: the same message either way.
fn open_error(url: &str) -> (StorageKind, String) {
    let t = Instant::now();
    let Err(err) = KeyStore::open(url, MasterKey::generate().unwrap()) else {
        panic!("{url} opened");
    };
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t.elapsed()
    );
    let api = ApiKeys::open_with(url, config()).unwrap_err();
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        api.to_string(),
        format!("{api:?}"),
    ] {
        assert!(!shown.contains(WRONG), "the password leaked: {shown}");
    }
    match err {
        Error::Storage { kind, message, .. } => (kind, message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wrong_password_says_so_without_showing_it() {
    if !available() {
        return;
    }
    let s = server().unwrap();
    let db = PgDb::new();
    let url = format!(
        "postgres://{}:{WRONG}@{}:{}/{}?sslmode=disable",
        s.app_role, s.host, s.port, db.name
    );
    let (kind, message) = open_error(&url);
    assert_eq!(kind, StorageKind::Unavailable, "{message}");
    assert!(message.contains("wrong password"), "{message}");
    assert!(message.contains("28P01"), "{message}");
    assert!(
        message.contains(&format!("keyseal_app@{}:{}", s.host, s.port)),
        "{message}"
    );
}

#[test]
fn a_closed_port_says_the_server_cannot_be_reached() {
    if !available() {
        return;
    }
    // A port nothing listens on: bound, read, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://keyseal_app:{WRONG}@127.0.0.1:{port}/keyseal");
    let (kind, message) = open_error(&url);
    assert_eq!(kind, StorageKind::Unavailable, "{message}");
    assert!(
        message.contains("cannot reach the PostgreSQL server"),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[test]
fn an_unknown_database_says_it_does_not_exist() {
    if !available() {
        return;
    }
    let s = server().unwrap();
    let url = format!(
        "postgres://{}:{}@{}:{}/no_such_db_here?sslmode=disable",
        s.app_role, s.app_password, s.host, s.port
    );
    let (kind, message) = open_error(&url);
    assert_eq!(kind, StorageKind::Unavailable, "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("3D000"), "{message}");
    assert!(!message.contains(&s.app_password), "{message}");
}

/// The store shows where it is without the password, in `path()` and `Debug`.
#[test]
fn an_open_store_shows_its_url_without_the_password() {
    if !available() {
        return;
    }
    let s = server().unwrap();
    let db = PgDb::new();
    let store = KeyStore::open(db.app_url(), MasterKey::generate().unwrap()).unwrap();
    let shown = store.path().to_str().unwrap().to_owned();
    assert!(shown.contains("keyseal_app:***@"), "{shown}");
    for text in [shown, format!("{store:?}")] {
        assert!(!text.contains(&s.app_password), "{text}");
    }
    let keys = ApiKeys::open_with(db.app_url(), config()).unwrap();
    assert!(!format!("{keys:?}").contains(&s.app_password));
}

const CHILD_URL: &str = "KEYSEAL_PG_CHILD_URL";

/// Run by [`a_url_without_a_password_uses_pgpassword`] in a child process whose environment
/// holds `PGPASSWORD`; a no-op otherwise.
#[test]
fn pgpassword_child() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let store = KeyStore::open(&url, MasterKey::generate().unwrap()).unwrap();
    store.get_or_create_user_key("alice").unwrap();
    println!("CHILD opened {}", store.path().display());
}

/// A URL without a password takes it from `PGPASSWORD` (so that no password need appear in a
/// URL or on a command line).
#[test]
fn a_url_without_a_password_uses_pgpassword() {
    if !available() {
        return;
    }
    let s = server().unwrap();
    let db = PgDb::new();
    let url = format!(
        "postgres://{}@{}:{}/{}?sslmode=disable",
        s.app_role, s.host, s.port, db.name
    );
    let run = |password: &str| {
        crate::common::process::this_test_binary("postgres::errors::pgpassword_child")
            .env(CHILD_URL, &url)
            .env("PGPASSWORD", password)
            .output()
            .unwrap()
    };
    let ok = run(&s.app_password);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success() && out.contains("CHILD opened"), "{out}");
    let refused = run(WRONG);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("wrong password")
            || String::from_utf8_lossy(&refused.stdout).contains("wrong password")
    );
}
