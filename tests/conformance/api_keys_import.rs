//! Keys imported without reissuing: idempotent imports that follow upstream changes, and
//! keys without a stored lookup upgraded at their first verification.

use std::fmt::Write as _;
use std::time::Duration;

use keyseal::testing::bcrypt_verifications;
use keyseal::{
    ApiKeys, Error, ImportOptions, ImportedKey, KeyStatus, ListFilter, RateLimit, Refusal,
    Timestamp, Verification,
};

use crate::harness::{config, Backend};

/// An `eg_` key as the PostgreSQL system makes them (`eg_` + 40 hex digits), from `seed`.
fn eg_key(seed: u32) -> String {
    let mut hex = String::new();
    let mut x = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while hex.len() < 40 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = write!(hex, "{x:016x}");
    }
    hex.truncate(40);
    format!("eg_{hex}")
}

fn imported(seed: u32, key: &str) -> ImportedKey {
    ImportedKey {
        source_id: Some(seed.to_string()),
        user_id: format!("client-{seed}"),
        name: format!("client {seed}"),
        scopes: vec!["chat".into(), "history".into()],
        tag: "eg".into(),
        lookup: None,
        bcrypt_hash: bcrypt::hash(key.as_bytes(), 4).unwrap(),
        expires_at: None,
        enabled: true,
        created_at: Some(Timestamp::from_unix_millis(1_700_000_000_000)),
        // The most recently used first in the scan: later seeds were used more recently.
        last_used_at: Some(Timestamp::from_unix_millis(
            1_700_000_000_000 + i64::from(seed) * 1000,
        )),
        rate_limit: Some(RateLimit::per_minute(100)),
    }
}

fn batch(n: u32) -> (Vec<String>, Vec<ImportedKey>) {
    let keys: Vec<String> = (0..n).map(eg_key).collect();
    let imports = keys
        .iter()
        .enumerate()
        .map(|(i, k)| imported(u32::try_from(i).unwrap(), k))
        .collect();
    (keys, imports)
}

fn complete(source: &str) -> ImportOptions {
    let mut o = ImportOptions::new(source);
    o.complete = true;
    o
}

fn all_keys(keys: &ApiKeys) -> Vec<keyseal::KeyInfo> {
    keys.list_page(&ListFilter::all().limit(1000)).unwrap().keys
}

fn reason(v: &Verification) -> &'static str {
    v.refusal().map_or("valid", |r| r.reason())
}

