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
//! - A holder killed with SIGKILL (`kill_child` below) while holding unspent tokens: its
//!   lease keeps counting until one period after its grant, never longer, and no more than it.
#![cfg(all(
    feature = "issuance",
    feature = "postgres",
    not(target_arch = "wasm32")
))]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyseal::{ApiKeys, ApiKeysConfig, NewKey, RateLimit, Refusal, Verification};

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
        "4 processes, {limit}, {} s on {}: admitted per whole window {windows:?}, \
         {admitted} in all; {} lease writes ({:.3} per admitted request; one per \
         max(1, L / (10·N)) is {:.3}), \
         {} lease requests, {} errors",
        run_for.as_secs(),
        backend_name(store),
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

/// The store's kind, for the output (a PostgreSQL URL holds a password: never printed).
fn backend_name(store: &str) -> &'static str {
    if store.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    }
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

const KILL_CHILD_STORE: &str = "KEYSEAL_KILL_CHILD_STORE";

/// The child killed mid-lease: opens the store named in the environment, reads `KEY N` on
/// stdin, verifies the key until it admitted `N` requests, prints `holding N LEASE_WRITES`,
/// then waits on stdin (for the SIGKILL; the parent's end closing only if the parent dies).
/// Does nothing in a normal test run.
#[test]
fn kill_child() {
    let Ok(store) = std::env::var(KILL_CHILD_STORE) else {
        return;
    };
    let keys = ApiKeys::open_with(&store, config()).unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let key = parts.next().unwrap().to_owned();
    let n: u32 = parts.next().unwrap().parse().unwrap();
    for _ in 0..n {
        let v = keys.verify(&key).unwrap();
        assert!(v.is_valid(), "the child was refused: {v:?}");
    }
    println!("holding {n} {}", keyseal::testing::lease_writes(&keys));
    std::io::stdout().flush().unwrap();
    line.clear();
    let _ = std::io::stdin().read_line(&mut line);
    // The parent is gone without killing this: leave as a killed process would, without
    // handing the lease back.
    std::process::exit(3);
}

/// One stored lease: holder, grant time (Unix ms, store clock), tokens.
type LeaseRow = (String, u64, u64);

/// Sleeps until `unix` (Unix ms), if it is still ahead.
fn sleep_until(unix: u64) {
    let now = unix_ms();
    if unix > now {
        std::thread::sleep(Duration::from_millis(unix - now));
    }
}

/// Verifies `key` until the first refusal: the requests admitted, and the refusal's
/// `retry_after` with the Unix ms just before and after the refused verification.
fn admit_until_refused(keys: &ApiKeys, key: &str, most: u32) -> (u32, Duration, u64, u64) {
    let mut admitted = 0;
    loop {
        let before = unix_ms();
        let v = keys.verify(key).unwrap();
        let after = unix_ms();
        match v.refusal() {
            None => admitted += 1,
            Some(Refusal::RateLimited { retry_after }) => {
                return (admitted, retry_after, before, after)
            }
            Some(other) => panic!("refused as {other}"),
        }
        assert!(admitted <= most, "{admitted} admitted, never refused");
    }
}

