//! Benchmarks of API key issuance: `cargo bench --bench issuance` (figures in
//! docs/bench-issuance.md). Criterion groups, then two plain measurements: a flood of wrong
//! secrets against cached verifications, and revocation latency to a second process.
#![allow(missing_docs, clippy::cast_precision_loss)]

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[path = "../tests/common/process.rs"]
mod process;
#[path = "../tests/common/temp_db.rs"]
#[allow(dead_code)] // the benchmarks use part of it
mod temp_db;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use keyseal::{ApiKeys, ApiKeysConfig, NewKey, Requirement, Verification};
use process::ChildProcess;
use temp_db::TempDb;

const CHILD_DB: &str = "KEYSEAL_BENCH_CHILD_DB";
const CHILD_KEY: &str = "KEYSEAL_BENCH_CHILD_KEY";

fn manager(db: &Path, cost: u32) -> ApiKeys {
    ApiKeys::open_with(
        db,
        ApiKeysConfig::default()
            .bcrypt_cost(cost)
            .max_active_keys(None),
    )
    .unwrap()
}

/// Same key id, another secret, right checksum.
fn wrong_secret(key: &str, n: u64) -> String {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut b = key.as_bytes()[..key.len() - 6].to_vec();
    let secret_at = b.len() - 43;
    let mut v = n;
    for i in 0..8 {
        b[secret_at + i] = BASE62[(v % 62) as usize];
        v /= 62;
    }
    keyseal::testing::with_checksum(std::str::from_utf8(&b).unwrap())
}

fn verify_paths(c: &mut Criterion) {
    let db_dir = TempDb::new();
    let db = db_dir.path();
    let keys = Arc::new(manager(db, 4));
    let valid: Vec<String> = (0..2)
        .map(|i| {
            keys.create(&NewKey::new("bench", format!("k{i}")))
                .unwrap()
                .key
                .clone()
        })
        .collect();
    for k in &valid {
        assert!(keys.verify(k).unwrap().is_valid());
    }
    let mut typo = valid[0].clone().into_bytes();
    typo[30] = if typo[30] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    let garbage = "Bearer hello-world-this-is-not-a-key".to_string();
    let unknown = {
        // a well-formed key of another store: right checksum, unknown id
        let other_dir = TempDb::new();
        let other = other_dir.path();
        manager(other, 4)
            .create(&NewKey::new("x", "y"))
            .unwrap()
            .key
            .clone()
    };
    assert_eq!(
        keys.verify(&unknown).unwrap().refusal().unwrap().reason(),
        "unknown"
    );
    assert_eq!(
        keys.verify(&typo).unwrap().refusal().unwrap().reason(),
        "malformed"
    );

    let mut g = c.benchmark_group("issuance_verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cached_valid_1_thread", |b| {
        b.iter(|| keys.verify(black_box(&valid[0])).unwrap());
    });
    g.bench_function("malformed_garbage", |b| {
        b.iter(|| keys.verify(black_box(&garbage)).unwrap());
    });
    g.bench_function("malformed_bad_checksum", |b| {
        b.iter(|| keys.verify(black_box(&typo)).unwrap());
    });
    g.bench_function("unknown_well_formed", |b| {
        b.iter(|| keys.verify(black_box(&unknown)).unwrap());
    });
    g.throughput(Throughput::Elements(2));
    g.bench_function("cached_valid_2_threads", |b| {
        b.iter_custom(|iters| {
            let barrier = Arc::new(Barrier::new(2));
            let handles: Vec<_> = (0..2)
                .map(|t| {
                    let keys = keys.clone();
                    let key = valid[t].clone();
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        let start = Instant::now();
                        for _ in 0..iters {
                            black_box(keys.verify(black_box(&key)).unwrap());
                        }
                        start.elapsed()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .max()
                .unwrap()
        });
    });
    g.finish();
}

/// The scopes of the key the permission benchmarks verify.
const SCOPES: [&str; 4] = ["read", "write", "deploy", "billing:read"];

/// A new key holding [`SCOPES`].
fn scoped_key(keys: &ApiKeys) -> String {
    keys.create(&NewKey::new("bench", "scoped").scopes(SCOPES))
        .unwrap()
        .key
        .clone()
}

/// The permission check inside verify against a plain cached verify, in one group of one
/// run: the difference is the check's cost. The key holds four scopes, the requirement two.
fn permission_checks(c: &mut Criterion) {
    let db_dir = TempDb::new();
    let keys = Arc::new(manager(db_dir.path(), 4));
    let key = scoped_key(&keys);
    let all = Requirement::all(["deploy", "billing:read"]);
    let any = Requirement::any(["admin", "deploy"]);
    let missing = Requirement::all(["deploy", "admin"]);
    assert!(keys.verify_with(&key, &all).unwrap().is_valid());
    assert!(keys.verify_with(&key, &any).unwrap().is_valid());
    assert_eq!(
        keys.verify_with(&key, &missing)
            .unwrap()
            .refusal()
            .unwrap()
            .reason(),
        "forbidden"
    );
    let mut g = c.benchmark_group("issuance_permission");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cached_verify_plain", |b| {
        b.iter(|| keys.verify(black_box(&key)).unwrap());
    });
    g.bench_function("cached_verify_with_all_of_2", |b| {
        b.iter(|| keys.verify_with(black_box(&key), black_box(&all)).unwrap());
    });
    g.bench_function("cached_verify_with_any_of_2", |b| {
        b.iter(|| keys.verify_with(black_box(&key), black_box(&any)).unwrap());
    });
    g.bench_function("cached_verify_with_forbidden", |b| {
        b.iter(|| {
            keys.verify_with(black_box(&key), black_box(&missing))
                .unwrap()
        });
    });
    g.bench_function("requirement_check_alone_all_of_2", |b| {
        let held: Vec<String> = SCOPES.map(String::from).to_vec();
        b.iter(|| black_box(&all).is_met_by(black_box(&held)));
    });
    g.bench_function("cached_verify_async_ready", |b| {
        // Not awaited: what is timed is the call that answers a cached key at once (once
        // per change-check interval the call hands the check to a pool thread instead).
        b.iter(|| keys.verify_with_async(black_box(&key), black_box(&all)));
    });
    g.finish();
}

