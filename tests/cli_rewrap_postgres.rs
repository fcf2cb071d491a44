//! `keyseal rewrap --data-db postgres://…`: the application's table in PostgreSQL (its URL,
//! password included, in `KEYSEAL_DATA_DB`) rewrapped to a rotated key version, then `--to-v3`
//! bound to its rows, with `--dry-run` changing nothing and `--verify` catching a token moved
//! to another row; a password in the `--data-db` argument itself is refused.
#![cfg(feature = "cli")]

mod common;

use common::cli_env::{keyseal_in, run_in, stderr, stdout, Env};
use common::pg::PgDb;
use common::process::run_with_stdin;

const SECRET: &str = "hunter2-s3cret";

/// The table's tokens in id order (`None` for NULL).
fn secrets(data: &PgDb) -> Vec<Option<String>> {
    common::pg::query(&data.admin_url(), "SELECT secret FROM creds ORDER BY id")
        .into_iter()
        .map(|mut row| row.remove(0))
        .collect()
}

#[test]
fn rewrap_a_postgres_table_to_a_rotated_version_then_to_v3_bound_to_rows() {
    let Some(data) = PgDb::empty() else { return };
    let env = Env::new();
    let a1 = stdout(&env.run(&["encrypt", "--user", "alice"], "alice-1"));
    let a2 = stdout(&env.run(&["encrypt", "--user", "alice"], "alice-2"));
    let b1 = stdout(&env.run(&["encrypt", "--user", "bob"], "bob-1"));
    // Mixed-case names (matched as unquoted SQL names are), a text id, and a NULL value.
    common::pg::run_sql(
        &data.admin_url(),
        &format!(
            "CREATE TABLE creds (id integer PRIMARY KEY, owner text, Secret varchar(400)); \
             INSERT INTO creds VALUES (1, 'alice', '{a1}'), (2, 'alice', '{a2}'), \
               (3, 'bob', '{b1}'), (4, 'bob', NULL); {}",
            common::pg::APP_GRANTS
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut command = keyseal_in(env.dir.path());
        command
            .env("KEYSEAL_DATA_DB", data.app_url())
            .arg("--db")
            .arg(env.db())
            .arg("--master-key-file")
            .arg(&env.master_file)
            .args([
                "rewrap",
                "--table",
                "CREDS",
                "--column",
                "secret",
                "--id-column",
                "ID",
                "--user-column",
                "owner",
                "--json",
            ])
            .args(extra);
        let out = run_with_stdin(&mut command, b"");
        let value = serde_json::from_str::<serde_json::Value>(stdout(&out).trim())
            .unwrap_or(serde_json::Value::Null);
        (out.status.code(), value, stderr(&out))
    };

    // Alice's key rotates: her two values move to version 2 (v3:), Bob's stay v2:.
    env.run(&["rotate-key", "--user", "alice", "--force"], "");
    let before = secrets(&data);
    let (code, dry, err) = run(&["--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        (dry["rewrapped"].as_u64(), dry["skipped"].as_u64()),
        (Some(2), Some(2)),
        "{dry}"
    );
    assert_eq!(secrets(&data), before, "a dry run changes nothing");

    let (code, report, err) = run(&["--verify", "--batch", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        (report["rewrapped"].as_u64(), report["skipped"].as_u64()),
        (Some(2), Some(2)),
        "{report}"
    );
    assert_eq!(report["verify"]["ok"], 3, "{report}");
    assert_eq!(report["verify"]["null"], 1, "{report}");
    let after = secrets(&data);
    assert!(after[0].as_deref().unwrap().starts_with("v3:"));
    assert!(after[1].as_deref().unwrap().starts_with("v3:"));
    assert_eq!(after[2].as_deref(), Some(b1.as_str()));
    assert_eq!(after[3], None);
    let opened = env.run(
        &["decrypt", "--user", "alice"],
        after[1].as_deref().unwrap(),
    );
    assert_eq!(stdout(&opened), "alice-2", "{}", stderr(&opened));
    let (_, again, _) = run(&[]);
    assert_eq!(again["rewrapped"], 0, "resumed: nothing twice: {again}");

    // --to-v3 with context columns: each value bound to (creds, id, owner, secret).
    let bound = ["--to-v3", "--context-columns", "id,OWNER", "--force"];
    let (code, dry, err) = run(&[&bound[..], &["--dry-run"]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(dry["rewrapped"], 3, "{dry}");
    assert_eq!(secrets(&data), after, "a dry run changes nothing");
    let (code, report, err) = run(&[&bound[..], &["--verify"]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(report["rewrapped"], 3, "{report}");
    assert_eq!(report["verify"]["ok"], 3, "{report}");
    let (_, again, _) = run(&bound);
    assert_eq!(
        (again["rewrapped"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(4)),
        "already bound: {again}"
    );

    // A token moved to another row of the same user no longer decrypts there.
    common::pg::run_sql(
        &data.admin_url(),
        "UPDATE creds SET secret = (SELECT secret FROM creds WHERE id = 2) WHERE id = 1",
    )
    .unwrap();
    let (code, _, err) = run(&[&bound[..], &["--verify"]].concat());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("1 values do not decrypt"), "{err}");
    assert!(
        !err.contains(data.app_password()),
        "no password shown: {err}"
    );
}

/// `rewrap --data-db` refuses a URL holding a password as an argument (exit 2, the password not
/// echoed, `KEYSEAL_DATA_DB` named), before anything is opened.
#[test]
fn rewrap_data_db_refuses_a_password_in_the_argument() {
    let env = Env::new();
    let url = format!("--data-db=postgres://app:{SECRET}@127.0.0.1:1/app");
    let db = env.db();
    let args = [
        "--db",
        db.to_str().unwrap(),
        "rewrap",
        "--table=t",
        "--column=c",
        "--id-column=id",
        "--pool",
        "--dry-run",
        &url,
    ];
    let out = run_in(env.dir.path(), &args, "");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--data-db") && err.contains("KEYSEAL_DATA_DB"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "the password is echoed: {err}");
    assert!(!env.db().exists(), "nothing was run");
}
