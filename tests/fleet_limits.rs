//! A rate-limited key hammered by four processes sharing one store (SQLite file, PostgreSQL):
//! the limit holds across them. The processes are this test binary run again as children
//! (`limit_child` below), each with its own `ApiKeys`, verifying the key every millisecond,
//! far above the limit; each reports when it was admitted and how many lease writes it made.
//!
//! - Short (in `make test`): 120 requests per 3 s, 15 s. Every whole 3-second window of the
//!   run (aligned on the clock) admits 90 % to 110 % of the limit, and the store is written
//!   about once per lease, ⌈120 / (10 · 4)⌉ = 3 admitted requests.
//! - Long (`KEYSEAL_LONG=1`, in `make test-long` and `make bench-fleet-limits`): 100 per
//!   minute for two calendar minutes (the run starts on a minute), each minute 90 to 110.
#![cfg(all(
    feature = "issuance",
    feature = "postgres",
    not(target_arch = "wasm32")
))]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyseal::{ApiKeys, ApiKeysConfig, NewKey, RateLimit, Verification};

const CHILD_STORE: &str = "KEYSEAL_LIMIT_CHILD_STORE";

fn unix_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn config() -> ApiKeysConfig {
    ApiKeysConfig::default().bcrypt_cost(4)
}

/// The child: opens the store named in the environment, reads `KEY START_MS END_MS` on
/// stdin, waits for the start, verifies the key every millisecond until the end, then prints
/// `admitted MS MS …` and `counts ERRORS LEASE_WRITES LEASE_REQUESTS`. Does nothing in a
/// normal test run.
#[test]
fn limit_child() {
    let Ok(store) = std::env::var(CHILD_STORE) else {
        return;
    };
    let keys = ApiKeys::open_with(&store, config()).unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let key = parts.next().unwrap().to_owned();
    let start: u64 = parts.next().unwrap().parse().unwrap();
    let end: u64 = parts.next().unwrap().parse().unwrap();
    while unix_ms() < start {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (mut admitted, mut errors) = (Vec::new(), 0u64);
    loop {
        let at = unix_ms();
        if at >= end {
            break;
        }
        match keys.verify(&key) {
            Ok(Verification::Valid(_)) => admitted.push(at),
            Ok(_) => {}
            Err(e) => {
                if errors < 3 {
                    eprintln!("child error at {at}: {e}");
                }
                errors += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let list: Vec<String> = admitted.iter().map(u64::to_string).collect();
    println!("admitted {}", list.join(" "));
    println!(
        "counts {errors} {} {}",
        keyseal::testing::lease_writes(&keys),
        keyseal::testing::lease_requests(&keys)
    );
    std::io::stdout().flush().unwrap();
}

/// What the children reported, together.
struct Run {
    admitted: Vec<u64>,
    errors: u64,
    writes: u64,
    requests: u64,
}

/// The rest of the first line holding `prefix` (other lines: libtest's own output).
fn read_until(out: &mut impl BufRead, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "a child ended early");
        if let Some(at) = line.find(prefix) {
            return line.trim_end()[at + prefix.len()..].to_owned();
        }
    }
}

/// `n` children hammering `key` at `store` from `start` to `end` (Unix ms).
fn hammer(n: usize, store: &str, key: &str, start: u64, end: u64) -> Run {
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<Child> = (0..n)
        .map(|_| {
            let mut child = Command::new(&exe)
                .args(["--exact", "limit_child", "--nocapture", "--test-threads=1"])
                .env(CHILD_STORE, store)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            writeln!(child.stdin.take().unwrap(), "{key} {start} {end}").unwrap();
            child
        })
        .collect();
    let mut run = Run {
        admitted: vec![],
        errors: 0,
        writes: 0,
        requests: 0,
    };
    for child in &mut children {
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let admitted = read_until(&mut out, "admitted");
        run.admitted.extend(
            admitted
                .split_whitespace()
                .map(|t| t.parse::<u64>().unwrap()),
        );
        let counts: Vec<u64> = read_until(&mut out, "counts ")
            .split(' ')
            .map(|c| c.parse().unwrap())
            .collect();
        run.errors += counts[0];
        run.writes += counts[1];
        run.requests += counts[2];
        assert!(child.wait().unwrap().success());
    }
    run.admitted.sort_unstable();
    run
}

/// Admitted requests in each whole window `[k·period, (k+1)·period)` inside the run.
fn per_window(run: &Run, period_ms: u64, start: u64, end: u64) -> Vec<usize> {
    let first = start.div_ceil(period_ms);
    let last = end / period_ms; // exclusive
    (first..last)
        .map(|w| {
            run.admitted
                .iter()
                .filter(|&&t| t >= w * period_ms && t < (w + 1) * period_ms)
                .count()
        })
        .collect()
}

/// Four processes hammer a key limited to `limit`: every whole window (aligned on the clock)
/// admits 90 % to 110 % of it, and store writes stay near one per lease.
fn four_processes_hold_the_limit(store: &str, limit: RateLimit, run_for: Duration, align: bool) {
    let admin = ApiKeys::open_with(store, config()).unwrap();
    let k = admin
        .create(&NewKey::new("u", "fleet").rate_limit(limit))
        .unwrap();
    drop(admin);
    let period_ms = u64::try_from(limit.period().as_millis()).unwrap();
    // The children need a moment to start; a long run starts on a window, so that it holds
    // whole windows only.
    let mut start = unix_ms() + 2000;
    if align {
        start = start.div_ceil(period_ms) * period_ms;
    }
    let end = start + u64::try_from(run_for.as_millis()).unwrap();
    let run = hammer(4, store, &k.key, start, end);
    let windows = per_window(&run, period_ms, start, end);
    let n = u64::from(limit.requests());
    let per_lease = n.div_ceil(40).max(1);
    let admitted = u64::try_from(run.admitted.len()).unwrap();
    eprintln!(
        "4 processes, {limit}, {} s on {store:.40}: admitted per whole window {windows:?}, \
         {admitted} in all; {} lease writes ({:.3} per admitted request; one per \
         max(1, L / (10·N)) is {:.3}), \
         {} lease requests, {} errors",
        run_for.as_secs(),
        run.writes,
        ratio(run.writes, admitted),
        1.0 / (f64::from(limit.requests()) / 40.0).max(1.0),
        run.requests,
        run.errors
    );
    assert_eq!(run.errors, 0);
    assert!(!windows.is_empty());
    for &w in &windows {
        let w = u64::try_from(w).unwrap();
        assert!(
            w * 10 <= n * 11 && w * 10 >= n * 9,
            "a window admitted {w}, the limit is {n}: {windows:?}"
        );
    }
    // After the ramp-up (leases doubling from 1 to the cap, per process), one write per
    // lease; the last grant before a full window may be short (one per window and process).
    let ramp = 4 * (u64::from(per_lease.ilog2()) + 2);
    let whole = u64::try_from(windows.len()).unwrap() + 2;
    assert!(
        run.writes <= admitted / per_lease + ramp + 4 * whole,
        "{} store writes for {admitted} admitted requests",
        run.writes
    );
}

/// `a / b` for counts well below 2^32.
fn ratio(a: u64, b: u64) -> f64 {
    f64::from(u32::try_from(a).unwrap()) / f64::from(u32::try_from(b).unwrap().max(1))
}

fn long() -> bool {
    std::env::var("KEYSEAL_LONG").is_ok_and(|v| v == "1")
}

#[test]
fn four_sqlite_processes_hold_a_limit_of_120_per_3_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    four_processes_hold_the_limit(
        path.to_str().unwrap(),
        RateLimit::new(120, Duration::from_secs(3)),
        Duration::from_secs(15),
        false,
    );
}

#[test]
fn four_postgres_processes_hold_a_limit_of_120_per_3_s() {
    let Some(db) = common::pg::PgDb::empty() else {
        return;
    };
    keyseal::postgres::migrate(&db.admin_url()).unwrap();
    common::pg::run_sql(&db.admin_url(), common::pg::APP_GRANTS).unwrap();
    four_processes_hold_the_limit(
        &db.app_url(),
        RateLimit::new(120, Duration::from_secs(3)),
        Duration::from_secs(15),
        false,
    );
}

#[test]
fn long_four_sqlite_processes_hold_100_per_minute_for_two_minutes() {
    if !long() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    four_processes_hold_the_limit(
        path.to_str().unwrap(),
        RateLimit::per_minute(100),
        Duration::from_secs(120),
        true,
    );
}

#[test]
fn long_four_postgres_processes_hold_100_per_minute_for_two_minutes() {
    if !long() {
        return;
    }
    let Some(db) = common::pg::PgDb::empty() else {
        return;
    };
    keyseal::postgres::migrate(&db.admin_url()).unwrap();
    common::pg::run_sql(&db.admin_url(), common::pg::APP_GRANTS).unwrap();
    four_processes_hold_the_limit(
        &db.app_url(),
        RateLimit::per_minute(100),
        Duration::from_secs(120),
        true,
    );
}
