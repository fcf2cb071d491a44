//! API keys: revocation of legacy keys past bcrypt's 72 bytes, the quota with rotations in
//! grace, the bcrypt cost of imported hashes.
#![cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
#![allow(missing_docs)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keyseal::{ApiKeys, ApiKeysConfig, Error, LegacyKey, NewKey};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "keyseal-issuance-limits-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir.join("keys.db"))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

fn open(db: &TempDb) -> ApiKeys {
    ApiKeys::open_with(&db.0, ApiKeysConfig::default().bcrypt_cost(4)).unwrap()
}

fn legacy_key(hash: String) -> LegacyKey {
    LegacyKey {
        prefix: "mhu_".into(),
        lookup: "LongKey0".into(),
        key_id: None,
        user_id: "u".into(),
        name: "old".into(),
        scopes: vec![],
        bcrypt_hash: hash,
        created_at: None,
        expires_at: None,
    }
}

#[test]
fn revoked_legacy_key_variants_past_byte_72_are_refused() {
    let db = TempDb::new();
    let keys = open(&db);
    let key = format!("mhu_LongKey0{}", "x".repeat(80));
    assert!(key.len() > 72);
    let mut l = legacy_key(bcrypt::hash(key.as_bytes(), 4).unwrap());
    l.key_id = Some("long".into());
    keys.import_legacy(&l).unwrap();
    // bcrypt reads 72 bytes: variants that differ after them pass, as they did in the old
    // store; each is cached under its own entry.
    let variants: Vec<String> = (0..4)
        .map(|i| format!("{}{}", &key[..80], "yz-_".repeat(i + 1)))
        .collect();
    assert!(keys.verify(&key).unwrap().is_valid());
    for v in &variants {
        assert!(keys.verify(v).unwrap().is_valid());
    }
    keys.revoke("u", "long").unwrap();
    for v in std::iter::once(&key).chain(&variants) {
        assert_eq!(
            keys.verify(v).unwrap().refusal().map(|r| r.reason()),
            Some("revoked"),
            "a cached variant outlived the revocation"
        );
    }
}

#[test]
fn chained_rotations_in_grace_count_against_the_quota() {
    let db = TempDb::new();
    let keys = open(&db); // quota 5
    let grace = Duration::from_secs(3600);
    let mut current: Vec<_> = (0..5)
        .map(|i| keys.create(&NewKey::new("u", format!("k{i}"))).unwrap())
        .collect();
    let mut made = current.clone();
    // Try to rotate every key twice with a long grace.
    for _ in 0..2 {
        for slot in &mut current {
            if let Ok(next) = keys.rotate("u", &slot.key_id, grace) {
                made.push(next.clone());
                *slot = next;
            }
        }
    }
    let valid = made
        .iter()
        .filter(|k| keys.verify(&k.key).unwrap().is_valid())
        .count();
    assert!(valid <= 6, "{valid} valid keys with a quota of 5");
    // A user at the limit can always rotate a key with no grace.
    let last = current.last().unwrap();
    keys.rotate("u", &last.key_id, Duration::ZERO).unwrap();
    // And a rotation refused for the quota says so.
    let first = current.first().unwrap();
    assert!(matches!(
        keys.rotate("u", &first.key_id, grace),
        Err(Error::QuotaExceeded { limit: 5 })
    ));
}

#[test]
fn imported_bcrypt_cost_above_16_is_refused() {
    let db = TempDb::new();
    let keys = open(&db);
    let h = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";
    for cost in ["17", "20", "31"] {
        match keys.import_legacy(&legacy_key(h.replace("$04$", &format!("${cost}$")))) {
            Err(Error::InvalidArgument { what }) => assert!(what.contains("16"), "{what}"),
            other => panic!("cost {cost}: {other:?}"),
        }
    }
    keys.import_legacy(&legacy_key(h.replace("$04$", "$16$")))
        .unwrap();
}

#[test]
fn an_old_single_format_row_is_still_read() {
    let db = TempDb::new();
    let key = "mhu_wZ4dBpC_LiIYg_nuq_EiC9QVF2A5FryiwRKe2U6uiVg";
    let mut l = legacy_key("$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC".into());
    l.lookup = "wZ4dBpC_".into();
    open(&db).import_legacy(&l).unwrap();
    // As an earlier version wrote it: one row per prefix.
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    conn.execute_batch(
        "DELETE FROM api_key_meta; INSERT INTO api_key_meta VALUES ('legacy:mhu_', '8');",
    )
    .unwrap();
    assert!(open(&db).verify(key).unwrap().is_valid());
}

/// An import is held to the same scope limit as `create` (at most 64): it used to store any
/// number of scopes.
#[test]
fn legacy_import_caps_scopes_as_create_does() {
    let db = TempDb::new();
    let keys = open(&db);
    let hash = bcrypt::hash(b"mhu_LongKey0rest-of-the-key", 4).unwrap();
    let mut l = legacy_key(hash);
    l.scopes = (0..65).map(|i| format!("s{i}")).collect();
    assert!(matches!(
        keys.import_legacy(&l),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        keys.create(&NewKey::new("u", "n").scopes(l.scopes.clone())),
        Err(Error::InvalidArgument { .. })
    ));
    l.scopes.truncate(64);
    keys.import_legacy(&l).unwrap();
}