/// The first verification of a key imported without a lookup checks the pending keys of its
/// tag (at most one bcrypt each), records a derived lookup, and from then on the key costs
/// any process one indexed read and one bcrypt, then nothing; a wrong key costs the scan
/// once, nothing when repeated, and nothing at all once every key of the tag is upgraded.
pub(crate) fn keys_without_a_lookup_are_upgraded_at_first_use(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let (plain, imports) = batch(12);
    let report = keys.import_keys(&imports, &complete("egregore")).unwrap();
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (12, 0, 0)
    );
    let counts = keys.key_counts().unwrap();
    assert_eq!((counts.imported, counts.upgraded), (12, 0));

    // The most recently used key is first in the scan: one bcrypt.
    let before = bcrypt_verifications(&keys);
    let v = keys.verify(&plain[11]).unwrap();
    assert!(v.is_valid(), "{v:?}");
    assert_eq!(bcrypt_verifications(&keys) - before, 1);
    // The least recently used: at most one bcrypt per pending key (11 left).
    let before = bcrypt_verifications(&keys);
    assert!(keys.verify(&plain[0]).unwrap().is_valid());
    let spent = bcrypt_verifications(&keys) - before;
    assert!((1..=11).contains(&spent), "{spent}");
    // Cached now: no bcrypt, whatever the number of calls.
    let before = bcrypt_verifications(&keys);
    for _ in 0..20 {
        assert!(keys.verify(&plain[0]).unwrap().is_valid());
    }
    assert_eq!(bcrypt_verifications(&keys), before);
    let counts = keys.key_counts().unwrap();
    assert_eq!((counts.imported, counts.upgraded), (12, 2));
    let listed = all_keys(&keys);
    let upgraded: Vec<_> = listed
        .iter()
        .filter(|k| k.imported.as_ref().is_some_and(|i| i.upgraded))
        .map(|k| k.user_id.as_str())
        .collect();
    assert_eq!(upgraded.len(), 2, "{upgraded:?}");
    assert!(upgraded.contains(&"client-0") && upgraded.contains(&"client-11"));

    // Another process: the upgraded key is one indexed read and one bcrypt, no scan.
    let other = (backend.open)(db.path(), config());
    let before = bcrypt_verifications(&other);
    assert!(other.verify(&plain[0]).unwrap().is_valid());
    assert_eq!(bcrypt_verifications(&other) - before, 1);

    // A wrong key: the scan once (10 keys still pending), then nothing.
    let wrong = eg_key(999);
    let before = bcrypt_verifications(&keys);
    assert_eq!(reason(&keys.verify(&wrong).unwrap()), "unknown");
    assert_eq!(bcrypt_verifications(&keys) - before, 10);
    let before = bcrypt_verifications(&keys);
    for _ in 0..5 {
        assert_eq!(reason(&keys.verify(&wrong).unwrap()), "unknown");
    }
    assert_eq!(bcrypt_verifications(&keys), before);

    // Every key upgraded: a new wrong key costs no bcrypt.
    for k in &plain {
        assert!(keys.verify(k).unwrap().is_valid());
    }
    assert_eq!(keys.key_counts().unwrap().upgraded, 12);
    let before = bcrypt_verifications(&keys);
    assert_eq!(reason(&keys.verify(&eg_key(1000)).unwrap()), "unknown");
    assert_eq!(bcrypt_verifications(&keys), before);
    // Not the shape of the tag's keys: malformed, as before.
    assert_eq!(reason(&keys.verify("eg_short").unwrap()), "malformed");
}

/// Owner, name, scopes, expiry, enabled state, rate limit, creation and last use come along.
pub(crate) fn imported_keys_keep_their_fields(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let (plain, mut imports) = batch(3);
    imports[1].enabled = false;
    imports[2].expires_at = Some(Timestamp::from_unix_millis(1_000));
    imports[0].rate_limit = Some(RateLimit::per_minute(2));
    keys.import_keys(&imports, &ImportOptions::new("egregore"))
        .unwrap();
    let info = keys
        .list(&imports[0].user_id)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(info.name, "client 0");
    assert_eq!(info.scopes, ["chat", "history"]);
    assert_eq!(
        info.created_at,
        Timestamp::from_unix_millis(1_700_000_000_000)
    );
    assert_eq!(info.last_used_at, imports[0].last_used_at);
    assert_eq!(info.rate_limit, Some(RateLimit::per_minute(2)));
    let from = info.imported.unwrap();
    assert_eq!(
        (from.source.as_str(), from.source_id.as_str()),
        ("egregore", "0")
    );
    assert!(!from.upgraded);
    let v = keys.verify(&plain[0]).unwrap();
    let Verification::Valid(ok) = v else {
        panic!("{v:?}")
    };
    assert_eq!(&*ok.user_id, "client-0");
    assert!(keys.verify(&plain[0]).unwrap().is_valid());
    assert!(matches!(
        keys.verify(&plain[0]).unwrap(),
        Verification::Refused(Refusal::RateLimited { .. })
    ));
    // Disabled: said once the secret is proven.
    assert_eq!(reason(&keys.verify(&plain[1]).unwrap()), "disabled");
    let status: Vec<KeyStatus> = all_keys(&keys).iter().map(|k| k.status).collect();
    assert!(status.contains(&KeyStatus::Expired) && status.contains(&KeyStatus::Disabled));
    // Expired keys are left out of the scan: refused (as unknown), for no bcrypt.
    let before = bcrypt_verifications(&keys);
    assert!(!keys.verify(&plain[2]).unwrap().is_valid());
    assert_eq!(bcrypt_verifications(&keys), before);
}

