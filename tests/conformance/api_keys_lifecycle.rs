//! API keys, whatever the backend: the quota, rotation, listing and last use, imported
//! legacy keys.

use std::time::Duration;

use keyseal::{Error, KeyStatus, LegacyKey, NewKey, Timestamp, Verification};

use crate::harness::{config, legacy_key, refusal, Backend};

#[derive(serde::Deserialize)]
struct BcryptCase {
    api_key: String,
    hash: String,
    matches: bool,
}

pub(crate) fn quota_of_active_keys(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let mut made = vec![];
    for i in 0..5 {
        made.push(keys.create(&NewKey::new("u", format!("k{i}"))).unwrap());
    }
    assert_eq!(
        keys.create(&NewKey::new("u", "six")).unwrap_err(),
        Error::QuotaExceeded { limit: 5 }
    );
    // other users are not affected
    keys.create(&NewKey::new("v", "one")).unwrap();
    // rotation at the quota is fine; the old key counts while in its grace
    keys.rotate("u", &made[0].key_id, Duration::from_secs(60))
        .unwrap();
    keys.revoke("u", &made[1].key_id).unwrap();
    assert_eq!(
        keys.create(&NewKey::new("u", "six")).unwrap_err(),
        Error::QuotaExceeded { limit: 5 }
    );
    // revoking the key in its grace frees a slot
    keys.revoke("u", &made[0].key_id).unwrap();
    keys.create(&NewKey::new("u", "six")).unwrap();
    // configurable
    let db2 = backend.fresh();
    let two = (backend.open)(db2.path(), config().max_active_keys(Some(2)));
    two.create(&NewKey::new("u", "a")).unwrap();
    two.create(&NewKey::new("u", "b")).unwrap();
    assert_eq!(
        two.create(&NewKey::new("u", "c")).unwrap_err(),
        Error::QuotaExceeded { limit: 2 }
    );
}

pub(crate) fn chained_rotations_in_grace_count_against_the_quota(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config()); // quota 5
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

pub(crate) fn rotation_with_grace(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let old = keys
        .create(
            &NewKey::new("u", "svc")
                .scopes(["a", "b"])
                .expires_in(Duration::from_secs(30 * 86_400)),
        )
        .unwrap();
    assert!(keys.verify(&old.key).unwrap().is_valid());
    let new = keys
        .rotate("u", &old.key_id, Duration::from_millis(600))
        .unwrap();
    assert_ne!(new.key_id, old.key_id);
    assert_eq!(new.name, "svc");
    assert_eq!(new.scopes, ["a", "b"]);
    let life = new.expires_at.unwrap().unix_millis() - new.created_at.unix_millis();
    assert!((life - 30 * 86_400_000).abs() < 5_000);
    // both valid during the grace period, in this process and a fresh one
    let fresh = (backend.open)(db.path(), config());
    for k in [&keys, &fresh] {
        assert!(k.verify(&old.key).unwrap().is_valid());
        assert!(k.verify(&new.key).unwrap().is_valid());
    }
    let listed = keys.list("u").unwrap();
    assert_eq!(listed.len(), 2);
    let old_info = listed.iter().find(|i| i.key_id == old.key_id).unwrap();
    assert_eq!(old_info.status, KeyStatus::Rotated);
    assert_eq!(old_info.rotated_to.as_deref(), Some(new.key_id.as_str()));
    std::thread::sleep(Duration::from_millis(700));
    for k in [&keys, &fresh] {
        assert_eq!(refusal(&k.verify(&old.key).unwrap()), Some("expired"));
        assert!(k.verify(&new.key).unwrap().is_valid());
    }
    // rotating twice, or a revoked key, is refused
    assert!(matches!(
        keys.rotate("u", &old.key_id, Duration::ZERO),
        Err(Error::InvalidArgument { .. })
    ));
    // grace 0: at once; revoked during grace: revoked
    let b = keys.rotate("u", &new.key_id, Duration::ZERO).unwrap();
    assert_eq!(refusal(&keys.verify(&new.key).unwrap()), Some("expired"));
    let c = keys
        .rotate("u", &b.key_id, Duration::from_secs(3600))
        .unwrap();
    assert!(keys.verify(&b.key).unwrap().is_valid());
    keys.revoke("u", &b.key_id).unwrap();
    assert_eq!(refusal(&keys.verify(&b.key).unwrap()), Some("revoked"));
    assert!(keys.verify(&c.key).unwrap().is_valid());
    assert!(matches!(
        keys.rotate("u", &b.key_id, Duration::ZERO),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        keys.rotate("x", &c.key_id, Duration::ZERO),
        Err(Error::NotFound { .. })
    ));
}

