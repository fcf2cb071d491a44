//! API keys against a busy or damaged store: revocation while a write waits, unreadable
//! rows, per-key rate limits, many legacy keys under one lookup, last use on drop.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use keyseal::{Error, LegacyKey, NewKey, RateLimit, Refusal, Verification};

use crate::harness::{config, legacy_key, reason, until_refused, Backend, Place};

// --- revocation while this process's connection is busy ------------------------------------------

/// A revocation committed by another client must be seen within the change-check bound while
/// this process's connection waits for the write lock (here: a `create` blocked behind another
/// client's write transaction), and cached verifications must not wait for that write.
pub(crate) fn revocation_seen_while_connection_busy_with_a_write(backend: &Backend) {
    let db = backend.fresh();
    let interval = Duration::from_millis(300);
    let keys = Arc::new((backend.open)(
        db.path(),
        config().change_check_interval(interval),
    ));
    let k = keys.create(&NewKey::new("u", "x")).unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid()); // cached; a change check just ran
    let mut raw = (backend.raw)(db.path());
    raw.lock();
    let blocked = {
        let keys = keys.clone();
        std::thread::spawn(move || keys.create(&NewKey::new("u", "blocked")).map(|_| ()))
    };
    std::thread::sleep(Duration::from_millis(50)); // the create now waits for the lock
    raw.execute(&(backend.sql.revoke)(&k.key_id));
    raw.commit();
    raw.lock(); // and hold it again, so the create keeps waiting
    let (answer, after, slowest) = until_refused(&keys, &k.key, Duration::from_secs(2));
    raw.commit();
    blocked.join().unwrap().unwrap();
    assert_eq!(answer, "revoked", "after {after:?}");
    assert!(after < interval + Duration::from_millis(700), "{after:?}");
    assert!(
        slowest < Duration::from_millis(250),
        "a verify took {slowest:?}"
    );
}

