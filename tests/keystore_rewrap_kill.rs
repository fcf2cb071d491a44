//! `kill -9` during a rolling master key rewrap, at random batches, then resume: every data
//! key comes back unchanged, every row ends under the new key, nothing is rewrapped twice.
//!
//! The child process is this test binary, re-run with `KEYSEAL_CHILD` set so that only the
//! `child` test does anything. `KEYSEAL_LONG=1` (`make test-long`) runs 100 000 rows.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

mod common;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use common::process::{this_test_binary, ChildProcess};
use common::temp_db::TempDb;
use keyseal::{KeyStore, KeyStoreOptions, MasterKey, MasterKeyId, MasterKeyring};

/// The child side; a no-op in a normal test run: rewraps in batches, printing each.
#[test]
fn child() {
    let Ok(batch) = std::env::var("KEYSEAL_CHILD") else {
        return;
    };
    let db = PathBuf::from(std::env::var("KEYSEAL_CHILD_DB").unwrap());
    let key = |name: &str| MasterKey::from_base64(&std::env::var(name).unwrap()).unwrap();
    let ring = MasterKeyring::new(key("KEYSEAL_CHILD_NEW")).with_previous(key("KEYSEAL_CHILD_OLD"));
    let store = KeyStore::open_keyring(&db, ring, KeyStoreOptions::default()).unwrap();
    let report = store
        .rewrap_master_keys(batch.parse().unwrap(), |r| {
            println!("BATCH {}", r.rewrapped);
        })
        .unwrap();
    println!("DONE {}", report.rewrapped);
}

/// A small pseudo-random sequence (no dependency), seeded from the clock and printed, so a
/// failure can be replayed by setting `KEYSEAL_KILL_SEED`.
/// `KEYSEAL_KILL_SEED`, else one from the clock (never 0).
fn seed() -> u64 {
    std::env::var("KEYSEAL_KILL_SEED").map_or_else(
        |_| {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            u64::from(nanos) | 1
        },
        |s| s.parse().unwrap(),
    )
}

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn rewrap_killed_at_random_batches_resumes_without_loss() {
    let long = std::env::var("KEYSEAL_LONG").as_deref() == Ok("1");
    let (rows, batch, kills) = if long {
        (100_000, 1000, 8)
    } else {
        (3_000, 100, 4)
    };
    let seed = seed();
    eprintln!("KEYSEAL_KILL_SEED={seed}");
    let mut random = Xorshift(seed);
    let tmp = TempDb::named("keys.db");
    let db = tmp.path();
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let store = KeyStore::open(db, MasterKey::from_bytes(old.expose_secret()).unwrap()).unwrap();
    let ids: Vec<String> = (0..rows).map(|i| format!("user-{i:06}")).collect();
    let keys = store
        .get_or_create_user_keys(&ids.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();
    let pool = store.pool_key().unwrap();
    drop(store);

    let spawn = || {
        ChildProcess::spawn(
            this_test_binary("child")
                .env("KEYSEAL_CHILD", batch.to_string())
                .env("KEYSEAL_CHILD_DB", db)
                .env("KEYSEAL_CHILD_OLD", old.to_base64())
                .env("KEYSEAL_CHILD_NEW", new.to_base64()),
        )
    };
    let batches = rows / batch;
    let mut done = 0;
    for _ in 0..kills {
        let mut child = spawn();
        // Kill after a random number of batches reported by this run (at least one).
        let after = 1 + random.next((batches / kills - 1).max(1) as u64);
        let mut last = String::new();
        for _ in 0..after {
            last = child.line_with("BATCH", Duration::from_secs(120));
        }
        child.kill();
        let reported: u64 = last.split_whitespace().nth(1).unwrap().parse().unwrap();
        done += reported;
    }
    assert!(
        done > 0 && done < rows as u64,
        "killed before the end ({done} of {rows})"
    );
    // Resume to the end: only what is left is rewrapped (nothing twice), plus the pool key.
    // A run may commit one batch more than it reported before the kill.
    let mut child = spawn();
    let finished: u64 = child
        .line_with("DONE", Duration::from_secs(600))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        finished <= rows as u64 + 1 - done,
        "{finished} rewrapped after {done}"
    );
    // A killed run may have committed one batch more than it reported.
    let unreported = (kills * batch) as u64;
    assert!(
        finished + done + unreported > rows as u64,
        "{finished} + {done} < {rows}"
    );
    drop(child);

    // Everything under the new key: the old one can be retired; every key unchanged.
    let ring = MasterKeyring::new(MasterKey::from_bytes(new.expose_secret()).unwrap())
        .with_previous(MasterKey::from_bytes(old.expose_secret()).unwrap());
    let store = KeyStore::open_keyring(db, ring, KeyStoreOptions::default()).unwrap();
    assert_eq!(
        store.rewrap_master_keys(batch, |_| {}).unwrap().rewrapped,
        0
    );
    store.retire_master_key(&MasterKeyId::of(&old)).unwrap();
    drop(store);
    let only_new = KeyStore::open(db, new).unwrap();
    for (id, key) in ids.iter().zip(&keys) {
        assert_eq!(
            only_new.get_user_key(id).unwrap().as_ref(),
            Some(key),
            "{id}"
        );
    }
    assert_eq!(only_new.pool_key().unwrap(), pool);
}
