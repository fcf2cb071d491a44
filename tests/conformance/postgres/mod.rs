//! The PostgreSQL backend under the conformance suites, and its own tests (schema versions
//! and roles, connection errors, TLS, calls from inside a tokio runtime).
//!
//! The server is the throwaway one `scripts/pg-start.sh` starts; its `env` file gives the
//! variables read here. Without them the tests are skipped with a note, unless
//! `KEYSEAL_REQUIRE_POSTGRES=1` (set by `make test-postgres`, which starts the server): then
//! a missing server fails every test. Each test gets a database of its own (`CREATE
//! DATABASE`, dropped afterwards), migrated by the superuser and used through the app role
//! `keyseal_app`, which may only read and write rows: the grants the README documents.
//!
//! `pgbouncer/` runs both suites a second time through PgBouncer in transaction mode
//! (`scripts/pgbouncer-start.sh`), which hands each transaction any server connection.

mod api_keys;
mod copy;
mod errors;
mod feed;
mod keystore;
mod pgbouncer;
mod runtime;
mod schema;
mod statement_cache;
mod tls;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The throwaway server, as `scripts/pg-start.sh` describes it.
pub(crate) struct Server {
    pub(crate) host: String,
    pub(crate) port: String,
    pub(crate) socket: String,
    pub(crate) ca: String,
    pub(crate) admin_password: String,
    pub(crate) app_role: String,
    pub(crate) app_password: String,
}

const REQUIRE: &str = "KEYSEAL_REQUIRE_POSTGRES";

/// The server, or `None` (after a note) when none is configured and none is required.
pub(crate) fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    let found = SERVER.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok();
        let server = (|| {
            Some(Server {
                host: var("KEYSEAL_PG_HOST")?,
                port: var("KEYSEAL_PG_PORT")?,
                socket: var("KEYSEAL_PG_SOCKET")?,
                ca: var("KEYSEAL_PG_CA")?,
                admin_password: var("KEYSEAL_PG_ADMIN_PASSWORD")?,
                app_role: var("KEYSEAL_PG_APP_ROLE")?,
                app_password: var("KEYSEAL_PG_APP_PASSWORD")?,
            })
        })();
        if server.is_none() {
            eprintln!(
                "note: PostgreSQL tests skipped: no server configured (run them with \
                 `make test-postgres`, or `scripts/pg-start.sh target/pg && source target/pg/env`)"
            );
        }
        server
    });
    assert!(
        found.is_some() || std::env::var(REQUIRE).map_or(true, |v| v != "1"),
        "{REQUIRE}=1 but no PostgreSQL server is configured (KEYSEAL_PG_* from \
         scripts/pg-start.sh)"
    );
    found.as_ref()
}

/// Whether the PostgreSQL tests can run (see [`server`]).
pub(crate) fn available() -> bool {
    server().is_some()
}

impl Server {
    /// The superuser's URL for database `db` over TCP, no TLS.
    pub(crate) fn admin_url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@{}:{}/{db}?sslmode=disable",
            self.admin_password, self.host, self.port
        )
    }

    /// The app role's URL for database `db` over TCP, no TLS.
    pub(crate) fn app_url(&self, db: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{db}?sslmode=disable",
            self.app_role, self.app_password, self.host, self.port
        )
    }
}

/// Runs `sql` (one or more statements) at `url`, outside keyseal.
pub(crate) fn run_sql(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let task = tokio::spawn(conn);
        let result = client.batch_execute(sql).await;
        drop(client);
        let _ = task.await;
        result
    })
}

/// One value of a one-row query at `url`, as text.
pub(crate) fn query_text(url: &str, sql: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        let rows = client.simple_query(sql).await.unwrap();
        let value = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        });
        drop(client);
        let _ = task.await;
        value
    })
}

/// The grants that let the app role run keyseal on a migrated database: rows only.
pub(crate) const APP_GRANTS: &str =
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO keyseal_app";

/// A database of its own for one test, dropped (connections and all) when dropped.
pub(crate) struct PgDb {
    pub(crate) name: String,
    /// The app role's URL, as a path for the openers that take one.
    pub(crate) url: std::path::PathBuf,
}

impl PgDb {
    /// A new empty database, not migrated.
    pub(crate) fn empty() -> PgDb {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = server().expect("checked before the test");
        let name = format!(
            "ks_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        run_sql(
            &server.admin_url("postgres"),
            &format!("CREATE DATABASE {name}"),
        )
        .unwrap();
        PgDb {
            url: server.app_url(&name).into(),
            name,
        }
    }

    /// A new database migrated by the superuser, the app role granted rows only.
    pub(crate) fn new() -> PgDb {
        let db = PgDb::empty();
        keyseal::postgres::migrate(&db.admin_url()).unwrap();
        run_sql(&db.admin_url(), APP_GRANTS).unwrap();
        db
    }

    /// As [`PgDb::new`] (migrated over the direct URL), then used by the app role through
    /// PgBouncer in transaction mode on `pooler_port`.
    pub(crate) fn pooled(pooler_port: &str) -> PgDb {
        let mut db = PgDb::new();
        let server = server().expect("checked before the test");
        db.url = format!(
            "postgres://{}:{}@{}:{pooler_port}/{}?sslmode=disable",
            server.app_role, server.app_password, server.host, db.name
        )
        .into();
        db
    }

    /// The superuser's URL for this database.
    pub(crate) fn admin_url(&self) -> String {
        server().unwrap().admin_url(&self.name)
    }

    /// The app role's URL.
    pub(crate) fn app_url(&self) -> &str {
        self.url.to_str().unwrap()
    }
}

impl crate::harness::Place for PgDb {
    fn path(&self) -> &Path {
        &self.url
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Some(server) = server() {
            let _ = run_sql(
                &server.admin_url("postgres"),
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }
}
