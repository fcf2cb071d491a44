//! One module per fuzz target, each with `run(data: &[u8])`: it panics on any broken promise.
//! Also compiled into the main crate's stable replay tests (`#[path]`), so only keyseal's
//! public API (and `keyseal::testing`), `arbitrary`, `rusqlite` and `bcrypt` are used here.
#![allow(dead_code)]
// Test code: long straight-line bodies and plain data are clearer here than the pedantic forms.
#![allow(
    clippy::many_single_char_names,
    clippy::struct_excessive_bools,
    clippy::too_many_lines,
    clippy::match_same_arms,
    clippy::needless_pass_by_value
)]

pub mod api_key_format;
pub mod api_keys_ops;
pub mod decrypt;
pub mod decrypt_v3;
pub mod keystore_ops;
pub mod master_key;
pub mod migrate_value;
pub mod migrate_value_path;
pub mod util;
