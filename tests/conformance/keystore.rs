//! The key store's behaviour, written once and run against every backend.
//!
//! A backend joins by implementing [`Harness`] (a fresh, empty store, and a way to open it as
//! often as a test wants, each handle standing for another process) and invoking
//! [`keystore_conformance!`] with it, as `sqlite/keystore.rs` does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use keyseal::{DataKey, Error, KeyStore, KeyStoreOptions, MasterKey, MasterKeyId, MasterKeyring};

/// A backend under test.
pub trait Harness: Sized {
    /// Whether the backend can run here; when not, its tests are skipped (this function
    /// prints why) or, where the backend is required, it panics.
    fn available() -> bool {
        true
    }

    /// A fresh, empty place for one store.
    fn fresh() -> Self;

    /// Opens the store there with the master keys of `ring` and `options`; each call is a
    /// separate handle, with its own connections and cache, as another process would hold.
    fn open_keyring(
        &self,
        ring: MasterKeyring,
        options: KeyStoreOptions,
    ) -> Result<KeyStore, Error>;

    /// [`Harness::open_keyring`] with one master key.
    fn open_with(&self, master: MasterKey, options: KeyStoreOptions) -> Result<KeyStore, Error> {
        self.open_keyring(MasterKeyring::new(master), options)
    }

    /// [`Harness::open_with`] with the default options.
    fn open(&self, master: MasterKey) -> Result<KeyStore, Error> {
        self.open_with(master, KeyStoreOptions::default())
    }
}

pub use crate::keystore_keyring::*;
pub use crate::keystore_versions::*;

