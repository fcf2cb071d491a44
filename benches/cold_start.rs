//! Cold start: how long, and how much CPU, a NEW process takes to serve 10 000 distinct
//! active keys at bcrypt cost 12 (figures in BENCHMARKS.md, "Cold start").
//!
//! `cargo bench --bench cold_start -- prepare` makes the store once (10 000 `create` calls at
//! cost 12: about 10 000 bcrypts, tens of minutes) under `target/cold-start/`, with the keys
//! in `keys.txt` (mode 0600) so later runs can present them; it resumes where it stopped.
//! `cargo bench --bench cold_start` then measures, each case in a fresh child process.
#![allow(missing_docs, clippy::cast_precision_loss)]

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use keyseal::{ApiKeys, ApiKeysConfig, NewKey};

/// Keys in the prepared store.
const KEYS: usize = 10_000;
const COST: u32 = 12;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/cold-start")
}

fn store_path() -> PathBuf {
    dir().join("store.db")
}

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
            .max_active_keys(None),
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "prepare") {
        prepare();
        return;
    }
    eprintln!("run `cargo bench --bench cold_start -- prepare` first");
}