pub(crate) fn list_shows_metadata_only_and_last_use(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let a = keys.create(&NewKey::new("u", "a").scope("read")).unwrap();
    let b = keys.create(&NewKey::new("u", "b")).unwrap();
    keys.create(&NewKey::new("someone-else", "c")).unwrap();
    assert!(keys.verify(&a.key).unwrap().is_valid());
    let list = keys.list("u").unwrap();
    assert_eq!(list.len(), 2);
    let json = serde_json::to_string(&list).unwrap();
    assert!(!json.contains(&a.key) && !json.contains(&b.key));
    assert!(!json.contains("$2b$"));
    let ia = list.iter().find(|i| i.key_id == a.key_id).unwrap();
    assert!(ia.last_used_at.is_some(), "list flushes queued last use");
    assert_eq!(ia.status, KeyStatus::Active);
    let ib = list.iter().find(|i| i.key_id == b.key_id).unwrap();
    assert!(ib.last_used_at.is_none());
    assert!(keys.list("nobody").unwrap().is_empty());
}

pub(crate) fn last_use_is_written_at_most_once_per_interval(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let k = keys.create(&NewKey::new("u", "a")).unwrap();
    let reader = (backend.open)(db.path(), config());
    assert!(keys.verify(&k.key).unwrap().is_valid());
    keys.flush().unwrap();
    let first = reader.info("u", &k.key_id).unwrap().last_used_at.unwrap();
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..1000 {
        assert!(keys.verify(&k.key).unwrap().is_valid());
    }
    keys.flush().unwrap();
    assert_eq!(
        reader.info("u", &k.key_id).unwrap().last_used_at,
        Some(first)
    );
    // with a short interval, the next use after it is recorded
    let db2 = backend.fresh();
    let fast = (backend.open)(
        db2.path(),
        config().last_use_interval(Duration::from_millis(10)),
    );
    let k2 = fast.create(&NewKey::new("u", "a")).unwrap();
    assert!(fast.verify(&k2.key).unwrap().is_valid());
    let t1 = fast.info("u", &k2.key_id).unwrap().last_used_at.unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert!(fast.verify(&k2.key).unwrap().is_valid());
    let t2 = fast.info("u", &k2.key_id).unwrap().last_used_at.unwrap();
    assert!(t2 > t1);
    assert!(matches!(
        fast.info("u", "nope"),
        Err(Error::NotFound { .. })
    ));
}

