//! The `master_key` fuzz target's corpus, replayed on stable (see `tests/fuzz_replay.rs`). A
//! test binary of its own: the body sets `API_KEY_MASTER_KEY`, which must not race other
//! threads reading the environment.
#![cfg(all(
    feature = "keystore",
    feature = "issuance",
    not(target_arch = "wasm32")
))]

#[path = "../fuzz/src/bodies/mod.rs"]
mod bodies;

#[test]
fn master_key_corpus_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/master_key");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let data = std::fs::read(&file).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| bodies::master_key::run(&data));
        assert!(outcome.is_ok(), "{} fails", file.display());
    }
}
