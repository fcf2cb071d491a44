//! `resolve_master_key` reads the process environment; these cases run in one test (its own
//! binary) so no other test races on the variable.
// Native only (proptest; the process environment).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::base64_cases::{case_strategy, python_answers, std_b64, Case, Kind};
use common::process::python_ready;
use keyseal::{resolve_master_key, MASTER_KEY_ENV};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

#[test]
fn resolve_master_key_follows_the_python_rules() {
    std::env::remove_var(MASTER_KEY_ENV);
    assert!(resolve_master_key().is_none(), "missing");

    for case in &common::vectors::python_vectors().master_key_env {
        std::env::set_var(MASTER_KEY_ENV, &case.value);
        let got = resolve_master_key().map(|k| k.to_base64());
        assert_eq!(got, case.resolves_to_b64, "{}", case.why);
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

    // The variable is read as the Python module reads it, over generated values (keys with
    // extra or missing padding, junk, data after the padding, white space around): before the
    // fix, values Python accepted (say `KEY=` or `KEY==\n`) were ignored here.
    if python_ready() {
        let mut runner = TestRunner::new(Config::default());
        let strategy = proptest::collection::vec(case_strategy(), 3000);
        let cases: Vec<Case> = strategy
            .new_tree(&mut runner)
            .unwrap()
            .current()
            .into_iter()
            .filter(|c| c.kind == Kind::Master && !c.text.contains('\0'))
            .collect();
        assert!(cases.len() > 500);
        let answers = python_answers(&cases);
        let mut accepted = 0;
        for (case, python) in cases.iter().zip(&answers) {
            std::env::set_var(MASTER_KEY_ENV, &case.text);
            let got = resolve_master_key().map(|k| std_b64(k.expose_secret()));
            assert_eq!(got.as_deref(), python["key"].as_str(), "{:?}", case.text);
            accepted += usize::from(got.is_some());
        }
        assert!(accepted > 100, "only {accepted} accepted");
    }
    std::env::remove_var(MASTER_KEY_ENV);
}
