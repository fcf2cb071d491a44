//! API keys, whatever the backend: create and verify, every refusal, arguments, floods of
//! wrong secrets, threads and two managers on one store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyseal::{
    ApiKeysConfig, Environment, Error, KeyFormat, NewKey, RateLimit, Refusal, Verification,
};

use crate::harness::{config, fix_checksum, refusal, wrong_secret, Backend};

pub(crate) fn create_verify_and_serialize(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let created = keys
        .create(
            &NewKey::new("user-1", "CI deploy")
                .scope("read")
                .scope("write")
                .expires_in(Duration::from_secs(3600)),
        )
        .unwrap();
    assert!(created.key.starts_with("ks_live_"));
    assert_eq!(created.key.len(), "ks_live_".len() + 61);
    assert!(!format!("{created:?}").contains(&created.key));
    let json = serde_json::to_value(&created).unwrap();
    for field in [
        "key",
        "key_id",
        "user_id",
        "name",
        "scopes",
        "created_at",
        "expires_at",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
    assert_eq!(json["scopes"], serde_json::json!(["read", "write"]));
    assert!(json["expires_at"].as_str().unwrap().ends_with('Z'));

    for _ in 0..3 {
        let v = keys.verify(&created.key).unwrap();
        let Verification::Valid(ok) = &v else {
            panic!("{v:?}")
        };
        assert_eq!(&*ok.key_id, created.key_id);
        assert_eq!(&*ok.user_id, "user-1");
        assert_eq!(ok.expires_at, created.expires_at);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["valid"], true);
        assert_eq!(json["key_id"], created.key_id.as_str());
        assert_eq!(json["user_id"], "user-1");
        assert_eq!(json["scopes"], serde_json::json!(["read", "write"]));
    }
}

pub(crate) fn every_refusal_reason(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let k = keys
        .create(&NewKey::new("u", "a").rate_limit(RateLimit::per_minute(3)))
        .unwrap();
    // malformed: garbage, a typo (bad checksum), wrong tag, empty, huge
    let mut typo = k.key.clone().into_bytes();
    typo[20] = if typo[20] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::new(),
        "hello".into(),
        String::from_utf8(typo).unwrap(),
        k.key.replacen("ks_", "eg_", 1),
        k.key.replacen("_live_", "_test_", 1),
        "ks_live_".to_string() + &"é".repeat(30) + "x",
        "x".repeat(1 << 20),
    ] {
        let v = keys.verify(&bad).unwrap();
        assert_eq!(
            refusal(&v),
            Some("malformed"),
            "{}",
            &bad[..bad.len().min(40)]
        );
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!({"valid": false, "reason": "malformed"})
        );
    }
    // unknown: a well-formed key nobody issued; a wrong secret on a real key id
    let unknown = fix_checksum(&format!("ks_live_{}", "A".repeat(61)));
    assert_eq!(refusal(&keys.verify(&unknown).unwrap()), Some("unknown"));
    assert_eq!(
        refusal(&keys.verify(&wrong_secret(&k.key, 0)).unwrap()),
        Some("unknown")
    );
    // rate_limited: 3 per minute
    for _ in 0..3 {
        assert!(keys.verify(&k.key).unwrap().is_valid());
    }
    let v = keys.verify(&k.key).unwrap();
    let Some(Refusal::RateLimited { retry_after }) = v.refusal() else {
        panic!("{v:?}")
    };
    // A sliding window: the first of the 3 leaves it a minute after it was admitted.
    assert!(retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60));
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["reason"], "rate_limited");
    assert!(json["retry_after_ms"].as_u64().unwrap() > 50_000);
    // expired
    let e = keys
        .create(&NewKey::new("u", "short").expires_in(Duration::from_millis(300)))
        .unwrap();
    assert!(keys.verify(&e.key).unwrap().is_valid());
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(refusal(&keys.verify(&e.key).unwrap()), Some("expired")); // cached entry
    assert_eq!(
        refusal(&(backend.open)(db.path(), config()).verify(&e.key).unwrap()),
        Some("expired")
    ); // from storage
       // revoked
    let r = keys.create(&NewKey::new("u", "r")).unwrap();
    assert!(keys.verify(&r.key).unwrap().is_valid());
    keys.revoke("u", &r.key_id).unwrap();
    assert_eq!(refusal(&keys.verify(&r.key).unwrap()), Some("revoked"));
    assert_eq!(
        refusal(&(backend.open)(db.path(), config()).verify(&r.key).unwrap()),
        Some("revoked")
    );
    // revoking someone else's key, or a missing one
    assert!(matches!(
        keys.revoke("other", &k.key_id),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        keys.revoke("u", "nope"),
        Err(Error::NotFound { .. })
    ));
}

