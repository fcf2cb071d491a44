//! Two and four processes sharing one store: a key revoked by one process is refused by every
//! other long-lived process that keeps verifying it from its cache, within a bound. The
//! processes are this test binary run again as children (`fleet_child` below), each with its
//! own caches, pools, feed thread and notification listener, as separate servers would have.
//!
//! The latency figures themselves (median, max over many runs) are a benchmark
//! (`make bench-fleet`); this test holds the bound a fleet relies on: every process refuses
//! within one second, on PostgreSQL (notifications) and on SQLite (the feed's 250 ms poll).
#![cfg(all(
    feature = "issuance",
    feature = "postgres",
    not(target_arch = "wasm32")
))]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::pg::PgDb;
use keyseal::{ApiKeys, ApiKeysConfig, NewKey, Verification};

const CHILD_STORE: &str = "KEYSEAL_FLEET_CHILD_STORE";

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn config() -> ApiKeysConfig {
    ApiKeysConfig::default().bcrypt_cost(4)
}

/// The child: opens the store named in the environment, reads a key on stdin, verifies it
/// until valid (then says `ready`), then keeps verifying it every millisecond and prints
/// `refused REASON UNIX_MICROS` at the first refusal. Does nothing in a normal test run.
#[test]
fn fleet_child() {
    let Ok(store) = std::env::var(CHILD_STORE) else {
        return;
    };
    let keys = ApiKeys::open_with(&store, config()).unwrap();
    let mut key = String::new();
    std::io::stdin().read_line(&mut key).unwrap();
    let key = key.trim_end();
    let start = Instant::now();
    while !keys.verify(key).unwrap().is_valid() {
        assert!(start.elapsed() < Duration::from_secs(20), "never valid");
        std::thread::sleep(Duration::from_millis(5));
    }
    // PostgreSQL: let the listener finish its self-test, so the wake-up is in place.
    while keys.status().feed_mode == "notify-down" && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("ready {}", keys.status().feed_mode);
    std::io::stdout().flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = keys.verify(key);
        let at = unix_us();
        match v {
            Ok(Verification::Valid(_)) => {}
            Ok(refused) => {
                println!("refused {} {at}", refused.refusal().unwrap().reason());
                return;
            }
            Err(e) => {
                println!("error {at} {e}");
                return;
            }
        }
        assert!(Instant::now() < deadline, "never refused");
        std::thread::sleep(Duration::from_millis(1));
    }
}

struct Fleet {
    children: Vec<(Child, BufReader<std::process::ChildStdout>)>,
}

impl Fleet {
    /// `n` children verifying `key` at `store`, each once ready; returns how changes reach
    /// each.
    fn start(n: usize, store: &str, key: &str) -> (Fleet, Vec<String>) {
        let exe = std::env::current_exe().unwrap();
        let mut children = Vec::new();
        for _ in 0..n {
            let mut child = Command::new(&exe)
                .args(["--exact", "fleet_child", "--nocapture", "--test-threads=1"])
                .env(CHILD_STORE, store)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            writeln!(child.stdin.take().unwrap(), "{key}").unwrap();
            let out = BufReader::new(child.stdout.take().unwrap());
            children.push((child, out));
        }
        let mut modes = Vec::new();
        for (_, out) in &mut children {
            modes.push(read_until(out, "ready ").unwrap_or_else(|| "no ready line".into()));
        }
        (Fleet { children }, modes)
    }

    /// Each child's first answer after the revocation: (reason, microseconds after `since`).
    fn refusals(mut self, since: u128) -> Vec<(String, i128)> {
        let mut out = Vec::new();
        for (child, stdout) in &mut self.children {
            let line = read_until(stdout, "refused ")
                .unwrap_or_else(|| panic!("a child ended without a refusal"));
            let mut parts = line.split(' ');
            let reason = parts.next().unwrap().to_owned();
            let at: u128 = parts.next().unwrap().parse().unwrap();
            out.push((
                reason,
                i128::try_from(at).unwrap() - i128::try_from(since).unwrap(),
            ));
            let _ = child.wait();
        }
        self.children.clear();
        out
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The rest of the first line holding `prefix` (other lines: libtest's own output).
fn read_until(out: &mut impl BufRead, prefix: &str) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).ok()? == 0 {
            return None;
        }
        // libtest may print "test fleet_child ... " on the same line first.
        if let Some(at) = line.find(prefix) {
            return Some(line.trim_end()[at + prefix.len()..].to_owned());
        }
        assert!(!line.contains("error "), "a child failed: {line}");
    }
}

fn revoke_seen_by_every_process(store: &str, n: usize, expect_mode: &str) {
    let admin = ApiKeys::open_with(store, config()).unwrap();
    let k = admin.create(&NewKey::new("u", "fleet")).unwrap();
    let (fleet, modes) = Fleet::start(n, store, &k.key);
    for m in &modes {
        assert_eq!(m, expect_mode, "how changes reach a child");
    }
    std::thread::sleep(Duration::from_millis(100));
    admin.revoke("u", &k.key_id).unwrap();
    let returned = unix_us();
    let seen = fleet.refusals(returned);
    for (reason, after_us) in &seen {
        assert_eq!(reason, "revoked");
        assert!(
            *after_us < 1_000_000,
            "a process refused only {after_us} µs after the revocation returned ({seen:?})"
        );
    }
    eprintln!("{n} processes ({expect_mode}): refused after {seen:?} µs");
}

#[test]
fn two_and_four_postgres_processes_see_a_revocation_within_a_second() {
    let Some(db) = PgDb::empty() else { return };
    keyseal::postgres::migrate(&db.admin_url()).unwrap();
    common::pg::run_sql(&db.admin_url(), common::pg::APP_GRANTS).unwrap();
    for n in [2, 4] {
        revoke_seen_by_every_process(&db.app_url(), n, "notify");
    }
}

#[test]
fn two_sqlite_processes_see_a_revocation_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    revoke_seen_by_every_process(path.to_str().unwrap(), 2, "poll");
}
