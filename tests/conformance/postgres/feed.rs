//! The change feed across servers on PostgreSQL: notifications that make a revocation seen at
//! once, the staleness policy while the database cannot be reached (through a TCP proxy the
//! test cuts), and a store that went back in time (restored from a backup).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use keyseal::{ApiKeys, Error, NewKey, StalePolicy, StorageKind, Verification};

use super::{available, run_sql, server, PgDb};
use crate::harness::{config, reason};

/// A TCP proxy in front of the server that the test can cut (every connection through it
/// closed, new ones refused) and heal.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let s = server().unwrap();
        let upstream = format!("{}:{}", s.host, s.port);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    drop(client); // refused
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut list = o.lock().unwrap_or_else(PoisonError::into_inner);
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                drop(list);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { port, cut, open }
    }

    fn url(&self, db: &PgDb) -> String {
        let s = server().unwrap();
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}?sslmode=disable",
            s.app_role, s.app_password, self.port, db.name
        )
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// Waits (up to 10 s) until `keys` accepts `key`: another server learns of a new key from
/// the feed.
fn until_valid(keys: &ApiKeys, key: &str) {
    let t = Instant::now();
    while !keys.verify(key).unwrap().is_valid() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the key never became valid"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_unavailable(v: &Result<Verification, Error>) -> bool {
    matches!(
        v,
        Err(Error::Storage {
            kind: StorageKind::Unavailable,
            ..
        })
    )
}

