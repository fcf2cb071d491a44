//! `keyseal keys` admin faces as a user runs them: create with a rate limit and as a test
//! key, update, disable / enable, delete, list by user or all with a status, verify with
//! required scopes; every bad input exits non-zero and changes nothing.
#![cfg(feature = "cli")]

mod common;

use serde_json::Value;

use common::cli_env::{stderr, stdout, Env};

/// Creates a key for `user` at bcrypt cost 4; returns (key, key id).
fn create(env: &Env, user: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "--bcrypt-cost",
        "4",
        "keys",
        "create",
        "--user",
        user,
        "--name",
        "n",
    ];
    args.extend_from_slice(extra);
    let (code, made) = env.json(&args, "");
    assert_eq!(code, 0, "{made}");
    (
        made["key"].as_str().unwrap().to_owned(),
        made["key_id"].as_str().unwrap().to_owned(),
    )
}

/// The verify answer as JSON, and the exit code.
fn verify(env: &Env, key: &str, scopes: &[&str]) -> (i32, Value) {
    let mut args = vec!["keys", "verify"];
    for s in scopes {
        args.extend_from_slice(&["--require-scope", s]);
    }
    env.json(&args, &format!("{key}\n"))
}

fn reason(v: &(i32, Value)) -> String {
    if v.1["valid"] == true {
        assert_eq!(v.0, 0);
        "valid".into()
    } else {
        assert_eq!(v.0, 1);
        v.1["reason"].as_str().unwrap().into()
    }
}

/// Every key in the store as `keys list --all --json` prints it.
fn all(env: &Env) -> Value {
    let (code, listed) = env.json(&["keys", "list", "--all"], "");
    assert_eq!(code, 0);
    listed
}

crate::on_both_backends!(create_with_rate_limit_and_test_marker);
fn create_with_rate_limit_and_test_marker(env: &Env) {
    let (key, id) = create(
        env,
        "alice",
        &[
            "--rate-limit",
            "2/min",
            "--test",
            "--scope",
            "read",
            "--metadata",
            r#"{"team":"infra"}"#,
        ],
    );
    assert!(key.starts_with("ks_test_"), "{key}");
    let (_, info) = env.json(&["keys", "list", "--user", "alice"], "");
    let k = &info["keys"][0];
    assert_eq!(k["key_id"], id.as_str());
    assert_eq!(k["environment"], "test");
    assert_eq!(k["rate_limit"]["requests"], 2);
    assert_eq!(k["rate_limit"]["period_ms"], 60_000);
    assert_eq!(k["metadata"]["team"], "infra");
    assert_eq!(k["enabled"], true);
    assert_eq!(k["status"], "active");
    // one process per verify: each gets a full bucket, so the limit shows within one
    // process only; the library tests cover the bucket.
    assert_eq!(reason(&verify(env, &key, &[])), "valid");
}

