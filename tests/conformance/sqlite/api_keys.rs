//! The `SQLite` backend under the API-key suite: the file `ApiKeys::open` uses, and another client as
//! a second connection, or as another process.

use std::path::Path;
use std::time::Duration;

use keyseal::ApiKeys;

use crate::harness::{Backend, Raw};

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
    try_open: |path, cfg| ApiKeys::open_with(path, cfg),
    open: |path, cfg| ApiKeys::open_with(path, cfg).unwrap(),
    raw: |path| {
        let c = rusqlite::Connection::open(path).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        Box::new(SqliteRaw(c))
    },
};

/// The same client in another process: a copy of this test binary that runs the commands
/// it reads on standard input (`raw_sql_child`), so the write lock is held by a process.
struct ChildRaw {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

const RAW_CHILD_DB: &str = "KEYSEAL_RAW_CHILD_DB";

impl ChildRaw {
    fn spawn(path: &Path) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "sqlite::api_keys::raw_sql_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(RAW_CHILD_DB, path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut raw = ChildRaw {
            child,
            stdin,
            stdout,
        };
        raw.send("ping");
        raw
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        loop {
            let got = self.stdout.next().expect("child output").unwrap();
            if got.contains("RAW ok") {
                return;
            }
            assert!(!got.contains("RAW error"), "{got}");
        }
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

impl Drop for ChildRaw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    try_open: SQLITE.try_open,
    open: SQLITE.open,
    raw: |path| Box::new(ChildRaw::spawn(path)),
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
