//! Helpers shared by the integration tests: temporary databases (`temp_db`), child processes
//! (`process`), the test vectors (`vectors`, compiled in: no file system needed, so the same
//! tests run under wasm32), the `keyseal` binary (`cli_env`), the
//! throwaway PostgreSQL server (`pg`) and generated base64 texts judged
//! by Python (`base64_cases`).
#![allow(dead_code)]

#[cfg(not(target_arch = "wasm32"))]
pub mod base64_cases;
#[cfg(feature = "cli")]
pub mod cli_env;
#[cfg(not(target_arch = "wasm32"))]
pub mod pg;
#[cfg(not(target_arch = "wasm32"))]
pub mod process;
#[cfg(not(target_arch = "wasm32"))]
pub mod temp_db;
pub mod vectors;

/// `bytes` as lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The bytes a hex text stands for.
pub fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}
