//! The rolling master key rotation from the command line: previous keys from files and from
//! the environment (never arguments), `master-key status`, `rewrap-keys`, `master-key retire`,
//! and pool values that survive `rotate-master`.
#![cfg(feature = "cli")]

mod common;

use std::path::Path;
use std::process::Output;

use common::cli_env::{keyseal_in, stderr, stdout, Env};
use common::process::run_with_stdin;
use serde_json::Value;

/// Runs keyseal on the env's store with `current` as the master key and `previous` files.
fn run(env: &Env, current: &Path, previous: &[&Path], args: &[&str], stdin: &str) -> Output {
    let db = env.db();
    let mut cmd = keyseal_in(env.dir.path());
    cmd.args(["--db", db.to_str().unwrap()]);
    cmd.args(["--master-key-file", current.to_str().unwrap()]);
    for p in previous {
        cmd.args(["--previous-master-key-file", p.to_str().unwrap()]);
    }
    run_with_stdin(cmd.args(args), stdin.as_bytes())
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(out)))
}

fn id_of(key_file: &Path) -> String {
    let text = std::fs::read_to_string(key_file).unwrap();
    keyseal::MasterKeyId::of(&keyseal::parse_master_key(&text).unwrap()).to_string()
}

#[test]
fn fleet_rotation_from_the_command_line() {
    let env = Env::new();
    let old = env.master_file.clone();
    let new = env.new_key_file("new.key");
    let (old_id, new_id) = (id_of(&old), id_of(&new));
    let alice = stdout(&env.run(&["encrypt", "--user", "alice"], "alice's secret"));
    let pooled = stdout(&env.run(&["encrypt", "--pool"], "shared secret"));

    // A server with the new key as current (the old one as previous) writes under the new key.
    let out = run(
        &env,
        &new,
        &[&old],
        &["encrypt", "--user", "bob"],
        "bob's secret",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bob = stdout(&out);
    // A server with only the old key is told which key it lacks.
    let out = env.run(&["decrypt", "--user", "bob"], &bob);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("missing master key {new_id}")),
        "{}",
        stderr(&out)
    );
    // The new key as a previous one, from the environment (comma separated, with spaces).
    let new_b64 = std::fs::read_to_string(&new).unwrap();
    let db = env.db();
    let mut cmd = keyseal_in(env.dir.path());
    cmd.args([
        "--db",
        db.to_str().unwrap(),
        "--master-key-file",
        old.to_str().unwrap(),
    ])
    .args(["decrypt", "--user", "bob"])
    .env(
        "KEYSEAL_PREVIOUS_MASTER_KEYS",
        format!(" {} ,", new_b64.trim()),
    );
    let out = run_with_stdin(&mut cmd, bob.as_bytes());
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (Some(0), "bob's secret".into()),
        "{}",
        stderr(&out)
    );

    // Status: two keys, the old one wraps alice and the pool key, Python's rows are its.
    let out = run(&env, &new, &[&old], &["master-key", "status", "--json"], "");
    let status = json(&out);
    let keys = status["master_keys"].as_array().unwrap();
    let find = |id: &str| keys.iter().find(|k| k["id"] == id).unwrap().clone();
    assert_eq!(find(&old_id)["wraps"], 2);
    assert_eq!(find(&old_id)["legacy"], true);
    assert_eq!(find(&new_id)["current"], true);
    assert_eq!(status["pool_key_versions"], serde_json::json!([1]));
    assert!(
        !stdout(&out).contains(new_b64.trim()),
        "never the key itself"
    );

    // Retiring the old key is refused until the rewrap is done.
    let out = run(&env, &new, &[&old], &["master-key", "retire", &old_id], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("still wraps 2"), "{}", stderr(&out));
    let out = run(
        &env,
        &new,
        &[&old],
        &["rewrap-keys", "--batch", "1", "--json"],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(
        (report["rewrapped"].as_u64(), report["refused"].as_u64()),
        (Some(2), Some(0))
    );
    let out = run(&env, &new, &[&old], &["rewrap-keys", "--json"], "");
    assert_eq!(json(&out)["rewrapped"], 0, "resumed: nothing left");
    let out = run(&env, &new, &[], &["master-key", "retire", &old_id], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Only the new key from now on; everything decrypts; the old key opens nothing.
    for (target, token, plain) in [
        ("alice", &alice, "alice's secret"),
        ("bob", &bob, "bob's secret"),
    ] {
        let out = run(&env, &new, &[], &["decrypt", "--user", target], token);
        assert_eq!(stdout(&out), plain, "{}", stderr(&out));
    }
    let out = run(&env, &new, &[], &["decrypt", "--pool"], &pooled);
    assert_eq!(stdout(&out), "shared secret", "{}", stderr(&out));
    assert_eq!(
        env.run(&["decrypt", "--pool"], &pooled).status.code(),
        Some(1)
    );
}

/// `rotate-master` used to change the pool key (derived from the master key) and only print a
/// note: pool values made before a rotation stopped decrypting.
#[test]
fn pool_values_still_decrypt_after_rotate_master() {
    let env = Env::new();
    let pooled = stdout(&env.run(&["encrypt", "--pool"], "shared secret"));
    let new = env.new_key_file("new.key");
    let out = env.run(
        &[
            "rotate-master",
            "--new-master-key-file",
            new.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["key_versions"], 1);
    let out = run(&env, &new, &[], &["decrypt", "--pool"], &pooled);
    assert_eq!(stdout(&out), "shared secret", "{}", stderr(&out));
    // New pool values use the same key.
    let again = stdout(&run(&env, &new, &[], &["encrypt", "--pool"], "later"));
    let out = run(&env, &new, &[], &["decrypt", "--pool"], &again);
    assert_eq!(stdout(&out), "later");
}

#[test]
fn a_bad_previous_key_is_refused_naming_its_source() {
    let env = Env::new();
    let bad = env.dir.path().join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    let out = run(&env, &env.master_file, &[&bad], &["encrypt", "--pool"], "x");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("previous master key file"),
        "{}",
        stderr(&out)
    );
    let db = env.db();
    let mut cmd = keyseal_in(env.dir.path());
    cmd.args(["--db", db.to_str().unwrap(), "--master-key-file"])
        .arg(&env.master_file)
        .args(["encrypt", "--pool"])
        .env("KEYSEAL_PREVIOUS_MASTER_KEYS", "AAAA");
    let out = run_with_stdin(&mut cmd, b"x");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("KEYSEAL_PREVIOUS_MASTER_KEYS, key 1"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("AAAA"), "the value is never echoed");
}

/// `rotate-key`: refused while shared with the Python module unless forced; new values are
/// `v3:` under the new version, old `v2:` ones still decrypt (said to be stale); disable and
/// destroy from the command line.
#[test]
fn rotate_key_and_key_versions_from_the_command_line() {
    let env = Env::new();
    let old = stdout(&env.run(&["encrypt", "--user", "alice"], "first"));
    assert!(old.starts_with("v2:"));
    let out = env.run(&["rotate-key", "--user", "alice"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("shared with the Python module"),
        "{}",
        stderr(&out)
    );
    let (code, v) = env.json(&["rotate-key", "--user", "alice", "--force"], "");
    assert_eq!((code, v["version"].as_u64()), (0, Some(2)));
    let new = stdout(&env.run(&["encrypt", "--user", "alice"], "second"));
    assert!(new.starts_with("v3:"), "{new}");
    let out = env.run(&["decrypt", "--user", "alice"], &old);
    assert_eq!(stdout(&out), "first");
    assert!(stderr(&out).contains("not the newest"), "{}", stderr(&out));
    assert_eq!(
        stdout(&env.run(&["decrypt", "--user", "alice"], &new)),
        "second"
    );

    let (_, list) = env.json(&["key-version", "list", "--user", "alice"], "");
    assert_eq!(list["versions"][1]["state"], "active");
    let out = env.run(&["key-version", "destroy", "--user", "alice", "2"], "");
    assert!(
        stderr(&out).contains("disable it first"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        env.run(&["key-version", "disable", "--user", "alice", "2"], "")
            .status
            .code(),
        Some(0)
    );
    let out = env.run(&["decrypt", "--user", "alice"], &new);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("key version 2 is disabled"),
        "{}",
        stderr(&out)
    );
    // New values fall back to the newest active version: version 1, v2: again.
    assert!(stdout(&env.run(&["encrypt", "--user", "alice"], "third")).starts_with("v2:"));
    assert_eq!(
        env.run(&["key-version", "destroy", "--user", "alice", "2"], "")
            .status
            .code(),
        Some(0)
    );
    let (_, list) = env.json(&["key-version", "list", "--user", "alice"], "");
    assert_eq!(list["versions"][1]["state"], "destroyed");

    // The pool key, once the store is marked as not shared: no --force needed.
    assert_eq!(
        env.run(&["shared-with-python", "no"], "").status.code(),
        Some(0)
    );
    let pooled = stdout(&env.run(&["encrypt", "--pool"], "shared"));
    let (code, v) = env.json(&["rotate-key", "--pool"], "");
    assert_eq!((code, v["version"].as_u64()), (0, Some(2)));
    assert_eq!(stdout(&env.run(&["decrypt", "--pool"], &pooled)), "shared");
    let out = run(
        &env,
        &env.master_file,
        &[],
        &["master-key", "status", "--json"],
        "",
    );
    assert_eq!(json(&out)["pool_key_versions"], serde_json::json!([1, 2]));
}
