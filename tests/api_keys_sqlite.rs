//! API keys on `SQLite` specifically: what the file holds, sharing it with the key store,
//! formats an earlier version wrote, revocation seen by another process. Behaviour that every
//! backend must show is in `tests/conformance/`.
#![cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use keyseal::{ApiKeys, NewKey};

mod common;

#[path = "conformance/harness.rs"]
#[allow(dead_code)]
mod harness;

use common::process::{this_test_binary, ChildProcess};
use common::temp_db::TempDb;
use harness::{config, legacy_key};

fn open(db: &TempDb) -> ApiKeys {
    ApiKeys::open_with(db.path(), config()).unwrap()
}

/// The `SQLite` file never holds a key, nor its secret part (nothing bcrypt-able without it).
#[test]
fn the_file_never_holds_the_key() {
    let db = TempDb::new();
    let keys = open(&db);
    let created = keys.create(&NewKey::new("user-1", "CI deploy")).unwrap();
    assert!(keys.verify(&created.key).unwrap().is_valid());
    drop(keys);
    let raw = std::fs::read(db.path()).unwrap();
    let hay = String::from_utf8_lossy(&raw);
    assert!(!hay.contains(&created.key));
    assert!(!hay.contains(&created.key[8 + 12..8 + 12 + 43]));
}

#[test]
fn an_old_single_format_row_is_still_read() {
    let db = TempDb::new();
    let key = "mhu_wZ4dBpC_LiIYg_nuq_EiC9QVF2A5FryiwRKe2U6uiVg";
    let hash = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";
    let l = legacy_key("mhu_", "wZ4dBpC_", hash.into());
    open(&db).import_legacy(&l).unwrap();
    // As an earlier version wrote it: one row per prefix.
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    conn.execute_batch(
        "DELETE FROM api_key_meta; INSERT INTO api_key_meta VALUES ('legacy:mhu_', '8');",
    )
    .unwrap();
    assert!(open(&db).verify(key).unwrap().is_valid());
}

// --- a second process ---------------------------------------------------------------------------

const CHILD_DB: &str = "KEYSEAL_ISSUANCE_CHILD_DB";
const CHILD_KEY: &str = "KEYSEAL_ISSUANCE_CHILD_KEY";

/// Run by `revocation_is_seen_by_another_process` in a child process; a no-op otherwise.
#[test]
fn child_process_watcher() {
    let (Ok(db), Ok(key)) = (std::env::var(CHILD_DB), std::env::var(CHILD_KEY)) else {
        return;
    };
    let keys = ApiKeys::open_with(&db, config()).unwrap();
    assert!(keys.verify(&key).unwrap().is_valid());
    println!("CHILD ready");
    let t = Instant::now();
    loop {
        if let Some(r) = keys.verify(&key).unwrap().refusal() {
            println!("CHILD refused {}", r.reason());
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "never refused");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn revocation_is_seen_by_another_process() {
    let db = TempDb::new();
    let keys = open(&db);
    let k = keys.create(&NewKey::new("u", "x")).unwrap();
    let mut child = ChildProcess::spawn(
        this_test_binary("child_process_watcher")
            .env(CHILD_DB, db.path())
            .env(CHILD_KEY, &k.key),
    );
    let limit = Duration::from_secs(20);
    assert_eq!(child.line_with("CHILD ", limit), "CHILD ready");
    std::thread::sleep(Duration::from_millis(300)); // the child's cache is warm
    keys.revoke("u", &k.key_id).unwrap();
    let t = Instant::now();
    assert_eq!(child.line_with("CHILD ", limit), "CHILD refused revoked");
    let latency = t.elapsed();
    assert!(child.wait_with_output().status.success());
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    eprintln!("revocation seen by the other process after {latency:?}");
}

#[test]
fn shares_the_file_with_the_key_store_without_touching_it() {
    let db = TempDb::new();
    {
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        conn.execute_batch(
            "CREATE TABLE encryption_keys(user_id TEXT PRIMARY KEY, encrypted_key BLOB NOT NULL, \
             created_at TEXT NOT NULL); INSERT INTO encryption_keys VALUES ('alice', x'00', 'now');",
        )
        .unwrap();
    }
    let keys = open(&db);
    let k = keys.create(&NewKey::new("alice", "a")).unwrap();
    keys.revoke("alice", &k.key_id).unwrap();
    drop(keys);
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    let rows: Vec<(String, Vec<u8>, String)> = conn
        .prepare("SELECT * FROM encryption_keys")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec![("alice".into(), vec![0u8], "now".into())]);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables
        .iter()
        .all(|t| t == "encryption_keys" || t.starts_with("api_key") || t == "sqlite_sequence"));
}

#[cfg(feature = "keystore")]
#[test]
fn works_next_to_the_real_key_store_in_one_file() {
    use keyseal::{KeyStore, MasterKey};
    let db = TempDb::new();
    let master = MasterKey::generate().unwrap();
    let store = KeyStore::open(
        db.path(),
        MasterKey::from_bytes(master.expose_secret()).unwrap(),
    )
    .unwrap();
    let before = store.get_or_create_user_key("alice").unwrap();
    let keys = open(&db);
    let k = keys.create(&NewKey::new("alice", "a")).unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid());
    let again = store.get_or_create_user_key("alice").unwrap();
    assert_eq!(before.expose_secret(), again.expose_secret());
    drop((store, keys));
    let store = KeyStore::open(db.path(), master).unwrap();
    assert_eq!(
        store
            .get_or_create_user_key("alice")
            .unwrap()
            .expose_secret(),
        before.expose_secret()
    );
    assert!(open(&db).verify(&k.key).unwrap().is_valid());
}
