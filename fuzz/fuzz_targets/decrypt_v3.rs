//! cargo-fuzz target `decrypt_v3`: the body is shared with the stable replay tests.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyseal_fuzz::bodies::decrypt_v3::run(data));
