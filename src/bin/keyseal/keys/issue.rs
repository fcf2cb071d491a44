//! `keys create` and `keys rotate`: the two commands that show a new key, once.

use std::time::Duration;

use keyseal::{ApiKeys, CreatedKey, Environment, NewKey};
use zeroize::Zeroizing;

use crate::args::{Cli, CreateArgs};
use crate::output::{expiry, format_secret, print_secret, to_json, Outcome};

pub fn create(cli: &Cli, api_keys: &ApiKeys, args: &CreateArgs) -> Outcome {
    let CreateArgs {
        user,
        name,
        scopes,
        expires_in,
        rate_limit,
        metadata,
        test,
    } = args;
    let mut new = NewKey::new(user, name).scopes(scopes.iter().cloned());
    if let Some(life) = expires_in {
        new = new.expires_in(*life);
    }
    if let Some(limit) = rate_limit {
        new = new.rate_limit(*limit);
    }
    if let Some(m) = metadata {
        new = new.metadata(m.clone());
    }
    if *test {
        new = new.environment(Environment::Test);
    }
    let created = api_keys.create(&new)?;
    print_secret(cli, to_json(&created), &created_human(&created, "created"))
}

pub fn rotate(cli: &Cli, api_keys: &ApiKeys, user: &str, key_id: &str, grace: Duration) -> Outcome {
    let created = api_keys.rotate(user, key_id, grace)?;
    let what = format!(
        "rotated {key_id} (old key valid for {}s more); new",
        grace.as_secs()
    );
    print_secret(cli, to_json(&created), &created_human(&created, &what))
}

/// The new key, shown once, with what it is for.
fn created_human(created: &CreatedKey, what: &str) -> Zeroizing<String> {
    format_secret(format_args!(
        "{what} key {} for user {} ({}), scopes [{}], expires {}\n\
         {}\n\
         This key is shown once and is not stored; keep it now.",
        created.key_id,
        created.user_id,
        created.name,
        created.scopes.join(", "),
        expiry(created.expires_at),
        created.key,
    ))
}
