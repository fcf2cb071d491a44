//! `keyseal rewrap` as a user runs it: tokens brought to the newest key version, `--to-v3`
//! binding each to its row (a token moved to another row then fails), `--dry-run`, `--verify`.
#![cfg(feature = "cli")]

mod common;

use common::cli_env::{stderr, stdout, Env};

fn data_db(env: &Env, rows: &[(i64, &str, &str)]) -> std::path::PathBuf {
    let path = env.dir.path().join("data.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE creds(id INTEGER PRIMARY KEY, owner TEXT, secret TEXT)")
        .unwrap();
    for (id, owner, token) in rows {
        conn.execute(
            "INSERT INTO creds VALUES (?1, ?2, ?3)",
            rusqlite::params![id, owner, token],
        )
        .unwrap();
    }
    path
}

fn secrets(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT secret FROM creds ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn rewrap_to_the_newest_version_then_to_v3_bound_to_rows() {
    let env = Env::new();
    let a1 = stdout(&env.run(&["encrypt", "--user", "alice"], "alice-1"));
    let a2 = stdout(&env.run(&["encrypt", "--user", "alice"], "alice-2"));
    let b1 = stdout(&env.run(&["encrypt", "--user", "bob"], "bob-1"));
    let data = data_db(
        &env,
        &[(1, "alice", &a1), (2, "alice", &a2), (3, "bob", &b1)],
    );
    let data_arg = data.to_str().unwrap();
    let base = [
        "rewrap",
        "--data-db",
        data_arg,
        "--table",
        "creds",
        "--column",
        "secret",
        "--id-column",
        "id",
        "--user-column",
        "owner",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        env.json(&args, "")
    };
    // Nothing to do while every user is on version 1 (v2: stays, the Python module reads it).
    let (code, report) = run(&["--verify"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        (report["rewrapped"].as_u64(), report["skipped"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(report["verify"]["ok"], 3);

    // Alice's key rotates: her two values move to version 2 (v3:), Bob's stay.
    env.run(&["rotate-key", "--user", "alice", "--force"], "");
    let before = secrets(&data);
    let (_, dry) = run(&["--dry-run"]);
    assert_eq!(dry["rewrapped"], 2);
    assert_eq!(secrets(&data), before, "a dry run changes nothing");
    let (code, report) = run(&["--verify", "--batch", "1"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        (report["rewrapped"].as_u64(), report["skipped"].as_u64()),
        (Some(2), Some(1))
    );
    let after = secrets(&data);
    assert!(after[0].starts_with("v3:") && after[1].starts_with("v3:") && after[2] == b1);
    assert_eq!(
        stdout(&env.run(&["decrypt", "--user", "alice"], &after[0])),
        "alice-1"
    );
    assert_eq!(run(&[]).1["rewrapped"], 0, "resumed: nothing twice");

    // --to-v3: refused while the Python module shares the store, unless forced.
    let mut refused = base.to_vec();
    refused.push("--to-v3");
    let out = env.run(&refused, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("shared with the Python module"),
        "{}",
        stderr(&out)
    );
    assert_eq!(secrets(&data), after);
    // Forced: every value bound to (creds, id, secret).
    let (code, report) = run(&["--to-v3", "--force", "--verify"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["rewrapped"], 3);
    assert_eq!(report["verify"]["ok"], 3);
    // A token moved to another row of the same user no longer decrypts there.
    let conn = rusqlite::Connection::open(&data).unwrap();
    conn.execute(
        "UPDATE creds SET secret = (SELECT secret FROM creds WHERE id = 2) WHERE id = 1",
        [],
    )
    .unwrap();
    let mut args = base.to_vec();
    args.extend_from_slice(&["--to-v3", "--force", "--verify"]);
    let out = env.run(&args, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("1 values do not decrypt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rewrap_refuses_bad_names_and_odd_rows_are_listed() {
    let env = Env::new();
    let token = stdout(&env.run(&["encrypt", "--pool"], "shared"));
    let data = data_db(
        &env,
        &[(1, "x", &token), (2, "x", "plaintext"), (3, "x", "v3:AAAA")],
    );
    let data_arg = data.to_str().unwrap();
    let args = [
        "rewrap",
        "--data-db",
        data_arg,
        "--table",
        "creds",
        "--column",
        "secret",
        "--id-column",
        "id",
        "--pool",
        "--to-v3",
        "--force",
    ];
    let (code, report) = env.json(&args, "");
    assert_eq!(code, 1);
    assert_eq!(
        (report["rewrapped"].as_u64(), report["refused"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(report["refused_rows"][0]["id"], "2");
    let mut bad = args.to_vec();
    bad[4] = "creds; DROP TABLE creds";
    let out = env.run(&bad, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a plain identifier"),
        "{}",
        stderr(&out)
    );
}
