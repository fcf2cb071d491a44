//! The key store's master keyring, run against every backend (through
//! [`crate::keystore_conformance!`]): rolling rotation across processes, rewrap in batches,
//! retirement, the pool key across rotations.

use keyseal::{derive_pool_key, Error, KeyStoreOptions, MasterKey, MasterKeyId, MasterKeyring};

use crate::keystore::Harness;

fn copy(m: &MasterKey) -> MasterKey {
    MasterKey::from_bytes(m.expose_secret()).unwrap()
}

fn ring(current: &MasterKey, previous: &[&MasterKey]) -> MasterKeyring {
    previous
        .iter()
        .fold(MasterKeyring::new(copy(current)), |r, p| {
            r.with_previous(copy(p))
        })
}

fn names(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The fleet procedure: every server gets the new key as a previous one, then one by one as
/// the current one; new rows are wrapped under it and read by servers that only hold it as
/// previous; a server without it is told which key it lacks; rewrap, then retire the old key.
pub fn a_fleet_rotates_its_master_key_server_by_server<H: Harness>() {
    let h = H::fresh();
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let (old_id, new_id) = (MasterKeyId::of(&old), MasterKeyId::of(&new));
    let first = h.open(copy(&old)).unwrap();
    let users = names(50, "before");
    let keys = first
        .get_or_create_user_keys(&users.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();
    let pool = first.pool_key().unwrap();
    let laggard = h.open(copy(&old)).unwrap();
    // Step 1: the new key as a previous one everywhere (nothing changes on disk yet).
    let b = h
        .open_keyring(ring(&old, &[&new]), KeyStoreOptions::default())
        .unwrap();
    // Step 2: server A makes it current; its new rows are wrapped under it.
    let a = h
        .open_keyring(ring(&new, &[&old]), KeyStoreOptions::default())
        .unwrap();
    let made_by_a = a.get_or_create_user_key("made-by-a").unwrap();
    assert_eq!(a.get_user_key("before-7").unwrap().as_ref(), Some(&keys[7]));
    assert_eq!(
        b.get_user_key("made-by-a").unwrap().as_ref(),
        Some(&made_by_a)
    );
    let made_by_b = b.get_or_create_user_key("made-by-b").unwrap();
    assert_eq!(
        a.get_user_key("made-by-b").unwrap().as_ref(),
        Some(&made_by_b)
    );
    // A server that was never given the new key says which key it lacks.
    assert_eq!(
        laggard.get_user_key("made-by-a").unwrap_err(),
        Error::MissingMasterKey {
            id: new_id.to_string(),
            user_id: Some("made-by-a".into())
        }
    );
    // Retiring the old key is refused while rows need it.
    let refused = a.retire_master_key(&old_id).unwrap_err();
    assert_eq!(refused.code(), "invalid_argument", "{refused}");
    // Step 3: rewrap in the background, in small batches.
    let mut batches = 0;
    let report = a.rewrap_master_keys(7, |_| batches += 1).unwrap();
    // 50 users, made-by-b (under the old key) and pool key version 1.
    assert_eq!(
        (report.rewrapped, report.skipped, report.refused),
        (52, 0, 0)
    );
    assert!(batches >= 8, "{batches} batches");
    // Step 4: every server has the new key as current (B reopens), then the old is retired.
    drop(b);
    a.retire_master_key(&old_id).unwrap();
    let only_new = h.open(copy(&new)).unwrap();
    for (user, key) in users.iter().zip(&keys) {
        assert_eq!(
            only_new.get_user_key(user).unwrap().as_ref(),
            Some(key),
            "{user}"
        );
    }
    assert_eq!(only_new.get_user_key("made-by-b").unwrap(), Some(made_by_b));
    assert_eq!(only_new.pool_key().unwrap(), pool);
    assert_eq!(only_new.pool_key().unwrap(), derive_pool_key(&old));
    // The old key opens nothing any more, alone or as a keyring's current key, and a process
    // still holding it as current can no longer write.
    assert_eq!(
        h.open(copy(&old)).unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    let stale = h.open_keyring(ring(&old, &[&new]), KeyStoreOptions::default());
    assert_eq!(stale.unwrap_err(), Error::WrongMasterKey { user_id: None });
    assert_eq!(
        laggard.get_or_create_user_key("late").unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    let status = only_new.master_keys().unwrap();
    let old_status = status.iter().find(|s| s.id == old_id).unwrap();
    assert!(old_status.retired && old_status.wraps == 0 && !old_status.legacy);
    let new_status = status.iter().find(|s| s.id == new_id).unwrap();
    assert!(new_status.current && new_status.legacy && !new_status.retired);
    assert_eq!(new_status.wraps, 53, "52 users and the pool key");
}

/// A rewrap interrupted after any batch resumes where it stopped: a second run finds nothing
/// to do, and rows created meanwhile by a process still on the old key are picked up.
pub fn rewrap_resumes_and_never_rewraps_a_row_twice<H: Harness>() {
    let h = H::fresh();
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let writer = h
        .open_keyring(ring(&old, &[&new]), KeyStoreOptions::default())
        .unwrap();
    let users = names(30, "u");
    let keys = writer
        .get_or_create_user_keys(&users.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();
    let rewrapper = h
        .open_keyring(ring(&new, &[&old]), KeyStoreOptions::default())
        .unwrap();
    // Stop after two batches of 4 (as a crash would: those batches are committed).
    let mut seen = Vec::new();
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rewrapper
            .rewrap_master_keys(4, |r| {
                seen.push(r.rewrapped);
                assert!(r.rewrapped < 8, "stop");
            })
            .unwrap()
    }));
    assert!(stopped.is_err());
    assert_eq!(seen, [4, 8]);
    writer.get_or_create_user_key("late").unwrap();
    let report = rewrapper.rewrap_master_keys(4, |_| {}).unwrap();
    // 22 users left and "late" (the pool key was first stored by the rewrapper, under the new
    // key).
    assert_eq!(report.rewrapped, 23);
    let again = rewrapper.rewrap_master_keys(4, |_| {}).unwrap();
    assert_eq!((again.rewrapped, again.skipped, again.refused), (0, 0, 0));
    let fresh = h.open(copy(&new)).unwrap();
    for (user, key) in users.iter().zip(&keys) {
        assert_eq!(fresh.get_user_key(user).unwrap().as_ref(), Some(key));
    }
    assert!(fresh.get_user_key("late").unwrap().is_some());
    assert_eq!(
        fresh.rewrap_master_keys(0, |_| {}).unwrap_err().code(),
        "invalid_argument"
    );
}

/// What cannot be retired: the current key, a key the store does not know.
pub fn retiring_the_current_or_an_unknown_master_key_is_refused<H: Harness>() {
    let h = H::fresh();
    let (old, stranger) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let store = h.open(copy(&old)).unwrap();
    store.get_or_create_user_key("alice").unwrap();
    let err = store.retire_master_key(&MasterKeyId::of(&old)).unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    let err = store
        .retire_master_key(&MasterKeyId::of(&stranger))
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
    // A stranger's key as current with no key of the store is refused, and adds nothing.
    let err = h.open_keyring(ring(&stranger, &[]), KeyStoreOptions::default());
    assert_eq!(err.unwrap_err(), Error::WrongMasterKey { user_id: None });
    assert_eq!(store.master_keys().unwrap().len(), 1);
}

/// One-step rotations, several in a row: the pool key stays the one derived from the first
/// master key, and its version list says so.
pub fn the_pool_key_survives_every_master_rotation<H: Harness>() {
    let h = H::fresh();
    let first = MasterKey::generate().unwrap();
    let expected = derive_pool_key(&first);
    let store = h.open(copy(&first)).unwrap();
    let mut last = MasterKey::generate().unwrap();
    store.rotate_master_key(copy(&last)).unwrap();
    for _ in 0..2 {
        last = MasterKey::generate().unwrap();
        let report = store.rotate_master_key(copy(&last)).unwrap();
        assert_eq!(report.key_versions, 1);
    }
    let reopened = h.open(last).unwrap();
    assert_eq!(reopened.pool_key().unwrap(), expected);
    assert_eq!(reopened.pool_key_versions().unwrap(), [1]);
}
