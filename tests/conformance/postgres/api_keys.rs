//! The PostgreSQL backend under the API-key suite: a database of its own per test, used
//! through the app role; the other client is a second connection (as another server would
//! hold), whose "write lock" is an `EXCLUSIVE` lock on the API keys' tables: it lets reads
//! through and keeps every write out, as `SQLite`'s write lock does.

use std::path::Path;

use keyseal::ApiKeys;

use super::PgDb;
use crate::harness::{Backend, Raw, Sql};

/// A connection outside keyseal, driven by a runtime of its own.
pub(crate) struct PgRaw {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl PgRaw {
    pub(crate) fn connect(url: &str) -> PgRaw {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
        });
        PgRaw { rt, client }
    }

    fn run(&mut self, sql: &str) {
        self.rt.block_on(self.client.batch_execute(sql)).unwrap();
    }
}

impl Raw for PgRaw {
    fn lock(&mut self) {
        // The counter first, as keyseal's writes take it: the other order could deadlock
        // with a write that already holds it.
        self.run("BEGIN; LOCK TABLE keyseal_feed, api_keys, api_key_meta IN EXCLUSIVE MODE");
    }
    fn execute(&mut self, sql: &str) {
        self.run(sql);
    }
    fn commit(&mut self) {
        self.run("COMMIT");
    }
}

/// A statement on the key `key_id` that takes the next `seq` from the feed's counter, as
/// keyseal's writes do.
fn with_seq(set: &str, key_id: &str) -> String {
    format!(
        "WITH f AS (UPDATE keyseal_feed SET seq = seq + 1 WHERE id = 1 RETURNING seq) \
         UPDATE api_keys SET {set}, seq = (SELECT seq FROM f) WHERE key_id = '{key_id}'"
    )
}

pub(crate) const POSTGRES: Backend = Backend {
    available: super::available,
    fresh: || Box::new(PgDb::new()),
    try_open: |path, cfg| ApiKeys::open_with(path, cfg),
    open: |path, cfg| ApiKeys::open_with(path, cfg).unwrap(),
    raw: |path: &Path| Box::new(PgRaw::connect(path.to_str().unwrap())),
    // A typed column cannot hold "next tuesday": an unknown scheme is what another tool can
    // write that keyseal cannot read.
    sql: Sql {
        revoke: |key_id| with_seq("revoked_at = 1", key_id),
        damage: |key_id| with_seq("scheme = 'rot13'", key_id),
        repair: |key_id| with_seq("scheme = 'ks1'", key_id),
        lock_leases: "LOCK TABLE api_key_leases IN EXCLUSIVE MODE",
    },
};

crate::api_keys_suite!(POSTGRES);
