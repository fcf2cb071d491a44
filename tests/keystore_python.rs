//! Interop in the other direction: a key store written by keyseal is read by the Python module
//! (`tests/python/api_key_encryption.py`, re-indented), which also adds a user that keyseal
//! then reads.
//!
//! Runs when `python3` with `cryptography` is available (`make test` installs it). Without it
//! the test is skipped with a message, or fails if `KEYSEAL_REQUIRE_PYTHON=1`.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

mod common;

use std::path::Path;
use std::process::Command;

use common::process::python_ready;
use common::temp_db::TempDb;
use common::to_hex as hex;
use keyseal::{decrypt, encrypt, KeyStore, MasterKey};

#[test]
fn python_module_reads_keyseal_store_and_keyseal_reads_python_rows() {
    if !python_ready() {
        return;
    }
    let tmp = TempDb::named("keyseal.db");
    let db = tmp.path();
    let master = MasterKey::generate().unwrap();
    let store = KeyStore::open(db, MasterKey::from_bytes(master.expose_secret()).unwrap()).unwrap();
    let mut ids: Vec<String> = (0..50).map(|i| format!("user-{i}")).collect();
    ids.extend(["alice@example.com", "ユーザー", "emoji 🔑", "quote'\"id"].map(String::from));
    let mut keys = serde_json::Map::new();
    let mut tokens = serde_json::Map::new();
    for id in &ids {
        let key = store.get_or_create_user_key(id).unwrap();
        keys.insert(id.clone(), hex(key.expose_secret()).into());
        tokens.insert(
            id.clone(),
            encrypt(&format!("secret of {id}"), &key).unwrap().into(),
        );
    }
    // Also after a rotation, which only keyseal can do.
    let rotated = MasterKey::generate().unwrap();
    store
        .rotate_master_key(MasterKey::from_bytes(rotated.expose_secret()).unwrap())
        .unwrap();
    let expected = serde_json::json!({
        "master_key_b64": rotated.to_base64(),
        "user_keys_hex": keys,
        "tokens": tokens,
    });
    let expected_path = tmp.dir().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_keystore.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(db)
        .arg(&expected_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "Python check failed:\n{stderr}");
    eprintln!("{stderr}");

    let reply: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let user = reply["python_user"].as_str().unwrap();
    let key = store.get_user_key(user).unwrap().expect("Python's row");
    assert_eq!(hex(key.expose_secret()), reply["key_hex"].as_str().unwrap());
    assert_eq!(
        decrypt(reply["token"].as_str().unwrap(), &key).unwrap(),
        format!("secret of {user}")
    );
    assert_eq!(store.user_count().unwrap(), ids.len() as u64 + 1);
    drop(store);
    // The file still opens with the master key, check value intact.
    let reopened = KeyStore::open(db, rotated).unwrap();
    assert_eq!(reopened.get_user_key(user).unwrap(), Some(key));
    assert!(KeyStore::open(db, master).is_err());
}
