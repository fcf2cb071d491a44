//! The key store's behaviour, written once and run against every backend.
//!
//! A backend joins by implementing [`Harness`] (a fresh, empty store, and a way to open it,
//! as often as a test wants, as separate processes would) and invoking
//! [`keystore_conformance!`] with it. The `SQLite` harness is at the end of this file.

use std::sync::{Arc, Barrier};
use std::thread;

use keyseal::{DataKey, Error, KeyStore, MasterKey};

/// A backend under test.
pub trait Harness: Sized {
    /// A fresh, empty place for one store.
    fn fresh() -> Self;
    /// Opens the store there with `master` (each call is a separate handle, as another
    /// process would hold).
    fn open(&self, master: MasterKey) -> Result<KeyStore, Error>;
}

fn copy(m: &MasterKey) -> MasterKey {
    MasterKey::from_bytes(m.expose_secret()).unwrap()
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

pub fn racing_creators_in_threads_and_handles_get_one_key<H: Harness>() {
    const THREADS: usize = 8;
    let h = H::fresh();
    let master = MasterKey::generate().unwrap();
    let handles: Vec<KeyStore> = (0..2).map(|_| h.open(copy(&master)).unwrap()).collect();
    let barrier = Arc::new(Barrier::new(THREADS));
    let keys: Vec<DataKey> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = handles[t % 2].clone();
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    barrier.wait();
                    store.get_or_create_user_key("new-user").unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(
        keys.windows(2).all(|w| w[0] == w[1]),
        "one key for everyone"
    );
    assert_eq!(handles[0].user_count().unwrap(), 1);
}

pub fn a_wrong_master_key_is_refused_and_changes_nothing<H: Harness>() {
    let h = H::fresh();
    let master = MasterKey::generate().unwrap();
    let key = h
        .open(copy(&master))
        .unwrap()
        .get_or_create_user_key("alice")
        .unwrap();
    assert_eq!(
        h.open(MasterKey::generate().unwrap()).unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    let store = h.open(master).unwrap();
    assert_eq!(store.get_user_key("alice").unwrap(), Some(key));
    assert_eq!(store.user_count().unwrap(), 1);
}

pub fn invalid_user_ids_are_refused_before_storage<H: Harness>() {
    let h = H::fresh();
    let store = h.open(MasterKey::generate().unwrap()).unwrap();
    let long = "x".repeat(keyseal::MAX_USER_ID_LEN + 1);
    for bad in ["", "a\0b", long.as_str()] {
        assert_eq!(
            store.get_or_create_user_key(bad).unwrap_err().code(),
            "invalid_argument"
        );
        assert_eq!(
            store.get_user_key(bad).unwrap_err().code(),
            "invalid_argument"
        );
    }
    assert_eq!(
        store
            .get_or_create_user_keys(&["ok", ""])
            .unwrap_err()
            .code(),
        "invalid_argument"
    );
    assert_eq!(store.user_count().unwrap(), 0, "nothing written");
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
    let d = store.get_or_create_user_key("d").unwrap();
    let reopened = h.open(copy(&new)).unwrap();
    assert_eq!(reopened.get_user_key("c").unwrap().as_ref(), Some(&keys[2]));
    assert_eq!(reopened.get_user_key("d").unwrap(), Some(d));
    assert_eq!(
        h.open(old).unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
}

pub fn a_stale_handle_never_writes_under_the_old_master_key<H: Harness>() {
    let h = H::fresh();
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let rotator = h.open(copy(&old)).unwrap();
    let stale = h.open(copy(&old)).unwrap();
    rotator.get_or_create_user_key("before").unwrap();
    rotator.rotate_master_key(copy(&new)).unwrap();
    assert_eq!(
        stale.get_or_create_user_key("after").unwrap_err(),
        Error::WrongMasterKey { user_id: None }
    );
    let fresh = h.open(new).unwrap();
    assert_eq!(fresh.get_user_key("after").unwrap(), None);
    assert_eq!(fresh.user_count().unwrap(), 1);
}

/// Users created by another handle while a rotation runs are either rewrapped by it or
/// refused, never left under the old master key.
pub fn rows_created_during_a_rotation_are_never_left_behind<H: Harness>() {
    const USERS: usize = 300;
    let h = H::fresh();
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let rotator = h.open(copy(&old)).unwrap();
    let writer = h.open(copy(&old)).unwrap();
    let ids: Vec<String> = (0..2000).map(|i| format!("seed-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    rotator.get_or_create_user_keys(&refs).unwrap();
    let created: Vec<(String, DataKey)> = thread::scope(|s| {
        let creating = s.spawn(|| {
            (0..USERS)
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
    assert_eq!(
        reopened.user_count().unwrap(),
        (ids.len() + created.len()) as u64
    );
}

/// Generates one `#[test]` per behaviour for the harness type `$harness`.
#[macro_export]
macro_rules! keystore_conformance {
    ($harness:ty) => {
        $crate::keystore_conformance!(@tests $harness;
            a_user_keeps_one_key_across_calls_and_handles,
            many_users_at_once_repeat_and_create_once,
            racing_creators_in_threads_and_handles_get_one_key,
            a_wrong_master_key_is_refused_and_changes_nothing,
            invalid_user_ids_are_refused_before_storage,
            rotation_keeps_data_keys_and_retires_the_old_master_key,
            a_stale_handle_never_writes_under_the_old_master_key,
            rows_created_during_a_rotation_are_never_left_behind,
        );
    };
    (@tests $harness:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::keystore::$name::<$harness>();
            }
        )*
    };
}

/// The `SQLite` backend: a fresh file in a temporary folder.
pub struct Sqlite(crate::common::temp_db::TempDb);

impl Harness for Sqlite {
    fn fresh() -> Self {
        Sqlite(crate::common::temp_db::TempDb::new())
    }

    fn open(&self, master: MasterKey) -> Result<KeyStore, Error> {
        KeyStore::open(self.0.path(), master)
    }
}

mod sqlite {
    keystore_conformance!(super::Sqlite);
}
