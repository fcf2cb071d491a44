//! Criterion benchmarks of the key store: `cargo bench --bench keystore` (figures in
//! docs/bench-keystore.md, then BENCHMARKS.md).
//!
//! Databases live under `target/tmp` (the project's disk), so durable commits cost a real
//! fsync; set `KEYSEAL_BENCH_DIR=/dev/shm` to measure the CPU cost without the disk. Multi-threaded groups use `iter_custom`: `iters` operations split over the threads,
//! timed from the first start to the last finish, so the reported throughput is the aggregate.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[path = "../tests/common/temp_db.rs"]
#[allow(dead_code)] // the benchmarks use part of it
mod temp_db;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keyseal::{KeyStore, KeyStoreOptions, MasterKey, MasterKeyring};
use std::hint::black_box;
use temp_db::TempDb;

const EXISTING: usize = 10_000;

/// A fresh `bench.db` under `target/tmp`, or `KEYSEAL_BENCH_DIR` (e.g. a tmpfs, to see the CPU
/// cost alone).
fn temp_dir() -> TempDb {
    let dir = std::env::var("KEYSEAL_BENCH_DIR")
        .unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").to_owned());
    TempDb::named_in(std::path::Path::new(&dir), "bench.db")
}

fn store_with_users(db: &TempDb, n: usize, options: &KeyStoreOptions) -> KeyStore {
    let path = db.path();
    let store = KeyStore::open_with(path, MasterKey::generate().unwrap(), options).unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("user-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    store.get_or_create_user_keys(&refs).unwrap();
    store
}

/// Runs `iters` calls of `op(thread, i)` over `threads` threads; returns the wall time.
fn parallel(threads: usize, iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (barrier, next) = (&barrier, &next);
            s.spawn(move || {
                barrier.wait();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= iters {
                        break;
                    }
                    op(t, i);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn existing_users(c: &mut Criterion) {
    let dir = temp_dir();
    let store = store_with_users(&dir, EXISTING, &KeyStoreOptions::default());
    let ids: Vec<String> = (0..EXISTING).map(|i| format!("user-{i}")).collect();
    let mut g = c.benchmark_group("keystore_existing_user");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("lookup_1_thread", |b| {
        b.iter(|| {
            i = (i + 1) % EXISTING;
            black_box(store.get_or_create_user_key(&ids[i]).unwrap())
        });
    });
    for threads in [2, 8] {
        g.bench_function(format!("lookup_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                parallel(threads, iters, &|_, i| {
                    let id = &ids[usize::try_from(i).unwrap() % EXISTING];
                    black_box(store.get_or_create_user_key(id).unwrap());
                })
            });
        });
    }
    // Without the cache: a prepared-statement read and one AES-GCM unwrap per call.
    let uncached_dir = temp_dir();
    let uncached = store_with_users(
        &uncached_dir,
        EXISTING,
        &KeyStoreOptions::default().cache_capacity(0),
    );
    g.bench_function("lookup_1_thread_no_cache", |b| {
        b.iter(|| {
            i = (i + 1) % EXISTING;
            black_box(uncached.get_or_create_user_key(&ids[i]).unwrap())
        });
    });
    g.finish();
}

fn new_users(c: &mut Criterion) {
    let mut g = c.benchmark_group("keystore_new_user_durable");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));
    let dir = temp_dir();
    let store = store_with_users(&dir, 0, &KeyStoreOptions::default());
    let counter = AtomicU64::new(0);
    // Baseline: what this disk allows, one durable SQLite WAL commit of one row per iteration.
    let raw_dir = temp_dir();
    let raw = rusqlite::Connection::open(raw_dir.dir().join("raw.db")).unwrap();
    raw.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    raw.execute_batch(
        "PRAGMA synchronous = FULL; CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL)",
    )
    .unwrap();
    let mut raw_n = 0u64;
    g.bench_function("baseline_raw_sqlite_durable_commit", |b| {
        b.iter(|| {
            raw_n += 1;
            raw.execute(
                "INSERT INTO t (k, v) VALUES (?1, zeroblob(60))",
                [format!("k{raw_n}")],
            )
            .unwrap();
        });
    });
    g.bench_function("create_1_thread", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            black_box(store.get_or_create_user_key(&format!("new-{n}")).unwrap())
        });
    });
    g.bench_function("create_8_threads", |b| {
        b.iter_custom(|iters| {
            parallel(8, iters, &|_, _| {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                black_box(store.get_or_create_user_key(&format!("new-{n}")).unwrap());
            })
        });
    });
    g.finish();
}