fn copy(m: &MasterKey) -> MasterKey {
    MasterKey::from_bytes(m.expose_secret()).unwrap()
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn refs(ids: &[String]) -> Vec<&str> {
    ids.iter().map(String::as_str).collect()
}

pub fn a_user_keeps_one_key_across_calls_and_handles<H: Harness>() {
    let h = H::fresh();
    let master = MasterKey::generate().unwrap();
    let store = h.open(copy(&master)).unwrap();
    assert_eq!(store.get_user_key("alice").unwrap(), None);
    let key = store.get_or_create_user_key("alice").unwrap();
    assert_eq!(store.get_or_create_user_key("alice").unwrap(), key);
    assert_eq!(store.get_user_key("alice").unwrap().as_ref(), Some(&key));
    let other = h.open(master).unwrap();
    assert_eq!(other.get_or_create_user_key("alice").unwrap(), key);
    assert_eq!(other.user_count().unwrap(), 1);
}

pub fn many_users_at_once_repeat_and_create_once<H: Harness>() {
    let h = H::fresh();
    let store = h.open(MasterKey::generate().unwrap()).unwrap();
    let first = store.get_or_create_user_key("b").unwrap();
    let keys = store
        .get_or_create_user_keys(&["a", "b", "a", "c"])
        .unwrap();
    assert_eq!(keys[0], keys[2]);
    assert_eq!(keys[1], first);
    assert_ne!(keys[0], keys[3]);
    assert_eq!(store.user_count().unwrap(), 3);
}

pub fn invalid_user_ids_are_refused_before_storage<H: Harness>() {
    let h = H::fresh();
    let store = h.open(MasterKey::generate().unwrap()).unwrap();
    let long = "x".repeat(keyseal::MAX_USER_ID_LEN + 1);
    for bad in ["", "a\0b", long.as_str()] {
        let err = store.get_or_create_user_key(bad).unwrap_err();
        assert_eq!(err.code(), "invalid_argument");
        let err = store.get_user_key(bad).unwrap_err();
        assert_eq!(err.code(), "invalid_argument");
    }
    let err = store.get_or_create_user_keys(&["ok", ""]).unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    assert_eq!(store.user_count().unwrap(), 0, "nothing written");
}

/// Eight threads of one handle walk the same thousand new users in different orders: one row
/// and one key each.
pub fn threads_creating_the_same_users_get_one_row_each<H: Harness>() {
    let h = H::fresh();
    let master = MasterKey::generate().unwrap();
    let store = h.open(copy(&master)).unwrap();
    let results: Vec<Vec<[u8; 32]>> = thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                s.spawn(move || {
                    let mut out = vec![[0u8; 32]; 1000];
                    for j in 0..1000 {
                        let i = (j * 7 + t * 131) % 1000;
                        let key = store.get_or_create_user_key(&format!("u{i}")).unwrap();
                        out[i] = *key.expose_secret();
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(results[1..].iter().all(|r| r == &results[0]));
    assert_eq!(store.user_count().unwrap(), 1000);
    let fresh = h.open(master).unwrap();
    for (i, key) in results[0].iter().enumerate() {
        let stored = fresh.get_user_key(&format!("u{i}")).unwrap().unwrap();
        assert_eq!(stored.expose_secret(), key);
    }
}

/// Separate handles (own connections, own caches: separate processes) race to one row.
pub fn separate_handles_race_to_one_row<H: Harness>() {
    let h = H::fresh();
    let master = MasterKey::generate().unwrap();
    let stores: Vec<KeyStore> = (0..4).map(|_| h.open(copy(&master)).unwrap()).collect();
    let barrier = Arc::new(Barrier::new(stores.len()));
    let keys: Vec<Vec<DataKey>> = thread::scope(|s| {
        let workers: Vec<_> = stores
            .iter()
            .map(|store| {
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    barrier.wait();
                    (0..200)
                        .map(|i| store.get_or_create_user_key(&format!("u{i}")).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(keys[1..].iter().all(|k| k == &keys[0]));
    assert_eq!(stores[0].user_count().unwrap(), 200);
}

pub fn a_wrong_master_key_is_refused_and_changes_nothing<H: Harness>() {
    let h = H::fresh();
    let master = MasterKey::generate().unwrap();
    let store = h.open(copy(&master)).unwrap();
    let key = store.get_or_create_user_key("alice").unwrap();
    drop(store);
    assert_eq!(
        h.open(MasterKey::generate().unwrap()).unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    let store = h.open(master).unwrap();
    assert_eq!(store.get_user_key("alice").unwrap(), Some(key));
    assert_eq!(store.user_count().unwrap(), 1);
}

pub fn rotation_keeps_data_keys_and_retires_the_old_master_key<H: Harness>() {
    let h = H::fresh();
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let store = h.open(copy(&old)).unwrap();
    let keys = store.get_or_create_user_keys(&["a", "b", "c"]).unwrap();
    let mut last = (0, 0);
    let report = store
        .rotate_master_key_with_progress(copy(&new), |done, total| last = (done, total))
        .unwrap();
    assert_eq!((report.rewrapped, last), (3, (3, 3)));
    assert_eq!(store.get_or_create_user_key("a").unwrap(), keys[0]);
    // The pool key survives the rotation (it used to change silently with the master key).
    assert_eq!(store.pool_key().unwrap(), keyseal::derive_pool_key(&old));
    assert_eq!(report.key_versions, 1);
    let d = store.get_or_create_user_key("d").unwrap();
    let reopened = h.open(copy(&new)).unwrap();
    assert_eq!(reopened.get_user_key("c").unwrap().as_ref(), Some(&keys[2]));
    assert_eq!(reopened.get_user_key("d").unwrap(), Some(d));
    assert_eq!(
        h.open(old).unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    // Rotating again, from the other handle, is fine.
    let report = reopened.rotate_master_key(MasterKey::generate().unwrap());
    assert_eq!(report.unwrap().rewrapped, 4);
}

/// A handle still holding the old master key after another rotated: cached keys stay right,
/// reads of rows fail naming the master key they need, writes are refused, never made under
/// the old key.
pub fn a_stale_handle_never_writes_under_the_old_master_key<H: Harness>() {
    let h = H::fresh();
    let old = MasterKey::generate().unwrap();
    let a = h.open(copy(&old)).unwrap();
    let b = h.open(old).unwrap();
    let alice = a.get_or_create_user_key("alice").unwrap();
    b.get_or_create_user_key("bob").unwrap();
    let new = MasterKey::generate().unwrap();
    let new_id = MasterKeyId::of(&new);
    b.rotate_master_key(new).unwrap();
    assert_eq!(a.get_or_create_user_key("alice").unwrap(), alice);
    assert_eq!(
        a.get_or_create_user_key("bob").unwrap_err(),
        Error::MissingMasterKey {
            id: new_id.to_string(),
            user_id: Some("bob".into())
        }
    );
    assert_eq!(
        a.get_or_create_user_key("carol").unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    assert!(a.rotate_master_key(MasterKey::generate().unwrap()).is_err());
    assert_eq!(b.user_count().unwrap(), 2);
    assert!(b.get_user_key("carol").unwrap().is_none());
}

/// With the cache off, every read goes to storage while rows are rewrapped, four times over;
/// readers and a creator of the same handle never fail, and every row, including those
/// created mid-rotation, opens with the final key.
pub fn readers_and_creators_during_rotations_never_fail<H: Harness>() {
    let h = H::fresh();
    let options = KeyStoreOptions::default().cache_capacity(0);
    let store = h
        .open_with(MasterKey::generate().unwrap(), options)
        .unwrap();
    let ids = ids("user", 2000);
    let keys = store.get_or_create_user_keys(&refs(&ids)).unwrap();
    let last = MasterKey::generate().unwrap();
    let last_copy = copy(&last);
    let stop = AtomicBool::new(false);
    let created = thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|t| {
                let (store, ids, keys, stop) = (&store, &ids, &keys, &stop);
                s.spawn(move || {
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        let key = store.get_or_create_user_key(&ids[i % ids.len()]).unwrap();
                        assert_eq!(key, keys[i % ids.len()]);
                        i += 7;
                    }
                })
            })
            .collect();
        let creator = s.spawn(|| {
            let mut made = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let id = format!("new-{}", made.len());
                made.push((id.clone(), store.get_or_create_user_key(&id).unwrap()));
            }
            made
        });
        for _ in 0..3 {
            store
                .rotate_master_key(MasterKey::generate().unwrap())
                .unwrap();
        }
        store.rotate_master_key(last).unwrap();
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        creator.join().unwrap()
    });
    let fresh = h.open(last_copy).unwrap();
    for (id, key) in &created {
        assert_eq!(&fresh.get_user_key(id).unwrap().unwrap(), key);
    }
    let expected = (ids.len() + created.len()) as u64;
    assert_eq!(fresh.user_count().unwrap(), expected);
}

/// Users created by another handle while a rotation runs are either rewrapped by it or
/// refused, never left under the old master key.
pub fn rows_created_by_another_handle_during_a_rotation_are_never_left_behind<H: Harness>() {
    let h = H::fresh();
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let rotator = h.open(copy(&old)).unwrap();
    let writer = h.open(copy(&old)).unwrap();
    let ids = ids("seed", 2000);
    rotator.get_or_create_user_keys(&refs(&ids)).unwrap();
    let created: Vec<(String, DataKey)> = thread::scope(|s| {
        let creating = s.spawn(|| {
            (0..300)
                .filter_map(|i| {
                    let id = format!("during-{i}");
                    match writer.get_or_create_user_key(&id) {
                        Ok(key) => Some((id, key)),
                        Err(Error::WrongMasterKey { user_id: None }) => None,
                        Err(e) => panic!("{e}"),
                    }
                })
                .collect()
        });
        rotator.rotate_master_key(copy(&new)).unwrap();
        creating.join().unwrap()
    });
    let reopened = h.open(new).unwrap();
    for (id, key) in &created {
        assert_eq!(
            reopened.get_user_key(id).unwrap().as_ref(),
            Some(key),
            "{id}"
        );
    }
    let expected = (ids.len() + created.len()) as u64;
    assert_eq!(reopened.user_count().unwrap(), expected);
}

/// Generates one `#[test]` per behaviour for the harness type `$harness`.
#[macro_export]
macro_rules! keystore_conformance {
    ($harness:ty) => {
        $crate::keystore_conformance!(@tests $harness;
            a_user_keeps_one_key_across_calls_and_handles,
            many_users_at_once_repeat_and_create_once,
            invalid_user_ids_are_refused_before_storage,
            threads_creating_the_same_users_get_one_row_each,
            separate_handles_race_to_one_row,
            a_wrong_master_key_is_refused_and_changes_nothing,
            rotation_keeps_data_keys_and_retires_the_old_master_key,
            a_stale_handle_never_writes_under_the_old_master_key,
            readers_and_creators_during_rotations_never_fail,
            rows_created_by_another_handle_during_a_rotation_are_never_left_behind,
            a_fleet_rotates_its_master_key_server_by_server,
            rewrap_resumes_and_never_rewraps_a_row_twice,
            retiring_the_current_or_an_unknown_master_key_is_refused,
            the_pool_key_survives_every_master_rotation,
            a_user_key_rotates_and_retires_versions_the_safe_way,
            pool_key_versions_rotate_and_disable,
            key_versions_survive_master_rotations,
            key_versions_survive_a_copy,
        );
    };
    (@tests $harness:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if <$harness as $crate::keystore::Harness>::available() {
                    $crate::keystore::$name::<$harness>();
                }
            }
        )*
    };
}