/// Re-running an import changes nothing; upstream changes are followed (disabled, expiry,
/// scopes, a regenerated key, a key deleted upstream), never duplicated; a dry run counts
/// and writes nothing.
pub(crate) fn reimports_are_idempotent_and_follow_upstream(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config().change_check_interval(Duration::ZERO));
    let (plain, mut imports) = batch(5);
    keys.import_keys(&imports, &complete("egregore")).unwrap();
    assert!(keys.verify(&plain[1]).unwrap().is_valid());
    let again = keys.import_keys(&imports, &complete("egregore")).unwrap();
    assert_eq!(
        (again.created, again.updated, again.unchanged, again.deleted),
        (0, 0, 5, 0)
    );
    assert_eq!(all_keys(&keys).len(), 5);

    imports[1].enabled = false;
    imports[2].scopes = vec!["chat".into()];
    let new_key = eg_key(77);
    imports[3].bcrypt_hash = bcrypt::hash(new_key.as_bytes(), 4).unwrap();
    let gone = imports.pop().unwrap();
    let mut dry = complete("egregore");
    dry.dry_run = true;
    let counted = keys.import_keys(&imports, &dry).unwrap();
    assert_eq!(
        (counted.updated, counted.deleted, counted.unchanged),
        (3, 1, 1)
    );
    assert!(counted.dry_run);
    assert!(
        keys.verify(&plain[1]).unwrap().is_valid(),
        "a dry run changed something"
    );
    assert_eq!(all_keys(&keys).len(), 5);

    let done = keys.import_keys(&imports, &complete("egregore")).unwrap();
    assert_eq!(
        (done.updated, done.deleted, done.unchanged, done.created),
        (3, 1, 1, 0)
    );
    assert_eq!(all_keys(&keys).len(), 4);
    assert_eq!(reason(&keys.verify(&plain[1]).unwrap()), "disabled");
    assert_eq!(reason(&keys.verify(&plain[3]).unwrap()), "unknown");
    assert!(keys.verify(&new_key).unwrap().is_valid());
    assert_eq!(reason(&keys.verify(&plain[4]).unwrap()), "unknown");
    let scoped = keys.list(&imports[2].user_id).unwrap();
    assert_eq!(scoped[0].scopes, ["chat"]);
    assert!(gone.source_id.is_some());
    // Another source's keys are left alone by a complete import of this one.
    let mut mine = imported(500, &eg_key(500));
    mine.tag = "eg".into();
    keys.import_keys(&[mine], &complete("jsonl")).unwrap();
    keys.import_keys(&imports, &complete("egregore")).unwrap();
    assert_eq!(all_keys(&keys).len(), 5);
    // Without a source id the hash identifies the key.
    let mut anonymous = imported(600, &eg_key(600));
    anonymous.source_id = None;
    for _ in 0..2 {
        keys.import_keys(
            std::slice::from_ref(&anonymous),
            &ImportOptions::new("file"),
        )
        .unwrap();
    }
    assert_eq!(all_keys(&keys).len(), 6);
}

