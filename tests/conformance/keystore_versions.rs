//! Versioned data keys, run against every backend (through [`crate::keystore_conformance!`]):
//! rotation of a user's key and of the pool key, disable / enable / destroy, and versions
//! carried through master key rotations and rewraps.

use keyseal::{
    derive_pool_key, Error, KeyOwner, KeyState, KeyStoreOptions, MasterKey, MasterKeyId,
    MasterKeyring,
};

use crate::keystore::Harness;

fn copy(m: &MasterKey) -> MasterKey {
    MasterKey::from_bytes(m.expose_secret()).unwrap()
}

fn states(list: &[keyseal::KeyVersion]) -> Vec<(u32, KeyState)> {
    list.iter().map(|v| (v.version, v.state)).collect()
}

pub fn a_user_key_rotates_and_retires_versions_the_safe_way<H: Harness>() {
    let h = H::fresh();
    let master = MasterKey::generate().unwrap();
    let store = h.open(copy(&master)).unwrap();
    let alice = KeyOwner::User("alice");
    let v1 = store.get_or_create_user_key("alice").unwrap();
    // Shared with the Python module until said otherwise: a new version needs force.
    let err = store.rotate_key(alice, false).unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
    assert_eq!(store.rotate_key(alice, true).unwrap(), 2);
    store.set_shared_with_python(false).unwrap();
    assert_eq!(store.rotate_key(alice, false).unwrap(), 3);
    let (newest, v3) = store.newest_key(alice).unwrap();
    assert_eq!(newest, 3);
    assert_eq!(store.key_version(alice, 1).unwrap(), v1);
    assert_ne!(store.key_version(alice, 2).unwrap(), v1);
    // get_or_create_user_key stays version 1: the Python module's key.
    assert_eq!(store.get_or_create_user_key("alice").unwrap(), v1);

    // Another handle (process) sees the same versions and keys.
    let other = h.open(copy(&master)).unwrap();
    assert_eq!(other.newest_key(alice).unwrap(), (3, v3));
    other.disable_key_version(alice, 3).unwrap();
    // Disabled: refused and counted; new values go to the newest active version.
    let err = store.key_version(alice, 3).unwrap_err();
    assert_eq!(
        err,
        Error::KeyVersionUnavailable {
            version: 3,
            state: "disabled"
        }
    );
    assert_eq!(store.refused_decrypts(), 1);
    assert_eq!(store.newest_key(alice).unwrap().0, 2);
    // Destroy only after disable; version 1 never.
    assert_eq!(
        store.destroy_key_version(alice, 2).unwrap_err().code(),
        "invalid_argument"
    );
    store.disable_key_version(alice, 1).unwrap();
    assert_eq!(
        store.destroy_key_version(alice, 1).unwrap_err().code(),
        "invalid_argument"
    );
    store.enable_key_version(alice, 1).unwrap();
    store.destroy_key_version(alice, 3).unwrap();
    store.destroy_key_version(alice, 3).unwrap();
    assert_eq!(
        store.key_version(alice, 3).unwrap_err(),
        Error::KeyVersionUnavailable {
            version: 3,
            state: "destroyed"
        }
    );
    assert_eq!(
        store.enable_key_version(alice, 3).unwrap_err().code(),
        "key_version_unavailable"
    );
    assert_eq!(
        states(&other.key_versions(alice).unwrap()),
        [
            (1, KeyState::Active),
            (2, KeyState::Active),
            (3, KeyState::Destroyed)
        ]
    );
    assert_eq!(
        store.key_version(alice, 9).unwrap_err().code(),
        "key_version_unavailable"
    );
    // Nothing for a user without a key: no version is made up.
    assert_eq!(
        store
            .rotate_key(KeyOwner::User("bob"), true)
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert!(store
        .key_versions(KeyOwner::User("bob"))
        .unwrap()
        .is_empty());
    assert_eq!(store.user_count().unwrap(), 1);
}

pub fn pool_key_versions_rotate_and_disable<H: Harness>() {
    let h = H::fresh();
    let master = MasterKey::generate().unwrap();
    let original = derive_pool_key(&master);
    let store = h.open(copy(&master)).unwrap();
    assert_eq!(store.rotate_key(KeyOwner::Pool, true).unwrap(), 2);
    let (version, v2) = store.newest_key(KeyOwner::Pool).unwrap();
    assert_eq!(version, 2);
    assert_ne!(v2, original);
    assert_eq!(store.pool_key().unwrap(), v2);
    assert_eq!(store.key_version(KeyOwner::Pool, 1).unwrap(), original);
    store.disable_key_version(KeyOwner::Pool, 2).unwrap();
    assert_eq!(store.pool_key().unwrap(), original);
    store.disable_key_version(KeyOwner::Pool, 1).unwrap();
    assert_eq!(
        store.pool_key().unwrap_err().code(),
        "key_version_unavailable"
    );
    assert_eq!(store.pool_key_versions().unwrap(), [1, 2]);
}

/// Every version survives a one-step rotation and a rolling rewrap, and counts against the
/// old master key until rewrapped.
pub fn key_versions_survive_master_rotations<H: Harness>() {
    let h = H::fresh();
    let (a, b, c) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let store = h.open(copy(&a)).unwrap();
    store.get_or_create_user_key("alice").unwrap();
    store.rotate_key(KeyOwner::User("alice"), true).unwrap();
    store.rotate_key(KeyOwner::Pool, true).unwrap();
    let alice2 = store.key_version(KeyOwner::User("alice"), 2).unwrap();
    let pool2 = store.pool_key().unwrap();
    let report = store.rotate_master_key(copy(&b)).unwrap();
    assert_eq!((report.rewrapped, report.key_versions), (1, 3));
    let ring = MasterKeyring::new(copy(&c)).with_previous(copy(&b));
    let rolling = h.open_keyring(ring, KeyStoreOptions::default()).unwrap();
    assert_eq!(
        rolling.key_version(KeyOwner::User("alice"), 2).unwrap(),
        alice2
    );
    let err = rolling.retire_master_key(&MasterKeyId::of(&b)).unwrap_err();
    assert!(err.to_string().contains("still wraps 4"), "{err}");
    assert_eq!(rolling.rewrap_master_keys(1, |_| {}).unwrap().rewrapped, 4);
    rolling.retire_master_key(&MasterKeyId::of(&b)).unwrap();
    let only_c = h.open(c).unwrap();
    assert_eq!(
        only_c.key_version(KeyOwner::User("alice"), 2).unwrap(),
        alice2
    );
    assert_eq!(only_c.pool_key().unwrap(), pool2);
    assert_eq!(
        only_c.key_version(KeyOwner::Pool, 1).unwrap(),
        derive_pool_key(&a)
    );
}

/// A copy into a new `SQLite` file carries the key versions, the master keys and the pool key:
/// values under every version still decrypt there.
pub fn key_versions_survive_a_copy<H: Harness>() {
    let h = H::fresh();
    let master = MasterKey::generate().unwrap();
    let store = h.open(copy(&master)).unwrap();
    store.get_or_create_user_key("alice").unwrap();
    store.rotate_key(KeyOwner::User("alice"), true).unwrap();
    store.rotate_key(KeyOwner::Pool, true).unwrap();
    store.disable_key_version(KeyOwner::Pool, 2).unwrap();
    let alice2 = store.key_version(KeyOwner::User("alice"), 2).unwrap();
    let target = crate::common::temp_db::TempDb::new();
    store.copy_to(target.path()).unwrap();
    let copied = keyseal::KeyStore::open(target.path(), master).unwrap();
    assert_eq!(
        copied.key_version(KeyOwner::User("alice"), 2).unwrap(),
        alice2
    );
    assert_eq!(copied.pool_key().unwrap(), store.pool_key().unwrap());
    assert_eq!(
        states(&copied.key_versions(KeyOwner::Pool).unwrap()),
        [(1, KeyState::Active), (2, KeyState::Disabled)]
    );
}
