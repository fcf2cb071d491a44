//! `keyseal keys import --jsonl` and `--keycloak-users` as an operator runs them during a
//! cutover, on both backends, with test data made by the old systems' own code
//! (`tests/python/make_import_data.py`: their key generators and `bcrypt.hashpw`): every key
//! keeps working with its state, a re-run changes nothing, upstream changes (a key disabled,
//! an expiry moved, a key deleted) arrive on the next run, `--dry-run` writes nothing, and bad
//! input refuses the whole import, naming the line, without showing a hash.
#![cfg(feature = "cli")]

mod common;

#[path = "common/import_data.rs"]
mod import_data;

use serde_json::Value;

use common::cli_env::{stderr, stdout, Env};
use import_data::{check_keys, counts, keys_in_store, make, python_ready};

const HASH: &str = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";

crate::on_both_backends!(jsonl_keys_keep_working_and_reimports_follow_upstream);
fn jsonl_keys_keep_working_and_reimports_follow_upstream(env: &Env) {
    if !python_ready(&["bcrypt"]) {
        return;
    }
    let dir = env.dir.path();
    make(&["jsonl", dir.to_str().unwrap()]);
    let file = dir.join("import.jsonl");
    let file = file.to_str().unwrap();

    // A dry run counts and writes nothing.
    let (code, report) = env.json(&["keys", "import", "--jsonl", file, "--dry-run"], "");
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (6, 0, 0, 0), "{report}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["source"], "jsonl");
    assert_eq!(keys_in_store(env).len(), 0);

    let (code, report) = env.json(&["keys", "import", "--jsonl", file], "");
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (6, 0, 0, 0), "{report}");
    assert_eq!(report["dry_run"], false);
    assert!(
        check_keys(env, dir),
        "a valid key, and a wrong one, were tried"
    );
    let listed = keys_in_store(env);
    assert_eq!(listed.len(), 6);
    let ci = listed.iter().find(|k| k["name"] == "CI").unwrap();
    assert_eq!(ci["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(ci["rate_limit"]["requests"], 100);
    assert_eq!(ci["rate_limit"]["period_ms"], 60_000);
    assert_eq!(ci["imported"]["source"], "jsonl", "{ci}");
    // Listings never show a hash.
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains("$2b$"), "{text}");

    // Run again: nothing new, nothing duplicated.
    let (code, report) = env.json(&["keys", "import", "--jsonl", file], "");
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (0, 0, 6, 0), "{report}");
    assert_eq!(keys_in_store(env).len(), 6);
    let out = env.run(&["keys", "import", "--jsonl", file], "");
    assert_eq!(
        stdout(&out),
        "import from jsonl: 0 created, 0 updated, 6 unchanged, 0 deleted"
    );

    // Upstream: one key disabled, one expired, one deleted.
    make(&["change", "jsonl", dir.to_str().unwrap()]);
    // Without --complete, a key missing from the file is not deleted.
    let (code, report) = env.json(&["keys", "import", "--jsonl", file, "--dry-run"], "");
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (0, 2, 3, 0), "{report}");
    let args = ["keys", "import", "--jsonl", file, "--complete"];
    let (code, report) = env.json(&[&args[..], &["--dry-run"]].concat(), "");
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (0, 2, 3, 1), "{report}");
    assert_eq!(keys_in_store(env).len(), 6, "a dry run deletes nothing");
    let (code, report) = env.json(&args, "");
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (0, 2, 3, 1), "{report}");
    check_keys(env, dir);
    assert_eq!(keys_in_store(env).len(), 5);
}

crate::on_both_backends!(keycloak_keys_keep_working_and_reimports_follow_upstream);
fn keycloak_keys_keep_working_and_reimports_follow_upstream(env: &Env) {
    if !python_ready(&["bcrypt"]) {
        return;
    }
    let dir = env.dir.path();
    make(&["keycloak", dir.to_str().unwrap()]);
    let file = dir.join("users.json");
    let file = file.to_str().unwrap();
    let (code, report) = env.json(&["keys", "import", "--keycloak-users", file], "");
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (5, 0, 0, 0), "{report}");
    assert_eq!(report["source"], "keycloak");
    assert!(
        check_keys(env, dir),
        "a valid key, and a wrong one, were tried"
    );
    let listed = keys_in_store(env);
    let owners: Vec<&str> = listed
        .iter()
        .map(|k| k["user_id"].as_str().unwrap())
        .collect();
    for owner in ["user:alice", "user:bob", "user:dave"] {
        assert!(owners.contains(&owner), "{owners:?}");
    }

    let (code, report) = env.json(&["keys", "import", "--keycloak-users", file], "");
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (0, 0, 5, 0), "{report}");

    // Upstream: dave disabled, an expiry moved into the past, one key revoked (gone from the
    // export, so deleted here).
    make(&["change", "keycloak", dir.to_str().unwrap()]);
    let (code, report) = env.json(&["keys", "import", "--keycloak-users", file], "");
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (0, 2, 2, 1), "{report}");
    check_keys(env, dir);
}