/// Defect it guards against: other servers saw a revocation only at their next poll of the
/// feed (every `change_check_interval`). The notification sent with every feed write wakes
/// them at once: here the poll is 30 s apart, and the revocation must still be seen within
/// a second.
#[test]
fn a_revocation_elsewhere_is_seen_at_once_through_notify() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let slow_poll = || config().change_check_interval(Duration::from_secs(30));
    let admin = ApiKeys::open_with(db.app_url(), slow_poll()).unwrap();
    // Another server: a URL of its own (so a pool and a listener of its own).
    let other_url = format!("{}&application_name=other", db.app_url());
    let other = ApiKeys::open_with(&other_url, slow_poll()).unwrap();
    let k = admin.create(&NewKey::new("u", "x")).unwrap();
    // Listening starts in the background: wait until the other server knows the key (the
    // creation's own notification wakes it), then give the listener its self-test time.
    until_valid(&other, &k.key);
    let t = Instant::now();
    while other.status().feed_mode != "notify" {
        assert!(t.elapsed() < Duration::from_secs(10), "never listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        assert!(other.verify(&k.key).unwrap().is_valid());
    }
    admin.revoke("u", &k.key_id).unwrap();
    let revoked = Instant::now();
    loop {
        let v = other.verify(&k.key);
        if reason(&v) == "revoked" {
            break;
        }
        assert!(v.unwrap().is_valid());
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "the revocation was not seen within 1 s with a 30 s poll"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// With `StalePolicy::Refuse` (the default), a cached key is answered while what the server
/// knows is younger than `max_staleness`, then refused with a typed `unavailable` error (not a
/// panic, not a hang) while the database cannot be reached, and answered again once it can,
/// without the key being checked by bcrypt again (its row is read once).
#[test]
fn cached_keys_are_refused_past_max_staleness_and_back_when_the_database_is() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let proxy = Proxy::start();
    let keys = ApiKeys::open_with(
        proxy.url(&db),
        config()
            .change_check_interval(Duration::from_millis(100))
            .max_staleness(Duration::from_secs(1)),
    )
    .unwrap();
    let k = keys.create(&NewKey::new("u", "x")).unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid());
    proxy.cut();
    let cut = Instant::now();
    let mut refused_at = None;
    while cut.elapsed() < Duration::from_secs(3) {
        let one = Instant::now();
        let v = keys.verify(&k.key);
        assert!(
            one.elapsed() < Duration::from_secs(2),
            "a verify took {:?} while the database was unreachable",
            one.elapsed()
        );
        if is_unavailable(&v) {
            refused_at.get_or_insert(cut.elapsed());
        } else {
            assert!(v.unwrap().is_valid());
            assert!(
                refused_at.is_none(),
                "answered again after a refusal while still cut"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused_at = refused_at.expect("never refused while the database was unreachable");
    assert!(
        refused_at >= Duration::from_millis(900) && refused_at < Duration::from_millis(2500),
        "refused after {refused_at:?}, max_staleness 1 s"
    );
    let status = keys.status();
    assert!(status.feed_lag >= Duration::from_secs(1), "{status:?}");
    proxy.heal();
    let healed = Instant::now();
    while !matches!(keys.verify(&k.key), Ok(Verification::Valid(_))) {
        assert!(
            healed.elapsed() < Duration::from_secs(10),
            "not answered again after the database came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `StalePolicy::ServeStale` keeps answering cached keys past `max_staleness`, up to its own
/// bound, then refuses as `Refuse` does.
#[test]
fn serve_stale_answers_up_to_its_bound_then_refuses() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let proxy = Proxy::start();
    let keys = ApiKeys::open_with(
        proxy.url(&db),
        config()
            .change_check_interval(Duration::from_millis(100))
            .max_staleness(Duration::from_millis(500))
            .stale_policy(StalePolicy::ServeStale {
                up_to: Duration::from_secs(2),
            }),
    )
    .unwrap();
    let k = keys.create(&NewKey::new("u", "x")).unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid());
    proxy.cut();
    let cut = Instant::now();
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        keys.verify(&k.key).unwrap().is_valid(),
        "serve-stale refused at {:?}, before its bound",
        cut.elapsed()
    );
    let mut refused = false;
    while cut.elapsed() < Duration::from_secs(4) {
        if is_unavailable(&keys.verify(&k.key)) {
            refused = true;
            assert!(cut.elapsed() >= Duration::from_millis(1900));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(refused, "serve-stale never refused past its bound");
    proxy.heal();
}

/// Defect it guards against: a store restored from a backup has a feed behind the position
/// a server already read, so that server waited for the counter to pass its old position
/// and missed every change until then (here: a revocation). A feed that went back in time is
/// now followed from where it is, and cached keys are re-read.
#[test]
fn a_store_rewound_by_a_restore_is_followed_not_stalled() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let admin = ApiKeys::open_with(db.app_url(), config()).unwrap();
    let other_url = format!("{}&application_name=other", db.app_url());
    let other = ApiKeys::open_with(
        &other_url,
        config().change_check_interval(Duration::from_millis(50)),
    )
    .unwrap();
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(admin.create(&NewKey::new(format!("u{i}"), "x")).unwrap());
    }
    let k = &made[0];
    until_valid(&other, &k.key);
    std::thread::sleep(Duration::from_millis(200)); // the other server has read the feed
                                                    // What a restore of an older backup looks like to the feed: every number lower.
    run_sql(
        &db.admin_url(),
        "UPDATE keyseal_feed SET seq = 1; UPDATE api_keys SET seq = 1",
    )
    .unwrap();
    admin.revoke("u0", &k.key_id).unwrap();
    let (answer, after) = {
        let t = Instant::now();
        loop {
            let v = other.verify(&k.key);
            if !matches!(v, Ok(Verification::Valid(_))) || t.elapsed() > Duration::from_secs(3) {
                break (reason(&v), t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    assert_eq!(answer, "revoked", "after {after:?}");
}

/// Defect it guards against: a verification whose row changed elsewhere while its bcrypt ran
/// re-reads the row before caching it; when that re-read failed (the database went away in
/// between), the key was cached as revoked, and stayed refused as `revoked` after the
/// database came back. Now that call fails with an error, and the key is valid again.
#[test]
fn a_failed_reread_during_a_racing_change_is_not_taken_for_a_revocation() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let proxy = Proxy::start();
    let admin = ApiKeys::open_with(db.app_url(), config().bcrypt_cost(13)).unwrap();
    let k = admin.create(&NewKey::new("u", "slow")).unwrap();
    let keys = std::sync::Arc::new(
        ApiKeys::open_with(
            proxy.url(&db),
            config().change_check_interval(Duration::from_millis(20)),
        )
        .unwrap(),
    );
    let verifying = {
        let (keys, key) = (keys.clone(), k.key.clone());
        std::thread::spawn(move || keys.verify(&key))
    };
    // While its bcrypt (cost 13) runs: a change elsewhere, seen by the feed, then the cut.
    std::thread::sleep(Duration::from_millis(60));
    admin.create(&NewKey::new("other", "x")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    proxy.cut();
    let first = verifying.join().unwrap();
    assert!(
        reason(&first) == "valid" || is_unavailable(&first),
        "the racing verification: {}",
        reason(&first)
    );
    proxy.heal();
    let healed = Instant::now();
    loop {
        let v = keys.verify(&k.key);
        match reason(&v).as_str() {
            "valid" => break,
            "revoked" => panic!("a live key is refused as revoked after the database came back"),
            _ => {}
        }
        assert!(healed.elapsed() < Duration::from_secs(15), "{}", reason(&v));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Defect it guards against: an id the key filter did not know made the verification look at
/// the feed only if no look had started in the same millisecond; the feed thread, woken by
/// the very commit that made the key, often had, before that commit was visible to it, and
/// the new key was refused as `unknown`. Made on one server and used at once on another,
/// many times over.
#[test]
fn a_key_made_elsewhere_is_valid_at_once_while_the_feed_thread_reads() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let admin = ApiKeys::open_with(db.app_url(), config().max_active_keys(None)).unwrap();
    let other = ApiKeys::open_with(
        format!("{}&application_name=other", db.app_url()),
        config().change_check_interval(Duration::from_millis(5)),
    )
    .unwrap();
    for i in 0..150 {
        let k = admin.create(&NewKey::new("u", format!("k{i}"))).unwrap();
        let v = other.verify(&k.key);
        assert_eq!(reason(&v), "valid", "key {i}, made elsewhere just before");
    }
}