/// Same while a local `flush` waits for the write lock another client holds: `verify` never
/// waits behind it, and the revocation is still seen in time.
pub(crate) fn revocation_seen_and_verify_not_blocked_while_a_flush_waits(backend: &Backend) {
    let db = backend.fresh();
    let interval = Duration::from_millis(300);
    let keys = Arc::new((backend.open)(
        db.path(),
        config()
            .change_check_interval(interval)
            .last_use_interval(Duration::from_millis(1)),
    ));
    let k = keys.create(&NewKey::new("u", "x")).unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid());
    let mut raw = (backend.raw)(db.path());
    raw.lock();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let (keys, stop) = (keys.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = keys.flush(); // fails while the lock is held: that is the point
            }
        })
    };
    // Uses keep being queued; verifications must stay fast.
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    while t.elapsed() < Duration::from_millis(400) {
        let one = Instant::now();
        assert!(keys.verify(&k.key).unwrap().is_valid());
        slowest = slowest.max(one.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    raw.execute(&(backend.sql.revoke)(&k.key_id));
    raw.commit();
    raw.lock();
    let (answer, after, slowest_after) = until_refused(&keys, &k.key, Duration::from_secs(2));
    raw.commit();
    stop.store(true, Ordering::SeqCst);
    flusher.join().unwrap();
    assert_eq!(answer, "revoked", "after {after:?}");
    assert!(after < interval + Duration::from_millis(700), "{after:?}");
    let slowest = slowest.max(slowest_after);
    assert!(
        slowest < Duration::from_millis(250),
        "a verify took {slowest:?}"
    );
}

// --- an unreadable row ------------------------------------------------------------------------

/// One row another client wrote badly must not stop this process from seeing other changes,
/// and that row's cached key must fail closed with an error naming the row.
///
/// The damaged key is first seen failing closed (so this process's feed read the bad row),
/// and the other key is then verified once more before it is revoked, so that its cache entry
/// is current and only the feed can tell it of the revocation. (Before, a stale entry of the
/// revoked key re-read its row and saw the revocation before the feed had reached the bad
/// row, and the test then wrongly took the still-cached damaged key for a stuck catch-up.)
pub(crate) fn unreadable_row_fails_closed_and_does_not_stop_the_catch_up(backend: &Backend) {
    let db = backend.fresh();
    let cfg = || config().change_check_interval(Duration::from_millis(20));
    let keys = (backend.open)(db.path(), cfg());
    let bad = keys.create(&NewKey::new("u", "bad")).unwrap();
    let good = keys.create(&NewKey::new("u", "good")).unwrap();
    assert!(keys.verify(&bad.key).unwrap().is_valid());
    assert!(keys.verify(&good.key).unwrap().is_valid());
    let mut raw = (backend.raw)(db.path());
    raw.lock();
    raw.execute(&(backend.sql.damage)(&bad.key_id));
    raw.commit();
    let (_, after, _) = until_refused(&keys, &bad.key, Duration::from_secs(2));
    match keys.verify(&bad.key) {
        Err(Error::Storage { message, .. }) => {
            assert!(message.contains(&bad.key_id), "{message}");
        }
        other => panic!("a row that cannot be read must fail closed ({after:?}): {other:?}"),
    }
    assert!(keys.verify(&good.key).unwrap().is_valid());
    let other = (backend.open)(db.path(), cfg());
    other.revoke("u", &good.key_id).unwrap();
    let (answer, _, _) = until_refused(&keys, &good.key, Duration::from_secs(2));
    assert_eq!(answer, "revoked", "the catch-up is stuck on the bad row");
    match keys.verify(&bad.key) {
        Err(Error::Storage { message, .. }) => {
            assert!(message.contains(&bad.key_id), "{message}");
        }
        other => panic!("a row that cannot be read must stay refused: {other:?}"),
    }
    // Not cached anywhere: the same, with the row named.
    match (backend.open)(db.path(), cfg()).verify(&bad.key) {
        Err(Error::Storage { message, .. }) => {
            assert!(message.contains(&bad.key_id), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Repaired: valid again.
    raw.lock();
    raw.execute(&(backend.sql.repair)(&bad.key_id));
    raw.commit();
    let t = Instant::now();
    while !matches!(keys.verify(&bad.key), Ok(Verification::Valid(_))) {
        assert!(t.elapsed() < Duration::from_secs(2), "never answered again");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// --- per-key rate limits ------------------------------------------------------------------------

fn rate_limited(v: &Verification) -> bool {
    matches!(v, Verification::Refused(Refusal::RateLimited { .. }))
}

/// The bucket belongs to the key: evicting its cache entry does not refill it.
pub(crate) fn rate_limit_survives_cache_eviction(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config().cache_capacity(1).max_active_keys(None));
    let k = keys
        .create(&NewKey::new("u", "limited").rate_limit(RateLimit::per_minute(3)))
        .unwrap();
    for _ in 0..3 {
        assert!(keys.verify(&k.key).unwrap().is_valid());
    }
    assert!(rate_limited(&keys.verify(&k.key).unwrap()));
    // One entry per cache shard: these evict the limited key's entry (all but surely).
    for i in 0..120 {
        let other = keys.create(&NewKey::new("v", format!("{i}"))).unwrap();
        assert!(keys.verify(&other.key).unwrap().is_valid());
    }
    assert!(
        rate_limited(&keys.verify(&k.key).unwrap()),
        "evicting the cache entry gave the key a fresh bucket"
    );
}

/// Concurrent first verifications of one key share its bucket.
pub(crate) fn rate_limit_holds_for_concurrent_first_verifications(backend: &Backend) {
    let db = backend.fresh();
    let keys = Arc::new((backend.open)(
        db.path(),
        config().bcrypt_cost(6).bcrypt_concurrency(16),
    ));
    let k = keys
        .create(&NewKey::new("u", "limited").rate_limit(RateLimit::per_minute(3)))
        .unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let valid: usize = (0..16)
        .map(|_| {
            let (keys, key, barrier) = (keys.clone(), k.key.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                usize::from(keys.verify(&key).unwrap().is_valid())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert!(valid <= 3, "{valid} of 16 passed a limit of 3 per minute");
    assert!(valid >= 1);
}

// --- legacy lookups -----------------------------------------------------------------------------

/// A url-safe legacy key: `prefix` + `body`.
fn legacy(prefix: &str, body: &str, lookup_len: usize, key_id: &str) -> (String, LegacyKey) {
    let key = format!("{prefix}{body}");
    let mut l = legacy_key(
        prefix,
        &body[..lookup_len],
        bcrypt::hash(key.as_bytes(), 4).unwrap(),
    );
    l.key_id = Some(key_id.into());
    (key, l)
}

/// More than 16 keys under one legacy lookup: every key that was accepted verifies, and the
/// one past the documented bound is refused at import with a clear error instead of being
/// stored unverifiable.
pub(crate) fn legacy_lookup_shared_by_many_keys(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config().max_active_keys(None));
    let mut made = vec![];
    for i in 0..16 {
        let (key, l) = legacy("mhu_", &format!("SAMEPREF{i:0>24}"), 8, &format!("old-{i}"));
        keys.import_legacy(&l).unwrap();
        made.push(key);
    }
    let (_, extra) = legacy("mhu_", &format!("SAMEPREF{:0>24}", 99), 8, "old-99");
    match keys.import_legacy(&extra) {
        Err(Error::InvalidArgument { what }) => assert!(what.contains("16"), "{what}"),
        other => panic!("the 17th key under one lookup must be refused: {other:?}"),
    }
    let fresh = (backend.open)(db.path(), config());
    for key in &made {
        assert!(keys.verify(key).unwrap().is_valid(), "{key}");
        assert!(fresh.verify(key).unwrap().is_valid(), "{key}");
    }
    let wrong = format!("mhu_SAMEPREF{:0>24}", 77);
    assert_eq!(reason(&fresh.verify(&wrong)), "unknown");
}

/// Two legacy formats under one prefix (lookup lengths 8 and 12) both verify, here and in a
/// process that opens the file afterwards.
pub(crate) fn two_legacy_formats_under_one_prefix(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let (short, l8) = legacy("mhu_", "abcdefgh_short_lookup_key_body", 8, "eight");
    let (long, l12) = legacy("mhu_", "ABCDEFGHIJKL_long_lookup_key_body", 12, "twelve");
    keys.import_legacy(&l8).unwrap();
    keys.import_legacy(&l12).unwrap();
    for k in [&keys, &(backend.open)(db.path(), config())] {
        assert!(k.verify(&short).unwrap().is_valid());
        assert!(k.verify(&long).unwrap().is_valid());
    }
}

/// A legacy format another process registered is known at once, not only after some other
/// key happened to be verified.
pub(crate) fn legacy_format_imported_elsewhere_is_known_within_the_check_interval(
    backend: &Backend,
) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let (key, l) = legacy("old_", "zyxwvuts_the_rest_of_the_key", 8, "elsewhere");
    assert_eq!(reason(&keys.verify(&key)), "malformed"); // no such format yet
    (backend.open)(db.path(), config())
        .import_legacy(&l)
        .unwrap();
    // Seen at the next change check (the same bound as a revocation), not "never".
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while reason(&keys.verify(&key)) != "valid" {
        assert!(
            std::time::Instant::now() < deadline,
            "a legacy format imported by another instance stayed unknown"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --- last use on drop ---------------------------------------------------------------------------

fn last_used(backend: &Backend, db: &dyn Place, key_id: &str) -> Option<keyseal::Timestamp> {
    (backend.open)(db.path(), config())
        .info("u", key_id)
        .unwrap()
        .last_used_at
}

/// Dropping the manager while another client holds the write lock briefly still writes the
/// queued last use; a `flush` that cannot write within its bound says so.
pub(crate) fn last_use_lands_when_dropped_while_the_store_is_busy(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let k = keys.create(&NewKey::new("u", "x")).unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid());
    let mut raw = (backend.raw)(db.path());
    raw.lock();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        raw.commit();
    });
    drop(keys);
    holder.join().unwrap();
    assert!(
        last_used(backend, &*db, &k.key_id).is_some(),
        "the last use was lost on drop"
    );

    // flush() reports a write it could not make, and keeps the uses for the next one.
    let keys = (backend.open)(db.path(), config());
    let k2 = keys.create(&NewKey::new("u", "y")).unwrap();
    let mut raw = (backend.raw)(db.path());
    raw.lock();
    // Queued while the store is held, so the feed thread's own flush cannot write it first.
    assert!(keys.verify(&k2.key).unwrap().is_valid());
    let t = Instant::now();
    assert!(matches!(keys.flush(), Err(Error::Storage { .. })));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    raw.commit();
    keys.flush().unwrap();
    assert!(last_used(backend, &*db, &k2.key_id).is_some());
}
