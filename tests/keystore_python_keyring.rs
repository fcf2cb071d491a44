//! The master keyring on a store shared with the Python module (`tests/python/keyring_step.py`
//! drives it): Python's rows have no master key id; keyseal reads them during a rolling
//! rotation, Python keeps reading what it could read, and once it is given the new key it reads
//! every row again and its new rows (under the new key) are read and rewrapped by keyseal.
//!
//! Runs when `python3` with `cryptography` is available (`make test` installs it); skipped with
//! a message otherwise, or fails if `KEYSEAL_REQUIRE_PYTHON=1`.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

mod common;

use std::path::Path;
use std::process::Command;

use common::process::python_ready;
use common::temp_db::TempDb;
use common::to_hex as hex;
use keyseal::{derive_pool_key, KeyStore, KeyStoreOptions, MasterKey, MasterKeyId, MasterKeyring};
use serde_json::Value;

fn python(db: &Path, master: &MasterKey, users: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/keyring_step.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(db)
        .arg(master.to_base64())
        .args(users)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "Python failed on {users:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn copy(m: &MasterKey) -> MasterKey {
    MasterKey::from_bytes(m.expose_secret()).unwrap()
}

#[test]
fn python_keeps_its_rows_through_a_rolling_master_rotation() {
    if !python_ready() {
        return;
    }
    let tmp = TempDb::named("shared.db");
    let db = tmp.path();
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let first = python(db, &old, &["p1", "p2", "p3"]);
    let ring = || MasterKeyring::new(copy(&new)).with_previous(copy(&old));
    let store = KeyStore::open_keyring(db, ring(), KeyStoreOptions::default()).unwrap();
    for user in ["p1", "p2", "p3"] {
        let key = store.get_user_key(user).unwrap().unwrap();
        assert_eq!(
            hex(key.expose_secret()),
            first["keys"][user].as_str().unwrap()
        );
    }
    let k1 = store.get_or_create_user_key("k1").unwrap();
    assert_eq!(
        hex(store.pool_key().unwrap().expose_secret()),
        first["pool_hex"].as_str().unwrap()
    );
    // Python, still on the old key, reads what it could read before.
    assert_eq!(python(db, &old, &["p1", "p2", "p3"])["keys"], first["keys"]);

    // Rewrap; Python is then given the new key and reads every row, keyseal's included.
    let report = store.rewrap_master_keys(2, |_| {}).unwrap();
    assert_eq!(
        (report.rewrapped, report.refused),
        (3, 0),
        "p1..p3 (pool version 1 was first stored under the new key)"
    );
    let second = python(db, &new, &["p1", "p2", "p3", "k1", "p4"]);
    for user in ["p1", "p2", "p3"] {
        assert_eq!(second["keys"][user], first["keys"][user]);
    }
    assert_eq!(
        second["keys"]["k1"].as_str().unwrap(),
        hex(k1.expose_secret())
    );
    // p4 is Python's, under the new key and without an id: the old key cannot be retired
    // until it is rewrapped (counted as the old key's, whose role it was).
    let old_id = MasterKeyId::of(&old);
    let err = store.retire_master_key(&old_id).unwrap_err();
    assert!(err.to_string().contains("still wraps 1"), "{err}");
    assert_eq!(store.rewrap_master_keys(100, |_| {}).unwrap().rewrapped, 1);
    store.retire_master_key(&old_id).unwrap();
    drop(store);

    let only_new = KeyStore::open(db, copy(&new)).unwrap();
    let p4 = only_new.get_user_key("p4").unwrap().unwrap();
    assert_eq!(
        hex(p4.expose_secret()),
        second["keys"]["p4"].as_str().unwrap()
    );
    assert_eq!(only_new.pool_key().unwrap(), derive_pool_key(&old));
    let third = python(db, &new, &["p1", "p2", "p3", "k1", "p4", "p5"]);
    for user in ["p1", "p2", "p3", "k1", "p4"] {
        assert_eq!(third["keys"][user], second["keys"][user]);
    }
    // Python's rows written after the retirement are the current key's.
    assert!(only_new.get_user_key("p5").unwrap().is_some());
}