/// A bad key anywhere in the input refuses the whole import, naming it; nothing is written.
pub(crate) fn bad_import_input_changes_nothing(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let (_, imports) = batch(3);
    let mut cases: Vec<(Vec<ImportedKey>, &str)> = Vec::new();
    let mut bad_hash = imports.clone();
    bad_hash[2].bcrypt_hash = "not a hash".into();
    cases.push((bad_hash, "imported key 2 (source id 2)"));
    let mut twice = imports.clone();
    twice[1].source_id = Some("0".into());
    cases.push((twice, "given twice"));
    let mut bad_tag = imports.clone();
    bad_tag[0].tag = "e g".into();
    cases.push((bad_tag, "tag"));
    let mut bad_user = imports.clone();
    bad_user[1].user_id = String::new();
    cases.push((bad_user, "imported key 1"));
    let mut bad_lookup = imports.clone();
    bad_lookup[0].lookup = Some("a b".into());
    cases.push((bad_lookup, "lookup"));
    for (input, says) in cases {
        match keys.import_keys(&input, &ImportOptions::new("egregore")) {
            Err(Error::InvalidArgument { what }) => {
                assert!(what.contains(says), "{what:?} should say {says:?}");
                assert!(
                    !imports.iter().any(|k| what.contains(&k.bcrypt_hash)),
                    "a hash in an error: {what}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        keys.import_keys(&imports, &ImportOptions::new("two words")),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(all_keys(&keys).is_empty());
}

/// Keys imported with their stored lookup (the `SQLite` system's 8-character prefix) are found
/// by it at once: one bcrypt, no scan.
pub(crate) fn keys_with_a_stored_lookup_need_no_upgrade(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let plain: Vec<String> = (0..4)
        .map(|i| format!("mhu_Look{i:04}{}", "x".repeat(35)))
        .collect();
    let imports: Vec<ImportedKey> = plain
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut key = imported(u32::try_from(i).unwrap(), k);
            key.tag = "mhu".into();
            key.lookup = Some(k[4..12].to_owned());
            key
        })
        .collect();
    keys.import_keys(&imports, &complete("jsonl")).unwrap();
    let counts = keys.key_counts().unwrap();
    assert_eq!((counts.imported, counts.upgraded), (4, 4));
    let before = bcrypt_verifications(&keys);
    assert!(keys.verify(&plain[0]).unwrap().is_valid());
    assert_eq!(bcrypt_verifications(&keys) - before, 1);
}

/// The scan is bounded by `max_upgrade_scan`: the least recently used keys past it wait
/// until others are upgraded (each upgrade leaves the scan).
pub(crate) fn the_upgrade_scan_is_bounded(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config().max_upgrade_scan(3));
    let (plain, imports) = batch(5);
    keys.import_keys(&imports, &complete("egregore")).unwrap();
    // plain[0] is the least recently used: 4 keys come before it.
    let before = bcrypt_verifications(&keys);
    assert_eq!(reason(&keys.verify(&plain[0]).unwrap()), "unknown");
    assert_eq!(bcrypt_verifications(&keys) - before, 3);
    for k in &plain[3..] {
        assert!(keys.verify(k).unwrap().is_valid());
    }
    // A fresh process (no memory of the failure): now within the bound.
    let other = (backend.open)(db.path(), config().max_upgrade_scan(3));
    assert!(other.verify(&plain[0]).unwrap().is_valid());
    let off = (backend.open)(db.path(), config().max_upgrade_scan(0));
    let before = bcrypt_verifications(&off);
    assert_eq!(reason(&off.verify(&plain[1]).unwrap()), "unknown");
    assert_eq!(bcrypt_verifications(&off), before);
}

/// Defect: a key presented before its import (a cutover: the new servers answer while the
/// import is re-run) was remembered as wrong by the pending scan, and that memory outlived
/// the import: the key, now imported, was refused as `unknown` for ten minutes, whether the
/// import ran in this process or in another one.
pub(crate) fn a_key_refused_before_its_import_is_valid_once_imported(backend: &Backend) {
    let db = backend.fresh();
    let cfg = || config().change_check_interval(Duration::ZERO);
    let keys = (backend.open)(db.path(), cfg());
    let (_, imports) = batch(3);
    keys.import_keys(&imports, &ImportOptions::new("egregore"))
        .unwrap();
    let (late, elsewhere) = (eg_key(50), eg_key(51));
    for k in [&late, &elsewhere] {
        assert_eq!(reason(&keys.verify(k).unwrap()), "unknown");
    }
    // Imported here.
    keys.import_keys(&[imported(50, &late)], &ImportOptions::new("egregore"))
        .unwrap();
    let v = keys.verify(&late).unwrap();
    assert!(v.is_valid(), "imported here: {v:?}");
    // Imported by another process: learnt from the change feed.
    let other = (backend.open)(db.path(), cfg());
    other
        .import_keys(&[imported(51, &elsewhere)], &ImportOptions::new("egregore"))
        .unwrap();
    let v = keys.verify(&elsewhere).unwrap();
    assert!(v.is_valid(), "imported elsewhere: {v:?}");
    // A wrong key repeated still costs nothing once the pending keys stay as they are.
    let wrong = eg_key(999);
    assert_eq!(reason(&keys.verify(&wrong).unwrap()), "unknown");
    let before = bcrypt_verifications(&keys);
    for _ in 0..3 {
        assert_eq!(reason(&keys.verify(&wrong).unwrap()), "unknown");
    }
    assert_eq!(bcrypt_verifications(&keys), before);
}

/// Defect: re-running an import gave a key rotated here its upstream expiry back (none),
/// so the old key, meant to end with its grace period, stayed valid for ever.
pub(crate) fn a_reimport_does_not_extend_a_rotated_keys_grace(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config().change_check_interval(Duration::ZERO));
    let (plain, imports) = batch(2);
    keys.import_keys(&imports, &complete("egregore")).unwrap();
    assert!(keys.verify(&plain[0]).unwrap().is_valid());
    let old_id = keys.list("client-0").unwrap()[0].key_id.clone();
    keys.rotate("client-0", &old_id, Duration::from_secs(3600))
        .unwrap();
    let grace_end = keys.info("client-0", &old_id).unwrap().expires_at;
    assert!(grace_end.is_some());
    let again = keys.import_keys(&imports, &complete("egregore")).unwrap();
    assert_eq!((again.created, again.deleted), (0, 0));
    let info = keys.info("client-0", &old_id).unwrap();
    assert_eq!(info.expires_at, grace_end, "the grace period was lifted");
    assert_eq!(info.status, KeyStatus::Rotated);
    // An earlier expiry upstream still counts.
    let mut sooner = imports.clone();
    let soon = Timestamp::from_unix_millis(Timestamp::now().unix_millis() + 60_000);
    sooner[0].expires_at = Some(soon);
    keys.import_keys(&sooner, &complete("egregore")).unwrap();
    assert_eq!(
        keys.info("client-0", &old_id).unwrap().expires_at,
        Some(soon)
    );
}