fn rotation(c: &mut Criterion) {
    let mut g = c.benchmark_group("keystore_rotate");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(100_000));
    let dir = temp_dir();
    let store = store_with_users(&dir, 100_000, &KeyStoreOptions::default().cache_capacity(0));
    g.bench_function("rotate_100k_users", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let new = MasterKey::generate().unwrap();
                let start = Instant::now();
                let report = store.rotate_master_key(new).unwrap();
                total += start.elapsed();
                assert_eq!(report.rewrapped, 100_000);
            }
            total
        });
    });
    g.finish();
}

/// The rolling rotation's background step: 100 000 rows rewrapped under a new current master
/// key, 1 000 rows per durable transaction.
fn rewrap_master(c: &mut Criterion) {
    let mut g = c.benchmark_group("keystore_rewrap_master");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(40));
    g.throughput(Throughput::Elements(100_000));
    let dir = temp_dir();
    let first = MasterKey::generate().unwrap();
    let mut previous = MasterKey::from_bytes(first.expose_secret()).unwrap();
    let options = KeyStoreOptions::default().cache_capacity(0);
    let store = KeyStore::open_with(dir.path(), first, &options).unwrap();
    let ids: Vec<String> = (0..100_000).map(|i| format!("user-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    store.get_or_create_user_keys(&refs).unwrap();
    drop(store);
    g.bench_function("rewrap_100k_users_batch_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let new = MasterKey::generate().unwrap();
                let next = MasterKey::from_bytes(new.expose_secret()).unwrap();
                let old = MasterKey::from_bytes(previous.expose_secret()).unwrap();
                let ring = MasterKeyring::new(new).with_previous(old);
                let store = KeyStore::open_keyring(dir.path(), ring, &options).unwrap();
                let start = Instant::now();
                let report = store.rewrap_master_keys(1000, |_| {}).unwrap();
                total += start.elapsed();
                // The users, and the pool key once it exists.
                assert!((100_000..=100_001).contains(&report.rewrapped));
                previous = next;
            }
            total
        });
    });
    g.finish();
}

/// `keyseal rewrap`: 100 000 tokens of 100 users brought to a new key version (each iteration
/// rotates every user's key first, untimed), 1 000 rows per durable transaction.
fn rewrap_column(c: &mut Criterion) {
    use keyseal::rewrap::{rewrap_column, RewrapOptions};
    use keyseal::{Context, KeyOwner};
    let mut g = c.benchmark_group("keystore_rewrap_column");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(100_000));
    let dir = temp_dir();
    let store = KeyStore::open(dir.path(), MasterKey::generate().unwrap()).unwrap();
    store.set_shared_with_python(false).unwrap();
    let data = dir.dir().join("data.db");
    let conn = rusqlite::Connection::open(&data).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE creds(id INTEGER PRIMARY KEY, owner TEXT, secret TEXT)",
    )
    .unwrap();
    let users: Vec<String> = (0..100).map(|u| format!("user-{u}")).collect();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..100_000 {
        let owner = &users[i % users.len()];
        let token = store
            .encrypt_value(
                KeyOwner::User(owner),
                "sk-live-0123456789abcdef",
                &Context::none(),
            )
            .unwrap();
        tx.execute(
            "INSERT INTO creds VALUES (?1, ?2, ?3)",
            rusqlite::params![i64::try_from(i).unwrap(), owner, token],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let options = RewrapOptions::user_column("creds", "secret", "id", "owner").batch(1000);
    g.bench_function("rewrap_100k_tokens_batch_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for user in &users {
                    store.rotate_key(KeyOwner::User(user), false).unwrap();
                }
                let start = Instant::now();
                let report = rewrap_column(&data, &store, &options, |_| {}).unwrap();
                total += start.elapsed();
                assert_eq!(report.rewrapped, 100_000);
            }
            total
        });
    });
    g.finish();
}

criterion_group!(
    benches,
    existing_users,
    new_users,
    rotation,
    rewrap_master,
    rewrap_column
);
criterion_main!(benches);
