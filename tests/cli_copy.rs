//! `keyseal copy --to`: a whole store (data keys, check value, API keys with hashes and every
//! state, legacy formats) copied between SQLite and PostgreSQL in every direction, verified,
//! refused into a non-empty target, and taken back when half of it cannot be written.
#![cfg(feature = "cli")]

mod common;

use std::process::Output;

use common::cli_env::{stderr, stdout, Env};
use serde_json::Value;

/// A legacy key (prefix `mhu_`, lookup of 8) and its bcrypt hash (cost 4).
const LEGACY_KEY: &str = "mhu_wZ4dBpC_LiIYg_nuq_EiC9QVF2A5FryiwRKe2U6uiVg";
const LEGACY_HASH: &str = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";

/// What a filled store holds, to check in its copy.
struct Filled {
    /// (user, token) pairs; `None` user: the pool key.
    tokens: Vec<(Option<&'static str>, String)>,
    /// (key, expected `keys verify --json` reason; `None` when valid).
    keys: Vec<(String, Option<&'static str>)>,
}

fn json_of(out: &Output) -> Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}; {}", stdout(out), stderr(out)))
}

/// A legacy key, through the library (the CLI has no import command here).
fn import_legacy(env: &Env) {
    let api = keyseal::ApiKeys::open(env.location()).unwrap();
    api.import_legacy(&keyseal::LegacyKey {
        prefix: "mhu_".into(),
        lookup: "wZ4dBpC_".into(),
        key_id: None,
        user_id: "carol".into(),
        name: "legacy".into(),
        scopes: vec!["read".into()],
        bcrypt_hash: LEGACY_HASH.into(),
        created_at: None,
        expires_at: None,
    })
    .unwrap();
}

