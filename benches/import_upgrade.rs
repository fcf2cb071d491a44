//! Upgrade on first use at 1 000 imported keys without a lookup (bcrypt cost 4, as
//! `egregore`'s `eg_` keys are imported): first and later verifications, a wrong key, and the
//! old system's way (bcrypt over every enabled row on every request) beside it, in one run.
//! Figures in BENCHMARKS.md ("Imported keys: upgrade on first use").
//!
//! `cargo bench --bench import_upgrade` (`SQLite`, a temporary file);
//! `-- postgres` (feature `postgres`, under `scripts/pg-run.sh`) on a fresh database.
#![allow(missing_docs, clippy::cast_precision_loss, clippy::too_many_lines)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use keyseal::testing::bcrypt_verifications;
use keyseal::{ApiKeys, ApiKeysConfig, ImportOptions, ImportedKey, Timestamp};

const KEYS: usize = 1_000;
const COST: u32 = 4;
/// First verifications measured, in random order (each upgrades its key).
const SAMPLE: usize = 50;

/// `eg_` + 40 hex digits, as `secrets.token_hex(20)` makes them (from the OS's randomness).
fn eg_key() -> String {
    let mut bytes = [0u8; 20];
    getrandom::getrandom(&mut bytes).unwrap();
    let mut key = String::from("eg_");
    for b in bytes {
        let _ = write!(key, "{b:02x}");
    }
    key
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(v[v.len() / 2]),
        ms(v[v.len() * 9 / 10]),
        ms(v[v.len() - 1])
    )
}