/// Plain verify and verify with a requirement, interleaved in short batches so that both see
/// the same machine load (other processes share the cores): medians of per-call times per
/// batch, and the median of the per-round differences.
fn permission_overhead() {
    const ROUNDS: usize = 400;
    const BATCH: u32 = 20_000;
    let db_dir = TempDb::new();
    let keys = manager(db_dir.path(), 4);
    let key = scoped_key(&keys);
    let all = Requirement::all(["deploy", "billing:read"]);
    let missing = Requirement::all(["deploy", "admin"]);
    assert!(keys.verify_with(&key, &all).unwrap().is_valid());
    let per_call = |f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..BATCH {
            f();
        }
        t.elapsed().as_secs_f64() * 1e9 / f64::from(BATCH)
    };
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut plain, mut with, mut forbidden, mut d_with, mut d_forbidden) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let p = per_call(&|| drop(black_box(keys.verify(black_box(&key)).unwrap())));
        let w = per_call(&|| drop(black_box(keys.verify_with(black_box(&key), &all).unwrap())));
        let f = per_call(&|| {
            drop(black_box(
                keys.verify_with(black_box(&key), &missing).unwrap(),
            ));
        });
        plain.push(p);
        with.push(w);
        forbidden.push(f);
        d_with.push(w - p);
        d_forbidden.push(f - p);
    }
    println!(
        "permission overhead ({ROUNDS} interleaved rounds of {BATCH} calls; medians): plain \
         cached verify {:.1} ns, with all-of-2 met {:.1} ns (difference {:+.1} ns), \
         forbidden {:.1} ns (difference {:+.1} ns)",
        median(&mut plain),
        median(&mut with),
        median(&mut d_with),
        median(&mut forbidden),
        median(&mut d_forbidden),
    );
}

