//! `keyseal migrate` as a user runs it: names checked, dry runs, kill and resume, odd rows.
#![cfg(feature = "cli")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::cli_env::{run_in, stderr, stdout, Env};
use common::process::ChildProcess;
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
    let mut child = ChildProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_keyseal"))
            .args(args)
            .env_remove("API_KEY_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
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
        assert!(child.is_running(), "finished before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill();
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

fn migrate_args<'a>(data: &'a str, user: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec![
        "migrate",
        "--data-db",
        data,
        "--table",
        "t",
        "--column",
        "secret",
        "--id-column",
        "id",
    ];
    match user {
        Some(column) => args.extend(["--user-column", column]),
        None => args.push("--pool"),
    }
    args
}

/// Rows whose TEXT is not UTF-8 (in the value, the user id or the id) made `migrate` panic
/// (exit 101) on every run. Such rows, and values or user ids of any other odd type, are now
/// left as they are, counted and named by id, and the run ends with exit 1; good rows are
/// migrated, even one whose id is not UTF-8.
#[test]
fn migrate_reports_non_utf8_and_odd_typed_rows_by_id() {
    let env = Env::new();
    let data = env.dir.path().join("app.db");
    rusqlite::Connection::open(&data)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(id PRIMARY KEY, owner, secret);
             INSERT INTO t VALUES
               (1, 'alice', 'sk-ok'),
               (2, 'bob', CAST(X'FFFE' AS TEXT)),
               (3, CAST(X'C328' AS TEXT), 'sk-3'),
               (4, 'carol', X'0102'),
               (5, 'dan', 1.5),
               (6, 'erin', 42),
               (7, 2.5, 'sk-7'),
               (8, X'00', 'sk-8'),
               (9, 'frank', NULL),
               (CAST(X'FF61' AS TEXT), 'gina', 'sk-bad-id'),
               (CAST(X'FF62' AS TEXT), 'hana', CAST(X'80' AS TEXT));",
        )
        .unwrap();
    let data = data.to_str().unwrap();
    for run in 0..2 {
        let (code, report) = env.json(&migrate_args(data, Some("owner")), "");
        assert_eq!(code, 1, "run {run}: {report}");
        let migrated = if run == 0 { 2 } else { 0 };
        assert_eq!(report["migrated"].as_u64(), Some(migrated), "run {run}");
        assert_eq!(report["failed"].as_u64(), Some(8), "run {run}");
        let rows: Vec<(String, String)> = report["failed_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().into(),
                    r["reason"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want = [
            ("2", "value is not UTF-8 text"),
            ("3", "user id is not UTF-8 text"),
            ("4", "value is not text"),
            ("5", "value is not text"),
            ("6", "value is not text"),
            ("7", "no usable user id"),
            ("8", "no usable user id"),
            ("\"\u{fffd}b\"", "value is not UTF-8 text"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(i, r)| ((*i).into(), (*r).into()))
            .collect();
        assert_eq!(rows, want, "run {run}");
    }
    // The human form says the same on one stderr line.
    let out = env.run(&migrate_args(data, Some("owner")), "");
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("keyseal:")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = lines[0];
    assert!(
        line.contains("8 values were left as they were: id 2 (value is not UTF-8 text)"),
        "{line}"
    );
    // The good rows decrypt; the odd ones are byte for byte as they were.
    let conn = rusqlite::Connection::open(data).unwrap();
    let odd: Vec<u8> = conn
        .query_row("SELECT CAST(secret AS BLOB) FROM t WHERE id = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(odd, [0xff, 0xfe]);
    let token: String = conn
        .query_row("SELECT secret FROM t WHERE owner = 'gina'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        stdout(&env.run(&["decrypt", "--user", "gina"], &token)),
        "sk-bad-id"
    );
    // With the pool key only the values matter.
    let (code, report) = env.json(&migrate_args(data, None), "");
    assert_eq!(code, 1);
    assert_eq!(
        report["migrated"].as_u64(),
        Some(3),
        "rows 3, 7 and 8: {report}"
    );
    assert_eq!(report["failed"].as_u64(), Some(5));
}

/// `--user-column` equal to `--column` turned every secret into the user id of its own key (so
/// the secrets ended up in plaintext in the key store). It is refused, in any letter case,
/// before anything is opened or created; so is `--id-column` equal to `--column`.
#[test]
fn migrate_refuses_the_secret_column_as_user_or_id_column() {
    let env = Env::new();
    let data = env.dir.path().join("app.db");
    make_table(&data, 5, 2);
    let before = std::fs::read(&data).unwrap();
    let data = data.to_str().unwrap();
    let cases: [&[&str]; 3] = [
        &["--id-column", "id", "--user-column", "api_key"],
        &["--id-column", "id", "--user-column", "API_Key"],
        &["--id-column", "api_key", "--pool"],
    ];
    for extra in cases {
        let mut args = vec![
            "migrate",
            "--data-db",
            data,
            "--table",
            "credentials",
            "--column",
            "api_key",
        ];
        args.extend_from_slice(extra);
        let out = env.run(&args, "");
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        assert!(
            stderr(&out).contains("is the column to encrypt"),
            "{}",
            stderr(&out)
        );
        assert!(!env.db().exists(), "the store was not even created");
    }
    assert_eq!(std::fs::read(data).unwrap(), before);
}

/// Every file in `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
                meta.modified().unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `migrate --dry-run` created the `--db` store (or added keyseal's tables and WAL mode to it,
/// when the table lives there). A dry run now changes nothing on disk: every file keeps its
/// bytes and modification time, and no file appears, whether `--db` exists or not, and
/// whether the data file is in WAL mode or not.
#[test]
fn migrate_dry_run_changes_nothing_on_disk() {
    let env = Env::new();
    let dir = env.dir.path();
    let data = dir.join("app.db");
    make_table(&data, 20, 3);
    let wal = dir.join("wal.db");
    make_table(&wal, 20, 3);
    rusqlite::Connection::open(&wal)
        .unwrap()
        .query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    // An existing store, for the case where it must not be touched either.
    let existing = dir.join("existing.db");
    let key = env.master_file.to_str().unwrap();
    let out = env.run_with_key(&env.master_file, &["encrypt", "--pool"], "x");
    assert_eq!(out.status.code(), Some(0));
    std::fs::rename(env.db(), &existing).unwrap();
    // Every file's mtime must be in the past, so that a write would show.
    std::thread::sleep(std::time::Duration::from_millis(20));

    let missing = dir.join("missing.db");
    let table = [
        "--table",
        "credentials",
        "--column",
        "api_key",
        "--id-column",
        "id",
    ];
    let cases: [(&Path, Option<&Path>); 5] = [
        (&missing, Some(&data)), // a missing --db, the table elsewhere
        (&existing, Some(&wal)), // an existing --db, a WAL data file
        (&data, None),           // the table in the --db file
        (&wal, None),            // the same, in WAL mode
        (&missing, None),        // nothing there at all: refused
    ];
    for (db, data_db) in cases {
        let before = snapshot(dir);
        let mut args = vec![
            "--db",
            db.to_str().unwrap(),
            "--master-key-file",
            key,
            "migrate",
        ];
        if let Some(data_db) = data_db {
            args.extend(["--data-db", data_db.to_str().unwrap()]);
        }
        args.extend(table);
        args.extend(["--user-column", "owner", "--dry-run", "--json"]);
        let out = run_in(dir, &args, "");
        if db == missing && data_db.is_none() {
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        } else {
            assert_eq!(
                out.status.code(),
                Some(0),
                "{db:?} {data_db:?}: {}",
                stderr(&out)
            );
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(report["migrated"].as_u64(), Some(20));
            assert_eq!(report["dry_run"].as_bool(), Some(true));
        }
        assert_eq!(
            snapshot(dir),
            before,
            "{db:?} {data_db:?}: a file changed or appeared"
        );
    }
    // A wrong master key is refused as the real run would refuse it, still without a trace.
    let before = snapshot(dir);
    let other = env.new_key_file("other.key");
    let mut args = vec!["--db", existing.to_str().unwrap(), "--master-key-file"];
    args.push(other.to_str().unwrap());
    args.extend(["migrate", "--data-db", data.to_str().unwrap()]);
    args.extend(table);
    args.extend(["--pool", "--dry-run"]);
    let out = run_in(dir, &args, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wrong master key"),
        "{}",
        stderr(&out)
    );
    let mut after = snapshot(dir);
    after.retain(|(name, _, _)| name != "other.key");
    assert_eq!(after, before);
    // --verify needs the store: it does not combine with --dry-run.
    let data_db = data.to_str().unwrap();
    let mut args = migrate_args(data_db, Some("owner"));
    args.extend(["--dry-run", "--verify"]);
    assert_eq!(env.run(&args, "").status.code(), Some(2));
}
