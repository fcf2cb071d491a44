//! Property tests of the key parser: nothing panics, and only exact keys pass.
#![cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
#![allow(missing_docs)]

use std::sync::OnceLock;

mod common;
use common::temp_db::TempDb;
use keyseal::{ApiKeys, ApiKeysConfig, KeyFormat, NewKey, Timestamp, Verification};
use proptest::prelude::*;

struct Fixture {
    keys: ApiKeys,
    key: String,
    // A static is never dropped: the folder outlives the run, as one small file.
    _db: TempDb,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let db = TempDb::named("k.db");
        let keys = ApiKeys::open_with(db.path(), ApiKeysConfig::default().bcrypt_cost(4)).unwrap();
        let key = keys.create(&NewKey::new("u", "p")).unwrap().key.clone();
        Fixture { keys, key, _db: db }
    })
}

fn reason(v: &Verification) -> &'static str {
    v.refusal().map_or("valid", |r| r.reason())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn any_string_is_refused_without_panic(s in ".{0,200}") {
        let f = fixture();
        let v = f.keys.verify(&s).unwrap();
        prop_assert!(!v.is_valid());
    }

    #[test]
    fn key_shaped_strings_never_panic(
        marker in prop_oneof!["live", "test", "lve", "TEST", ""],
        body in "[0-9A-Za-z_é-]{0,70}",
    ) {
        let f = fixture();
        let s = format!("ks_{marker}_{body}");
        let v = f.keys.verify(&s).unwrap();
        prop_assert!(matches!(reason(&v), "malformed" | "unknown"));
    }

    #[test]
    fn any_single_edit_of_a_real_key_is_refused(i in 0usize..69, c in any::<char>()) {
        let f = fixture();
        let mut chars: Vec<char> = f.key.chars().collect();
        prop_assume!(chars[i] != c);
        chars[i] = c;
        let s: String = chars.into_iter().collect();
        let v = f.keys.verify(&s).unwrap();
        prop_assert_eq!(reason(&v), "malformed");
    }

    #[test]
    fn truncations_and_extensions_are_malformed(cut in 0usize..69, extra in "[0-9A-Za-z]{1,5}") {
        let f = fixture();
        prop_assert_eq!(reason(&f.keys.verify(&f.key[..cut]).unwrap()), "malformed");
        let longer = format!("{}{extra}", f.key);
        prop_assert_eq!(reason(&f.keys.verify(&longer).unwrap()), "malformed");
    }
}

proptest! {
    #[test]
    fn timestamps_and_tags_never_panic(s in ".{0,40}", ms in -10_000_000_000_000i64..10_000_000_000_000) {
        let _ = Timestamp::parse(&s);
        let _ = KeyFormat::new(&s);
        let t = Timestamp::from_unix_millis(ms);
        prop_assert_eq!(Timestamp::parse(&t.to_string()), Some(t));
    }

    #[test]
    fn date_shaped_strings_never_panic(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{0,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?") {
        let _ = Timestamp::parse(&s);
    }
}

#[test]
fn the_real_key_is_valid() {
    let f = fixture();
    assert!(f.keys.verify(&f.key).unwrap().is_valid());
}
