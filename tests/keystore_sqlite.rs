//! Key store: Python seed file, wrong and corrupt keys, rotation, threads, async, busy files,
//! property tests.
#![cfg(all(feature = "keystore", not(target_arch = "wasm32")))]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::temp_db::TempDb;
use common::to_hex as hex;
use keyseal::{decrypt, encrypt, DataKey, Error, KeyStore, KeyStoreOptions, MasterKey};
use proptest::prelude::*;
use rusqlite::Connection;

fn copy_master(m: &MasterKey) -> MasterKey {
    MasterKey::from_bytes(m.expose_secret()).unwrap()
}

fn seed() -> (TempDb, MasterKey, HashMap<String, String>) {
    let tmp = TempDb::named("seed.sqlite");
    let path = tmp.path();
    std::fs::copy(common::vectors::seed_keystore_db(), path).unwrap();
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).unwrap();
    let seed = common::vectors::seed_keystore();
    let master = MasterKey::from_base64(&seed.master_key_b64).unwrap();
    (tmp, master, seed.user_keys_hex)
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn blob_of(path: &Path, user: &str) -> Vec<u8> {
    raw(path)
        .query_row(
            "SELECT encrypted_key FROM encryption_keys WHERE user_id = ?1",
            [user],
            |r| r.get(0),
        )
        .unwrap()
}

fn table_sql(path: &Path) -> Vec<(String, String)> {
    let conn = raw(path);
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Python's `encryption_keys` as `ALTER TABLE … ADD COLUMN master_key_id TEXT` leaves it.
const PYTHON_TABLE_UPGRADED: &str = "CREATE TABLE encryption_keys (\nuser_id TEXT PRIMARY KEY,\nencrypted_key BLOB NOT NULL,\ncreated_at TEXT NOT NULL\n, master_key_id TEXT)";

#[test]
fn python_seed_file_yields_its_keys() {
    let (seed_db, master, users) = seed();
    let path = seed_db.path();
    let store = KeyStore::open(path, master).unwrap();
    assert_eq!(store.user_count().unwrap(), users.len() as u64);
    for (user, expected) in &users {
        let key = store.get_user_key(user).unwrap().expect(user);
        assert_eq!(&hex(key.expose_secret()), expected, "{user}");
        assert_eq!(
            &hex(store.get_or_create_user_key(user).unwrap().expose_secret()),
            expected
        );
    }
    // Reopened (check value now present, cache cold): the same keys.
    drop(store);
    let (_seed_db, master, _) = seed();
    let store = KeyStore::open(path, master).unwrap();
    for (user, expected) in &users {
        let key = store.get_or_create_user_key(user).unwrap();
        assert_eq!(&hex(key.expose_secret()), expected, "{user}");
    }
    assert_eq!(store.user_count().unwrap(), users.len() as u64);
    // The Python table keeps its columns, plus one nullable column (the master key id), which
    // the Python module's INSERT (naming its three columns) leaves NULL; keyseal's own tables.
    let tables = table_sql(path);
    assert_eq!(
        tables[0],
        (
            "encryption_keys".to_owned(),
            PYTHON_TABLE_UPGRADED.to_owned()
        )
    );
    let names: Vec<&str> = tables.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "encryption_keys",
            "keyseal_key_versions",
            "keyseal_keystore_meta",
            "keyseal_master_keys"
        ]
    );
}

