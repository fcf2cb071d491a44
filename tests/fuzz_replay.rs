//! The fuzz targets' corpora (fuzz/corpus/<target>/*), replayed through the same bodies the
//! `cargo fuzz` targets run (fuzz/src/bodies), on stable and without libFuzzer: every input
//! the fuzzers kept must still pass. `make fuzz` grows the corpora; this keeps them honest.
//!
//! Every reported defect is fixed, so an input reaching one fails here too;
//! `tests/fuzz_regressions.rs` holds those defects' own inputs.
#![cfg(all(
    feature = "keystore",
    feature = "issuance",
    not(target_arch = "wasm32")
))]

#[path = "../fuzz/src/bodies/mod.rs"]
mod bodies;

use std::path::{Path, PathBuf};

/// The files of fuzz/corpus/<target>, sorted; a corpus must not be empty.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    bodies::util::stop_on_known(false);
    for file in corpus(target) {
        let data = std::fs::read(&file).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
}

#[test]
fn migrate_value_path_corpus_passes() {
    replay("migrate_value_path", bodies::migrate_value_path::run);
}

#[test]
fn decrypt_corpus_passes() {
    replay("decrypt", bodies::decrypt::run);
}

#[test]
fn decrypt_v3_corpus_passes() {
    replay("decrypt_v3", bodies::decrypt_v3::run);
}

#[test]
fn api_key_format_corpus_passes() {
    replay("api_key_format", bodies::api_key_format::run);
}

#[test]
fn migrate_value_corpus_passes() {
    replay("migrate_value", bodies::migrate_value::run);
}

#[test]
fn api_keys_ops_corpus_passes() {
    replay("api_keys_ops", bodies::api_keys_ops::run);
}

#[test]
fn keystore_ops_corpus_passes() {
    replay("keystore_ops", bodies::keystore_ops::run);
}
