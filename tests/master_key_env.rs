//! `resolve_master_key` reads the process environment; these cases run in one test (its own
//! binary) so no other test races on the variable.
// Native only (proptest; the process environment).
#![cfg(not(target_arch = "wasm32"))]

use keyseal::{resolve_master_key, MASTER_KEY_ENV};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[test]
fn resolve_master_key_follows_the_python_rules() {
    std::env::remove_var(MASTER_KEY_ENV);
    assert!(resolve_master_key().is_none(), "missing");

    let text = include_str!("vectors/python/python-interop.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    for case in json["master_key_env"].as_array().unwrap() {
        std::env::set_var(MASTER_KEY_ENV, case["value"].as_str().unwrap());
        let got = resolve_master_key().map(|k| k.to_base64());
        assert_eq!(
            got.as_deref(),
            case["resolves_to_b64"].as_str(),
            "{}",
            case["why"]
        );
    }

    // No value makes it panic.
    let mut runner = TestRunner::new(Config::with_cases(512));
    runner
        .run(&"\\PC{0,80}", |value| {
            std::env::set_var(MASTER_KEY_ENV, &value);
            let _ = resolve_master_key();
            Ok(())
        })
        .unwrap();
    let mut runner = TestRunner::new(Config::with_cases(256));
    runner
        .run(&"[A-Za-z0-9_+/=-]{40,48}", |value| {
            std::env::set_var(MASTER_KEY_ENV, &value);
            if let Some(key) = resolve_master_key() {
                prop_assert_eq!(key.expose_secret().len(), 32);
            }
            Ok(())
        })
        .unwrap();
    std::env::remove_var(MASTER_KEY_ENV);
}