crate::on_both_backends!(keycloak_tag_and_source_name_the_keys);
fn keycloak_tag_and_source_name_the_keys(env: &Env) {
    if !python_ready(&["bcrypt"]) {
        return;
    }
    let dir = env.dir.path();
    make(&["keycloak", dir.to_str().unwrap()]);
    let file = dir.join("users.json");
    let file = file.to_str().unwrap();
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("keys.json")).unwrap()).unwrap();
    let live_key = keys[0]["key"].as_str().unwrap();
    // Imported as test keys: a live key is of no format this store knows.
    let args = ["keys", "import", "--keycloak-users", file];
    let test = [
        &args[..],
        &["--keycloak-tag", "mcpkey_test", "--source", "kc-test"],
    ]
    .concat();
    let (code, report) = env.json(&test, "");
    assert_eq!((code, counts(&report)), (0, (5, 0, 0, 0)), "{report}");
    assert_eq!(report["source"], "kc-test");
    assert_eq!(import_data::verdict(env, live_key).0, "malformed");
    // The same export under its own source is another set of keys: created, not updated.
    let (code, report) = env.json(&args, "");
    assert_eq!((code, counts(&report)), (0, (5, 0, 0, 0)), "{report}");
    assert_eq!(import_data::verdict(env, live_key).0, "valid");
    assert_eq!(keys_in_store(env).len(), 10);
}