fn first_validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("issuance_first_validation");
    g.sample_size(10);
    for cost in [4u32, 12] {
        let db_dir = TempDb::new();
        let db = db_dir.path();
        let key = manager(db, cost)
            .create(&NewKey::new("bench", "k"))
            .unwrap()
            .key
            .clone();
        if cost == 12 {
            g.measurement_time(Duration::from_secs(8));
        }
        g.bench_function(format!("cost_{cost}"), |b| {
            b.iter_batched(
                || manager(db, cost), // a fresh process-like instance: empty cache
                |keys| {
                    assert!(keys.verify(&key).unwrap().is_valid());
                    keys
                },
                BatchSize::PerIteration,
            );
        });
        // bcrypt alone, at the same cost, for comparison
        let hash = bcrypt::hash("x".repeat(44), cost).unwrap();
        g.bench_function(format!("bcrypt_verify_only_cost_{cost}"), |b| {
            b.iter(|| bcrypt::verify(black_box("x".repeat(44)), &hash).unwrap());
        });
    }
    g.finish();
}

criterion_group!(benches, verify_paths, permission_checks, first_validation);

/// This thread's (CPU time, time spent waiting for a CPU), from the kernel's schedstat: on a
/// shared machine, rates per CPU-second separate keyseal's cost from the other load.
fn thread_sched() -> (Duration, Duration) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0));
    (
        Duration::from_nanos(it.next().unwrap_or(0)),
        Duration::from_nanos(it.next().unwrap_or(0)),
    )
}

struct Rate {
    per_wall_second: f64,
    per_cpu_second: f64,
    cpu_share: f64,
}

