//! `keys update | disable | enable | delete | revoke`: changes to a key, each answered with
//! the key's metadata (never the key or its hash).

use std::process::ExitCode;

use keyseal::{ApiKeys, KeyInfo, KeyUpdate};

use crate::args::{Cli, UpdateArgs};
use crate::output::{expiry, print, to_json, Outcome};

pub fn update(cli: &Cli, api_keys: &ApiKeys, args: &UpdateArgs) -> Outcome {
    let mut update = KeyUpdate::new();
    if let Some(name) = &args.name {
        update = update.name(name);
    }
    if !args.scopes.is_empty() {
        update = update.scopes(args.scopes.iter().cloned());
    }
    if let Some(life) = args.expires_in {
        update = update.expires_in(life);
    } else if args.no_expiry {
        update = update.expires_at(None);
    }
    if let Some(limit) = args.rate_limit {
        update = update.rate_limit(Some(limit));
    } else if args.no_rate_limit {
        update = update.rate_limit(None);
    }
    if let Some(m) = &args.metadata {
        update = update.metadata(m.clone());
    }
    let info = api_keys.update(&args.user, &args.key_id, &update)?;
    Ok(done(cli, &info, "updated"))
}

/// The key after a change: its JSON with `--json`, else one line.
pub fn done(cli: &Cli, info: &KeyInfo, what: &str) -> ExitCode {
    print(cli, &to_json(info), &summary(info, what))
}

fn summary(info: &KeyInfo, what: &str) -> String {
    format!(
        "{what} key {} of user {} ({}): {}, scopes [{}], expires {}, rate limit {}",
        info.key_id,
        info.user_id,
        info.name,
        info.status,
        info.scopes.join(", "),
        expiry(info.expires_at),
        info.rate_limit
            .map_or_else(|| "none".into(), |r| r.to_string()),
    )
}
