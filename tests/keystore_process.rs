//! Key store across processes: two processes creating the same 1 000 users, and `kill -9` in
//! the middle of a master key rotation.
//!
//! The child processes are this very test binary, re-run with `KEYSEAL_CHILD` set so that only
//! the `child` test does anything.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::{this_test_binary, ChildProcess};
use common::temp_db::TempDb;
use common::to_hex as hex;
use keyseal::{Error, KeyStore, MasterKey};

const USERS: usize = 1000;

fn spawn_child(mode: &str, db: &Path, master: &MasterKey, extra: &str) -> ChildProcess {
    ChildProcess::spawn(
        this_test_binary("child")
            .env("KEYSEAL_CHILD", mode)
            .env("KEYSEAL_CHILD_DB", db)
            .env("KEYSEAL_CHILD_MASTER", master.to_base64())
            .env("KEYSEAL_CHILD_EXTRA", extra),
    )
}

/// The child side; a no-op in a normal test run.
#[test]
fn child() {
    let Ok(mode) = std::env::var("KEYSEAL_CHILD") else {
        return;
    };
    let db = PathBuf::from(std::env::var("KEYSEAL_CHILD_DB").unwrap());
    let master = MasterKey::from_base64(&std::env::var("KEYSEAL_CHILD_MASTER").unwrap()).unwrap();
    let extra = std::env::var("KEYSEAL_CHILD_EXTRA").unwrap();
    let store = KeyStore::open(&db, master).unwrap();
    match mode.as_str() {
        "create" => {
            // Same users as the parent, walked backwards, each printed as `id hexkey`.
            for i in (0..USERS).rev() {
                let id = format!("user-{i}");
                let key = store.get_or_create_user_key(&id).unwrap();
                println!("KEY {id} {}", hex(key.expose_secret()));
            }
        }
        "rotate" => {
            let new = MasterKey::from_base64(&extra).unwrap();
            let mut announced = false;
            store
                .rotate_master_key_with_progress(new, |done, total| {
                    if !announced && done >= total / 2 && done > 0 {
                        announced = true;
                        println!("HALFWAY {done}/{total}");
                        // Wait to be killed, with half the rows rewritten in the open
                        // transaction (60 000 rows overflow SQLite's 2 MiB page cache, so
                        // rewritten pages are already spilled, uncommitted, to the WAL).
                        std::thread::sleep(Duration::from_secs(120));
                    }
                })
                .unwrap();
            println!("DONE");
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn two_processes_same_thousand_users_get_the_same_keys() {
    let tmp = TempDb::named("keys.db");
    let db = tmp.path();
    let master = MasterKey::generate().unwrap();
    KeyStore::open(db, MasterKey::from_bytes(master.expose_secret()).unwrap()).unwrap();
    let child = spawn_child("create", db, &master, "");
    let store = KeyStore::open(db, MasterKey::from_bytes(master.expose_secret()).unwrap()).unwrap();
    let mine: Vec<String> = (0..USERS)
        .map(|i| {
            hex(store
                .get_or_create_user_key(&format!("user-{i}"))
                .unwrap()
                .expose_secret())
        })
        .collect();
    let output = child.wait_with_output();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let mut seen = 0;
    // libtest may print "test child ... " before the first line of output.
    for line in text
        .lines()
        .filter_map(|l| l.find("KEY ").map(|at| &l[at..]))
    {
        let mut parts = line.split(' ').skip(1);
        let id = parts.next().unwrap();
        let key = parts.next().unwrap();
        let i: usize = id.trim_start_matches("user-").parse().unwrap();
        assert_eq!(mine[i], key, "{id}");
        seen += 1;
    }
    assert_eq!(seen, USERS);
    assert_eq!(store.user_count().unwrap(), USERS as u64);
}

#[test]
fn kill_9_during_rotation_leaves_the_old_master_key_working() {
    let tmp = TempDb::named("keys.db");
    let db = tmp.path();
    let old = MasterKey::generate().unwrap();
    let new = MasterKey::generate().unwrap();
    let ids: Vec<String> = (0..60_000).map(|i| format!("user-{i:05}")).collect();
    let keys: Vec<[u8; 32]> = {
        let store =
            KeyStore::open(db, MasterKey::from_bytes(old.expose_secret()).unwrap()).unwrap();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        store
            .get_or_create_user_keys(&refs)
            .unwrap()
            .iter()
            .map(|k| *k.expose_secret())
            .collect()
    };
    let mut child = spawn_child("rotate", db, &old, &new.to_base64());
    child.line_with("HALFWAY", Duration::from_secs(120));
    let wal = db.with_file_name("keys.db-wal");
    let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    child.kill();
    eprintln!("killed mid-rotation; WAL was {wal_len} bytes");
    assert!(
        wal_len > 0,
        "the kill should hit uncommitted pages in the WAL"
    );

    // The old master key still opens everything, with the same data keys.
    let store = KeyStore::open(db, MasterKey::from_bytes(old.expose_secret()).unwrap()).unwrap();
    assert_eq!(store.user_count().unwrap(), ids.len() as u64);
    for (id, key) in ids.iter().zip(&keys) {
        assert_eq!(
            store.get_user_key(id).unwrap().unwrap().expose_secret(),
            key
        );
    }
    assert_eq!(
        KeyStore::open(db, MasterKey::from_bytes(new.expose_secret()).unwrap()).unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    // And the rotation can be done again, to completion.
    assert_eq!(store.rotate_master_key(new).unwrap().rewrapped, ids.len());
}
