//! cargo-fuzz target `api_key_format`: the body is shared with the stable replay tests.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyseal_fuzz::bodies::api_key_format::run(data));