fn fill(env: &Env) -> Filled {
    let mut tokens = Vec::new();
    for user in ["alice", "bob", "carol"] {
        let out = env.run(&["encrypt", "--user", user], &format!("secret of {user}"));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        tokens.push((Some(user), stdout(&out)));
    }
    tokens.push((None, stdout(&env.run(&["encrypt", "--pool"], "pooled"))));
    let create = |user: &str, name: &str, extra: &[&str]| {
        let mut args = vec![
            "--bcrypt-cost",
            "4",
            "keys",
            "create",
            "--user",
            user,
            "--name",
            name,
            "--scope",
            "read",
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = env.run(&args, "");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        json_of(&out)
    };
    let plain = create(
        "alice",
        "ci",
        &[
            "--metadata",
            r#"{"team":"infra","n":3}"#,
            "--rate-limit",
            "100/min",
            "--test",
        ],
    );
    let disabled = create("carol", "paused", &[]);
    let out = env.run(
        &[
            "keys",
            "disable",
            "--user",
            "carol",
            disabled["key_id"].as_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expiring = create("alice", "temp", &["--expires-in", "30d"]);
    let revoked = create("bob", "old", &[]);
    let out = env.run(
        &[
            "keys",
            "revoke",
            "--user",
            "bob",
            revoked["key_id"].as_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env.run(
        &[
            "--bcrypt-cost",
            "4",
            "--json",
            "keys",
            "rotate",
            "--user",
            "alice",
            expiring["key_id"].as_str().unwrap(),
            "--grace",
            "1h",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rotated = json_of(&out);
    import_legacy(env);
    let key = |v: &Value| v["key"].as_str().unwrap().to_owned();
    Filled {
        tokens,
        keys: vec![
            (key(&plain), None),
            (key(&expiring), None),
            (key(&rotated), None),
            (key(&revoked), Some("revoked")),
            (key(&disabled), Some("disabled")),
            (LEGACY_KEY.into(), None),
        ],
    }
}

/// `keyseal copy` from `from` to `to`, run with `from`'s master key; a PostgreSQL target's
/// URL (password included) goes in `KEYSEAL_COPY_TO`.
fn copy(from: &Env, to: &Env) -> Output {
    let mut command = common::cli_env::keyseal_in(from.dir.path());
    match &from.pg {
        Some(pg) => command.env("KEYSEAL_DB", pg.app_url()),
        None => command.arg("--db").arg(from.db()),
    };
    command
        .arg("--master-key-file")
        .arg(&from.master_file)
        .args(["copy", "--json"]);
    match &to.pg {
        Some(pg) => command.env("KEYSEAL_COPY_TO", pg.app_url()),
        None => command.arg("--to").arg(to.db()),
    };
    common::process::run_with_stdin(&mut command, b"")
}

/// Everything `fill` made works the same in the copy, with the source's master key.
fn check_copy(from: &Env, to: &Env, filled: &Filled) {
    let out = copy(from, to);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json_of(&out);
    assert_eq!(report["data_keys"], 3);
    assert_eq!(report["api_keys"], 6);
    assert_eq!(report["legacy_formats"], 1);
    assert_eq!(report["verified"], true);
    let text = report.to_string();
    if let Some(pg) = &to.pg {
        assert!(!text.contains(pg.app_password()), "no password in {text}");
    }

    let key = &from.master_file;
    // Every API key as listed (state, times, last use), before any use in the copy.
    for user in ["alice", "bob", "carol"] {
        let list = |env: &Env| {
            json_of(&env.run_with_key(key, &["keys", "list", "--user", user, "--json"], ""))
        };
        assert_eq!(list(to), list(from), "{user}'s keys");
    }
    for (user, token) in &filled.tokens {
        let target = match user {
            Some(user) => vec!["decrypt", "--user", user],
            None => vec!["decrypt", "--pool"],
        };
        let out = to.run_with_key(key, &target, token);
        assert_eq!(out.status.code(), Some(0), "{user:?}: {}", stderr(&out));
        let expected = user.map_or_else(|| "pooled".to_owned(), |u| format!("secret of {u}"));
        assert_eq!(stdout(&out), expected);
    }
    for (api_key, reason) in &filled.keys {
        let out = to.run_with_key(key, &["keys", "verify", "--json"], api_key);
        let value = json_of(&out);
        assert_eq!(value["reason"].as_str(), *reason, "{value}");
        assert_eq!(out.status.code(), Some(i32::from(reason.is_some())));
    }
    // A key made before the copy still verifies in the copy, which also works on its own.
    let out = to.run_with_key(key, &["encrypt", "--user", "dave"], "new");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A second copy into the now non-empty target is refused and changes nothing.
    let before = json_of(&to.run_with_key(key, &["keys", "list", "--user", "alice", "--json"], ""));
    let out = copy(from, to);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    let after = json_of(&to.run_with_key(key, &["keys", "list", "--user", "alice", "--json"], ""));
    assert_eq!(before, after);
}

#[test]
fn copy_sqlite_to_sqlite() {
    let from = Env::new();
    let filled = fill(&from);
    check_copy(&from, &Env::new(), &filled);
}

#[test]
fn copy_sqlite_to_postgres() {
    let Some(to) = Env::postgres() else { return };
    let from = Env::new();
    let filled = fill(&from);
    check_copy(&from, &to, &filled);
}

#[test]
fn copy_postgres_to_sqlite() {
    let Some(from) = Env::postgres() else { return };
    let filled = fill(&from);
    check_copy(&from, &Env::new(), &filled);
}

#[test]
fn copy_postgres_to_postgres() {
    let (Some(from), Some(to)) = (Env::postgres(), Env::postgres()) else {
        return;
    };
    let filled = fill(&from);
    check_copy(&from, &to, &filled);
}

/// A target whose key store is empty but which already holds an API key: the data keys go in
/// first, the API keys are then refused, and the data keys and check value are taken back, so
/// the target is as it was (another master key may still open it).
fn a_half_refused_copy_is_taken_back(to: &Env) {
    let from = Env::new();
    fill(&from);
    let out = to.run(
        &[
            "--bcrypt-cost",
            "4",
            "keys",
            "create",
            "--user",
            "zed",
            "--name",
            "z",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = copy(&from, to);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    let other = keyseal::MasterKey::generate().unwrap();
    let store = keyseal::KeyStore::open(to.location(), other).unwrap();
    assert_eq!(store.user_count().unwrap(), 0, "no data key was left");
}

#[test]
fn a_half_refused_copy_is_taken_back_on_sqlite() {
    a_half_refused_copy_is_taken_back(&Env::new());
}

#[test]
fn a_half_refused_copy_is_taken_back_on_postgres() {
    if let Some(to) = Env::postgres() {
        a_half_refused_copy_is_taken_back(&to);
    }
}

/// A wrong master key, or a source that is also the target, is refused before anything is
/// written.
#[test]
fn copy_refuses_a_wrong_master_key_and_the_same_store() {
    let from = Env::new();
    fill(&from);
    let to = Env::new();
    let wrong = from.new_key_file("wrong.key");
    let out = from.run_with_key(&wrong, &["copy", "--to", to.db().to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wrong master key"),
        "{}",
        stderr(&out)
    );
    let out = from.run(&["copy", "--to", from.db().to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("same store"), "{}", stderr(&out));
    let out = from.run(&["copy", "--to", ":memory:"], "");
    assert_eq!(out.status.code(), Some(1));
    // A missing source is not created (and copied empty).
    let out = to.run(
        &[
            "copy",
            "--to",
            from.dir.path().join("x.db").to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no store"), "{}", stderr(&out));
    assert!(!to.db().exists());
}
