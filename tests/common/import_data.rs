//! The import tests' shared steps: making test data with the old systems' own code
//! (`tests/python/make_import_data.py`), and checking every key of it with `keys verify`.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::cli_env::{stderr, Env};

/// Whether python3 with `modules` runs here (else the caller skips, unless
/// `KEYSEAL_REQUIRE_PYTHON=1` or `KEYSEAL_REQUIRE_POSTGRES=1`: then it fails).
pub fn python_ready(modules: &[&str]) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let required = ["KEYSEAL_REQUIRE_PYTHON", "KEYSEAL_REQUIRE_POSTGRES"]
            .iter()
            .any(|v| std::env::var(v).as_deref() == Ok("1"));
        assert!(
            !required,
            "python3 with {modules:?} is required here but not available (run \
             scripts/setup-python.sh)"
        );
        eprintln!("SKIPPED: python3 with {modules:?} not available");
    }
    ok
}

/// Runs the test-data script with `args`.
pub fn make(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_import_data.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make_import_data.py {:?}: {}",
        args.first(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (created, updated, unchanged, deleted) of an import report.
pub fn counts(report: &Value) -> (u64, u64, u64, u64) {
    let n = |f: &str| {
        report[f]
            .as_u64()
            .unwrap_or_else(|| panic!("no {f} in {report}"))
    };
    (n("created"), n("updated"), n("unchanged"), n("deleted"))
}

/// Every key in the store, as `keys list --all --json` shows it.
pub fn keys_in_store(env: &Env) -> Vec<Value> {
    let (code, listed) = env.json(&["keys", "list", "--all"], "");
    assert_eq!(code, 0, "{listed}");
    listed["keys"].as_array().unwrap().clone()
}

/// What `keys verify` answers for `key`: `valid` (with the owner) or the refusal's reason.
pub fn verdict(env: &Env, key: &str) -> (String, Option<String>) {
    let (code, answer) = env.json(&["keys", "verify"], &format!("{key}\n"));
    if answer["valid"] == true {
        assert_eq!(code, 0);
        (
            "valid".into(),
            answer["user_id"].as_str().map(str::to_owned),
        )
    } else {
        assert_eq!(code, 1, "{answer}");
        (answer["reason"].as_str().unwrap().to_owned(), None)
    }
}

/// Verifies every key in `dir/keys.json` and compares with its state upstream; a valid key
/// must belong to its owner, and the same key with its last character changed is unknown
/// (tried on the first valid key: the answer says whether there was one).
///
/// A key imported without a lookup is found at its first verification by a bcrypt scan that
/// skips expired keys (they cannot pass): one that expired before it was ever verified here is
/// refused as `unknown`, not `expired`. Keys verified valid are marked `upgraded` in the file,
/// so later checks (after upstream changes) expect their real state.
pub fn check_keys(env: &Env, dir: &Path) -> bool {
    let path = dir.join("keys.json");
    let mut keys: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut wrong_tried = false;
    for entry in keys.as_array_mut().unwrap() {
        let key = entry["key"].as_str().unwrap().to_owned();
        let expect = entry["expect"].as_str().unwrap();
        let found_by_scan = entry["lookup"] == false && entry["upgraded"] != true;
        let expect = if expect == "expired" && found_by_scan {
            "unknown"
        } else {
            expect
        };
        let (got, owner) = verdict(env, &key);
        assert_eq!(got, expect, "key {:?}", entry["name"]);
        if got == "valid" {
            assert_eq!(
                owner.as_deref(),
                entry["user_id"].as_str(),
                "{:?}",
                entry["name"]
            );
            entry["upgraded"] = Value::Bool(true);
            if !wrong_tried {
                let last = key.chars().last().unwrap();
                let other = if last == 'a' { 'b' } else { 'a' };
                let wrong = format!("{}{other}", &key[..key.len() - 1]);
                assert_eq!(verdict(env, &wrong).0, "unknown", "a wrong key");
                wrong_tried = true;
            }
        }
    }
    std::fs::write(&path, serde_json::to_string(&keys).unwrap()).unwrap();
    wrong_tried
}

/// `keys import ARGS --json` with extra environment variables: the exit code and the report
/// (or the error line).
pub fn import_with_env(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> (i32, Value, String) {
    let mut command = crate::common::cli_env::keyseal_in(env.dir.path());
    match &env.pg {
        Some(pg) => command.env("KEYSEAL_DB", pg.app_url()),
        None => command.arg("--db").arg(env.db()),
    };
    for (name, value) in vars {
        command.env(name, value);
    }
    command.args(["keys", "import", "--json"]).args(args);
    let out = crate::common::process::run_with_stdin(&mut command, b"");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (out.status.code().unwrap(), value, stderr(&out))
}