crate::on_both_backends!(update_disable_enable_delete);
fn update_disable_enable_delete(env: &Env) {
    let (key, id) = create(env, "alice", &["--scope", "read", "--expires-in", "1d"]);
    assert_eq!(reason(&verify(env, &key, &["deploy"])), "forbidden");
    let (code, updated) = env.json(
        &[
            "keys",
            "update",
            "--user",
            "alice",
            &id,
            "--name",
            "renamed",
            "--scope",
            "read",
            "--scope",
            "deploy",
            "--no-expiry",
            "--rate-limit",
            "100/min",
            "--metadata",
            r#"{"ticket":"OPS-1"}"#,
        ],
        "",
    );
    assert_eq!(code, 0, "{updated}");
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["scopes"], serde_json::json!(["read", "deploy"]));
    assert_eq!(updated["expires_at"], Value::Null);
    assert_eq!(updated["rate_limit"]["requests"], 100);
    assert_eq!(updated["metadata"]["ticket"], "OPS-1");
    assert_eq!(reason(&verify(env, &key, &["deploy", "read"])), "valid");
    // human output too
    let out = env.run(
        &[
            "keys",
            "update",
            "--user",
            "alice",
            &id,
            "--expires-in",
            "30d",
            "--no-rate-limit",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!("updated key {id} of user alice")));
    assert!(stdout(&out).contains("rate limit none"));

    let out = env.run(&["keys", "disable", "--user", "alice", &id], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(reason(&verify(env, &key, &[])), "disabled");
    let (_, listed) = env.json(
        &["keys", "list", "--user", "alice", "--status", "disabled"],
        "",
    );
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    let (code, enabled) = env.json(&["keys", "enable", "--user", "alice", &id], "");
    assert_eq!((code, &enabled["status"]), (0, &Value::from("active")));
    assert_eq!(reason(&verify(env, &key, &[])), "valid");

    let out = env.run(&["keys", "delete", "--user", "alice", &id], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(reason(&verify(env, &key, &[])), "unknown");
    assert_eq!(all(env)["keys"], serde_json::json!([]));
}

crate::on_both_backends!(list_all_pages_through_every_key_and_filters_by_status);
fn list_all_pages_through_every_key_and_filters_by_status(env: &Env) {
    let mut ids = Vec::new();
    for user in ["a", "b", "c"] {
        for _ in 0..2 {
            ids.push(create(env, user, &[]).1);
        }
    }
    let out = env.run(&["keys", "revoke", "--user", "b", &ids[2]], "");
    assert_eq!(out.status.code(), Some(0));
    let listed = all(env);
    let got: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.reverse();
    assert_eq!(got, want);
    let text = listed.to_string();
    assert!(!text.contains("$2") && !text.contains("\"key\""), "{text}");
    let (_, revoked) = env.json(&["keys", "list", "--all", "--status", "revoked"], "");
    assert_eq!(revoked["keys"].as_array().unwrap().len(), 1);
    assert_eq!(revoked["keys"][0]["key_id"], ids[2].as_str());
    let (_, active) = env.json(&["keys", "list", "--all", "--status", "active"], "");
    assert_eq!(active["keys"].as_array().unwrap().len(), 5);
    // human table with the owner column
    let out = env.run(&["keys", "list", "--all"], "");
    assert!(stdout(&out).starts_with("USER"), "{}", stdout(&out));
    let out = env.run(&["keys", "list", "--all", "--status", "expired"], "");
    assert_eq!(stdout(&out), "no keys in status expired");
}

crate::on_both_backends!(bad_admin_input_exits_non_zero_and_changes_nothing);
fn bad_admin_input_exits_non_zero_and_changes_nothing(env: &Env) {
    let (key, id) = create(env, "alice", &["--scope", "read"]);
    let (_, bobs) = create(env, "bob", &[]);
    let (_, revoked) = create(env, "alice", &[]);
    assert_eq!(
        env.run(&["keys", "revoke", "--user", "alice", &revoked], "")
            .status
            .code(),
        Some(0)
    );
    let before = all(env);
    let big = format!(r#"{{"b":"{}"}}"#, "x".repeat(5000));
    // refused by the library: exit 1, one line on stderr
    for args in [
        vec![
            "keys",
            "update",
            "--user",
            "alice",
            "nosuchkey000",
            "--name",
            "x",
        ],
        vec!["keys", "update", "--user", "alice", &bobs, "--name", "x"],
        vec!["keys", "disable", "--user", "alice", &bobs],
        vec!["keys", "enable", "--user", "alice", &bobs],
        vec!["keys", "delete", "--user", "alice", &bobs],
        vec!["keys", "delete", "--user", "alice", "nosuchkey000"],
        vec!["keys", "update", "--user", "alice", &id, "--metadata", &big],
        vec!["keys", "update", "--user", "alice", &id],
        vec!["keys", "update", "--user", "alice", &revoked, "--name", "x"],
        vec!["keys", "enable", "--user", "alice", &revoked],
    ] {
        let out = env.run(&args, "");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("keyseal: "), "{err}");
    }
    assert_eq!(all(env), before);
    assert_eq!(reason(&verify(env, &key, &["read"])), "valid");
}

crate::on_both_backends!(bad_admin_usage_exits_2_and_changes_nothing);
fn bad_admin_usage_exits_2_and_changes_nothing(env: &Env) {
    let (key, id) = create(env, "alice", &["--scope", "read"]);
    let before = all(env);
    // bad usage: exit 2 before anything is opened
    for args in [
        "keys create --user alice --name x --rate-limit 100/day".to_string(),
        "keys create --user alice --name x --rate-limit 0/min".into(),
        format!("keys update --user alice {id} --rate-limit fast"),
        format!("keys update --user alice {id} --rate-limit 1/s --no-rate-limit"),
        format!("keys update --user alice {id} --expires-in 1d --no-expiry"),
        format!("keys update --user alice {id} --metadata [1]"),
        "keys list".into(),
        "keys list --user alice --all".into(),
        "keys list --all --status gone".into(),
    ] {
        let args: Vec<&str> = args.split_whitespace().collect();
        let out = env.run(&args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(all(env), before);
    assert_eq!(reason(&verify(env, &key, &["read"])), "valid");
}
