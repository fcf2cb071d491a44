//! cargo-fuzz target `migrate_value_path`: the body is shared with the stable replay tests.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyseal_fuzz::bodies::migrate_value_path::run(data));
