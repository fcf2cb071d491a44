//! `keyseal encrypt`, `decrypt` and `hash`: one value from standard input, one line out.

use keyseal::{api_key_hash, decrypt, encrypt, DataKey};
use serde_json::json;
use zeroize::Zeroizing;

use crate::args::{Cli, Target};
use crate::context::{open_store, read_stdin_line};
use crate::output::{print, print_secret, Failure, Outcome};

pub fn encrypt_stdin(cli: &Cli, target: &Target) -> Outcome {
    let plaintext = read_stdin_line()?;
    let key = data_key(cli, target)?;
    let token = encrypt(&plaintext, &key)?;
    Ok(print(cli, &json!({ "token": token }), &token))
}

pub fn decrypt_stdin(cli: &Cli, target: &Target) -> Outcome {
    let token = read_stdin_line()?;
    let key = existing_data_key(cli, target)?;
    let plaintext = Zeroizing::new(decrypt(token.trim(), &key)?);
    print_secret(cli, json!({ "plaintext": *plaintext }), &plaintext)
}

pub fn hash_stdin(cli: &Cli) -> Outcome {
    let input = read_stdin_line()?;
    let hash = api_key_hash(&input);
    Ok(print(cli, &json!({ "hash": hash }), &hash))
}

/// The user's data key (created on first use) or the pool key.
fn data_key(cli: &Cli, target: &Target) -> Result<DataKey, Failure> {
    let store = open_store(cli)?;
    match &target.user {
        Some(user) => Ok(store.get_or_create_user_key(user)?),
        None => Ok(store.pool_key()?),
    }
}

/// Like [`data_key`], but never creates a user's key: decrypting for an unknown user (a typo)
/// is refused without writing to the store.
fn existing_data_key(cli: &Cli, target: &Target) -> Result<DataKey, Failure> {
    let store = open_store(cli)?;
    match &target.user {
        Some(user) => store.get_user_key(user)?.ok_or_else(|| {
            Failure(format!(
                "user {user:?} has no key in {}: nothing was ever encrypted for them here",
                cli.db.display()
            ))
        }),
        None => Ok(store.pool_key()?),
    }
}