fn run(location: &std::path::Path) {
    let plain: Vec<String> = (0..KEYS).map(|_| eg_key()).collect();
    let t = Instant::now();
    let hashes: Vec<String> = plain
        .iter()
        .map(|k| bcrypt::hash(k.as_bytes(), COST).unwrap())
        .collect();
    println!(
        "hashed {KEYS} keys at cost {COST} in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let imports: Vec<ImportedKey> = plain
        .iter()
        .zip(&hashes)
        .enumerate()
        .map(|(i, (_, h))| ImportedKey {
            source_id: Some(i.to_string()),
            user_id: format!("client-{i}"),
            name: format!("client {i}"),
            scopes: vec!["chat".into(), "history".into()],
            tag: "eg".into(),
            lookup: None,
            bcrypt_hash: h.clone(),
            expires_at: None,
            enabled: true,
            created_at: None,
            last_used_at: Some(Timestamp::from_unix_millis(
                1_700_000_000_000 + i64::try_from(i).unwrap() * 1000,
            )),
            rate_limit: None,
        })
        .collect();
    let config = || ApiKeysConfig::default().bcrypt_cost(COST);
    let keys = ApiKeys::open_with(location, config()).unwrap();
    let t = Instant::now();
    let mut options = ImportOptions::new("egregore");
    options.complete = true;
    let report = keys.import_keys(&imports, &options).unwrap();
    let took = t.elapsed();
    println!(
        "import: {} keys in {:.2} s ({:.0} keys/s); re-import:",
        report.created,
        took.as_secs_f64(),
        report.created as f64 / took.as_secs_f64()
    );
    let t = Instant::now();
    let again = keys.import_keys(&imports, &options).unwrap();
    println!(
        "  {} unchanged in {:.2} s",
        again.unchanged,
        t.elapsed().as_secs_f64()
    );

    // The old system: bcrypt over every enabled row until one matches.
    let mut old = Vec::new();
    for k in plain.iter().take(20) {
        let t = Instant::now();
        let mut checked = 0;
        for h in &hashes {
            checked += 1;
            if bcrypt::verify(k.as_bytes(), h).unwrap() {
                break;
            }
        }
        old.push(t.elapsed() * u32::try_from(KEYS).unwrap() / checked.max(1) / 2);
    }
    let mut wrong_old = Duration::ZERO;
    let t = Instant::now();
    for h in &hashes {
        let _ = bcrypt::verify(b"eg_wrong", h);
    }
    wrong_old += t.elapsed();
    println!(
        "old system (bcrypt over every enabled row): a valid key {} on average (N/2 bcrypts), \
         a wrong key {:.0} ms every time",
        stats(old),
        wrong_old.as_secs_f64() * 1e3
    );

    // First verifications, random order.
    let mut order: Vec<usize> = (0..KEYS).collect();
    for i in (1..order.len()).rev() {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).unwrap();
        let j = usize::try_from(u64::from_le_bytes(b) % (i as u64 + 1)).unwrap();
        order.swap(i, j);
    }
    let mut first = Vec::new();
    let mut bcrypts = 0;
    for &i in order.iter().take(SAMPLE) {
        let before = bcrypt_verifications(&keys);
        let t = Instant::now();
        assert!(keys.verify(&plain[i]).unwrap().is_valid());
        first.push(t.elapsed());
        bcrypts += bcrypt_verifications(&keys) - before;
    }
    println!(
        "first verify ({SAMPLE} keys in random order, {KEYS} pending): {}, {:.0} bcrypts each on average",
        stats(first),
        bcrypts as f64 / SAMPLE as f64
    );
    // Later: cached in this process.
    let t = Instant::now();
    let n = 100_000;
    for j in 0..n {
        let _ = keys.verify(&plain[order[j % SAMPLE]]).unwrap();
    }
    println!(
        "later verify, cached: {:.0} ns",
        t.elapsed().as_secs_f64() * 1e9 / n as f64
    );
    // Later, in another process (no cache): the derived lookup, one read and one bcrypt.
    let other = ApiKeys::open_with(location, config()).unwrap();
    let mut uncached = Vec::new();
    for &i in order.iter().take(SAMPLE) {
        let before = bcrypt_verifications(&other);
        let t = Instant::now();
        assert!(other.verify(&plain[i]).unwrap().is_valid());
        uncached.push(t.elapsed());
        assert_eq!(bcrypt_verifications(&other) - before, 1);
    }
    println!(
        "later verify, another process's first (upgraded: one indexed read + one bcrypt): {}",
        stats(uncached)
    );
    // A wrong key: the scan once, then remembered.
    let wrong = eg_key();
    let before = bcrypt_verifications(&keys);
    let t = Instant::now();
    assert!(!keys.verify(&wrong).unwrap().is_valid());
    let once = t.elapsed();
    let spent = bcrypt_verifications(&keys) - before;
    let t = Instant::now();
    for _ in 0..1000 {
        assert!(!keys.verify(&wrong).unwrap().is_valid());
    }
    println!(
        "wrong key: first {:.0} ms ({spent} bcrypts, every pending key), repeated {:.2} µs",
        once.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
    // Every key upgraded (in the scan's order: one bcrypt each), then a wrong key is free.
    for i in (0..KEYS).rev() {
        assert!(keys.verify(&plain[i]).unwrap().is_valid());
    }
    let counts = keys.key_counts().unwrap();
    let before = bcrypt_verifications(&keys);
    let mut wrongs = Vec::new();
    for _ in 0..200 {
        let w = eg_key();
        let t = Instant::now();
        assert!(!keys.verify(&w).unwrap().is_valid());
        wrongs.push(t.elapsed());
    }
    println!(
        "all {} of {} upgraded: a new wrong key {} and {} bcrypts in 200",
        counts.upgraded,
        counts.imported,
        stats(wrongs),
        bcrypt_verifications(&keys) - before
    );
}

fn main() {
    if std::env::args().any(|a| a == "postgres") {
        postgres();
    } else {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("import.db");
        println!("== SQLite");
        run(&path);
    }
}

#[cfg(feature = "postgres")]
fn postgres() {
    let url = std::env::var("KEYSEAL_PG_ADMIN_URL")
        .expect("KEYSEAL_PG_ADMIN_URL is not set: run under scripts/pg-run.sh");
    println!("== PostgreSQL");
    run(std::path::Path::new(&url));
}

#[cfg(not(feature = "postgres"))]
fn postgres() {
    eprintln!("build with --features postgres");
}
