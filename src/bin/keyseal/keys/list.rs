//! `keys list (--user ID | --all) [--status S]`: metadata only, never keys or hashes.
//! `--all` reads the store page by page and prints every key.

use std::process::ExitCode;

use keyseal::{ApiKeys, KeyInfo, KeyStatus, ListFilter};
use serde_json::{json, Value};

use crate::args::{Cli, Whose};
use crate::output::{expiry, to_json, Outcome};

/// Keys read per page.
const PAGE: usize = 500;

pub fn list(cli: &Cli, api_keys: &ApiKeys, whose: &Whose, status: Option<KeyStatus>) -> Outcome {
    let mut filter = match &whose.user {
        Some(user) => ListFilter::user(user),
        None => ListFilter::all(),
    }
    .limit(PAGE);
    filter.status = status;
    let mut keys = Vec::new();
    loop {
        let page = api_keys.list_page(&filter)?;
        keys.extend(page.keys);
        match page.next {
            Some(next) => filter = filter.after(Some(next)),
            None => break,
        }
    }
    if cli.json {
        let listed: Vec<Value> = keys.iter().map(to_json).collect();
        let answer = match &whose.user {
            Some(user) => json!({ "user_id": user, "keys": listed }),
            None => json!({ "keys": listed }),
        };
        println!("{answer}");
    } else if keys.is_empty() {
        match &whose.user {
            Some(user) => println!("user {user} has no keys{}", status_words(status)),
            None => println!("no keys{}", status_words(status)),
        }
    } else {
        table(&keys, whose.all);
    }
    Ok(ExitCode::SUCCESS)
}

fn status_words(status: Option<KeyStatus>) -> String {
    status.map_or_else(String::new, |s| format!(" in status {s}"))
}

fn table(keys: &[KeyInfo], with_user: bool) {
    let user = |u: &str| {
        if with_user {
            format!("{u:<24} ")
        } else {
            String::new()
        }
    };
    println!(
        "{}{:<28} {:<20} {:<9} {:<24} {:<24} {:<10} SCOPES",
        user("USER"),
        "KEY ID",
        "NAME",
        "STATUS",
        "CREATED",
        "EXPIRES",
        "RATE"
    );
    for info in keys {
        println!(
            "{}{:<28} {:<20} {:<9} {:<24} {:<24} {:<10} {}",
            user(&info.user_id),
            info.key_id,
            info.name,
            info.status.as_str(),
            info.created_at.to_string(),
            expiry(info.expires_at),
            info.rate_limit
                .map_or_else(|| "-".into(), |r| r.to_string()),
            info.scopes.join(",")
        );
    }
}
