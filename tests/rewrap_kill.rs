//! `kill -9` at random batches of `keyseal::rewrap::rewrap_column` (a user's key rotated, every
//! token brought to version 2 and bound to its row), then resume: every value decrypts to its
//! original under the newest version, and nothing is rewrapped twice.
//!
//! The child process is this test binary, re-run with `KEYSEAL_CHILD` set so that only the
//! `child` test does anything. `KEYSEAL_LONG=1` (`make test-long`) runs 100 000 rows.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

mod common;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use common::process::{this_test_binary, ChildProcess};
use common::temp_db::TempDb;
use keyseal::rewrap::{rewrap_column, rewrap_context, verify_rewrapped, RewrapOptions};
use keyseal::{Context, KeyOwner, KeyStore, MasterKey};

const USERS: usize = 20;

fn options(batch: usize) -> RewrapOptions {
    RewrapOptions::user_column("creds", "secret", "id", "owner")
        .to_v3(vec!["id".into()])
        .batch(batch)
}

/// The child side; a no-op in a normal test run.
#[test]
fn child() {
    let Ok(batch) = std::env::var("KEYSEAL_CHILD") else {
        return;
    };
    let dir = PathBuf::from(std::env::var("KEYSEAL_CHILD_DIR").unwrap());
    let master = MasterKey::from_base64(&std::env::var("KEYSEAL_CHILD_MASTER").unwrap()).unwrap();
    let store = KeyStore::open(dir.join("keys.db"), master).unwrap();
    let mut rewrapped = 0;
    let options = options(batch.parse().unwrap());
    let report = rewrap_column(&dir.join("data.db"), &store, &options, |p| {
        // Progress comes after each committed batch: report what is known to be done.
        println!("BATCH {} {rewrapped}", p.done);
        rewrapped = p.done;
    })
    .unwrap();
    println!("DONE {}", report.rewrapped);
}

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

/// A key store and `data.db` beside it: `rows` values of `USERS` users as `v2:` tokens, then
/// every user's key rotated to version 2. Returns the data connection.
fn fill(tmp: &TempDb, master: &MasterKey, rows: usize) -> rusqlite::Connection {
    let dir = tmp.dir();
    let store = KeyStore::open(
        tmp.path(),
        MasterKey::from_bytes(master.expose_secret()).unwrap(),
    )
    .unwrap();
    store.set_shared_with_python(false).unwrap();
    let conn = rusqlite::Connection::open(dir.join("data.db")).unwrap();
    conn.execute_batch("CREATE TABLE creds(id INTEGER PRIMARY KEY, owner TEXT, secret TEXT)")
        .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..rows {
        let owner = format!("user-{}", i % USERS);
        let token = store
            .encrypt_value(
                KeyOwner::User(&owner),
                &format!("secret {i}"),
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
    for u in 0..USERS {
        store
            .rotate_key(KeyOwner::User(&format!("user-{u}")), false)
            .unwrap();
    }
    drop(store);
    conn
}

#[test]
fn rewrap_killed_at_random_batches_resumes_every_value_intact() {
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
    let dir = tmp.dir().to_path_buf();
    let master = MasterKey::generate().unwrap();
    let conn = fill(&tmp, &master, rows);

    let spawn = || {
        ChildProcess::spawn(
            this_test_binary("child")
                .env("KEYSEAL_CHILD", batch.to_string())
                .env("KEYSEAL_CHILD_DIR", &dir)
                .env("KEYSEAL_CHILD_MASTER", master.to_base64()),
        )
    };
    let batches = rows / batch;
    for _ in 0..kills {
        let mut child = spawn();
        let after = 1 + random.next((batches / kills - 1).max(1) as u64);
        for _ in 0..after {
            child.line_with("BATCH", Duration::from_secs(120));
        }
        child.kill();
    }
    let mut child = spawn();
    let finished: u64 = child
        .line_with("DONE", Duration::from_secs(600))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    drop(child);
    assert!(
        finished < rows as u64,
        "the killed runs did part of the work"
    );

    let store = KeyStore::open(tmp.path(), master).unwrap();
    let opts = options(batch);
    // Nothing left, nothing done twice: a further run finds every value in its target form.
    let again = rewrap_column(&dir.join("data.db"), &store, &opts, |_| {}).unwrap();
    assert_eq!((again.rewrapped, again.refused), (0, 0));
    assert_eq!(again.skipped, rows as u64);
    let check = verify_rewrapped(&dir.join("data.db"), &store, &opts).unwrap();
    assert_eq!((check.ok, check.stale, check.failed), (rows as u64, 0, 0));
    // Every value is its original, under version 2.
    let mut stmt = conn.prepare("SELECT id, owner, secret FROM creds").unwrap();
    let all = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    for row in all {
        let (id, owner, token) = row.unwrap();
        let ctx = rewrap_context(&opts, &[&id.to_string()]);
        let value = store
            .decrypt_value(KeyOwner::User(&owner), &token, &ctx)
            .unwrap();
        assert_eq!(
            (value.plaintext.as_str(), value.version),
            (format!("secret {id}").as_str(), 2)
        );
    }
}
