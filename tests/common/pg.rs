//! The throwaway PostgreSQL server that `scripts/pg-start.sh` starts (its `env` file gives
//! `KEYSEAL_PG_*`), for tests outside the conformance suites: a database of its own per test.
//!
//! Without a configured server a test using it is skipped with a note, unless
//! `KEYSEAL_REQUIRE_POSTGRES=1` (set by `make test-postgres`): then it fails.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

/// The server: host, port, and the passwords of the superuser and of the app role
/// `keyseal_app` (which may only read and write rows).
pub struct Server {
    pub host: String,
    pub port: String,
    pub admin_password: String,
    pub app_password: String,
}

/// The server, or `None` (after a note) when none is configured and none is required.
pub fn server() -> Option<Server> {
    let var = |name: &str| std::env::var(name).ok();
    let server = (|| {
        Some(Server {
            host: var("KEYSEAL_PG_HOST")?,
            port: var("KEYSEAL_PG_PORT")?,
            admin_password: var("KEYSEAL_PG_ADMIN_PASSWORD")?,
            app_password: var("KEYSEAL_PG_APP_PASSWORD")?,
        })
    })();
    if server.is_none() {
        assert!(
            std::env::var("KEYSEAL_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "KEYSEAL_REQUIRE_POSTGRES=1 but no PostgreSQL server is configured (KEYSEAL_PG_* \
             from scripts/pg-start.sh)"
        );
        eprintln!(
            "note: PostgreSQL test skipped: no server configured (run it with `make \
             test-postgres`, or `scripts/pg-start.sh target/pg && source target/pg/env`)"
        );
    }
    server
}

/// Runs `sql` at `url`, outside keyseal.
pub fn run_sql(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
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

/// Every row of `sql` at `url`, each column as text (`None` for NULL).
pub fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
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
        let rows = rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect();
        drop(client);
        let _ = task.await;
        rows
    })
}

/// The grants that let the app role run keyseal on a migrated database: rows only.
pub const APP_GRANTS: &str = "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \
     public TO keyseal_app; GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO keyseal_app";

/// A new empty database of its own, dropped (connections and all) when dropped.
pub struct PgDb {
    pub name: String,
    server: Server,
}

impl PgDb {
    /// A new empty database (not migrated); `None` when the test is skipped.
    pub fn empty() -> Option<PgDb> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = server()?;
        let name = format!(
            "kscli_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let db = PgDb { name, server };
        run_sql(
            &db.url_of("postgres", &db.server.admin_password, "postgres"),
            &format!("CREATE DATABASE {}", db.name),
        )
        .unwrap();
        Some(db)
    }

    fn url_of(&self, role: &str, password: &str, db: &str) -> String {
        format!(
            "postgres://{role}:{password}@{}:{}/{db}?sslmode=disable",
            self.server.host, self.server.port
        )
    }

    /// The superuser's URL (may create tables).
    pub fn admin_url(&self) -> String {
        self.url_of("postgres", &self.server.admin_password, &self.name)
    }

    /// The app role's URL (rows only).
    pub fn app_url(&self) -> String {
        self.url_of("keyseal_app", &self.server.app_password, &self.name)
    }

    /// The app role's URL without its password (which then comes from `PGPASSWORD`).
    pub fn app_url_without_password(&self) -> String {
        format!(
            "postgres://keyseal_app@{}:{}/{}?sslmode=disable",
            self.server.host, self.server.port, self.name
        )
    }

    /// The app role's password.
    pub fn app_password(&self) -> &str {
        &self.server.app_password
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = run_sql(
            &self.url_of("postgres", &self.server.admin_password, "postgres"),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
