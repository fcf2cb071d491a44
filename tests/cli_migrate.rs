//! `keyseal migrate` as a user runs it: names checked, dry runs, kill and resume, odd rows.
#![cfg(feature = "cli")]

#[path = "common/cli_env.rs"]
mod cli_env;

use std::path::Path;
use std::process::{Command, Stdio};

use cli_env::{run_in, stderr, stdout, Env};
use serde_json::Value;

fn make_table(db: &Path, rows: u32, users: u32) {
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "CREATE TABLE credentials(id INTEGER PRIMARY KEY, owner TEXT, api_key TEXT);",
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare("INSERT INTO credentials(id, owner, api_key) VALUES (?1, ?2, ?3)")
            .unwrap();
        for id in 1..=rows {
            stmt.execute(rusqlite::params![
                id,
                format!("user-{}", id % users),
                original(id)
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// The 64-byte plaintext of row `id`.
fn original(id: u32) -> String {
    format!("sk-live-{id:010}-{}", "x".repeat(64 - 19))
}

#[test]
fn migrate_validates_names_and_supports_dry_run() {
    let env = Env::new();
    let data = env.dir.path().join("app.db");
    make_table(&data, 50, 5);
    let base = ["migrate", "--data-db", data.to_str().unwrap()];
    for (table, column) in [
        ("credentials; DROP TABLE x", "api_key"),
        ("credentials", "api_key\""),
        ("nope", "api_key"),
    ] {
        let mut args = base.to_vec();
        args.extend([
            "--table",
            table,
            "--column",
            column,
            "--id-column",
            "id",
            "--pool",
        ]);
        let out = env.run(&args, "");
        assert_eq!(out.status.code(), Some(1), "{table} {column}");
        assert!(
            stderr(&out).contains("invalid argument"),
            "{}",
            stderr(&out)
        );
    }
    let mut args = base.to_vec();
    args.extend([
        "--table",
        "credentials",
        "--column",
        "api_key",
        "--id-column",
        "id",
        "--user-column",
        "owner",
    ]);
    let mut dry = args.clone();
    dry.push("--dry-run");
    let (code, report) = env.json(&dry, "");
    assert_eq!((code, report["migrated"].as_u64()), (0, Some(50)));
    let conn = rusqlite::Connection::open(&data).unwrap();
    let plain: u32 = conn
        .query_row(
            "SELECT count(*) FROM credentials WHERE api_key NOT LIKE 'v2:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(plain, 50, "a dry run changes nothing");
    args.push("--verify");
    let out = env.run(&args, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("migrated 50"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("verify: 50 decrypt"),
        "{}",
        stdout(&out)
    );
}

/// 100 000 rows, 1 000 users: killed half way, resumed, and every value decrypts to exactly
/// its original (so nothing was lost and nothing encrypted twice).
#[test]
fn migrate_100k_rows_killed_and_resumed() {
    let env = Env::new();
    let data = env.dir.path().join("app.db");
    make_table(&data, 100_000, 1_000);
    let db = env.db();
    let args = [
        "--db",
        db.to_str().unwrap(),
        "--master-key-file",
        env.master_file.to_str().unwrap(),
        "migrate",
        "--data-db",
        data.to_str().unwrap(),
        "--table",
        "credentials",
        "--column",
        "api_key",
        "--id-column",
        "id",
        "--user-column",
        "owner",
        "--batch",
        "500",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyseal"))
        .args(args)
        .env_remove("API_KEY_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let conn = rusqlite::Connection::open(&data).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let count_encrypted = || -> u32 {
        conn.query_row(
            "SELECT count(*) FROM credentials WHERE api_key LIKE 'v2:%'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while count_encrypted() < 20_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "migration made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let halfway = count_encrypted();
    assert!(halfway < 100_000, "killed before the end ({halfway})");
    assert_eq!(halfway % 500, 0, "whole batches only: {halfway}");

    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--verify", "--json"]);
    let out = run_in(env.dir.path(), &full, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["migrated"].as_u64(),
        Some(100_000 - u64::from(halfway))
    );
    assert_eq!(report["skipped"].as_u64(), Some(u64::from(halfway)));
    assert_eq!(report["failed"].as_u64(), Some(0));
    assert_eq!(report["verify"]["ok"].as_u64(), Some(100_000));

    // Every value decrypts, once, to its original.
    let master =
        keyseal::parse_master_key(&std::fs::read_to_string(&env.master_file).unwrap()).unwrap();
    let store = keyseal::KeyStore::open(env.db(), master).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, owner, api_key FROM credentials")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    let mut n = 0;
    for row in rows {
        let (id, owner, token) = row.unwrap();
        let key = store.get_user_key(&owner).unwrap().unwrap();
        assert_eq!(keyseal::decrypt(&token, &key).unwrap(), original(id));
        n += 1;
    }
    assert_eq!(n, 100_000);
    assert_eq!(store.user_count().unwrap(), 1_000);
}

/// Review findings: the table may live in the store's own file (keys are minted outside the
/// batch's write lock), integer user ids work, ids must be unique, bad user ids only fail rows.
#[test]
fn migrate_in_the_store_file_with_integer_users() {
    let env = Env::new();
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute_batch(
            "CREATE TABLE creds(id INTEGER PRIMARY KEY, owner, secret TEXT);
             INSERT INTO creds(owner, secret) VALUES (1, 'a'), (2, 'b'), ('carol', 'c'), (NULL, 'd'), ('', 'e');
             CREATE TABLE dup(k TEXT, owner TEXT, secret TEXT);
             INSERT INTO dup VALUES ('x', 'u', 's1'), ('x', 'u', 's2');",
        )
        .unwrap();
    }
    let args = [
        "migrate",
        "--table",
        "creds",
        "--column",
        "secret",
        "--id-column",
        "id",
        "--user-column",
        "owner",
    ];
    let (code, report) = env.json(&args, "");
    assert_eq!(code, 1, "two rows have no usable user id");
    assert_eq!(
        (report["migrated"].as_u64(), report["failed"].as_u64()),
        (Some(3), Some(2))
    );
    let out = env.run(&["decrypt", "--user", "1"], "");
    assert_eq!(out.status.code(), Some(1), "empty token");
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let token: String = conn
        .query_row("SELECT secret FROM creds WHERE owner = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stdout(&env.run(&["decrypt", "--user", "1"], &token)), "a");

    let dup = [
        "migrate",
        "--table",
        "dup",
        "--column",
        "secret",
        "--id-column",
        "k",
        "--pool",
    ];
    let out = env.run(&dup, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("must be unique"), "{}", stderr(&out));
}
