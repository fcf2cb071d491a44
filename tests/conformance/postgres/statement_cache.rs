//! `statement_cache=on` (named statements prepared once per connection, for a direct
//! connection): the key store's pipelined insert, API keys' writes and reads, and a master
//! key rotation run as with the default unnamed statements.

use keyseal::{ApiKeys, KeyStore, MasterKey, NewKey};

use super::{available, PgDb};
use crate::harness::config;

#[test]
fn keys_data_keys_and_rotation_work_with_the_statement_cache_on() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let url = format!("{}&statement_cache=on", db.app_url());
    let master = MasterKey::generate().unwrap();
    let store = KeyStore::open(&url, MasterKey::from_base64(&master.to_base64()).unwrap()).unwrap();
    // Twice each: the second call runs the cached statements.
    for _ in 0..2 {
        let users: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
        let refs: Vec<&str> = users.iter().map(String::as_str).collect();
        let keys = store.get_or_create_user_keys(&refs).unwrap();
        assert_eq!(store.get_user_key("u3").unwrap().as_ref(), Some(&keys[3]));
    }
    let new_master = MasterKey::generate().unwrap();
    store.rotate_master_key(new_master).unwrap();
    assert_eq!(store.user_count().unwrap(), 20);

    let keys = ApiKeys::open_with(&url, config()).unwrap();
    for round in 0..2 {
        let made = keys.create(&NewKey::new("a", format!("k{round}"))).unwrap();
        assert!(keys.verify(&made.key).unwrap().is_valid());
        keys.revoke("a", &made.key_id).unwrap();
        assert_eq!(
            keys.verify(&made.key)
                .unwrap()
                .refusal()
                .map(|r| r.reason()),
            Some("revoked")
        );
    }
    assert_eq!(keys.list("a").unwrap().len(), 2);
}