/// Defect: two processes running the same import at once (a cutover re-run started twice)
/// must both finish, with each key stored once; on PostgreSQL the second insert of a
/// source id failed with a storage error (a unique violation) instead of finding the key
/// imported already.
pub(crate) fn concurrent_imports_of_the_same_keys_both_finish(backend: &Backend) {
    let db = backend.fresh();
    let (plain, imports) = batch(60);
    let a = (backend.open)(db.path(), config());
    let b = (backend.open)(db.path(), config());
    let start = std::sync::Barrier::new(2);
    let run = |keys: &ApiKeys| {
        start.wait();
        keys.import_keys(&imports, &ImportOptions::new("egregore"))
    };
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| run(&a));
        let tb = s.spawn(|| run(&b));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.created + ra.unchanged, 60);
    assert_eq!(rb.created + rb.unchanged, 60);
    assert_eq!(all_keys(&a).len(), 60);
    assert!(b.verify(&plain[7]).unwrap().is_valid());
}

/// Defect: an expired key waiting for its first use is skipped by the pending scan; once
/// its expiry was lifted here (`update`), the scan miss remembered before still refused it.
pub(crate) fn a_pending_key_whose_expiry_is_lifted_here_is_valid(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let (plain, mut imports) = batch(2);
    imports[0].expires_at = Some(Timestamp::from_unix_millis(1_700_000_000_000));
    keys.import_keys(&imports, &ImportOptions::new("egregore"))
        .unwrap();
    assert_eq!(reason(&keys.verify(&plain[0]).unwrap()), "unknown");
    let id = keys.list("client-0").unwrap()[0].key_id.clone();
    keys.update("client-0", &id, &keyseal::KeyUpdate::new().expires_at(None))
        .unwrap();
    let v = keys.verify(&plain[0]).unwrap();
    assert!(v.is_valid(), "{v:?}");
}
