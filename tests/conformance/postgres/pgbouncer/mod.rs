//! Both conformance suites again, the app role going through PgBouncer in transaction mode
//! (Debian's `pgbouncer`, which keeps no named prepared statement, session setting or lock
//! past a transaction: each transaction may run on another server connection). Schema
//! migrations go over the direct URL, as a deployment behind a transaction pooler runs
//! `keyseal db migrate` against the server itself.
//!
//! The pooler is the one `scripts/pgbouncer-start.sh` starts (`KEYSEAL_PGBOUNCER_PORT`); the
//! tests are skipped with a note without it, unless `KEYSEAL_REQUIRE_PGBOUNCER=1` (set by
//! `scripts/pgbouncer-run.sh`, which `make test-postgres` uses): then a missing pooler fails.

mod api_keys;
mod feed;
mod keystore;

use std::sync::OnceLock;

const REQUIRE: &str = "KEYSEAL_REQUIRE_PGBOUNCER";

/// The pooler's port, or `None` (after a note) when none is configured and none is required.
pub(crate) fn pooler_port() -> Option<&'static str> {
    static PORT: OnceLock<Option<String>> = OnceLock::new();
    let found = PORT.get_or_init(|| {
        let port = std::env::var("KEYSEAL_PGBOUNCER_PORT").ok();
        if port.is_none() {
            eprintln!(
                "note: PgBouncer tests skipped: no pooler configured (run them with \
                 `make test-postgres`, or `scripts/pgbouncer-start.sh target/pg` after \
                 pg-start.sh)"
            );
        }
        port
    });
    assert!(
        found.is_some() || std::env::var(REQUIRE).map_or(true, |v| v != "1"),
        "{REQUIRE}=1 but no PgBouncer is configured (KEYSEAL_PGBOUNCER_PORT from \
         scripts/pgbouncer-start.sh)"
    );
    found.as_deref()
}

/// Whether the pooled tests can run: a server and a pooler in front of it.
pub(crate) fn available() -> bool {
    super::available() && pooler_port().is_some()
}

/// A fresh database, migrated directly, used through the pooler.
pub(crate) fn fresh() -> super::PgDb {
    super::PgDb::pooled(pooler_port().expect("checked before the test"))
}