pub(crate) fn tags_and_environments(backend: &Backend) {
    for tag in ["ks", "mhu", "eg", "mcpkey", "mcpkey_live"] {
        let db = backend.fresh();
        let format = KeyFormat::new(tag).unwrap();
        assert!(format.scanner_regex().contains(tag));
        let keys = (backend.open)(db.path(), config().format(format));
        let live = keys.create(&NewKey::new("u", "l")).unwrap();
        let test = keys
            .create(&NewKey::new("u", "t").environment(Environment::Test))
            .unwrap();
        assert!(live.key.starts_with(&format!("{tag}_live_")));
        assert!(test.key.starts_with(&format!("{tag}_test_")));
        assert!(keys.verify(&live.key).unwrap().is_valid());
        let Verification::Valid(t) = keys.verify(&test.key).unwrap() else {
            panic!()
        };
        assert_eq!(t.environment, Environment::Test);
        // same id and secret, other marker, checksum recomputed: not this key
        let swapped = fix_checksum(&format!("{tag}_test_{}", &live.key[tag.len() + 6..]));
        assert_eq!(refusal(&keys.verify(&swapped).unwrap()), Some("unknown"));
    }
    assert!(KeyFormat::new("Bad-Tag").is_err());
}

pub(crate) fn arguments_are_checked(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    for bad in [
        NewKey::new("", "n"),
        NewKey::new("u", ""),
        NewKey::new("u", "n").scope("has space"),
        NewKey::new("u", "n").scope(""),
        NewKey::new("u\0", "n"),
        NewKey::new("x".repeat(1025), "n"),
        NewKey::new("u", "n").scopes((0..65).map(|i| format!("s{i}"))),
    ] {
        assert!(matches!(
            keys.create(&bad),
            Err(Error::InvalidArgument { .. })
        ));
    }
    assert!((backend.try_open)(db.path(), ApiKeysConfig::default().bcrypt_cost(3)).is_err());
}

/// User ids follow the key store's rule (1 to 1 024 bytes, no NUL): a user who can get a data
/// key can get an API key. API keys used to refuse spaces and ids over 256 bytes.
pub(crate) fn api_key_user_ids_follow_the_key_store_rule(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    for user in ["Ada Lovelace".to_owned(), "x".repeat(1024)] {
        let made = keys.create(&NewKey::new(user.as_str(), "n")).unwrap();
        let Verification::Valid(ok) = keys.verify(&made.key).unwrap() else {
            panic!("refused")
        };
        assert_eq!(&*ok.user_id, user);
        assert_eq!(keys.list(&user).unwrap().len(), 1);
    }
}