#[test]
fn new_store_has_python_schema() {
    let tmp = TempDb::named("a/b/keys.db");
    let path = tmp.path();
    let store = KeyStore::open(path, MasterKey::generate().unwrap()).unwrap();
    store.get_or_create_user_key("alice").unwrap();
    let tables = table_sql(path);
    // The same text as a file the Python module created and keyseal then opened.
    assert_eq!(tables[0].1, PYTHON_TABLE_UPGRADED);
    let created_at: String = raw(path)
        .query_row("SELECT created_at FROM encryption_keys", [], |r| r.get(0))
        .unwrap();
    assert!(
        created_at.ends_with("+00:00") && created_at.len() == 32,
        "{created_at}"
    );
    assert_eq!(blob_of(path, "alice").len(), 60);
    let mode: String = raw(path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn wrong_master_on_python_file_names_the_row_and_changes_nothing() {
    let (seed_db, _master, _) = seed();
    let path = seed_db.path();
    let before = std::fs::read(path).unwrap();
    let err = KeyStore::open(path, MasterKey::generate().unwrap()).unwrap_err();
    assert_eq!(
        err,
        Error::WrongMasterKey {
            user_id: Some("alice@example.com".into())
        }
    );
    assert!(err.to_string().contains("alice@example.com"));
    assert_eq!(std::fs::read(path).unwrap(), before, "file changed");
}

#[test]
fn python_file_with_a_damaged_first_row_still_opens() {
    let (seed_db, master, users) = seed();
    let path = seed_db.path();
    raw(path)
        .execute(
            "UPDATE encryption_keys SET encrypted_key = x'0102' WHERE user_id = 'alice@example.com'",
            [],
        )
        .unwrap();
    // The master key is checked against the first intact row.
    assert_eq!(
        KeyStore::open(path, MasterKey::generate().unwrap()).unwrap_err(),
        Error::WrongMasterKey {
            user_id: Some("ユーザー".into())
        }
    );
    let store = KeyStore::open(path, master).unwrap();
    assert_eq!(
        store
            .get_or_create_user_key("alice@example.com")
            .unwrap_err(),
        Error::CorruptKey {
            user_id: "alice@example.com".into()
        }
    );
    let key = store.get_user_key("ユーザー").unwrap().unwrap();
    assert_eq!(hex(key.expose_secret()), users["ユーザー"]);
}

#[test]
fn wrong_master_on_keyseal_file_is_refused_before_any_row() {
    let tmp = TempDb::named("keys.db");
    let path = tmp.path();
    let master = MasterKey::generate().unwrap();
    let store = KeyStore::open(path, copy_master(&master)).unwrap();
    store.get_or_create_user_keys(&["a", "b"]).unwrap();
    // Even an empty store records its master key.
    let empty = tmp.dir().join("empty.db");
    KeyStore::open(&empty, copy_master(&master)).unwrap();
    for p in [path, empty.as_path()] {
        let err = KeyStore::open(p, MasterKey::generate().unwrap()).unwrap_err();
        assert_eq!(err, Error::WrongMasterKey { user_id: None });
        assert_eq!(err.code(), "wrong_master_key");
    }
    assert_eq!(store.user_count().unwrap(), 2);
    KeyStore::open(&empty, master).unwrap();
}

#[test]
fn corrupt_and_foreign_rows_are_errors_never_new_keys() {
    let tmp = TempDb::named("keys.db");
    let path = tmp.path();
    let master = MasterKey::generate().unwrap();
    let store = KeyStore::open(path, copy_master(&master)).unwrap();
    store
        .get_or_create_user_keys(&["first", "short", "flipped", "text"])
        .unwrap();
    drop(store);
    let conn = raw(path);
    let mut flipped = blob_of(path, "flipped");
    flipped[20] ^= 1;
    conn.execute(
        "UPDATE encryption_keys SET encrypted_key = ?1 WHERE user_id = 'flipped'",
        [&flipped],
    )
    .unwrap();
    conn.execute(
        "UPDATE encryption_keys SET encrypted_key = substr(encrypted_key, 1, 27) WHERE user_id = 'short'",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE encryption_keys SET encrypted_key = 'not a key' WHERE user_id = 'text'",
        [],
    )
    .unwrap();
    let short_before = blob_of(path, "short");
    let store = KeyStore::open(path, master).unwrap();
    assert_eq!(
        store.get_or_create_user_key("short").unwrap_err(),
        Error::CorruptKey {
            user_id: "short".into()
        }
    );
    assert_eq!(
        store.get_or_create_user_key("text").unwrap_err().code(),
        "corrupt_key"
    );
    assert_eq!(
        store.get_or_create_user_key("flipped").unwrap_err(),
        Error::WrongMasterKey {
            user_id: Some("flipped".into())
        }
    );
    assert!(store.get_user_key("flipped").is_err());
    assert!(store.get_or_create_user_keys(&["new", "short"]).is_err());
    assert_eq!(blob_of(path, "short"), short_before, "row overwritten");
    assert_eq!(blob_of(path, "flipped"), flipped, "row overwritten");
    assert!(store.get_or_create_user_key("first").is_ok());
}

#[test]
fn rotation_keeps_data_keys_and_tokens() {
    let tmp = TempDb::named("keys.db");
    let path = tmp.path();
    let old = MasterKey::generate().unwrap();
    let new = MasterKey::generate().unwrap();
    let store = KeyStore::open(path, copy_master(&old)).unwrap();
    let ids: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let keys = store.get_or_create_user_keys(&refs).unwrap();
    let tokens: Vec<String> = keys.iter().map(|k| encrypt("secret", k).unwrap()).collect();
    let blobs_before = blob_of(path, "user-7");
    let report = store.rotate_master_key(copy_master(&new)).unwrap();
    assert_eq!(report.rewrapped, 1000);
    assert_ne!(blob_of(path, "user-7"), blobs_before);
    // This store (cache and new rows) and a fresh one with the new key agree.
    store.get_or_create_user_key("after-rotation").unwrap();
    let fresh = KeyStore::open(path, copy_master(&new)).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let key = fresh.get_or_create_user_key(id).unwrap();
        assert_eq!(key, keys[i]);
        assert_eq!(decrypt(&tokens[i], &key).unwrap(), "secret");
    }
    assert_eq!(
        fresh.get_user_key("after-rotation").unwrap(),
        store.get_user_key("after-rotation").unwrap()
    );
    // The pool key is kept across the rotation: pool tokens made before still decrypt.
    assert_eq!(store.pool_key().unwrap(), keyseal::derive_pool_key(&old));
    assert_eq!(
        KeyStore::open(path, old).unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    // Rotating back and forth is fine.
    let third = MasterKey::generate().unwrap();
    assert_eq!(fresh.rotate_master_key(third).unwrap().rewrapped, 1001);
}

#[test]
fn rotation_failure_changes_nothing() {
    let tmp = TempDb::named("keys.db");
    let path = tmp.path();
    let master = MasterKey::generate().unwrap();
    let store = KeyStore::open(path, copy_master(&master)).unwrap();
    store.get_or_create_user_keys(&["a", "b", "c"]).unwrap();
    raw(path)
        .execute(
            "UPDATE encryption_keys SET encrypted_key = x'00' WHERE user_id = 'c'",
            [],
        )
        .unwrap();
    let a_before = blob_of(path, "a");
    let err = store
        .rotate_master_key(MasterKey::generate().unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        Error::CorruptKey {
            user_id: "c".into()
        }
    );
    assert_eq!(blob_of(path, "a"), a_before);
    drop(store);
    let store = KeyStore::open(path, master).unwrap();
    assert!(store.get_or_create_user_key("a").is_ok());
}

#[test]
fn in_memory_databases_are_refused() {
    assert_eq!(
        KeyStore::open(":memory:", MasterKey::generate().unwrap())
            .unwrap_err()
            .code(),
        "invalid_argument"
    );
}

#[test]
fn busy_database_fails_within_the_timeout_then_recovers() {
    let tmp = TempDb::named("keys.db");
    let path = tmp.path();
    let store = KeyStore::open_with(
        path,
        MasterKey::generate().unwrap(),
        KeyStoreOptions::default()
            .busy_timeout(Duration::from_millis(300))
            .cache_capacity(0),
    )
    .unwrap();
    store.get_or_create_user_key("existing").unwrap();
    let blocker = raw(path);
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let start = Instant::now();
    let err = store.get_or_create_user_key("new").unwrap_err();
    let waited = start.elapsed();
    assert_eq!(err.code(), "storage");
    assert!(err.to_string().contains("busy"), "{err}");
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // Readers are not blocked by a writer (WAL).
    assert!(store.get_user_key("existing").unwrap().is_some());
    blocker.execute_batch("COMMIT").unwrap();
    store.get_or_create_user_key("new").unwrap();
}

#[test]
fn a_writer_holding_the_lock_briefly_is_waited_for() {
    let tmp = TempDb::named("keys.db");
    let path = tmp.path();
    let store = KeyStore::open(path, MasterKey::generate().unwrap()).unwrap();
    let blocker = raw(path);
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        blocker.execute_batch("COMMIT").unwrap();
    });
    store.get_or_create_user_key("patient").unwrap();
    release.join().unwrap();
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn async_variant_runs_off_thread_and_agrees() {
    let tmp = TempDb::new();
    let store = KeyStore::open(tmp.dir().join("k.db"), MasterKey::generate().unwrap()).unwrap();
    let futures: Vec<_> = (0..50)
        .map(|i| store.get_or_create_user_key_async(&format!("u{}", i % 10)))
        .collect();
    let keys: Vec<DataKey> = futures.into_iter().map(|f| block_on(f).unwrap()).collect();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            key,
            &store
                .get_or_create_user_key(&format!("u{}", i % 10))
                .unwrap()
        );
    }
    assert_eq!(store.user_count().unwrap(), 10);
    assert_eq!(
        block_on(store.get_or_create_user_key_async(""))
            .unwrap_err()
            .code(),
        "invalid_argument"
    );
    assert!(block_on(store.get_user_key_async("nobody"))
        .unwrap()
        .is_none());
    let report = block_on(store.rotate_master_key_async(MasterKey::generate().unwrap())).unwrap();
    assert_eq!(report.rewrapped, 10);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any valid user ids: keys survive a reopen (cold cache) and a rotation, one row each.
    #[test]
    fn keys_survive_reopen_and_rotation(ids in proptest::collection::vec("[^\u{0}]{1,40}", 1..12)) {
        let tmp = TempDb::named("p.db");
        let path = tmp.path();
        let master = MasterKey::generate().unwrap();
        let store = KeyStore::open(path, copy_master(&master)).unwrap();
        let keys: Vec<DataKey> = ids.iter().map(|id| store.get_or_create_user_key(id).unwrap()).collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        prop_assert_eq!(store.user_count().unwrap(), distinct.len() as u64);
        let new = MasterKey::generate().unwrap();
        store.rotate_master_key(copy_master(&new)).unwrap();
        drop(store);
        let store = KeyStore::open(path, new).unwrap();
        for (id, key) in ids.iter().zip(&keys) {
            prop_assert_eq!(&store.get_user_key(id).unwrap().unwrap(), key);
        }
    }

    /// Any damage to a stored blob is an error (corrupt or wrong key), never another key.
    #[test]
    fn damaged_blobs_are_errors(cut in 0usize..70, flip in 0usize..60, extra in proptest::collection::vec(any::<u8>(), 0..4)) {
        let tmp = TempDb::named("p.db");
        let path = tmp.path();
        let master = MasterKey::generate().unwrap();
        let store = KeyStore::open(path, copy_master(&master)).unwrap();
        store.get_or_create_user_key("anchor").unwrap();
        store.get_or_create_user_key("victim").unwrap();
        drop(store);
        let mut blob = blob_of(path, "victim");
        blob[flip] ^= 0x80;
        blob.truncate(cut);
        blob.extend_from_slice(&extra);
        raw(path).execute("UPDATE encryption_keys SET encrypted_key = ?1 WHERE user_id = 'victim'", [&blob]).unwrap();
        let store = KeyStore::open(path, master).unwrap();
        let err = store.get_or_create_user_key("victim").unwrap_err();
        prop_assert!(matches!(err.code(), "corrupt_key" | "wrong_master_key"), "{err}");
        prop_assert_eq!(blob_of(path, "victim"), blob);
    }
}
