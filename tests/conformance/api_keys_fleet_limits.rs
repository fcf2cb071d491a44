//! Rate limits across instances sharing a store: every `ApiKeys` on the store spends leases
//! of one budget, a lease not handed back stops counting when its period ends, the store is
//! written once per lease (not per request), refusals say when the shared window frees a
//! request, and a store that cannot be reached for a lease fails closed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyseal::testing::lease_writes;
use keyseal::{ApiKeys, Error, NewKey, RateLimit, Refusal, Verification};

use crate::harness::{config, Backend};

fn retry_after(v: &Verification) -> Option<Duration> {
    match v.refusal() {
        Some(Refusal::RateLimited { retry_after }) => Some(retry_after),
        _ => None,
    }
}

/// Verifies `key` once with each of `instances` in turn, `rounds` times; how many each got.
fn alternate(instances: &[&ApiKeys], key: &str, rounds: usize) -> Vec<usize> {
    let mut valid = vec![0; instances.len()];
    for _ in 0..rounds {
        for (i, keys) in instances.iter().enumerate() {
            if keys.verify(key).unwrap().is_valid() {
                valid[i] += 1;
            }
        }
    }
    valid
}

/// Two instances on one store admit the key's limit between them, not each; the one that
/// never got a token is told when the shared window frees one.
pub(crate) fn two_instances_share_one_limit(backend: &Backend) {
    let db = backend.fresh();
    let a = (backend.open)(db.path(), config());
    let b = (backend.open)(db.path(), config());
    let k = a
        .create(&NewKey::new("u", "shared").rate_limit(RateLimit::per_minute(40)))
        .unwrap();
    let start = Instant::now();
    let valid = alternate(&[&a, &b], &k.key, 60);
    assert_eq!(valid.iter().sum::<usize>(), 40, "admitted {valid:?}");
    assert!(
        valid.iter().all(|&v| v > 0),
        "one instance got nothing: {valid:?}"
    );
    // A third instance, which holds nothing: refused, until the first grant leaves the window.
    let c = (backend.open)(db.path(), config());
    let wait = retry_after(&c.verify(&k.key).unwrap()).expect("rate limited");
    let left = Duration::from_secs(60).saturating_sub(start.elapsed());
    assert!(
        wait <= Duration::from_secs(60) && wait + Duration::from_secs(2) >= left,
        "retry after {wait:?}, the window frees in about {left:?}"
    );
}

/// A process that verifies once leases one token: the rest of the budget stays for others.
pub(crate) fn one_verification_leases_one_token(backend: &Backend) {
    let db = backend.fresh();
    let a = (backend.open)(db.path(), config());
    let b = (backend.open)(db.path(), config());
    let k = a
        .create(&NewKey::new("u", "x").rate_limit(RateLimit::per_minute(3)))
        .unwrap();
    assert!(a.verify(&k.key).unwrap().is_valid());
    assert_eq!(lease_writes(&a), 1);
    assert_eq!(alternate(&[&b], &k.key, 5), [2]);
}

/// Dropping an instance hands its unspent tokens back: another may spend them at once.
pub(crate) fn a_dropped_instance_hands_back_its_lease(backend: &Backend) {
    let db = backend.fresh();
    let a = (backend.open)(db.path(), config());
    let k = a
        .create(&NewKey::new("u", "x").rate_limit(RateLimit::per_minute(40)))
        .unwrap();
    // Leases of 1, 2, then 4 (at most a tenth of 40): 4 verifications leave 3 in hand.
    assert_eq!(alternate(&[&a], &k.key, 4), [4]);
    assert_eq!(lease_writes(&a), 3);
    drop(a);
    let b = (backend.open)(db.path(), config());
    assert_eq!(
        alternate(&[&b], &k.key, 50),
        [36],
        "the 3 handed back count for b"
    );
}

