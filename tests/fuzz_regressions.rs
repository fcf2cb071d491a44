//! Inputs on which the fuzz targets found broken promises, replayed on stable.
//!
//! Each test names the defect it caught (each failed before its fix). Their inputs are in
//! fuzz/artifacts-known/<target>/ and replay with known defects panicking, never skipped.
#![cfg(all(
    feature = "keystore",
    feature = "issuance",
    not(target_arch = "wasm32")
))]

#[path = "../fuzz/src/bodies/mod.rs"]
mod bodies;

use std::path::Path;

use keyseal::migrate::{migrate_column, verify_column, KeySource, MigrateOptions};
use keyseal::{KeyStore, MasterKey};

/// Runs `run` on fuzz/artifacts-known/<target>/<name>, panicking at known defects too.
fn replay_artifact(target: &str, name: &str, run: fn(&[u8])) {
    bodies::util::stop_on_known(false);
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/artifacts-known")
        .join(target)
        .join(name);
    let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    run(&data);
}

/// Found by `migrate_value`: a TEXT value that is not UTF-8 (any writer but Python's can
/// store one) makes `migrate_column` and `verify_column` panic inside rusqlite's `Value`
/// conversion instead of counting the row as failed or returning a typed error.
#[test]
fn migrate_does_not_panic_on_text_that_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, owner TEXT, secret TEXT);
         INSERT INTO t VALUES (1, 'alice', CAST(x'ff00fe' AS TEXT)), (2, 'bob', 'sk-2');",
    )
    .unwrap();
    let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate().unwrap()).unwrap();
    let options = MigrateOptions::new("t", "secret", "id", KeySource::UserColumn("owner".into()));
    let migrated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        migrate_column(&db, &store, &options, |_| {})
    }));
    let report = migrated.expect("migrate_column panicked on non-UTF-8 text");
    if let Ok(report) = report {
        assert_eq!((report.migrated, report.failed), (1, 1));
    }
    let verified = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        verify_column(&db, &store, &options, |_| {})
    }));
    assert!(verified.is_ok(), "verify_column panicked on non-UTF-8 text");
    // The same through the fuzz target's body, on the input that found it.
    replay_artifact("migrate_value", "text-not-utf8", bodies::migrate_value::run);
}

/// Found by `api_keys_ops` (ops: `Import { hash: Costly(11), .. }`): `import_legacy` accepts a
/// well-formed bcrypt hash of cost 28; verifying against it would hold a bcrypt slot for days.
#[test]
fn import_legacy_refuses_bcrypt_costs_over_16() {
    replay_artifact(
        "api_keys_ops",
        "defect11-import-cost-28",
        bodies::api_keys_ops::run,
    );
}

/// Found by `api_keys_ops` (quota 1: create, rotate with an hour's grace, create for another
/// user, rotate the new key with grace): three keys of one user validate at once with a
/// quota of one, through chained rotations in their grace periods.
#[test]
fn chained_rotations_in_grace_do_not_bypass_the_quota() {
    replay_artifact(
        "api_keys_ops",
        "defect9-quota-bypass-rotation-grace",
        bodies::api_keys_ops::run,
    );
}

/// Found by `api_keys_ops` (second instance imports an `eg-` legacy key; the first instance
/// then verifies it): the first instance answers `malformed` for a legacy format registered
/// by another process, until some other key happens to make it look for changes.
#[test]
fn legacy_format_imported_by_another_instance_is_recognised() {
    replay_artifact(
        "api_keys_ops",
        "defect12-format-imported-by-other-instance",
        bodies::api_keys_ops::run,
    );
}

/// Found by `api_keys_ops` (imports of an `mhu_` key with a 20-character lookup, then of an
/// `mhu_x` key with a 2-character lookup): the second key never validates, because the first
/// registered format whose prefix matches (`mhu_`) picks its lookup.
#[test]
fn legacy_keys_under_overlapping_prefixes_validate() {
    replay_artifact(
        "api_keys_ops",
        "defect12-overlapping-prefixes",
        bodies::api_keys_ops::run,
    );
}

/// Found by `api_keys_ops` after the fixes above: instance B knows format `mhu_` (lookup 20);
/// instance A imports a key under `mhu_x` (lookup 20). B verified it as `unknown`: the known
/// `mhu_` format already gave the key a lookup, so B computed lookups before looking for new
/// formats and never saw `mhu_x` (an expired key answered `unknown` instead of `expired`, and
/// a valid one would have been refused).
#[test]
fn legacy_format_overlapping_a_known_prefix_registered_elsewhere_is_seen() {
    replay_artifact(
        "api_keys_ops",
        "expired-legacy-seen-from-another-instance",
        bodies::api_keys_ops::run,
    );
}