pub(crate) fn bcrypt_vectors_from_pyca_as_imported_legacy_keys(backend: &Backend) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/python/python-interop.json"
    ))
    .unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<BcryptCase> = serde_json::from_value(all["bcrypt"].clone()).unwrap();
    assert!(cases.len() >= 12);
    for variant in ["$2a$", "$2b$", "$2y$"] {
        assert!(cases.iter().any(|c| c.hash.starts_with(variant)));
    }
    for (i, case) in cases.iter().enumerate() {
        let db = backend.fresh();
        let keys = (backend.open)(db.path(), config());
        let lookup = case.api_key["mhu_".len().."mhu_".len() + 8].to_owned();
        keys.import_legacy(&LegacyKey {
            prefix: "mhu_".into(),
            lookup,
            key_id: Some(format!("legacy-{i}")),
            user_id: "user-1".into(),
            name: "Claude Desktop".into(),
            scopes: "read write".split_whitespace().map(String::from).collect(),
            bcrypt_hash: case.hash.clone(),
            created_at: None,
            expires_at: None,
        })
        .unwrap();
        let v = keys.verify(&case.api_key).unwrap();
        assert_eq!(v.is_valid(), case.matches, "case {i}: {}", case.hash);
        if case.matches {
            let Verification::Valid(ok) = &v else {
                unreachable!()
            };
            assert_eq!(&*ok.key_id, format!("legacy-{i}"));
            assert_eq!(&*ok.scopes, ["read".to_string(), "write".to_string()]);
            // and again from the cache
            assert!(keys.verify(&case.api_key).unwrap().is_valid());
        } else {
            assert_eq!(refusal(&v), Some("unknown"));
        }
        // A new process (instance) learns the legacy format from the file.
        let other = (backend.open)(db.path(), config());
        assert_eq!(
            other.verify(&case.api_key).unwrap().is_valid(),
            case.matches
        );
    }
}

pub(crate) fn legacy_import_checks_and_expiry(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let hash = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";
    let key = "mhu_wZ4dBpC_LiIYg_nuq_EiC9QVF2A5FryiwRKe2U6uiVg";
    let mut legacy = LegacyKey {
        prefix: "mhu_".into(),
        lookup: "wZ4dBpC_".into(),
        key_id: None,
        user_id: "u".into(),
        name: "n".into(),
        scopes: vec![],
        bcrypt_hash: "$2x$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC".into(),
        created_at: None,
        expires_at: Timestamp::parse("2020-01-01T00:00:00+00:00"),
    };
    assert!(matches!(
        keys.import_legacy(&legacy),
        Err(Error::InvalidArgument { .. })
    ));
    legacy.bcrypt_hash = hash.into();
    let info = keys.import_legacy(&legacy).unwrap();
    assert!(info.legacy);
    assert_eq!(info.status, KeyStatus::Expired);
    assert_eq!(refusal(&keys.verify(key).unwrap()), Some("expired"));
    // same id twice is refused
    legacy.key_id = Some(info.key_id.clone());
    assert!(keys.import_legacy(&legacy).is_err());
    // imported keys can be rotated into native keys
    legacy.key_id = Some("live-one".into());
    legacy.expires_at = None;
    keys.import_legacy(&legacy).unwrap();
    assert!(keys.verify(key).unwrap().is_valid());
    let new = keys.rotate("u", "live-one", Duration::ZERO).unwrap();
    assert!(new.key.starts_with("ks_live_"));
    assert!(keys.verify(&new.key).unwrap().is_valid());
    assert_eq!(refusal(&keys.verify(key).unwrap()), Some("expired"));
}

pub(crate) fn revoked_legacy_key_variants_past_byte_72_are_refused(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let key = format!("mhu_LongKey0{}", "x".repeat(80));
    assert!(key.len() > 72);
    let mut l = legacy_key("mhu_", "LongKey0", bcrypt::hash(key.as_bytes(), 4).unwrap());
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

pub(crate) fn imported_bcrypt_cost_above_16_is_refused(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let h = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";
    for cost in ["17", "20", "31"] {
        match keys.import_legacy(&legacy_key(
            "mhu_",
            "LongKey0",
            h.replace("$04$", &format!("${cost}$")),
        )) {
            Err(Error::InvalidArgument { what }) => assert!(what.contains("16"), "{what}"),
            other => panic!("cost {cost}: {other:?}"),
        }
    }
    keys.import_legacy(&legacy_key("mhu_", "LongKey0", h.replace("$04$", "$16$")))
        .unwrap();
}

/// An import is held to the same scope limit as `create` (at most 64): it used to store any
/// number of scopes.
pub(crate) fn legacy_import_caps_scopes_as_create_does(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let hash = bcrypt::hash(b"mhu_LongKey0rest-of-the-key", 4).unwrap();
    let mut l = legacy_key("mhu_", "LongKey0", hash);
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
