//! API key issuance: vectors, every refusal, rotation, revocation across threads and processes.
#![cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
#![allow(missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyseal::{
    ApiKeys, ApiKeysConfig, Environment, Error, KeyFormat, KeyStatus, LegacyKey, NewKey, RateLimit,
    Refusal, Timestamp, Verification,
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh database path under the system temp dir (removed on drop).
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "keyseal-issuance-{}-{}",
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

fn config() -> ApiKeysConfig {
    ApiKeysConfig::default().bcrypt_cost(4)
}

fn open(db: &TempDb) -> ApiKeys {
    ApiKeys::open_with(&db.0, config()).unwrap()
}

fn refusal(v: &Verification) -> Option<&'static str> {
    v.refusal().map(|r| r.reason())
}

// --- a copy of the key format's checksum, to forge well-formed keys in tests -----------------

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// `key` with its last 6 characters replaced by a correct checksum.
fn fix_checksum(key: &str) -> String {
    let body = &key[..key.len() - 6];
    let mut v = crc32(body.as_bytes());
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
    format!("{body}{}", std::str::from_utf8(&sum).unwrap())
}

/// Same key id, a different secret, valid checksum.
fn wrong_secret(key: &str, n: usize) -> String {
    let mut b = key.as_bytes().to_vec();
    let secret_at = b.len() - 6 - 43;
    let i = secret_at + (n % 43);
    b[i] = if b[i] == b'x' { b'y' } else { b'x' };
    let j = secret_at + ((n / 43) % 43);
    if j != i {
        b[j] = if b[j] == b'q' { b'r' } else { b'q' };
    }
    fix_checksum(std::str::from_utf8(&b).unwrap())
}

// --- vectors ---------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct BcryptCase {
    api_key: String,
    hash: String,
    matches: bool,
}

#[test]
fn bcrypt_vectors_from_pyca_as_imported_seed_004_keys() {
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
        let db = TempDb::new();
        let keys = open(&db);
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
        let other = open(&db);
        assert_eq!(
            other.verify(&case.api_key).unwrap().is_valid(),
            case.matches
        );
    }
}

