//! `keys import`: keys from the systems keyseal replaces, imported without reissuing them.
//! One parser per input (`jsonl`, `egregore`, `keycloak`), each into [`ImportedKey`]s with the
//! place each came from (`input` holds what they share); `command` runs the import.

mod command;
mod egregore;
mod input;
mod jsonl;
mod keycloak;

pub use command::run;
use keyseal::ImportedKey;
