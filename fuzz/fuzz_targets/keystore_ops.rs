//! cargo-fuzz target `keystore_ops`: the body is shared with the stable replay tests.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyseal_fuzz::bodies::keystore_ops::run(data));
