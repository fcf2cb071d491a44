//! `keyseal encrypt`, `decrypt` and `hash`: one value from standard input, one line out.

use keyseal::{api_key_hash, Context, KeyOwner};
use serde_json::json;
use zeroize::Zeroizing;

use crate::args::{Cli, Target};
use crate::context::{open_store, read_stdin_line};
use crate::output::{error_line, print, print_secret, Failure, Outcome};
use crate::rotate_key::owner;

/// Under the newest active key version: a `v2:` token while that is version 1 (the Python
/// module reads it), else `v3:` naming the version.
pub fn encrypt_stdin(cli: &Cli, target: &Target) -> Outcome {
    let plaintext = read_stdin_line()?;
    let store = open_store(cli)?;
    let token = store.encrypt_value(owner(target), &plaintext, &Context::none())?;
    Ok(print(cli, &json!({ "token": token }), &token))
}

/// With the key version the token names; a stale value (older version) is said on stderr.
pub fn decrypt_stdin(cli: &Cli, target: &Target) -> Outcome {
    let token = read_stdin_line()?;
    let store = open_store(cli)?;
    let owner = owner(target);
    if let KeyOwner::User(user) = owner {
        // Never creates a key: decrypting for an unknown user (a typo) writes nothing.
        if store.get_user_key(user)?.is_none() {
            return Err(Failure(format!(
                "user {user:?} has no key in {}: nothing was ever encrypted for them here",
                crate::urls::shown(&cli.db)
            )));
        }
    }
    let value = store.decrypt_value(owner, token.trim(), &Context::none())?;
    if value.stale {
        error_line(&format!(
            "note: this value is under key version {}, not the newest: encrypt it again",
            value.version
        ));
    }
    let plaintext = Zeroizing::new(value.plaintext.to_string());
    print_secret(cli, json!({ "plaintext": *plaintext }), &plaintext)
}

pub fn hash_stdin(cli: &Cli) -> Outcome {
    let input = read_stdin_line()?;
    let hash = api_key_hash(&input);
    Ok(print(cli, &json!({ "hash": hash }), &hash))
}
