//! TLS: `sslmode=require` encrypts, `verify-full` checks the certificate against the CA file
//! and the host name; the throwaway server's certificate is made by `scripts/pg-start.sh`
//! (a CA of its own signing one for `localhost` and 127.0.0.1).

use keyseal::{ApiKeys, Error, StorageKind};

use super::{available, query_text, server, PgDb};
use crate::harness::config;

/// How many of the app role's connections to `db` use TLS, and how many do not (the pool
/// keeps its connections open while the store is).
fn app_connections(db: &PgDb) -> (u32, u32) {
    let count = |ssl: bool| {
        query_text(
            &db.admin_url(),
            &format!(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.datname = '{}' AND a.usename = 'keyseal_app' AND s.ssl = {ssl}",
                db.name
            ),
        )
        .unwrap()
        .parse()
        .unwrap()
    };
    (count(true), count(false))
}

fn url(db: &PgDb, host: &str, params: &str) -> String {
    let s = server().unwrap();
    format!(
        "postgres://{}:{}@{host}:{}/{}?{params}",
        s.app_role, s.app_password, s.port, db.name
    )
}

/// Creates and verifies a key through `url`, and says which connections it used.
fn use_store(db: &PgDb, url: &str) -> Result<(u32, u32), Error> {
    let keys = ApiKeys::open_with(url, config())?;
    let made = keys.create(&keyseal::NewKey::new("u", "tls"))?;
    assert!(keys.verify(&made.key)?.is_valid());
    Ok(app_connections(db))
}

#[test]
fn sslmode_require_encrypts_and_disable_does_not() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let (tls, plain) = use_store(&db, &url(&db, "127.0.0.1", "sslmode=require")).unwrap();
    assert!(tls > 0 && plain == 0, "require: {tls} TLS, {plain} plain");
    let db = PgDb::new();
    let (tls, plain) = use_store(&db, &url(&db, "127.0.0.1", "sslmode=disable")).unwrap();
    assert!(tls == 0 && plain > 0, "disable: {tls} TLS, {plain} plain");
}

#[test]
fn verify_full_accepts_the_servers_certificate_for_its_names() {
    if !available() {
        return;
    }
    let ca = &server().unwrap().ca;
    for host in ["localhost", "127.0.0.1"] {
        let db = PgDb::new();
        let params = format!("sslmode=verify-full&sslrootcert={ca}");
        let (tls, plain) = use_store(&db, &url(&db, host, &params)).unwrap();
        assert!(tls > 0 && plain == 0, "{host}: {tls} TLS, {plain} plain");
    }
}

fn refused(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Storage {
            kind: StorageKind::Unavailable,
            message,
            ..
        }) => message,
        other => panic!("expected a refused TLS connection, got {other:?}"),
    }
}

#[test]
fn verify_full_refuses_a_wrong_host_name() {
    if !available() {
        return;
    }
    let s = server().unwrap();
    let db = PgDb::new();
    // The right server (hostaddr), reached under a name its certificate does not carry.
    let params = format!(
        "sslmode=verify-full&sslrootcert={}&hostaddr=127.0.0.1",
        s.ca
    );
    let message = refused(ApiKeys::open_with(
        url(&db, "db.example.invalid", &params),
        config(),
    ));
    assert!(message.contains("TLS"), "{message}");
    assert!(message.contains("certificate"), "{message}");
    assert!(!message.contains(&s.app_password), "{message}");
    // The same address with the name it does carry is fine.
    let ok = format!(
        "sslmode=verify-full&sslrootcert={}&hostaddr=127.0.0.1",
        s.ca
    );
    ApiKeys::open_with(url(&db, "localhost", &ok), config()).unwrap();
}

#[test]
fn verify_full_refuses_a_certificate_another_ca_signed() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.crt");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=another CA", "-keyout"])
        .arg(dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let db = PgDb::new();
    let params = format!("sslmode=verify-full&sslrootcert={}", other_ca.display());
    let message = refused(ApiKeys::open_with(url(&db, "localhost", &params), config()));
    assert!(message.contains("certificate"), "{message}");
}

/// A unix socket folder (`host=/folder`) connects, with no TLS whatever `sslmode` says (as
/// libpq); the driver's empty host name there used to make the TLS setup fail every
/// connection.
#[test]
fn a_unix_socket_folder_connects_without_tls() {
    if !available() {
        return;
    }
    let s = server().unwrap();
    for mode in ["prefer", "require", "disable"] {
        let db = PgDb::new();
        let url = format!(
            "postgres://{}@/{}?host={}&port={}&sslmode={mode}",
            s.app_role, db.name, s.socket, s.port
        );
        let (tls, plain) = use_store(&db, &url).unwrap();
        assert!(tls == 0 && plain > 0, "{mode}: {tls} TLS, {plain} plain");
    }
}
