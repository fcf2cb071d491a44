//! `keyseal keys ...`: issue, verify, list, revoke and rotate API keys.

use std::process::ExitCode;
use std::time::Duration;

use keyseal::{ApiKeys, CreatedKey, NewKey, Verification};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::args::{Cli, KeysCommand};
use crate::context::{open_api_keys, read_stdin_line};
use crate::output::{error_line, expiry, format_secret, print, print_secret, to_json, Outcome};

pub fn run(cli: &Cli, command: &KeysCommand) -> Outcome {
    let api_keys = open_api_keys(cli)?;
    match command {
        KeysCommand::Create {
            user,
            name,
            scopes,
            expires_in,
        } => create(cli, &api_keys, user, name, scopes, *expires_in),
        KeysCommand::Verify => verify(cli, &api_keys),
        KeysCommand::List { user } => list(cli, &api_keys, user),
        KeysCommand::Revoke { user, key_id } => {
            let info = api_keys.revoke(user, key_id)?;
            Ok(print(
                cli,
                &to_json(&info),
                &format!("revoked key {} of user {}", info.key_id, info.user_id),
            ))
        }
        KeysCommand::Rotate {
            user,
            key_id,
            grace,
        } => {
            let created = api_keys.rotate(user, key_id, *grace)?;
            let what = format!(
                "rotated {key_id} (old key valid for {}s more); new",
                grace.as_secs()
            );
            print_secret(cli, to_json(&created), &created_human(&created, &what))
        }
    }
}

fn create(
    cli: &Cli,
    api_keys: &ApiKeys,
    user: &str,
    name: &str,
    scopes: &[String],
    expires_in: Option<Duration>,
) -> Outcome {
    let mut new = NewKey::new(user, name).scopes(scopes.iter().cloned());
    if let Some(life) = expires_in {
        new = new.expires_in(life);
    }
    let created = api_keys.create(&new)?;
    print_secret(cli, to_json(&created), &created_human(&created, "created"))
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

fn verify(cli: &Cli, api_keys: &ApiKeys) -> Outcome {
    let key = read_stdin_line()?;
    let verdict = api_keys.verify(key.trim())?;
    // Recording the last use is best effort: a busy or read-only store must not turn a valid
    // key into a failure.
    if let Err(err) = api_keys.flush() {
        tracing::warn!("could not record the key's last use: {err}");
    }
    let json = to_json(&verdict);
    match &verdict {
        Verification::Valid(ok) => Ok(print(
            cli,
            &json,
            &format!(
                "valid: key {} of user {}, scopes [{}], expires {}",
                ok.key_id,
                ok.user_id,
                ok.scopes.join(", "),
                expiry(ok.expires_at)
            ),
        )),
        refused => {
            if cli.json {
                println!("{json}");
            } else {
                let reason = refused.refusal().map_or("refused", |r| r.reason());
                error_line(&format!("refused: {reason}"));
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn list(cli: &Cli, api_keys: &ApiKeys, user: &str) -> Outcome {
    let list = api_keys.list(user)?;
    if cli.json {
        let keys: Vec<Value> = list.iter().map(to_json).collect();
        println!("{}", json!({ "user_id": user, "keys": keys }));
    } else if list.is_empty() {
        println!("user {user} has no keys");
    } else {
        println!(
            "{:<28} {:<20} {:<9} {:<24} {:<24} SCOPES",
            "KEY ID", "NAME", "STATUS", "CREATED", "EXPIRES"
        );
        for info in &list {
            println!(
                "{:<28} {:<20} {:<9} {:<24} {:<24} {}",
                info.key_id,
                info.name,
                format!("{:?}", info.status).to_lowercase(),
                info.created_at.to_string(),
                expiry(info.expires_at),
                info.scopes.join(",")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
