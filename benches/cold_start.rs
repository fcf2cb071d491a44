//! Cold start: how long, and how much CPU, a NEW process takes to serve 10 000 distinct
//! active keys at bcrypt cost 12 (figures in BENCHMARKS.md, "Cold start").
//!
//! `cargo bench --bench cold_start -- prepare` makes the store once (10 000 `create` calls at
//! cost 12: about 10 000 bcrypts, tens of minutes) under `target/cold-start/`, with the keys
//! in `keys.txt` (mode 0600) so later runs can present them; it resumes where it stopped.
//! `cargo bench --bench cold_start` then measures, each case in a fresh child process:
//! with the fast verifier (the rows tagged first as a warm fleet leaves them, see
//! `tag_known_keys`), every prepared key once; without it, a sample of `SAMPLE` keys (one
//! bcrypt each), extrapolated. Wall time and the process's CPU time are printed.
//! `-- postgres` (feature `postgres`, a server from `scripts/pg-run.sh`) copies the prepared
//! store into a fresh PostgreSQL database and measures the same there.
#![allow(missing_docs, clippy::cast_precision_loss)]

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keyseal::{ApiKeys, ApiKeysConfig, NewKey, VerifierKey};

/// Keys in the prepared store.
const KEYS: usize = 10_000;
const COST: u32 = 12;
/// Keys verified by the process without the verifier (one bcrypt each).
const SAMPLE: usize = 100;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/cold-start")
}

fn store_path() -> PathBuf {
    dir().join("store.db")
}

/// Where the measured processes find the store: `KEYSEAL_BENCH_STORE` (a PostgreSQL URL in
/// the `postgres` run), else the prepared file.
fn location() -> PathBuf {
    std::env::var_os(STORE_ENV).map_or_else(store_path, PathBuf::from)
}

const STORE_ENV: &str = "KEYSEAL_BENCH_STORE";

fn keys_path() -> PathBuf {
    dir().join("keys.txt")
}

