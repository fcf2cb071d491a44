//! API keys, whatever the backend: the admin operations after creation (update, disable /
//! enable, delete), paged listings by status, scope requirements in verify, and what a
//! second instance on the same store sees of each.

use std::time::{Duration, Instant};

use keyseal::{
    ApiKeys, Error, KeyInfo, KeyStatus, KeyUpdate, ListCursor, ListFilter, NewKey, RateLimit,
    Requirement, Timestamp, Verification, MAX_METADATA_BYTES,
};
use serde_json::json;

use crate::common::temp_db::TempDb;
use crate::harness::{config, reason, refusal, wrong_secret, Backend};

/// Every key in the store, as an admin listing gives it (one page: the tests stay small).
fn everything(keys: &ApiKeys) -> Vec<KeyInfo> {
    let page = keys.list_page(&ListFilter::all().limit(1000)).unwrap();
    assert!(page.next.is_none());
    page.keys
}

/// Waits (at most a second) until `check` holds for `key`'s verification by `keys`.
fn within_a_second(keys: &ApiKeys, key: &str, required: &Requirement, want: &str) {
    let t = Instant::now();
    loop {
        let got = reason(&keys.verify_with(key, required));
        if got == want {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "still {got}, want {want}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn update_changes_a_key_in_place_here_and_in_another_instance(backend: &Backend) {
    let db = TempDb::new();
    let here = (backend.open)(db.path(), config());
    let there = (backend.open)(db.path(), config());
    let made = here
        .create(
            &NewKey::new("u", "ci")
                .scope("read")
                .metadata(json!({"team": "infra"})),
        )
        .unwrap();
    let deploy = Requirement::all(["deploy"]);
    // cached in both, without the scope
    assert_eq!(
        refusal(&here.verify_with(&made.key, &deploy).unwrap()),
        Some("forbidden")
    );
    assert_eq!(
        refusal(&there.verify_with(&made.key, &deploy).unwrap()),
        Some("forbidden")
    );

    let info = here
        .update(
            "u",
            &made.key_id,
            &KeyUpdate::new()
                .name("ci (new runner)")
                .scopes(["read", "deploy"])
                .expires_in(Duration::from_secs(3600))
                .rate_limit(Some(RateLimit::per_minute(100)))
                .metadata(json!({"team": "platform", "ticket": 7})),
        )
        .unwrap();
    assert_eq!(info.name, "ci (new runner)");
    assert_eq!(info.scopes, ["read", "deploy"]);
    assert!(info.expires_at.is_some());
    assert_eq!(info.rate_limit, Some(RateLimit::per_minute(100)));
    assert_eq!(info.metadata["ticket"], 7);
    // here at once, with no new bcrypt needed; elsewhere through the change feed
    assert!(here.verify_with(&made.key, &deploy).unwrap().is_valid());
    within_a_second(&there, &made.key, &deploy, "valid");
    let seen = there.verify(&made.key).unwrap();
    assert_eq!(&*seen.validated().unwrap().scopes, ["read", "deploy"]);
    assert_eq!(seen.validated().unwrap().expires_at, info.expires_at);
    // list and info give the metadata; here reopened store too
    assert_eq!(
        there.info("u", &made.key_id).unwrap().metadata,
        info.metadata
    );
    drop(here);
    let reopened = (backend.open)(db.path(), config());
    assert_eq!(reopened.list("u").unwrap()[0].metadata["team"], "platform");

    // clearing: expiry and rate limit back to none, metadata emptied
    let cleared = reopened
        .update(
            "u",
            &made.key_id,
            &KeyUpdate::new()
                .expires_at(None)
                .rate_limit(None)
                .metadata(json!({})),
        )
        .unwrap();
    assert_eq!(cleared.expires_at, None);
    assert_eq!(cleared.rate_limit, None);
    assert!(cleared.metadata.is_empty());
    assert_eq!(cleared.name, "ci (new runner)"); // untouched fields stay
    within_a_second(&there, &made.key, &Requirement::none(), "valid");
    let t = Instant::now();
    while there
        .verify(&made.key)
        .unwrap()
        .validated()
        .unwrap()
        .expires_at
        .is_some()
    {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "cleared expiry not seen"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn a_new_rate_limit_applies_to_a_cached_key(backend: &Backend) {
    let db = TempDb::new();
    let keys = (backend.open)(db.path(), config());
    let k = keys.create(&NewKey::new("u", "x")).unwrap();
    for _ in 0..5 {
        assert!(keys.verify(&k.key).unwrap().is_valid());
    }
    keys.update(
        "u",
        &k.key_id,
        &KeyUpdate::new().rate_limit(Some(RateLimit::per_minute(2))),
    )
    .unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid());
    assert!(keys.verify(&k.key).unwrap().is_valid());
    assert_eq!(refusal(&keys.verify(&k.key).unwrap()), Some("rate_limited"));
    keys.update("u", &k.key_id, &KeyUpdate::new().rate_limit(None))
        .unwrap();
    assert!(keys.verify(&k.key).unwrap().is_valid());
}

pub(crate) fn disable_and_enable_reach_every_cache(backend: &Backend) {
    let db = TempDb::new();
    let a = (backend.open)(db.path(), config());
    let b = (backend.open)(db.path(), config());
    let k = a.create(&NewKey::new("u", "x")).unwrap();
    let none = Requirement::none();
    assert!(b.verify(&k.key).unwrap().is_valid());
    let info = a.disable("u", &k.key_id).unwrap();
    assert!(!info.enabled);
    assert_eq!(info.status, KeyStatus::Disabled);
    assert_eq!(refusal(&a.verify(&k.key).unwrap()), Some("disabled"));
    within_a_second(&b, &k.key, &none, "disabled");
    // disabling twice is fine
    a.disable("u", &k.key_id).unwrap();
    // a fresh instance (nothing cached) says the same to the right secret
    let c = (backend.open)(db.path(), config());
    assert_eq!(refusal(&c.verify(&k.key).unwrap()), Some("disabled"));
    a.enable("u", &k.key_id).unwrap();
    assert!(a.verify(&k.key).unwrap().is_valid());
    within_a_second(&b, &k.key, &none, "valid");
    within_a_second(&c, &k.key, &none, "valid");
}

pub(crate) fn a_wrong_secret_never_learns_disabled_or_missing_scopes(backend: &Backend) {
    let db = TempDb::new();
    let keys = (backend.open)(db.path(), config());
    let k = keys.create(&NewKey::new("u", "x").scope("read")).unwrap();
    let admin = Requirement::all(["admin"]);
    let wrong = wrong_secret(&k.key, 3);
    assert_eq!(
        refusal(&keys.verify_with(&wrong, &admin).unwrap()),
        Some("unknown")
    );
    assert!(keys.verify(&k.key).unwrap().is_valid()); // cached now
    keys.disable("u", &k.key_id).unwrap();
    for other in [wrong_secret(&k.key, 5), wrong_secret(&k.key, 50), wrong] {
        assert_eq!(refusal(&keys.verify(&other).unwrap()), Some("unknown"));
        assert_eq!(
            refusal(&keys.verify_with(&other, &admin).unwrap()),
            Some("unknown")
        );
    }
    let fresh = (backend.open)(db.path(), config());
    assert_eq!(
        refusal(&fresh.verify(&wrong_secret(&k.key, 7)).unwrap()),
        Some("unknown")
    );
    // the right secret: disabled comes before forbidden
    assert_eq!(
        refusal(&fresh.verify_with(&k.key, &admin).unwrap()),
        Some("disabled")
    );
}

pub(crate) fn scope_requirements_all_and_any(backend: &Backend) {
    let db = TempDb::new();
    let keys = (backend.open)(db.path(), config());
    let k = keys
        .create(&NewKey::new("u", "x").scopes(["read", "write"]))
        .unwrap();
    let cases = [
        (Requirement::none(), "valid"),
        (Requirement::all(Vec::<String>::new()), "valid"),
        (Requirement::all(["read"]), "valid"),
        (Requirement::all(["read", "write"]), "valid"),
        (Requirement::all(["read", "admin"]), "forbidden"),
        (Requirement::all(["rea"]), "forbidden"), // exact match, never a prefix
        (Requirement::any(["admin", "write"]), "valid"),
        (Requirement::any(["admin"]), "forbidden"),
    ];
    for _pass in 0..2 {
        // first pass: uncached for the first case only; then cached
        for (req, want) in &cases {
            assert_eq!(reason(&keys.verify_with(&k.key, req)), *want, "{req:?}");
        }
    }
    // Forbidden carries no data about the key.
    assert_eq!(
        keys.verify_with(&k.key, &Requirement::all(["admin"]))
            .unwrap(),
        Verification::Refused(keyseal::Refusal::Forbidden)
    );
    // rate limits come before scopes: a forbidden call spends a token
    let limited = keys
        .create(
            &NewKey::new("u", "y")
                .scope("read")
                .rate_limit(RateLimit::per_minute(1)),
        )
        .unwrap();
    let admin = Requirement::all(["admin"]);
    assert_eq!(reason(&keys.verify_with(&limited.key, &admin)), "forbidden");
    assert_eq!(
        reason(&keys.verify_with(&limited.key, &admin)),
        "rate_limited"
    );
    // expired and revoked come before scopes too
    keys.update(
        "u",
        &k.key_id,
        &KeyUpdate::new().expires_at(Some(Timestamp::from_unix_millis(1000))),
    )
    .unwrap();
    assert_eq!(reason(&keys.verify_with(&k.key, &admin)), "expired");
    keys.revoke("u", &k.key_id).unwrap();
    assert_eq!(reason(&keys.verify_with(&k.key, &admin)), "revoked");
}

pub(crate) fn delete_makes_the_key_unknown_everywhere(backend: &Backend) {
    let db = TempDb::new();
    let a = (backend.open)(db.path(), config());
    let b = (backend.open)(db.path(), config());
    let k = a.create(&NewKey::new("u", "x")).unwrap();
    let other = a.create(&NewKey::new("u", "y")).unwrap();
    assert!(a.verify(&k.key).unwrap().is_valid());
    assert!(b.verify(&k.key).unwrap().is_valid());
    let gone = a.delete("u", &k.key_id).unwrap();
    assert_eq!(gone.key_id, k.key_id);
    assert_eq!(refusal(&a.verify(&k.key).unwrap()), Some("unknown"));
    within_a_second(&b, &k.key, &Requirement::none(), "unknown");
    let fresh = (backend.open)(db.path(), config());
    assert_eq!(refusal(&fresh.verify(&k.key).unwrap()), Some("unknown"));
    // the row is gone, the other key is not
    let left: Vec<String> = a.list("u").unwrap().into_iter().map(|i| i.key_id).collect();
    assert_eq!(left, std::slice::from_ref(&other.key_id));
    assert!(b.verify(&other.key).unwrap().is_valid());
    // deleting again, or changing the deleted key, finds nothing
    assert_eq!(
        a.delete("u", &k.key_id).unwrap_err(),
        Error::NotFound { what: "api key" }
    );
    assert_eq!(
        a.update("u", &k.key_id, &KeyUpdate::new().name("z"))
            .unwrap_err(),
        Error::NotFound { what: "api key" }
    );
    assert_eq!(
        a.enable("u", &k.key_id).unwrap_err(),
        Error::NotFound { what: "api key" }
    );
    // a deleted key frees its quota slot
    let two = (backend.open)(db.path(), config().max_active_keys(Some(1)));
    assert!(two.create(&NewKey::new("u", "z")).is_err());
    two.delete("u", &other.key_id).unwrap();
    two.create(&NewKey::new("u", "z")).unwrap();
    // a change made after the delete is still seen elsewhere (sequence numbers go on)
    let late = a.create(&NewKey::new("v", "late")).unwrap();
    assert!(b.verify(&late.key).unwrap().is_valid());
    a.revoke("v", &late.key_id).unwrap();
    within_a_second(&b, &late.key, &Requirement::none(), "revoked");
}

pub(crate) fn bad_admin_input_changes_nothing(backend: &Backend) {
    let db = TempDb::new();
    let keys = (backend.open)(db.path(), config());
    let mine = keys
        .create(&NewKey::new("u", "mine").scope("read"))
        .unwrap();
    let theirs = keys.create(&NewKey::new("v", "theirs")).unwrap();
    let revoked = keys.create(&NewKey::new("u", "revoked")).unwrap();
    keys.revoke("u", &revoked.key_id).unwrap();
    let rotated = keys.create(&NewKey::new("u", "rotated")).unwrap();
    keys.rotate("u", &rotated.key_id, Duration::from_secs(600))
        .unwrap();
    let deleted = keys.create(&NewKey::new("u", "deleted")).unwrap();
    keys.delete("u", &deleted.key_id).unwrap();
    let before = everything(&keys);

    let not_found = Error::NotFound { what: "api key" };
    let big = json!({ "blob": "x".repeat(MAX_METADATA_BYTES) });
    let invalid = |r: Result<KeyInfo, Error>| {
        assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    };
    // unknown key, another user's key, a deleted key
    for (user, key_id) in [
        ("u", "nosuchkey000"),
        ("u", theirs.key_id.as_str()),
        ("u", deleted.key_id.as_str()),
    ] {
        let rename = KeyUpdate::new().name("n");
        assert_eq!(keys.update(user, key_id, &rename).unwrap_err(), not_found);
        assert_eq!(keys.disable(user, key_id).unwrap_err(), not_found);
        assert_eq!(keys.enable(user, key_id).unwrap_err(), not_found);
        assert_eq!(keys.delete(user, key_id).unwrap_err(), not_found);
    }
    // oversized or non-object metadata, on create and update
    invalid(keys.update("u", &mine.key_id, &KeyUpdate::new().metadata(big.clone())));
    invalid(keys.update("u", &mine.key_id, &KeyUpdate::new().metadata(json!([1, 2]))));
    invalid(keys.update("u", &mine.key_id, &KeyUpdate::new().metadata(json!("text"))));
    assert!(matches!(
        keys.create(&NewKey::new("u", "m").metadata(big)),
        Err(Error::InvalidArgument { .. })
    ));
    // just under the bound is fine (checked on a throwaway store)
    let fits = json!({ "b": "x".repeat(MAX_METADATA_BYTES - 8) });
    assert_eq!(
        serde_json::to_string(&fits).unwrap().len(),
        MAX_METADATA_BYTES
    );
    let spare_db = TempDb::new();
    let spare = (backend.open)(spare_db.path(), config());
    let s = spare.create(&NewKey::new("u", "s")).unwrap();
    spare
        .update("u", &s.key_id, &KeyUpdate::new().metadata(fits))
        .unwrap();
    // an empty update, bad fields
    invalid(keys.update("u", &mine.key_id, &KeyUpdate::new()));
    invalid(keys.update("u", &mine.key_id, &KeyUpdate::new().name("")));
    invalid(keys.update("u", &mine.key_id, &KeyUpdate::new().scopes(["two words"])));
    invalid(keys.update("", &mine.key_id, &KeyUpdate::new().name("n")));
    // a revoked key: no update, no enable, no disable
    invalid(keys.update("u", &revoked.key_id, &KeyUpdate::new().name("n")));
    invalid(keys.enable("u", &revoked.key_id));
    invalid(keys.disable("u", &revoked.key_id));
    // a rotated key's expiry is its grace end
    invalid(keys.update("u", &rotated.key_id, &KeyUpdate::new().expires_at(None)));
    // bad rate syntax never becomes a limit
    for bad in [
        "",
        "100",
        "0/min",
        "100/day",
        "-1/s",
        "1.5/s",
        "100/ min",
        "x/h",
        "99999999999/s",
    ] {
        assert!(
            matches!(RateLimit::parse(bad), Err(Error::InvalidArgument { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(
        everything(&keys),
        before,
        "a refused call changed something"
    );
    assert!(keys.verify(&mine.key).unwrap().is_valid());
    assert!(keys.verify(&theirs.key).unwrap().is_valid());
    assert_eq!(
        refusal(&keys.verify(&revoked.key).unwrap()),
        Some("revoked")
    );
}

pub(crate) fn reviving_an_expired_key_counts_against_the_quota(backend: &Backend) {
    let db = TempDb::new();
    let keys = (backend.open)(db.path(), config().max_active_keys(Some(1)));
    let old = keys
        .create(&NewKey::new("u", "old").expires_in(Duration::from_millis(1)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let new = keys.create(&NewKey::new("u", "new")).unwrap();
    let revive = KeyUpdate::new().expires_at(None);
    assert_eq!(
        keys.update("u", &old.key_id, &revive).unwrap_err(),
        Error::QuotaExceeded { limit: 1 }
    );
    assert_eq!(refusal(&keys.verify(&old.key).unwrap()), Some("expired"));
    // a disabled key still counts (it can come back), so disabling frees nothing
    keys.disable("u", &new.key_id).unwrap();
    assert!(keys.update("u", &old.key_id, &revive).is_err());
    keys.delete("u", &new.key_id).unwrap();
    keys.update("u", &old.key_id, &revive).unwrap();
    assert!(keys.verify(&old.key).unwrap().is_valid());
}

pub(crate) fn list_pages_filter_by_status_and_stay_stable_under_inserts(backend: &Backend) {
    let db = TempDb::new();
    let keys = (backend.open)(db.path(), config());
    let mut want = std::collections::HashMap::<KeyStatus, Vec<String>>::new();
    let mut all = Vec::new();
    for (i, status) in [
        KeyStatus::Active,
        KeyStatus::Revoked,
        KeyStatus::Disabled,
        KeyStatus::Expired,
        KeyStatus::Active,
        KeyStatus::Rotated,
        KeyStatus::Active,
    ]
    .into_iter()
    .enumerate()
    {
        let user = format!("user{}", i % 3);
        let k = keys.create(&NewKey::new(&user, format!("k{i}"))).unwrap();
        match status {
            KeyStatus::Revoked => drop(keys.revoke(&user, &k.key_id).unwrap()),
            KeyStatus::Disabled => drop(keys.disable(&user, &k.key_id).unwrap()),
            KeyStatus::Expired => drop(
                keys.update(
                    &user,
                    &k.key_id,
                    &KeyUpdate::new().expires_at(Some(Timestamp::from_unix_millis(1))),
                )
                .unwrap(),
            ),
            _ => {}
        }
        want.entry(status).or_default().push(k.key_id.clone());
        all.push(k.key_id.clone());
        if status == KeyStatus::Rotated {
            let next = keys
                .rotate(&user, &k.key_id, Duration::from_secs(600))
                .unwrap();
            want.entry(KeyStatus::Active)
                .or_default()
                .push(next.key_id.clone());
            all.push(next.key_id.clone());
        }
    }
    // page through everything two at a time while keys are being created
    let mut seen = Vec::new();
    let mut filter = ListFilter::all().limit(2);
    loop {
        let page = keys.list_page(&filter).unwrap();
        assert!(page.keys.len() <= 2);
        seen.extend(page.keys.iter().map(|i| i.key_id.clone()));
        keys.create(&NewKey::new("late", format!("late{}", seen.len())))
            .unwrap();
        let Some(next) = page.next else { break };
        // a cursor survives being written out and read back
        filter = filter.after(Some(ListCursor::parse(&next.as_string()).unwrap()));
    }
    let mut expected = all.clone();
    expected.reverse(); // newest first
    assert_eq!(seen, expected);
    // by status, every user's and one user's
    for (status, ids) in &want {
        let page = keys
            .list_page(&ListFilter::all().status(*status).limit(1000))
            .unwrap();
        let mut got: Vec<String> = page.keys.iter().map(|i| i.key_id.clone()).collect();
        assert!(page.keys.iter().all(|i| i.status == *status));
        if *status == KeyStatus::Active {
            got.retain(|id| all.contains(id)); // without the late ones
        }
        got.sort();
        let mut ids = ids.clone();
        ids.sort();
        assert_eq!(got, ids, "{status}");
        // a status page of one holds one matching key even when most rows do not match
        let one = keys
            .list_page(&ListFilter::all().status(*status).limit(1))
            .unwrap();
        assert_eq!(one.keys.len(), 1);
        assert_eq!(one.keys[0].status, *status);
    }
    let user1 = keys.list_page(&ListFilter::user("user1")).unwrap();
    assert!(user1.next.is_none());
    assert!(!user1.keys.is_empty());
    assert!(user1.keys.iter().all(|i| i.user_id == "user1"));
    assert_eq!(user1.keys.len(), keys.list("user1").unwrap().len());
    // never a secret or a hash in what a listing serializes
    let text = serde_json::to_string(&user1.keys).unwrap();
    assert!(!text.contains("$2"), "a hash leaked: {text}");
    // bad input
    for bad in [
        ListFilter::all().limit(0),
        ListFilter::all().limit(1001),
        ListFilter::user(""),
    ] {
        assert!(matches!(
            keys.list_page(&bad),
            Err(Error::InvalidArgument { .. })
        ));
    }
    assert!(ListCursor::parse("r0").is_err());
    assert!(ListCursor::parse("12").is_err());
}

/// Updates make cached entries stale, and every thread that meets a stale entry re-reads the
/// row and replaces the entry. Two threads doing so at once must not leave two live entries
/// for one row (a revocation would then flip only one): after `revoke` returns, no thread
/// may see the key valid.
pub(crate) fn concurrent_refreshes_never_outlive_a_revocation(backend: &Backend) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let db = TempDb::new();
    let keys = Arc::new((backend.open)(db.path(), config()));
    for round in 0..20 {
        let user = format!("u{round}");
        let made = keys.create(&NewKey::new(&user, "x").scope("a")).unwrap();
        assert!(keys.verify(&made.key).unwrap().is_valid());
        let revoked = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (keys, key, revoked) = (keys.clone(), made.key.clone(), revoked.clone());
                std::thread::spawn(move || loop {
                    let after = revoked.load(Ordering::SeqCst);
                    let v = keys.verify(&key).unwrap();
                    if after {
                        return refusal(&v).map(str::to_owned);
                    }
                })
            })
            .collect();
        for i in 0..10 {
            let scopes = if i % 2 == 0 { ["a", "b"] } else { ["b", "a"] };
            keys.update(&user, &made.key_id, &KeyUpdate::new().scopes(scopes))
                .unwrap();
        }
        keys.revoke(&user, &made.key_id).unwrap();
        revoked.store(true, Ordering::SeqCst);
        for t in threads {
            assert_eq!(
                t.join().unwrap().as_deref(),
                Some("revoked"),
                "round {round}"
            );
        }
    }
}
