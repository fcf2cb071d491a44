//! One user id rule: the key store and API keys accept and refuse the same ids (API keys used
//! to refuse spaces and ids past 256 bytes that the key store accepted, so a user could get a
//! data key but not an API key).
#![cfg(all(
    feature = "keystore",
    feature = "issuance",
    not(target_arch = "wasm32")
))]
#![allow(missing_docs)]

use keyseal::{ApiKeys, ApiKeysConfig, KeyStore, MasterKey, NewKey, MAX_USER_ID_LEN};

#[test]
fn key_store_and_api_keys_accept_and_refuse_the_same_user_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate().unwrap()).unwrap();
    let keys = ApiKeys::open_with(
        dir.path().join("api.db"),
        ApiKeysConfig::default().bcrypt_cost(4),
    )
    .unwrap();
    let cases: Vec<(String, bool)> = vec![
        ("user-1".into(), true),
        ("user 42@example.com".into(), true),
        ("tab\there".into(), true),
        ("é".repeat(300), true),
        ("x".repeat(257), true),
        ("x".repeat(MAX_USER_ID_LEN), true),
        (String::new(), false),
        ("x".repeat(MAX_USER_ID_LEN + 1), false),
        ("a\0b".into(), false),
    ];
    for (id, accepted) in cases {
        let in_store = store.get_or_create_user_key(&id);
        let in_keys = keys.create(&NewKey::new(&id, "ci"));
        assert_eq!(
            in_store.is_ok(),
            accepted,
            "key store on {:?}",
            &id[..id.len().min(20)]
        );
        assert_eq!(
            in_keys.is_ok(),
            accepted,
            "api keys on {:?}",
            &id[..id.len().min(20)]
        );
        if !accepted {
            assert_eq!(in_store.unwrap_err().code(), "invalid_argument");
            assert_eq!(in_keys.unwrap_err().code(), "invalid_argument");
        }
    }
}
