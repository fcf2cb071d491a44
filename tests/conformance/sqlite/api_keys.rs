//! The `SQLite` backend under the API-key suite: the file `ApiKeys::open` uses, and another client as
//! a second connection, or as another process.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use keyseal::ApiKeys;

use crate::common::process::{this_test_binary, ChildProcess};
use crate::common::temp_db::TempDb;
use crate::harness::{Backend, Raw, SQLITE_SQL};

struct SqliteRaw(rusqlite::Connection);

impl Raw for SqliteRaw {
    fn lock(&mut self) {
        self.0.execute_batch("BEGIN IMMEDIATE").unwrap();
    }
    fn execute(&mut self, sql: &str) {
        self.0.execute_batch(sql).unwrap();
    }
    fn commit(&mut self) {
        self.0.execute_batch("COMMIT").unwrap();
    }
}

const SQLITE: Backend = Backend {
    available: || true,
    fresh: || Box::new(TempDb::new()),
    try_open: |path, cfg| ApiKeys::open_with(path, cfg),
    open: |path, cfg| ApiKeys::open_with(path, cfg).unwrap(),
    raw: |path| {
        let c = rusqlite::Connection::open(path).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        Box::new(SqliteRaw(c))
    },
    sql: SQLITE_SQL,
};

/// The same client in another process: a copy of this test binary that runs the commands
/// it reads on standard input (`raw_sql_child`), so the write lock is held by a process.
struct ChildRaw(ChildProcess);

const RAW_CHILD_DB: &str = "KEYSEAL_RAW_CHILD_DB";

impl ChildRaw {
    fn spawn(path: &Path) -> Self {
        let mut raw = ChildRaw(ChildProcess::spawn(
            this_test_binary("sqlite::api_keys::raw_sql_child")
                .env(RAW_CHILD_DB, path)
                .stdin(Stdio::piped()),
        ));
        raw.send("ping");
        raw
    }

    fn send(&mut self, line: &str) {
        let stdin = self.0.stdin();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        assert_eq!(self.0.line_with("RAW ", Duration::from_secs(30)), "RAW ok");
    }
}

impl Raw for ChildRaw {
    fn lock(&mut self) {
        self.send("BEGIN IMMEDIATE");
    }
    fn execute(&mut self, sql: &str) {
        self.send(sql);
    }
    fn commit(&mut self) {
        self.send("COMMIT");
    }
}

/// Run by [`ChildRaw`] in a child process: one SQL statement per line; a no-op otherwise.
#[test]
fn raw_sql_child() {
    use std::io::BufRead;
    let Ok(db) = std::env::var(RAW_CHILD_DB) else {
        return;
    };
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let result = if line == "ping" {
            Ok(())
        } else {
            conn.execute_batch(&line)
        };
        match result {
            Ok(()) => println!("RAW ok"),
            Err(e) => println!("RAW error {e}"),
        }
    }
}

const SQLITE_OTHER_PROCESS: Backend = Backend {
    available: SQLITE.available,
    fresh: SQLITE.fresh,
    try_open: SQLITE.try_open,
    open: SQLITE.open,
    raw: |path| Box::new(ChildRaw::spawn(path)),
    sql: SQLITE_SQL,
};

mod in_process {
    use super::SQLITE;
    crate::api_keys_suite!(SQLITE);
}

/// The tests where the write lock is held: with it held by another process.
mod other_process {
    use super::SQLITE_OTHER_PROCESS;
    crate::api_keys_write_lock_suite!(SQLITE_OTHER_PROCESS);
}
