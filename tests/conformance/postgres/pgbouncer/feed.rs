//! The change feed behind PgBouncer in transaction mode: notifications cannot be had through
//! the pooler (a `LISTEN` lasts one transaction), which the listener's self-test finds, so
//! the feed is polled; with `listen_url` pointing at the server itself they are back.

use std::time::{Duration, Instant};

use keyseal::{ApiKeys, NewKey};

use super::{available, fresh};
use crate::harness::{config, reason};

fn wait_for_mode(keys: &ApiKeys, want: &str) {
    let t = Instant::now();
    while keys.status().feed_mode != want {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "feed mode {} (wanted {want})",
            keys.status().feed_mode
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn revoke_seen(admin: &ApiKeys, other: &ApiKeys, within: Duration) {
    let k = admin.create(&NewKey::new("u", "x")).unwrap();
    let t = Instant::now();
    while !other.verify(&k.key).unwrap().is_valid() {
        assert!(t.elapsed() < Duration::from_secs(10), "never valid");
        std::thread::sleep(Duration::from_millis(20));
    }
    admin.revoke("u", &k.key_id).unwrap();
    let revoked = Instant::now();
    while reason(&other.verify(&k.key)) != "revoked" {
        assert!(revoked.elapsed() < within, "not refused within {within:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Through the pooler alone: the self-test finds notifications unavailable (never a false
/// `notify`), and revocations are still seen on the poll.
#[test]
fn through_the_pooler_notifications_are_found_unavailable_and_the_feed_polled() {
    if !available() {
        return;
    }
    let db = fresh();
    let admin = ApiKeys::open_with(db.app_url(), config()).unwrap();
    let other = ApiKeys::open_with(
        format!("{}&application_name=other", db.app_url()),
        config().change_check_interval(Duration::from_millis(100)),
    )
    .unwrap();
    wait_for_mode(&other, "notify-unavailable");
    revoke_seen(&admin, &other, Duration::from_secs(1));
}

/// Queries through the pooler, `LISTEN` on the server itself (`listen_url`): revocations are
/// seen at once although the poll is 30 s apart.
#[test]
fn with_a_direct_listen_url_notifications_work_behind_the_pooler() {
    if !available() {
        return;
    }
    let db = fresh();
    let direct = super::super::server().unwrap().app_url(&db.name);
    let admin = ApiKeys::open_with(db.app_url(), config()).unwrap();
    let other = ApiKeys::open_with(
        format!("{}&application_name=other", db.app_url()),
        config()
            .change_check_interval(Duration::from_secs(30))
            .listen_url(direct),
    )
    .unwrap();
    wait_for_mode(&other, "notify");
    revoke_seen(&admin, &other, Duration::from_secs(1));
}
