//! cargo-fuzz target `api_keys_ops`: the body is shared with the stable replay tests.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyseal_fuzz::bodies::api_keys_ops::run(data));