/// Cached verifications on this thread for `for_how_long`.
fn cached_rate(keys: &ApiKeys, key: &str, for_how_long: Duration) -> Rate {
    let (cpu0, _) = thread_sched();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < for_how_long {
        for _ in 0..1000 {
            black_box(keys.verify(black_box(key)).unwrap());
        }
        n += 1000;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = thread_sched()
        .0
        .saturating_sub(cpu0)
        .as_secs_f64()
        .max(1e-9);
    Rate {
        per_wall_second: n as f64 / wall,
        per_cpu_second: n as f64 / cpu,
        cpu_share: cpu / wall,
    }
}

fn scaling() {
    let db_dir = TempDb::new();
    let db = db_dir.path();
    let keys = Arc::new(manager(db, 4));
    let valid: Vec<String> = (0..2)
        .map(|i| {
            keys.create(&NewKey::new("bench", format!("k{i}")))
                .unwrap()
                .key
                .clone()
        })
        .collect();
    for threads in [1usize, 2] {
        let barrier = Arc::new(Barrier::new(threads));
        let rates: Vec<Rate> = (0..threads)
            .map(|t| {
                let (keys, key, barrier) = (keys.clone(), valid[t].clone(), barrier.clone());
                std::thread::spawn(move || {
                    assert!(keys.verify(&key).unwrap().is_valid());
                    barrier.wait();
                    cached_rate(&keys, &key, Duration::from_secs(4))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let wall: f64 = rates.iter().map(|r| r.per_wall_second).sum();
        let cpu: f64 = rates.iter().map(|r| r.per_cpu_second).sum::<f64>() / threads as f64;
        let share: f64 = rates.iter().map(|r| r.cpu_share).sum();
        println!(
            "scaling: {threads} thread(s): {wall:.0}/s wall-clock in total, {cpu:.0} per \
             CPU-second per thread, using {share:.2} CPUs"
        );
    }
}

fn flood(max_failures_per_key: u32, label: &str) {
    let db_dir = TempDb::new();
    let db = db_dir.path();
    let keys = Arc::new(
        ApiKeys::open_with(
            db,
            ApiKeysConfig::default()
                .bcrypt_cost(12)
                .max_active_keys(None)
                .max_failures_per_key(max_failures_per_key),
        )
        .unwrap(),
    );
    let good = keys.create(&NewKey::new("u", "good")).unwrap().key.clone();
    let target = keys
        .create(&NewKey::new("u", "target"))
        .unwrap()
        .key
        .clone();
    assert!(keys.verify(&good).unwrap().is_valid());
    let quiet = cached_rate(&keys, &good, Duration::from_secs(3));
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let bcrypts = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (keys, stop, attempts, bcrypts) = (
            keys.clone(),
            stop.clone(),
            attempts.clone(),
            bcrypts.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let t = Instant::now();
                let v = keys.verify(&wrong_secret(&target, n)).unwrap();
                assert!(!v.is_valid());
                if t.elapsed() > Duration::from_millis(50) {
                    bcrypts.fetch_add(1, Ordering::Relaxed);
                }
                attempts.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let during = cached_rate(&keys, &good, Duration::from_secs(5));
    // A sustained flood: once the key id has used up its failure budget, no more bcrypt.
    let sustained = (max_failures_per_key < 1000).then(|| {
        let t = Instant::now();
        while bcrypts.load(Ordering::Relaxed) < u64::from(max_failures_per_key)
            && t.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        cached_rate(&keys, &good, Duration::from_secs(5))
    });
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();

    println!(
        "flood ({label}): cached valid {:.0}/s quiet, {:.0}/s during the flood ({:.0}%); per \
         CPU-second {:.0} quiet, {:.0} during ({:.0}%); CPU share of the cached thread {:.2} \
         quiet, {:.2} during; flood made {} attempts, {} of them ran bcrypt (cost 12)",
        quiet.per_wall_second,
        during.per_wall_second,
        100.0 * during.per_wall_second / quiet.per_wall_second,
        quiet.per_cpu_second,
        during.per_cpu_second,
        100.0 * during.per_cpu_second / quiet.per_cpu_second,
        quiet.cpu_share,
        during.cpu_share,
        attempts.load(Ordering::Relaxed),
        bcrypts.load(Ordering::Relaxed)
    );
    if let Some(r) = sustained {
        println!(
            "flood ({label}), sustained, after the key id's failure budget is spent: cached \
             valid {:.0}/s ({:.0}% of quiet), {:.0} per CPU-second; the flood now costs no bcrypt, but its own loop still takes a CPU",
            r.per_wall_second,
            100.0 * r.per_wall_second / quiet.per_wall_second,
            r.per_cpu_second
        );
    }
}

fn child() {
    let db = std::env::var(CHILD_DB).unwrap();
    let key = std::env::var(CHILD_KEY).unwrap();
    let keys = manager(Path::new(&db), 4);
    assert!(keys.verify(&key).unwrap().is_valid());
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    loop {
        if let Verification::Refused(r) = keys.verify(&key).unwrap() {
            writeln!(out, "refused {}", r.reason()).unwrap();
            out.flush().unwrap();
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn revocation_latency(runs: usize) {
    let db_dir = TempDb::new();
    let db = db_dir.path();
    let keys = manager(db, 4);
    let mut latencies = vec![];
    for i in 0..runs {
        let k = keys.create(&NewKey::new("u", format!("r{i}"))).unwrap();
        let mut proc = ChildProcess::spawn(
            Command::new(std::env::current_exe().unwrap())
                .env(CHILD_DB, db)
                .env(CHILD_KEY, &k.key)
                .stdout(Stdio::piped()),
        );
        let limit = Duration::from_secs(30);
        assert_eq!(proc.line_with("ready", limit), "ready");
        // land at a random point of the other process's 250 ms check cycle
        std::thread::sleep(Duration::from_millis(100 + (i as u64 * 37) % 250));
        keys.revoke("u", &k.key_id).unwrap();
        let t = Instant::now();
        assert_eq!(proc.line_with("refused", limit), "refused revoked");
        latencies.push(t.elapsed());
        assert!(proc.wait_with_output().status.success());
    }
    latencies.sort();
    println!(
        "revocation seen by a second process ({runs} runs): min {:?}, median {:?}, max {:?}",
        latencies[0],
        latencies[runs / 2],
        latencies[runs - 1]
    );
}

fn main() {
    if std::env::var_os(CHILD_DB).is_some() {
        child();
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    // Criterion takes one filter (a regex); the plain measurements run when it names them.
    let wants = |name: &str| {
        filter.is_empty()
            || filter
                .iter()
                .any(|f| f.contains(name) || name.contains(f.as_str()))
    };
    benches();
    Criterion::default().configure_from_args().final_summary();
    if wants("scaling") {
        scaling();
    }
    if wants("flood") {
        flood(u32::MAX, "every wrong secret runs bcrypt: throttle off");
        flood(20, "default: 20 failures per key id per minute");
    }
    if wants("revocation") {
        revocation_latency(10);
    }
    if wants("permission") {
        permission_overhead();
    }
}