#[test]
fn legacy_import_checks_and_expiry() {
    let db = TempDb::new();
    let keys = open(&db);
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

// --- create, verify, refusals ------------------------------------------------------------------

#[test]
fn create_verify_and_serialize() {
    let db = TempDb::new();
    let keys = open(&db);
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
    // the database never holds the key, nor anything bcrypt-able without it
    drop(keys);
    let raw = std::fs::read(&db.0).unwrap();
    let hay = String::from_utf8_lossy(&raw);
    assert!(!hay.contains(&created.key));
    assert!(!hay.contains(&created.key[8 + 12..8 + 12 + 43]));
}

#[test]
fn every_refusal_reason() {
    let db = TempDb::new();
    let keys = open(&db);
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
    assert!(retry_after > Duration::from_secs(10) && retry_after <= Duration::from_secs(20));
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["reason"], "rate_limited");
    assert!(json["retry_after_ms"].as_u64().unwrap() > 10_000);
    // expired
    let e = keys
        .create(&NewKey::new("u", "short").expires_in(Duration::from_millis(300)))
        .unwrap();
    assert!(keys.verify(&e.key).unwrap().is_valid());
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(refusal(&keys.verify(&e.key).unwrap()), Some("expired")); // cached entry
    assert_eq!(refusal(&open(&db).verify(&e.key).unwrap()), Some("expired")); // from storage
                                                                              // revoked
    let r = keys.create(&NewKey::new("u", "r")).unwrap();
    assert!(keys.verify(&r.key).unwrap().is_valid());
    keys.revoke("u", &r.key_id).unwrap();
    assert_eq!(refusal(&keys.verify(&r.key).unwrap()), Some("revoked"));
    assert_eq!(refusal(&open(&db).verify(&r.key).unwrap()), Some("revoked"));
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

#[test]
fn tags_and_environments() {
    for tag in ["ks", "mhu", "eg", "mcpkey", "mcpkey_live"] {
        let db = TempDb::new();
        let format = KeyFormat::new(tag).unwrap();
        assert!(format.scanner_regex().contains(tag));
        let keys = ApiKeys::open_with(&db.0, config().format(format)).unwrap();
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

#[test]
fn arguments_are_checked() {
    let db = TempDb::new();
    let keys = open(&db);
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
    assert!(ApiKeys::open_with(&db.0, ApiKeysConfig::default().bcrypt_cost(3)).is_err());
}

/// User ids follow the key store's rule (1 to 1 024 bytes, no NUL): a user who can get a data
/// key can get an API key. API keys used to refuse spaces and ids over 256 bytes.
#[test]
fn api_key_user_ids_follow_the_key_store_rule() {
    let db = TempDb::new();
    let keys = open(&db);
    for user in ["Ada Lovelace".to_owned(), "x".repeat(1024)] {
        let made = keys.create(&NewKey::new(user.as_str(), "n")).unwrap();
        let Verification::Valid(ok) = keys.verify(&made.key).unwrap() else {
            panic!("refused")
        };
        assert_eq!(&*ok.user_id, user);
        assert_eq!(keys.list(&user).unwrap().len(), 1);
    }
}

// --- quota, rotation, list ----------------------------------------------------------------------

#[test]
fn quota_of_active_keys() {
    let db = TempDb::new();
    let keys = open(&db);
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
    let db2 = TempDb::new();
    let two = ApiKeys::open_with(&db2.0, config().max_active_keys(Some(2))).unwrap();
    two.create(&NewKey::new("u", "a")).unwrap();
    two.create(&NewKey::new("u", "b")).unwrap();
    assert_eq!(
        two.create(&NewKey::new("u", "c")).unwrap_err(),
        Error::QuotaExceeded { limit: 2 }
    );
}

#[test]
fn rotation_with_grace() {
    let db = TempDb::new();
    let keys = open(&db);
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
    let fresh = open(&db);
    for k in [&keys, &fresh] {
        assert!(k.verify(&old.key).unwrap().is_valid());
        assert!(k.verify(&new.key).unwrap().is_valid());
    }
    let listed = keys.list("u").unwrap();
    assert_eq!(listed.len(), 2);
    let old_info = listed.iter().find(|i| i.key_id == old.key_id).unwrap();
    assert_eq!(old_info.status, KeyStatus::Rotating);
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

#[test]
fn list_shows_metadata_only_and_last_use() {
    let db = TempDb::new();
    let keys = open(&db);
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

// --- flood resistance ---------------------------------------------------------------------------

#[test]
fn repeated_wrong_secret_costs_no_bcrypt_and_ids_are_throttled() {
    let db = TempDb::new();
    let keys = ApiKeys::open_with(&db.0, config().bcrypt_cost(8).max_failures_per_key(5)).unwrap();
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

// --- threads -------------------------------------------------------------------------------------

#[test]
fn threads_share_one_manager() {
    let db = TempDb::new();
    let keys = Arc::new(ApiKeys::open_with(&db.0, config().max_active_keys(None)).unwrap());
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
    let db2 = TempDb::new();
    let q = Arc::new(open(&db2));
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

#[test]
fn two_instances_on_one_file() {
    let db = TempDb::new();
    let a = open(&db);
    let b = open(&db);
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
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_watcher",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &db.0)
        .env(CHILD_KEY, &k.key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_child_line = || loop {
        let line = lines.next().expect("child output").unwrap();
        if let Some(at) = line.find("CHILD ") {
            return line[at + "CHILD ".len()..].to_owned();
        }
    };
    assert_eq!(next_child_line(), "ready");
    std::thread::sleep(Duration::from_millis(300)); // the child's cache is warm
    keys.revoke("u", &k.key_id).unwrap();
    let t = Instant::now();
    assert_eq!(next_child_line(), "refused revoked");
    let latency = t.elapsed();
    assert!(child.wait().unwrap().success());
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    eprintln!("revocation seen by the other process after {latency:?}");
}

#[test]
fn shares_the_file_with_the_key_store_without_touching_it() {
    let db = TempDb::new();
    {
        let conn = rusqlite::Connection::open(&db.0).unwrap();
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
    let conn = rusqlite::Connection::open(&db.0).unwrap();
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

#[test]
fn last_use_is_written_at_most_once_per_interval() {
    let db = TempDb::new();
    let keys = open(&db);
    let k = keys.create(&NewKey::new("u", "a")).unwrap();
    let reader = open(&db);
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
    let db2 = TempDb::new();
    let fast = ApiKeys::open_with(
        &db2.0,
        config().last_use_interval(Duration::from_millis(10)),
    )
    .unwrap();
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

#[test]
fn revocation_during_a_first_validation_is_not_lost() {
    for same_instance in [true, false] {
        let db = TempDb::new();
        let cfg = || {
            config()
                .bcrypt_cost(10)
                .change_check_interval(Duration::from_millis(5))
        };
        let keys = Arc::new(ApiKeys::open_with(&db.0, cfg()).unwrap());
        let other = ApiKeys::open_with(&db.0, cfg()).unwrap();
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

#[cfg(feature = "keystore")]
#[test]
fn works_next_to_the_real_key_store_in_one_file() {
    use keyseal::{KeyStore, MasterKey};
    let db = TempDb::new();
    let master = MasterKey::generate().unwrap();
    let store = KeyStore::open(
        &db.0,
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
    let store = KeyStore::open(&db.0, master).unwrap();
    assert_eq!(
        store
            .get_or_create_user_key("alice")
            .unwrap()
            .expose_secret(),
        before.expose_secret()
    );
    assert!(open(&db).verify(&k.key).unwrap().is_valid());
}