/// A process holding a lease with unspent tokens is killed with SIGKILL. Right after (a
/// second after its last grant, well inside the lease's period), another process admits at
/// least `L` less everything the dead one was granted (its admitted requests and its unspent
/// lease) and at most `L` less what it admitted, and is told to retry when the dead lease's
/// period ends. Once one period has passed since the dead one's last grant, its tokens are
/// back: the survivor then admits the rest of `L` within one period of its own first grant.
fn a_killed_holder_leaks_at_most_its_lease(store: &str, leases: &dyn Fn() -> Vec<LeaseRow>) {
    let (l, period_ms) = (40_u32, 3000_u64);
    let limit = RateLimit::new(l, Duration::from_millis(period_ms));
    let keys = ApiKeys::open_with(store, config()).unwrap();
    let k = keys
        .create(&NewKey::new("u", "killed").rate_limit(limit))
        .unwrap();
    // Leases of 1, 2 then 4 (the cap, ⌈40 / 10⌉): after 4 requests, 3 tokens unspent.
    let child_admitted = 4_u32;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
        .env(KILL_CHILD_STORE, store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child_in = child.stdin.take().unwrap();
    writeln!(child_in, "{} {child_admitted}", k.key).unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let holding = read_until(&mut out, "holding ");
    let child_writes = holding.split(' ').nth(1).unwrap().to_owned();
    child.kill().unwrap(); // SIGKILL: no destructor, no hand-back
    let status = child.wait().unwrap();
    drop(child_in);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child was not killed: {status}"
        );
    }
    assert!(!status.success());
    // Every lease so far is the dead child's.
    let dead = leases();
    assert!(!dead.is_empty(), "the child left no lease");
    let dead_holder = dead[0].0.clone();
    assert!(dead.iter().all(|r| r.0 == dead_holder));
    let granted = u32::try_from(dead.iter().map(|r| r.2).sum::<u64>()).unwrap();
    let first_grant = dead.iter().map(|r| r.1).min().unwrap();
    let last_grant = dead.iter().map(|r| r.1).max().unwrap();
    assert!(
        granted > child_admitted,
        "the child held no unspent token: granted {granted}, admitted {child_admitted}"
    );
    let expires = first_grant + period_ms;

    // A second after the dead one's last grant: its whole lease still counts. (Not at once:
    // our own grants, made from then on, must still count in the second measure below, once
    // the dead lease's period ended.)
    sleep_until(last_grant + 1000);
    let (early, retry, before, after) = admit_until_refused(&keys, &k.key, 2 * l);
    assert!(
        after < expires,
        "too slow to measure: refused {} ms after the dead lease's period ended",
        after - expires
    );
    assert!(
        early >= l - granted && early <= l - child_admitted,
        "admitted {early} while the dead lease counted; the limit is {l}, the dead one \
         admitted {child_admitted} and was granted {granted}"
    );
    // The refusal names the end of the dead lease's period (the store's clock is between
    // `before` and `after`; whole ms).
    let retry = u64::try_from(retry.as_millis()).unwrap();
    assert!(
        before + retry <= expires + 2 && expires <= after + retry + 2,
        "retry after {retry} ms, refused between {before} and {after}, the dead lease's \
         period ends at {expires}"
    );

    // One period after the dead one's last grant, its tokens are back; ours still count.
    let own_first = leases()
        .iter()
        .filter(|r| r.0 != dead_holder)
        .map(|r| r.1)
        .min()
        .unwrap();
    sleep_until(last_grant + period_ms + 50);
    let (late, _, _, after) = admit_until_refused(&keys, &k.key, 2 * l);
    // Before our first grant's period nears its end (grants within a twentieth of the
    // period of a free token wait for it), every request of ours counts in one window.
    assert!(
        after + period_ms / 20 < own_first + period_ms,
        "too slow to measure: refused at {after}, our first grant's period ends at {}",
        own_first + period_ms
    );
    eprintln!(
        "killed holder on {}: it admitted {child_admitted} with \
         {child_writes} lease writes, was granted {granted}; the survivor admitted {early} while the dead \
         lease counted (bounds {}..={}), retry after {retry} ms, then {late} once it expired",
        backend_name(store),
        l - granted,
        l - child_admitted
    );
    assert_eq!(
        early + late,
        l,
        "the survivor's own window admitted {early} + {late}, the limit is {l}"
    );
}

#[test]
fn a_killed_holder_leaks_at_most_its_lease_for_at_most_one_period_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let leases = || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare("SELECT holder, granted_at, tokens FROM api_key_leases")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.collect::<Result<Vec<LeaseRow>, _>>().unwrap()
    };
    a_killed_holder_leaks_at_most_its_lease(path.to_str().unwrap(), &leases);
}

#[test]
fn a_killed_holder_leaks_at_most_its_lease_for_at_most_one_period_postgres() {
    let Some(db) = common::pg::PgDb::empty() else {
        return;
    };
    keyseal::postgres::migrate(&db.admin_url()).unwrap();
    common::pg::run_sql(&db.admin_url(), common::pg::APP_GRANTS).unwrap();
    let leases = || {
        common::pg::query(
            &db.admin_url(),
            "SELECT holder, granted_at, tokens FROM api_key_leases",
        )
        .into_iter()
        .map(|r| {
            let col = |i: usize| r[i].clone().unwrap();
            (col(0), col(1).parse().unwrap(), col(2).parse().unwrap())
        })
        .collect()
    };
    a_killed_holder_leaks_at_most_its_lease(&db.app_url(), &leases);
}