fn read_keys() -> Vec<String> {
    match fs::File::open(keys_path()) {
        Ok(f) => BufReader::new(f)
            .lines()
            .map(|l| l.unwrap())
            .filter(|l| !l.is_empty())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Creates the missing keys (two threads), appending each to `keys.txt` as it is made.
fn prepare() {
    fs::create_dir_all(dir()).unwrap();
    let have = read_keys().len();
    if have >= KEYS {
        println!("prepared already: {have} keys in {}", keys_path().display());
        return;
    }
    let keys = ApiKeys::open_with(
        store_path(),
        ApiKeysConfig::default()
            .bcrypt_cost(COST)
            .max_active_keys(None)
            // Tagged at creation, as a fleet holding the key makes them.
            .verifier_key(verifier_key()),
    )
    .unwrap();
    let out = Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(keys_path())
            .unwrap(),
    );
    let next = AtomicUsize::new(have);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= KEYS {
                    break;
                }
                let made = keys
                    .create(&NewKey::new(
                        format!("user-{}", i % 2_500),
                        format!("key {i}"),
                    ))
                    .unwrap();
                writeln!(out.lock().unwrap(), "{}", made.key).unwrap();
                if i % 500 == 0 {
                    println!("{i} keys, {:.0} s", started.elapsed().as_secs_f64());
                }
            });
        }
    });
    println!(
        "prepared {KEYS} keys in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// The benchmark's verifier key, made once (mode 0600) beside the store.
fn verifier_key() -> VerifierKey {
    let path = dir().join("verifier.key");
    if let Ok(text) = fs::read_to_string(&path) {
        return VerifierKey::from_base64(&text).unwrap();
    }
    let key = VerifierKey::generate().unwrap();
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    writeln!(f, "{}", key.to_base64()).unwrap();
    key
}

/// User and system CPU time of this process so far (every thread): the kernel's rusage
/// accounting as `/proc/self/stat` shows it (fields 14 and 15, in clock ticks of 10 ms);
/// calling getrusage itself would need `unsafe`, which this crate forbids.
fn cpu() -> (Duration, Duration) {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| Duration::from_millis(fields[i].parse::<u64>().unwrap() * 10);
    // `rest` starts at field 3: utime is field 14, stime 15.
    (ticks(14 - 3), ticks(15 - 3))
}

/// CPU time of every live thread of this process, in nanoseconds (`/proc/self/task/*/
/// schedstat`): finer than the 10 ms ticks of [`cpu`], and it counts keyseal's own threads
/// (the change feed's, PostgreSQL's) as long as they run.
fn thread_cpu() -> Duration {
    let mut total = 0u64;
    for task in fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path().join("schedstat");
        if let Ok(text) = fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// A new process: opens the store, verifies `n` prepared keys once each (every one must be
/// valid), and prints what it cost.
fn child(mode: &str, n: usize) {
    let all = read_keys();
    let picked: Vec<&String> = if mode == "bcrypt" {
        // Spread over the whole store.
        let step = (all.len() / n).max(1);
        all.iter().step_by(step).take(n).collect()
    } else {
        all.iter().take(n).collect()
    };
    let t0 = Instant::now();
    let (u0, s0) = cpu();
    let c0 = thread_cpu();
    let mut config = ApiKeysConfig::default()
        .bcrypt_cost(COST)
        .max_active_keys(None)
        // One thread verifies in turn: nothing may be refused for want of a bcrypt slot.
        .bcrypt_wait(Duration::from_secs(3600));
    if mode == "verifier" {
        config = config.verifier_key(verifier_key());
    }
    let keys = ApiKeys::open_with(location(), config).unwrap();
    let opened = t0.elapsed();
    for k in &picked {
        let v = keys.verify(k).unwrap();
        assert!(v.is_valid(), "{:?}", v.refusal());
    }
    let wall = t0.elapsed();
    let (u1, s1) = cpu();
    let c1 = thread_cpu();
    println!(
        "RESULT {mode} keys={} open_ms={:.1} wall_s={:.3} cpu_s={:.4} user_s={:.3} sys_s={:.3} \
         bcrypts={}",
        picked.len(),
        opened.as_secs_f64() * 1e3,
        wall.as_secs_f64(),
        c1.saturating_sub(c0).as_secs_f64(),
        u1.saturating_sub(u0).as_secs_f64(),
        s1.saturating_sub(s0).as_secs_f64(),
        keyseal::testing::bcrypt_verifications(&keys),
    );
}

fn run_child(mode: &str, n: usize) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child", mode, &n.to_string()])
        .env(STORE_ENV, location())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap()
        .to_owned();
    println!("{line}");
    line
}

fn field(line: &str, name: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap()
        .parse()
        .unwrap()
}

fn measure() {
    let all = read_keys();
    if all.is_empty() {
        eprintln!("run `cargo bench --bench cold_start -- prepare` first");
        return;
    }
    let n = all.len().min(KEYS);
    println!(
        "store {}: {n} prepared keys at cost {COST}",
        store_path().display()
    );
    if std::env::var_os(STORE_ENV).is_some() {
        println!("measured on its copy in PostgreSQL");
    }
    // The rows as a warm fleet leaves them: each tagged once (at creation, or by a first
    // bcrypt elsewhere). Written directly here, to save those bcrypts.
    let t = Instant::now();
    let tagged = {
        let keys =
            ApiKeys::open_with(location(), ApiKeysConfig::default().max_active_keys(None)).unwrap();
        let refs: Vec<&str> = all[..n].iter().map(String::as_str).collect();
        keyseal::testing::tag_known_keys(&keys, &verifier_key(), &refs).unwrap()
    };
    println!("tagged {tagged} rows in {:.1} s", t.elapsed().as_secs_f64());
    let with = [run_child("verifier", n), run_child("verifier", n)];
    let without = run_child("bcrypt", SAMPLE.min(n));
    let per_bcrypt = field(&without, "wall_s") / field(&without, "keys");
    let cpu_per_bcrypt = field(&without, "cpu_s") / field(&without, "keys");
    println!();
    println!(
        "| case | keys served | wall | CPU (threads) | CPU (user + sys, 10 ms ticks) | bcrypts |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for w in &with {
        println!(
            "| new process, verifier key | {} | {:.3} s | {:.3} s | {:.2} s | {} |",
            field(w, "keys"),
            field(w, "wall_s"),
            field(w, "cpu_s"),
            field(w, "user_s") + field(w, "sys_s"),
            field(w, "bcrypts"),
        );
    }
    println!(
        "| new process, no verifier key (measured) | {} | {:.2} s | {:.2} s | {:.2} s | {} |",
        field(&without, "keys"),
        field(&without, "wall_s"),
        field(&without, "cpu_s"),
        field(&without, "user_s") + field(&without, "sys_s"),
        field(&without, "bcrypts"),
    );
    println!(
        "| new process, no verifier key (extrapolated) | {KEYS} | {:.0} s | {:.0} s | | {KEYS} |",
        per_bcrypt * KEYS as f64,
        cpu_per_bcrypt * KEYS as f64,
    );
}

/// Copies the prepared store into a fresh database of the server `scripts/pg-run.sh`
/// started, and measures there.
#[cfg(feature = "postgres")]
fn postgres() {
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: run under scripts/pg-run.sh"))
    };
    let (socket, port, admin_url) = (
        var("KEYSEAL_PG_SOCKET"),
        var("KEYSEAL_PG_PORT"),
        var("KEYSEAL_PG_ADMIN_URL"),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        client
            .batch_execute("DROP DATABASE IF EXISTS cold_start WITH (FORCE)")
            .await
            .unwrap();
        client
            .batch_execute("CREATE DATABASE cold_start")
            .await
            .unwrap();
        drop(client);
        let _ = task.await;
    });
    let url = format!("postgres://postgres@/cold_start?host={socket}&port={port}");
    // The copy needs a master key; the prepared store has no data keys, only API keys.
    let master = keyseal::MasterKey::from_bytes(&[42; 32]).unwrap();
    let t = Instant::now();
    keyseal::copy_store(&store_path(), std::path::Path::new(&url), &master).unwrap();
    println!(
        "copied into PostgreSQL in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    std::env::set_var(STORE_ENV, &url);
    measure();
}

#[cfg(not(feature = "postgres"))]
fn postgres() {
    eprintln!("build with --features postgres");
}

fn main() {
    // `--bench`, which cargo passes, is ignored wherever it comes.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.first().map(String::as_str) {
        Some("prepare") => prepare(),
        Some("postgres") => postgres(),
        Some("child") => child(&args[1], args[2].parse().unwrap()),
        _ => measure(),
    }
}
