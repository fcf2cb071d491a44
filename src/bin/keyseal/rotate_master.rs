//! Master key rotation: `keyseal rotate-master` (one step, one process), and the rolling
//! rotation of a fleet: `rewrap-keys`, `master-key status`, `master-key retire`.

use std::path::Path;

use keyseal::parse_master_key;
use serde_json::json;
use zeroize::Zeroizing;

use crate::args::Cli;
use crate::context::open_store;
use crate::output::{error_line, print, Failure, Outcome};
use crate::progress::Reporter;

pub fn run(cli: &Cli, new_file: &Path) -> Outcome {
    let text = Zeroizing::new(
        std::fs::read_to_string(new_file)
            .map_err(|e| Failure(format!("cannot read {}: {e}", new_file.display())))?,
    );
    let new_master = parse_master_key(&text)
        .map_err(|e| Failure(format!("new master key file {}: {e}", new_file.display())))?;
    // Opening checks the current key against the store before anything is touched.
    let store = open_store(cli)?;
    let mut reporter = Reporter::new("rotate-master", cli.json);
    let report = store.rotate_master_key_with_progress(new_master, |done, total| {
        reporter.update(done as u64, total as u64);
    })?;
    reporter.finish();
    Ok(print(
        cli,
        &json!({ "rewrapped": report.rewrapped, "key_versions": report.key_versions }),
        &format!(
            "rewrapped {} user keys and {} key version(s) under the new master key (the \
             pool key is unchanged); use {} from now on",
            report.rewrapped,
            report.key_versions,
            new_file.display()
        ),
    ))
}

pub fn rewrap_keys(cli: &Cli, batch: u32) -> Outcome {
    let store = open_store(cli)?;
    let total = store
        .master_keys()?
        .iter()
        .filter(|k| !k.current)
        .map(|k| k.wraps)
        .sum::<u64>();
    let mut reporter = Reporter::new("rewrap-keys", cli.json);
    let report = store.rewrap_master_keys(batch as usize, |r| {
        reporter.update(r.rewrapped + r.skipped + r.refused, total);
    })?;
    reporter.finish();
    if report.refused > 0 {
        error_line(&format!(
            "{} stored keys do not open with any master key given (see `keyseal master-key \
             status`); pass the missing key with --previous-master-key-file",
            report.refused
        ));
    }
    let value = json!({
        "rewrapped": report.rewrapped,
        "skipped": report.skipped,
        "refused": report.refused,
    });
    let human = format!(
        "rewrapped {}, skipped {} (changed meanwhile), refused {}",
        report.rewrapped, report.skipped, report.refused
    );
    let code = print(cli, &value, &human);
    if report.refused > 0 {
        return Err(Failure(format!(
            "{} stored keys were left as they were",
            report.refused
        )));
    }
    Ok(code)
}

pub fn status(cli: &Cli) -> Outcome {
    let store = open_store(cli)?;
    let keys = store.master_keys()?;
    let pool = store.pool_key_versions()?;
    let mut lines = Vec::new();
    for k in &keys {
        let mut notes = Vec::new();
        if k.current {
            notes.push("current");
        } else if k.held {
            notes.push("held");
        }
        if k.retired {
            notes.push("retired");
        }
        if k.legacy {
            notes.push("legacy (Python's rows)");
        }
        lines.push(format!(
            "master key {}: wraps {} stored keys{}{}",
            k.id,
            k.wraps,
            if notes.is_empty() { "" } else { "; " },
            notes.join(", ")
        ));
    }
    let live: Vec<String> = pool.iter().map(u32::to_string).collect();
    lines.push(format!("pool key versions live: {}", live.join(", ")));
    let human = lines.join("\n");
    let value = json!({
        "master_keys": keys.iter().map(|k| json!({
            "id": k.id.as_str(),
            "current": k.current,
            "held": k.held,
            "retired": k.retired,
            "legacy": k.legacy,
            "wraps": k.wraps,
        })).collect::<Vec<_>>(),
        "pool_key_versions": pool,
    });
    Ok(print(cli, &value, &human))
}

pub fn retire(cli: &Cli, id: &str) -> Outcome {
    let store = open_store(cli)?;
    let id = store
        .master_keys()?
        .into_iter()
        .map(|k| k.id)
        .find(|k| k.as_str() == id)
        .ok_or_else(|| Failure(format!("master key {id:?} is not one of this store's")))?;
    store.retire_master_key(&id)?;
    Ok(print(
        cli,
        &json!({ "retired": id.as_str() }),
        &format!(
            "retired master key {id}: no process may open the store with it or write under it"
        ),
    ))
}
