//! `keyseal status`: the store at a glance, for operators. Never shows a secret.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use keyseal::{ApiKeys, KeyOwner};
use serde_json::{json, Value};

use crate::args::Cli;
use crate::context::{open_api_keys, open_store};
use crate::output::{print, Outcome};
use keyseal::MASTER_KEY_ENV;

/// How long to let the notification listener finish its self-test before reporting.
const LISTENER_SETTLE: Duration = Duration::from_secs(4);

pub fn run(cli: &Cli) -> Outcome {
    let keys = open_api_keys(cli)?;
    settle_listener(&keys);
    let counts = keys.key_counts()?;
    let status = keys.status();
    let key_store = key_store(cli);
    let value = json!({
        "backend": status.backend,
        "schema_version": status.schema_version,
        "api_keys": {
            "total": counts.total,
            "active": counts.active,
            "rotated": counts.rotated,
            "expired": counts.expired,
            "revoked": counts.revoked,
            "disabled": counts.disabled,
            "imported": counts.imported,
            "upgraded": counts.upgraded,
        },
        "feed": {
            "mode": status.feed_mode,
            "position": status.feed_position,
            "lag_ms": u64::try_from(status.feed_lag.as_millis()).unwrap_or(u64::MAX),
            "failing": status.feed_failing,
            "staleness": status.staleness,
            "max_staleness_s": status.max_staleness.as_secs_f64(),
        },
        "key_store": key_store,
    });
    let human = human(&value);
    Ok(print(cli, &value, &human))
}

/// On PostgreSQL the listener proves notifications work in the background: wait until it
/// has an answer (or a few seconds), so the mode reported is the one servers get.
fn settle_listener(keys: &ApiKeys) {
    let t = Instant::now();
    while keys.status().feed_mode == "notify-down" && t.elapsed() < LISTENER_SETTLE {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The master keys and the pool key's versions, when a master key is given; else why not.
fn key_store(cli: &Cli) -> Value {
    if cli.master_key_file.is_none() && std::env::var_os(MASTER_KEY_ENV).is_none() {
        return json!({ "error": format!("no master key given (--master-key-file or {MASTER_KEY_ENV})") });
    }
    let store = match open_store(cli) {
        Ok(s) => s,
        Err(e) => return json!({ "error": e.0 }),
    };
    let masters = match store.master_keys() {
        Ok(m) => m
            .iter()
            .map(|k| {
                json!({
                    "id": k.id.to_string(),
                    "current": k.current,
                    "held": k.held,
                    "retired": k.retired,
                    "legacy": k.legacy,
                    "wraps": k.wraps,
                })
            })
            .collect::<Vec<_>>(),
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let pool = match store.key_versions(KeyOwner::Pool) {
        Ok(v) => v
            .iter()
            .map(|v| json!({ "version": v.version, "state": v.state.as_str() }))
            .collect::<Vec<_>>(),
        Err(e) => return json!({ "error": e.to_string() }),
    };
    json!({ "master_keys": masters, "pool_key_versions": pool })
}

fn human(v: &Value) -> String {
    let k = &v["api_keys"];
    let f = &v["feed"];
    let mut out = format!(
        "backend: {} (schema version {})\n\
         api keys: {} ({} active, {} rotated, {} expired, {} revoked, {} disabled)\n\
         change feed: {} at position {}, {}, last read {} ms ago (max staleness {} s)",
        v["backend"].as_str().unwrap_or("?"),
        v["schema_version"],
        k["total"],
        k["active"],
        k["rotated"],
        k["expired"],
        k["revoked"],
        k["disabled"],
        f["mode"].as_str().unwrap_or("?"),
        f["position"],
        f["staleness"].as_str().unwrap_or("?"),
        f["lag_ms"],
        f["max_staleness_s"],
    );
    if k["imported"].as_u64().unwrap_or(0) > 0 {
        let _ = write!(
            out,
            "\nimported keys: {} ({} upgraded, {} waiting for their first use)",
            k["imported"],
            k["upgraded"],
            k["imported"].as_u64().unwrap_or(0) - k["upgraded"].as_u64().unwrap_or(0)
        );
    }
    let ks = &v["key_store"];
    if let Some(err) = ks["error"].as_str() {
        let _ = write!(out, "\nkey store: {err}");
    } else {
        for m in ks["master_keys"].as_array().into_iter().flatten() {
            let _ = write!(
                out,
                "\nmaster key {}: {}{}{}, wraps {}",
                m["id"].as_str().unwrap_or("?"),
                if m["current"] == true {
                    "current"
                } else {
                    "not current"
                },
                if m["held"] == true {
                    ", held"
                } else {
                    ", not held"
                },
                if m["retired"] == true {
                    ", retired"
                } else {
                    ""
                },
                m["wraps"],
            );
        }
        let versions: Vec<String> = ks["pool_key_versions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("v{} {}", p["version"], p["state"].as_str().unwrap_or("?")))
            .collect();
        let _ = write!(out, "\npool key versions: {}", versions.join(", "));
    }
    out
}
