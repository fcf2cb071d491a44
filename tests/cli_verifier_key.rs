//! `keyseal keys …` and the fast verifier's key: from a file (`--verifier-key-file` or
//! `KEYSEAL_VERIFIER_KEY_FILE`) or the key itself in `KEYSEAL_VERIFIER_KEY`, never from argv;
//! keys created with it carry a tag, keys verified with it get one; a bad key is refused
//! without being shown.
#![cfg(feature = "cli")]

mod common;

use std::path::Path;
use std::process::Output;

use common::cli_env::{keyseal_in, stderr, Env};
use common::process::run_with_stdin;

/// The stored tag of the key `key_id` (SQLite store).
fn tag(env: &Env, key_id: &str) -> Option<String> {
    rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row(
            "SELECT verifier_tag FROM api_keys WHERE key_id = ?1",
            [key_id],
            |r| r.get(0),
        )
        .unwrap()
}

/// keyseal on `env`'s SQLite store, with `vars` set.
fn run(env: &Env, vars: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut command = keyseal_in(env.dir.path());
    command
        .arg("--db")
        .arg(env.db())
        .arg("--bcrypt-cost")
        .arg("4");
    for (k, v) in vars {
        command.env(k, v);
    }
    run_with_stdin(command.args(args).arg("--json"), stdin.as_bytes())
}

fn created(out: &Output) -> (String, String) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["key"].as_str().unwrap().to_owned(),
        v["key_id"].as_str().unwrap().to_owned(),
    )
}

fn key_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[test]
fn keys_commands_take_the_verifier_key_from_a_file_or_the_environment() {
    let env = Env::new();
    // A verifier key is 32 random bytes in base64, as a master key file holds.
    let file = env.new_key_file("verifier.key");
    let text = key_text(&file);
    let create = ["keys", "create", "--user", "u", "--name", "n"];

    let with_flag = [
        &["--verifier-key-file", file.to_str().unwrap()],
        &create[..],
    ]
    .concat();
    let (_, id) = created(&run(&env, &[], &with_flag, ""));
    let first = tag(&env, &id).expect("tagged at creation");
    assert!(first.starts_with("v1:"), "{first}");

    let by_file_env = [("KEYSEAL_VERIFIER_KEY_FILE", file.to_str().unwrap())];
    let (_, id2) = created(&run(&env, &by_file_env, &create, ""));
    let by_value = [("KEYSEAL_VERIFIER_KEY", text.as_str())];
    let (_, id3) = created(&run(&env, &by_value, &create, ""));
    let prefix = |t: String| t[..20].to_owned();
    assert_eq!(prefix(tag(&env, &id2).unwrap()), prefix(first.clone()));
    assert_eq!(prefix(tag(&env, &id3).unwrap()), prefix(first));

    // Without a key: no tag, as before; a verify with the key writes one.
    let (key, id4) = created(&run(&env, &[], &create, ""));
    assert_eq!(tag(&env, &id4), None);
    let out = run(&env, &by_value, &["keys", "verify"], &format!("{key}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(tag(&env, &id4).is_some(), "verify did not write the tag");
}

#[test]
fn a_bad_verifier_key_is_refused_without_showing_it() {
    let env = Env::new();
    let bad = "c2VjcmV0LWJ1dC10b28tc2hvcnQ=";
    let create = ["keys", "create", "--user", "u", "--name", "n"];
    let out = run(&env, &[("KEYSEAL_VERIFIER_KEY", bad)], &create, "");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("KEYSEAL_VERIFIER_KEY"), "{err}");
    assert!(!err.contains(bad), "{err}");
    let missing = env.dir.path().join("nope.key");
    let out = run(
        &env,
        &[("KEYSEAL_VERIFIER_KEY_FILE", missing.to_str().unwrap())],
        &create,
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nope.key"), "{}", stderr(&out));
}
