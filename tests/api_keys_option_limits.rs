//! Option limits, for the key store and API keys alike: extreme but legal values never panic.
//! A `Duration::MAX` busy timeout or bcrypt wait means "wait as long as it takes", not an overflow.
#![cfg(all(
    feature = "keystore",
    feature = "issuance",
    not(target_arch = "wasm32")
))]

mod common;

use std::time::Duration;

use common::temp_db::TempDb;
use keyseal::{ApiKeys, ApiKeysConfig, KeyStore, KeyStoreOptions, MasterKey, NewKey, Verification};

#[test]
fn huge_durations_are_accepted() {
    let tmp = TempDb::named("k.db");
    let db = tmp.path();
    let options = KeyStoreOptions::default().busy_timeout(Duration::MAX);
    let store = KeyStore::open_with(db, MasterKey::generate().unwrap(), &options).unwrap();
    store.get_or_create_user_key("alice").unwrap();

    let config = ApiKeysConfig::default()
        .bcrypt_cost(4)
        .bcrypt_wait(Duration::MAX)
        .change_check_interval(Duration::MAX)
        .last_use_interval(Duration::MAX);
    let keys = ApiKeys::open_with(db, config).unwrap();
    let created = keys
        .create(&NewKey::new("alice", "n").expires_in(Duration::MAX))
        .unwrap();
    assert!(matches!(
        keys.verify(&created.key).unwrap(),
        Verification::Valid(_)
    ));
    assert!(matches!(
        keys.verify(&created.key).unwrap(),
        Verification::Valid(_)
    ));
    keys.flush().unwrap();
}