/// A holder that died without handing back (its lease written here by another client, as
/// a killed process leaves it) blocks the key only until the period since its grant ends.
pub(crate) fn a_dead_holders_lease_expires_with_its_period(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config());
    let period = Duration::from_secs(3);
    let k = keys
        .create(&NewKey::new("u", "x").rate_limit(RateLimit::new(5, period)))
        .unwrap();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut raw = (backend.raw)(db.path());
    raw.lock();
    raw.execute(&format!(
        "INSERT INTO api_key_leases (row_id, holder, granted_at, tokens) \
         SELECT row_id, 'killed', {now_ms}, 5 FROM api_keys WHERE key_id = '{}'",
        k.key_id
    ));
    raw.commit();
    let granted = Instant::now();
    let v = keys.verify(&k.key).unwrap();
    let wait = retry_after(&v).unwrap_or_else(|| panic!("not limited: {v:?}"));
    assert!(
        wait <= period && wait >= Duration::from_secs(2),
        "retry after {wait:?}"
    );
    // Until then, refused (from memory: no new store request per refusal).
    assert!(retry_after(&keys.verify(&k.key).unwrap()).is_some());
    std::thread::sleep(wait + Duration::from_millis(50));
    assert!(keys.verify(&k.key).unwrap().is_valid());
    assert!(granted.elapsed() >= Duration::from_secs(2));
}

/// Store writes per admitted request: after the ramp-up (leases doubling from 1), one per
/// `⌈L / (10·N)⌉` admitted requests, N the instances spending.
pub(crate) fn store_writes_per_admitted_request_are_bounded(backend: &Backend) {
    let db = backend.fresh();
    let a = (backend.open)(db.path(), config());
    let b = (backend.open)(db.path(), config());
    let limit = 2000_u32;
    let k = a
        .create(&NewKey::new("u", "x").rate_limit(RateLimit::per_minute(limit)))
        .unwrap();
    let valid = alternate(&[&a, &b], &k.key, 1200);
    let admitted: usize = valid.iter().sum();
    assert_eq!(admitted, 2000, "admitted {valid:?}");
    let writes = lease_writes(&a) + lease_writes(&b);
    // N = 2: leases of 100; the ramp 1, 2, 4, … 64 is 7 more writes per instance, and the
    // last grant of the window may be short.
    let per_lease = usize::try_from(limit).unwrap() / (10 * 2);
    let bound = admitted / per_lease + 2 * 8 + 2;
    assert!(
        usize::try_from(writes).unwrap() <= bound,
        "{writes} store writes for {admitted} admitted requests (bound {bound})"
    );
}

/// A store that cannot be reached for a new lease: the key fails closed with a storage
/// error (never unlimited, never a panic), answered from memory for a second, and works
/// again once the store does.
pub(crate) fn an_unreachable_store_fails_closed(backend: &Backend) {
    let db = backend.fresh();
    let keys = (backend.open)(db.path(), config().busy_timeout(Duration::from_millis(500)));
    let k = keys
        .create(&NewKey::new("u", "x").rate_limit(RateLimit::per_minute(3)))
        .unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid());
    let mut raw = (backend.raw)(db.path());
    raw.lock();
    raw.execute(backend.sql.lock_leases);
    let first = keys.verify(&k.key);
    assert!(
        matches!(first, Err(Error::Storage { .. })),
        "with the store locked: {first:?}"
    );
    let t = Instant::now();
    let again = keys.verify(&k.key);
    assert!(matches!(again, Err(Error::Storage { .. })), "{again:?}");
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "asked the store again at once"
    );
    raw.commit();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(keys.verify(&k.key).unwrap().is_valid());
}

/// Leases are not changes: no other process is told of one (no `seq`, no notification).
pub(crate) fn lease_writes_stay_out_of_the_change_feed(backend: &Backend) {
    let db = backend.fresh();
    let a = (backend.open)(db.path(), config());
    let k = a
        .create(&NewKey::new("u", "x").rate_limit(RateLimit::per_minute(100)))
        .unwrap();
    let before = (backend.open)(db.path(), config()).status().feed_position;
    assert_eq!(alternate(&[&a], &k.key, 20), [20]);
    drop(a);
    assert_eq!(
        (backend.open)(db.path(), config()).status().feed_position,
        before
    );
}
