//! API key files written before schema version 2 (no `enabled`, `metadata`, tombstones):
//! upgraded in place on open, once, all or nothing, keys kept working; a file from a newer
//! keyseal is refused and left as it was.
#![cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
#![allow(missing_docs)]

use keyseal::{ApiKeys, Error, KeyUpdate, NewKey, StorageKind, VerifierKey};
use rusqlite::Connection;
use serde_json::json;

mod common;

#[path = "conformance/harness.rs"]
#[allow(dead_code)]
mod harness;

use common::temp_db::TempDb;
use harness::{config, refusal};

/// The tables as keyseal wrote them at schema version 1 (no version row).
const V1_SCHEMA: &str = "
CREATE TABLE api_keys (
    row_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id        TEXT NOT NULL UNIQUE,
    lookup        TEXT NOT NULL,
    scheme        TEXT NOT NULL,
    hash          TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    environment   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    rotated_to    TEXT,
    rate_requests INTEGER,
    rate_period_ms INTEGER,
    last_used_at  INTEGER,
    seq           INTEGER NOT NULL
);
CREATE INDEX api_keys_lookup ON api_keys(lookup);
CREATE INDEX api_keys_user ON api_keys(user_id);
CREATE INDEX api_keys_seq ON api_keys(seq);
CREATE TABLE api_key_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

const V1_COLUMNS: &str = "row_id, key_id, lookup, scheme, hash, user_id, name, scopes, \
     environment, created_at, expires_at, revoked_at, rotated_to, rate_requests, \
     rate_period_ms, last_used_at, seq";

/// A version-1 file holding two real keys (made by today's code elsewhere, rows copied).
fn v1_file() -> (TempDb, Vec<keyseal::CreatedKey>) {
    let source = TempDb::new();
    let made = {
        let keys = ApiKeys::open_with(source.path(), config()).unwrap();
        vec![
            keys.create(&NewKey::new("u", "one").scope("read")).unwrap(),
            keys.create(&NewKey::new("u", "two")).unwrap(),
        ]
    };
    let db = TempDb::new();
    let c = Connection::open(db.path()).unwrap();
    c.execute_batch(V1_SCHEMA).unwrap();
    c.execute("ATTACH ?1 AS src", [source.path().to_str().unwrap()])
        .unwrap();
    c.execute_batch(&format!(
        "INSERT INTO api_keys ({V1_COLUMNS}) SELECT {V1_COLUMNS} FROM src.api_keys; DETACH src;"
    ))
    .unwrap();
    (db, made)
}

fn columns(db: &TempDb) -> Vec<String> {
    let c = Connection::open(db.path()).unwrap();
    let mut s = c
        .prepare("SELECT name FROM pragma_table_info('api_keys') ORDER BY cid")
        .unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn version(db: &TempDb) -> Option<String> {
    Connection::open(db.path())
        .unwrap()
        .query_row(
            "SELECT value FROM api_key_meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .ok()
}

#[test]
fn a_version_1_file_is_upgraded_once_and_its_keys_keep_working() {
    let (db, made) = v1_file();
    assert!(!columns(&db).contains(&"enabled".to_string()));
    let keys = ApiKeys::open_with(db.path(), config()).unwrap();
    assert_eq!(version(&db).as_deref(), Some("4"));
    let cols = columns(&db);
    assert!(
        cols.ends_with(&[
            "enabled".into(),
            "metadata".into(),
            "verifier_tag".into(),
            "source".into(),
            "source_id".into()
        ]),
        "{cols:?}"
    );
    for k in &made {
        assert!(keys.verify(&k.key).unwrap().is_valid());
        let info = keys.info("u", &k.key_id).unwrap();
        assert!(info.enabled);
        assert!(info.metadata.is_empty());
    }
    // the new operations work on the upgraded rows
    keys.update(
        "u",
        &made[0].key_id,
        &KeyUpdate::new().metadata(json!({"a": 1})),
    )
    .unwrap();
    keys.disable("u", &made[1].key_id).unwrap();
    keys.delete("u", &made[0].key_id).unwrap();
    drop(keys);
    // opening again changes nothing (idempotent), and keeps what was written
    let before = columns(&db);
    let again = ApiKeys::open_with(db.path(), config()).unwrap();
    assert_eq!(columns(&db), before);
    assert_eq!(
        refusal(&again.verify(&made[0].key).unwrap()),
        Some("unknown")
    );
    assert_eq!(
        refusal(&again.verify(&made[1].key).unwrap()),
        Some("disabled")
    );
}

#[test]
fn a_file_from_a_newer_keyseal_is_refused_and_left_as_it_was() {
    let (db, made) = v1_file();
    Connection::open(db.path())
        .unwrap()
        .execute_batch("INSERT INTO api_key_meta (name, value) VALUES ('schema_version', '5')")
        .unwrap();
    let before = std::fs::read(db.path()).unwrap();
    match ApiKeys::open_with(db.path(), config()) {
        Err(Error::Storage { kind, .. }) => assert_eq!(kind, StorageKind::Corrupt),
        other => panic!("opened a newer file: {other:?}"),
    }
    assert_eq!(std::fs::read(db.path()).unwrap(), before);
    assert!(!columns(&db).contains(&"enabled".to_string()));
    let _ = made;
}

#[test]
fn a_version_2_file_gains_the_verifier_tag_column_and_its_keys_get_tags() {
    let db = TempDb::new();
    let made = ApiKeys::open_with(db.path(), config())
        .unwrap()
        .create(&NewKey::new("u", "one"))
        .unwrap();
    // Back to version 2: the tables as the previous release wrote them.
    Connection::open(db.path())
        .unwrap()
        .execute_batch(
            "ALTER TABLE api_keys DROP COLUMN verifier_tag;
             UPDATE api_key_meta SET value = '2' WHERE name = 'schema_version';",
        )
        .unwrap();
    assert!(!columns(&db).contains(&"verifier_tag".to_string()));
    let vk = || VerifierKey::from_bytes(&[5; 32]).unwrap();
    let keys = ApiKeys::open_with(db.path(), config().verifier_key(vk())).unwrap();
    assert_eq!(version(&db).as_deref(), Some("4"));
    assert!(columns(&db).contains(&"verifier_tag".to_string()));
    assert!(keys.verify(&made.key).unwrap().is_valid());
    assert_eq!(keyseal::testing::bcrypt_verifications(&keys), 1);
    keys.flush().unwrap();
    let fresh = ApiKeys::open_with(db.path(), config().verifier_key(vk())).unwrap();
    assert!(fresh.verify(&made.key).unwrap().is_valid());
    assert_eq!(keyseal::testing::bcrypt_verifications(&fresh), 0);
}