pub(crate) fn repeated_wrong_secret_costs_no_bcrypt_and_ids_are_throttled(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config().bcrypt_cost(8).max_failures_per_key(5));
    let k = keys.create(&NewKey::new("u", "a")).unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid());
    let wrong = wrong_secret(&k.key, 1);
    let t = Instant::now();
    assert_eq!(refusal(&keys.verify(&wrong).unwrap()), Some("unknown"));
    let first = t.elapsed();
    let t = Instant::now();
    for _ in 0..100 {
        assert_eq!(refusal(&keys.verify(&wrong).unwrap()), Some("unknown"));
    }
    let repeated = t.elapsed() / 100;
    assert!(
        repeated * 20 < first,
        "repeat {repeated:?} vs first {first:?}"
    );
    // distinct wrong secrets: after 5 failures this key id is refused without bcrypt
    for n in 2..6 {
        assert_eq!(
            refusal(&keys.verify(&wrong_secret(&k.key, n)).unwrap()),
            Some("unknown")
        );
    }
    let v = keys.verify(&wrong_secret(&k.key, 99)).unwrap();
    assert_eq!(refusal(&v), Some("rate_limited"));
    // the real key, cached, is unaffected
    assert!(keys.verify(&k.key).unwrap().is_valid());
}

pub(crate) fn threads_share_one_manager(backend: &Backend) {
    let db = backend.fresh();
    let keys = Arc::new((backend.open)(db.path(), config().max_active_keys(None)));
    let made: Vec<_> = (0..4)
        .map(|i| keys.create(&NewKey::new("u", format!("k{i}"))).unwrap())
        .collect();
    let victim = made[0].key.clone();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let keys = keys.clone();
            let mine = made[t].key.clone();
            let victim = victim.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                for i in 0..2000 {
                    if keys.verify(&mine).unwrap().is_valid() {
                        ok += 1;
                    }
                    if i % 100 == 0 {
                        let _ = keys.verify(&victim).unwrap();
                        let _ = keys.verify(&wrong_secret(&mine, i)).unwrap();
                    }
                }
                ok
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    keys.revoke("u", &made[0].key_id).unwrap();
    let counts: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for c in &counts[1..] {
        assert_eq!(*c, 2000);
    }
    assert_eq!(refusal(&keys.verify(&victim).unwrap()), Some("revoked"));
    // concurrent creation from threads respects the quota
    let db2 = backend.fresh();
    let q = Arc::new((backend.open)(db2.path(), config()));
    let ok: usize = (0..8)
        .map(|i| {
            let q = q.clone();
            std::thread::spawn(move || {
                usize::from(q.create(&NewKey::new("u", format!("{i}"))).is_ok())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(ok, 5);
}

pub(crate) fn two_instances_on_one_file(backend: &Backend) {
    let db = backend.fresh();
    let a = (backend.open)(db.path(), config());
    let b = (backend.open)(db.path(), config());
    let k = a.create(&NewKey::new("u", "x")).unwrap();
    // made by `a`, verified by `b` right away
    assert!(b.verify(&k.key).unwrap().is_valid());
    a.revoke("u", &k.key_id).unwrap();
    let t = Instant::now();
    while b.verify(&k.key).unwrap().is_valid() {
        assert!(t.elapsed() < Duration::from_secs(1), "revocation not seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(refusal(&b.verify(&k.key).unwrap()), Some("revoked"));
}

pub(crate) fn revocation_during_a_first_validation_is_not_lost(backend: &Backend) {
    for same_instance in [true, false] {
        let db = backend.fresh();
        let cfg = || {
            config()
                .bcrypt_cost(10)
                .change_check_interval(Duration::from_millis(5))
        };
        let keys = Arc::new((backend.open)(db.path(), cfg()));
        let other = (backend.open)(db.path(), cfg());
        let k = keys.create(&NewKey::new("u", "x")).unwrap();
        let key = k.key.clone();
        let verifier = {
            let keys = keys.clone();
            std::thread::spawn(move || keys.verify(&key).unwrap())
        };
        std::thread::sleep(Duration::from_millis(15)); // bcrypt at cost 10 is running
        if same_instance {
            keys.revoke("u", &k.key_id).unwrap();
        } else {
            other.revoke("u", &k.key_id).unwrap();
        }
        let _ = verifier.join().unwrap(); // either answer is fine while the race runs
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            refusal(&keys.verify(&k.key).unwrap()),
            Some("revoked"),
            "same instance: {same_instance}"
        );
    }
}
