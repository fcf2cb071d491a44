//! The PostgreSQL backend's speed, beside `SQLite`'s in the same run: `make bench-postgres`
//! (a throwaway server; figures in BENCHMARKS.md). A plain timed program, not criterion:
//! each figure is one long run of a realistic loop, printed as operations per second.
//!
//! - cached `verify` (no round trip), PostgreSQL and `SQLite`, one thread;
//! - an existing user's data key with the key store's cache off (one query each), one thread
//!   over the server's unix socket;
//! - new users, durable, 8 threads;
//! - `rotate_master_key` of 100 000 users.
//!
//! Connects over the unix socket folder (`KEYSEAL_PG_SOCKET`) as the superuser, one fresh
//! database per figure.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keyseal::{ApiKeys, ApiKeysConfig, KeyStore, KeyStoreOptions, MasterKey, NewKey};

struct Server {
    socket: String,
    port: String,
    admin_url: String,
}

fn server() -> Server {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `make bench-postgres` (or source the env file of scripts/pg-start.sh)")
        })
    };
    Server {
        socket: var("KEYSEAL_PG_SOCKET"),
        port: var("KEYSEAL_PG_PORT"),
        admin_url: var("KEYSEAL_PG_ADMIN_URL"),
    }
}

fn admin(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = task.await;
    });
}

/// A fresh database; its URL over the unix socket (trust: no password).
fn fresh_db(s: &Server, name: &str) -> String {
    // Two calls: a multi-statement text runs as one transaction, which these refuse.
    admin(
        &s.admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    admin(&s.admin_url, &format!("CREATE DATABASE {name}"));
    // KEYSEAL_BENCH_PG_PARAMS adds URL parameters (e.g. `statement_cache=on`).
    let extra = std::env::var("KEYSEAL_BENCH_PG_PARAMS")
        .map(|p| format!("&{p}"))
        .unwrap_or_default();
    format!(
        "postgres://postgres@/{name}?host={}&port={}{extra}",
        s.socket, s.port
    )
}

fn rate(n: usize, took: Duration) -> f64 {
    // Counts here stay far below 2^52: the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    n / took.as_secs_f64()
}

fn report(what: &str, n: usize, took: Duration) {
    println!(
        "{what:<58} {:>12.0} /s  ({n} in {:.2} s)",
        rate(n, took),
        took.as_secs_f64()
    );
}

fn cached_verify(keys: &ApiKeys, n: usize) -> Duration {
    let made = keys.create(&NewKey::new("u", "bench")).unwrap();
    assert!(keys.verify(&made.key).unwrap().is_valid());
    let t = Instant::now();
    for _ in 0..n {
        black_box(keys.verify(black_box(&made.key)).unwrap());
    }
    t.elapsed()
}

/// 8 threads creating `n` new users in `store`, each durable before it returns.
fn new_users(store: &KeyStore, n: usize) -> Duration {
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..8 {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                black_box(store.get_or_create_user_key(&format!("new-{i}")).unwrap());
            });
        }
    });
    t.elapsed()
}

fn main() {
    // `cargo bench --bench postgres -- WORD` runs the figures whose section names WORD
    // (verify, uncached, new, rotate); `--bench` itself is passed by cargo and ignored.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted =
        |section: &str| filter.is_empty() || filter.iter().any(|f| section.contains(f.as_str()));
    let s = server();
    if wanted("verify") {
        cached_verify_section(&s);
    }
    if wanted("uncached") {
        uncached_section(&s);
    }
    if wanted("new") {
        new_users_section(&s);
    }
    if wanted("rotate") {
        rotate_section(&s);
    }
    for name in [
        "bench_verify",
        "bench_uncached",
        "bench_new",
        "bench_rotate",
    ] {
        admin(
            &s.admin_url,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
}

/// Cached verify: PostgreSQL, then SQLite, same process, same loop.
fn cached_verify_section(s: &Server) {
    let cfg = ApiKeysConfig::default().bcrypt_cost(4);
    let n = 5_000_000;
    let url = fresh_db(s, "bench_verify");
    let keys = ApiKeys::open_with(&url, cfg.clone()).unwrap();
    report(
        "cached verify, PostgreSQL, 1 thread",
        n,
        cached_verify(&keys, n),
    );
    drop(keys);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let keys = ApiKeys::open_with(dir.path().join("bench.db"), cfg).unwrap();
    report(
        "cached verify, SQLite, 1 thread",
        n,
        cached_verify(&keys, n),
    );
}

/// An existing user's data key, cache off: one indexed read per call.
fn uncached_section(s: &Server) {
    let url = fresh_db(s, "bench_uncached");
    let options = KeyStoreOptions::default().cache_capacity(0);
    let store = KeyStore::open_with(&url, MasterKey::generate().unwrap(), options).unwrap();
    let ids: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    store.get_or_create_user_keys(&refs).unwrap();
    let n = 100_000;
    let t = Instant::now();
    for i in 0..n {
        black_box(store.get_user_key(&ids[i % ids.len()]).unwrap());
    }
    report(
        "existing user's key, cache off, PostgreSQL socket, 1 thread",
        n,
        t.elapsed(),
    );
}

/// New users, each durable before it is returned, 8 threads; SQLite on the same disk.
fn new_users_section(s: &Server) {
    let url = fresh_db(s, "bench_new");
    let store = KeyStore::open(&url, MasterKey::generate().unwrap()).unwrap();
    let n = 40_000;
    report(
        "new users, durable, PostgreSQL socket, 8 threads",
        n,
        new_users(&store, n),
    );
    drop(store);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store =
        KeyStore::open(dir.path().join("bench.db"), MasterKey::generate().unwrap()).unwrap();
    report(
        "new users, durable, SQLite, 8 threads",
        n,
        new_users(&store, n),
    );
}

/// Rotation of 100 000 users.
fn rotate_section(s: &Server) {
    let url = fresh_db(s, "bench_rotate");
    let store = KeyStore::open(&url, MasterKey::generate().unwrap()).unwrap();
    let ids: Vec<String> = (0..100_000).map(|i| format!("user-{i}")).collect();
    for chunk in ids.chunks(5_000) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        store.get_or_create_user_keys(&refs).unwrap();
    }
    let t = Instant::now();
    let rotated = store
        .rotate_master_key(MasterKey::generate().unwrap())
        .unwrap();
    let took = t.elapsed();
    assert_eq!(rotated.rewrapped, 100_000);
    println!(
        "{:<58} {:>12.2} s",
        "rotate_master_key, 100 000 users, PostgreSQL socket",
        took.as_secs_f64()
    );
}