/// Good lines around one bad line, and what the import must say about it.
fn refused(env: &Env, lines: &[String], want: &str) {
    let path = env.dir.path().join("bad.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = env.run(&["keys", "import", "--jsonl", path.to_str().unwrap()], "");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(want), "{err:?} should contain {want:?}");
    assert!(!err.contains(&HASH[7..40]), "a hash was shown: {err}");
    assert!(out.stdout.is_empty());
    assert_eq!(keys_in_store(env).len(), 0, "nothing half-written: {want}");
}

fn line(i: usize, extra: &str) -> String {
    format!(
        r#"{{"user_id":"u{i}","name":"k{i}","scopes":[],"tag":"mhu","bcrypt_hash":"{HASH}","source_id":"s{i}"{extra}}}"#
    )
}

crate::on_both_backends!(bad_input_refuses_the_whole_import_naming_the_line);
fn bad_input_refuses_the_whole_import_naming_the_line(env: &Env) {
    let good = |n: usize| (1..=n).map(|i| line(i, "")).collect::<Vec<_>>();
    let mut lines = good(3);
    lines.push(r#"{"user_id": "u4", "name": "#.into());
    refused(env, &lines, "bad.jsonl: line 4: not JSON");

    let mut lines = good(3);
    lines[1] = line(2, r#","owner":"x""#);
    refused(env, &lines, "line 2: unknown field \"owner\"");

    let mut lines = good(3);
    lines[2] = line(3, "").replace(HASH, &HASH[..40]);
    refused(env, &lines, "line 3: `bcrypt_hash` must be a bcrypt hash");

    let mut lines = good(3);
    lines[1] = line(2, r#","expires_at":"next week""#);
    refused(env, &lines, "line 2: `expires_at` must be an ISO-8601 time");

    let mut lines = good(3);
    lines[2] = line(1, "");
    refused(env, &lines, "line 3: the same source id as line 1");

    // A rule the library checks (names of at most 256 bytes) is named by line too.
    let mut lines = good(3);
    lines[1] = line(2, "").replace(
        r#""name":"k2""#,
        &format!(r#""name":"{}""#, "n".repeat(300)),
    );
    refused(env, &lines, "line 2 (source id s2)");

    let out = env.run(&["keys", "import", "--jsonl", "missing.jsonl"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("missing.jsonl: cannot be read"),
        "{}",
        stderr(&out)
    );

    // A good file after all that imports whole.
    let path = env.dir.path().join("good.jsonl");
    std::fs::write(&path, good(3).join("\n")).unwrap();
    let (code, report) = env.json(&["keys", "import", "--jsonl", path.to_str().unwrap()], "");
    assert_eq!((code, counts(&report)), (0, (3, 0, 0, 0)), "{report}");
}

crate::on_both_backends!(keycloak_bad_export_is_refused_whole);
fn keycloak_bad_export_is_refused_whole(env: &Env) {
    let path = env.dir.path().join("users.json");
    let users: Value = serde_json::json!([
        { "username": "alice", "enabled": true, "attributes": {
            "apiKeys": [format!("key:k1:{HASH}")], "apiKey_k1_name": ["a"] } },
        { "username": "bob", "enabled": true, "attributes": {
            "apiKeys": [format!("key:k2:{}", &HASH[..30])] } }
    ]);
    std::fs::write(&path, users.to_string()).unwrap();
    let out = env.run(
        &["keys", "import", "--keycloak-users", path.to_str().unwrap()],
        "",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("user 2 (\"bob\"), key \"k2\": `apiKeys` must be a bcrypt hash"),
        "{err}"
    );
    assert!(!err.contains(&HASH[7..30]), "{err}");
    assert_eq!(keys_in_store(env).len(), 0);
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        &["keys", "import"][..],
        &["keys", "import", "--jsonl", "a", "--keycloak-users", "b"],
        &["keys", "import", "--jsonl", "a", "--user-from", "name"],
        &[
            "keys",
            "import",
            "--keycloak-users",
            "a",
            "--keycloak-tag",
            "sk_live",
        ],
    ] {
        let out = env.run(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    // A password in an argument is refused before anything is read or connected to.
    let out = env.run(
        &[
            "keys",
            "import",
            "--egregore",
            "postgres://eg:secret@127.0.0.1:1/eg",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--egregore: the URL holds a password"),
        "{err}"
    );
    assert!(err.contains("KEYSEAL_EGREGORE_URL"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

// 1 000 keys of the Keycloak system (its key generator, `bcrypt.hashpw` at cost 4), imported
// with no lookup: a first verification costs one bcrypt per key still waiting, tried most
// recently used first (the most recent key: one), then records a lookup, so another process
// pays one bcrypt; a wrong key costs the scan once and nothing when repeated; the listing
// says which keys are upgraded.
crate::on_both_backends!(a_thousand_keys_without_a_lookup_upgrade_at_first_use);
fn a_thousand_keys_without_a_lookup_upgrade_at_first_use(env: &Env) {
    use keyseal::testing::bcrypt_verifications;
    use keyseal::{ApiKeys, ApiKeysConfig};

    if !python_ready(&["bcrypt"]) {
        return;
    }
    let dir = env.dir.path();
    make(&["keycloak-many", dir.to_str().unwrap(), "1000"]);
    let file = dir.join("users.json");
    let (code, report) = env.json(
        &["keys", "import", "--keycloak-users", file.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(counts(&report), (1000, 0, 0, 0), "{report}");
    let keys: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("keys.json")).unwrap()).unwrap();
    let key = |i: usize| keys[i]["key"].as_str().unwrap().to_owned();
    let location = match &env.pg {
        Some(pg) => std::path::PathBuf::from(pg.app_url()),
        None => env.db(),
    };
    let open = || ApiKeys::open_with(&location, ApiKeysConfig::default()).unwrap();
    let server = open();
    let spent = |f: &dyn Fn()| {
        let before = bcrypt_verifications(&server);
        f();
        bcrypt_verifications(&server) - before
    };
    // The most recently used key is the first tried; the least recently used, the last.
    assert_eq!(
        spent(&|| assert!(server.verify(&key(999)).unwrap().is_valid())),
        1
    );
    assert_eq!(
        spent(&|| assert!(server.verify(&key(0)).unwrap().is_valid())),
        999
    );
    assert_eq!(
        spent(&|| assert!(server.verify(&key(0)).unwrap().is_valid())),
        0
    );
    // Another server: the recorded lookup, one bcrypt.
    let other = open();
    let before = bcrypt_verifications(&other);
    assert!(other.verify(&key(0)).unwrap().is_valid());
    assert_eq!(bcrypt_verifications(&other) - before, 1);
    // A wrong key of the same shape: the 998 still waiting once, then nothing.
    let wrong = format!("mcpkey_live_{}", "A".repeat(43));
    assert_eq!(
        spent(&|| assert!(!server.verify(&wrong).unwrap().is_valid())),
        998
    );
    assert_eq!(
        spent(&|| assert!(!server.verify(&wrong).unwrap().is_valid())),
        0
    );
    let listed = keys_in_store(env);
    let upgraded = listed
        .iter()
        .filter(|k| k["imported"]["upgraded"] == true)
        .count();
    assert_eq!((listed.len(), upgraded), (1000, 2));
    let (code, status) = env.json(&["status"], "");
    assert_eq!(code, 0, "{status}");
    assert_eq!(status["api_keys"]["imported"], 1000, "{status}");
    assert_eq!(status["api_keys"]["upgraded"], 2, "{status}");
}
