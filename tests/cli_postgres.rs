//! The `keyseal` binary on PostgreSQL: URLs with a password refused as arguments, passwords
//! from `KEYSEAL_DB`, `PGPASSWORD` or a password file, and `keyseal db migrate`. (The main
//! command flows run on both backends in `tests/cli_commands.rs`.)
#![cfg(feature = "cli")]

mod common;

use common::cli_env::{keyseal_in, run_in, stderr, stdout, Env};
use common::pg::PgDb;
use common::process::run_with_stdin;

const SECRET: &str = "hunter2-s3cret";

/// Every URL flag refuses a password given on the command line, with exit 2, a message naming
/// the flag and the safe places for the password, and never the password itself; nothing is
/// run (no server needed).
#[test]
fn a_password_inside_a_url_argument_is_refused_for_every_url_flag() {
    let env = Env::new();
    let db = env.db();
    let db = db.to_str().unwrap();
    let cases: [(&str, Vec<String>, &str); 6] = [
        (
            "--db",
            vec![
                "--db".into(),
                format!("postgres://app:{SECRET}@127.0.0.1:1/keys"),
                "hash".into(),
            ],
            "KEYSEAL_DB",
        ),
        (
            "--db",
            vec![
                "keys".into(),
                "list".into(),
                "--user".into(),
                "u".into(),
                format!("--db=postgresql://app@127.0.0.1:1/keys?password={SECRET}"),
            ],
            "KEYSEAL_DB",
        ),
        (
            "--db",
            vec![
                "--db".into(),
                format!("postgres://app:{SECRET}@h/k"),
                "db".into(),
                "migrate".into(),
            ],
            "KEYSEAL_DB",
        ),
        (
            "--to",
            vec![
                "--db".into(),
                db.into(),
                "copy".into(),
                "--to".into(),
                format!("postgres://app:{SECRET}@127.0.0.1:1/keys"),
            ],
            "KEYSEAL_COPY_TO",
        ),
        (
            "--data-db",
            vec![
                "--db".into(),
                db.into(),
                "migrate".into(),
                "--table".into(),
                "t".into(),
                "--column".into(),
                "c".into(),
                "--id-column".into(),
                "id".into(),
                "--pool".into(),
                "--data-db".into(),
                format!("postgres://app:{SECRET}@127.0.0.1:1/app"),
            ],
            "KEYSEAL_DATA_DB",
        ),
        (
            "--data-db",
            vec![
                "--db".into(),
                db.into(),
                "migrate".into(),
                "--table=t".into(),
                "--column=c".into(),
                "--id-column=id".into(),
                "--pool".into(),
                "--dry-run".into(),
                format!("--data-db=postgres://app:@127.0.0.1:1/app"),
            ],
            "KEYSEAL_DATA_DB",
        ),
    ];
    for (flag, args, env_var) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_in(env.dir.path(), &args, "x");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{err}");
        for said in [env_var, "PGPASSWORD", "PGPASSFILE", "passfile="] {
            assert!(err.contains(said), "{said} not in {err}");
        }
        assert!(!err.contains(SECRET), "the password is echoed: {err}");
        assert!(stdout(&out).is_empty());
    }
    assert!(!env.db().exists(), "nothing was run");
}

/// The same URL with its password is fine from the environment, and a URL without one takes
/// it from `PGPASSWORD` or a password file (`passfile=` or `PGPASSFILE`).
#[test]
fn passwords_come_from_keyseal_db_pgpassword_or_a_password_file() {
    let Some(env) = Env::postgres() else { return };
    let pg = env.pg.as_ref().unwrap();
    let token = stdout(&env.run(&["encrypt", "--user", "alice"], "kept"));
    assert!(token.starts_with("v2:"), "{token}");
    let master = env.master_file.to_str().unwrap();
    let bare = pg.app_url_without_password();
    let decrypt = ["--master-key-file", master, "decrypt", "--user", "alice"];

    let mut command = keyseal_in(env.dir.path());
    command
        .env("PGPASSWORD", pg.app_password())
        .args(["--db", &bare])
        .args(decrypt);
    let out = run_with_stdin(&mut command, token.as_bytes());
    assert_eq!(stdout(&out), "kept", "{}", stderr(&out));

    let passfile = env.dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!("*:*:*:keyseal_app:{}\n", pg.app_password()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let with_param = format!("{bare}&passfile={}", passfile.display());
    let mut command = keyseal_in(env.dir.path());
    command
        .env_remove("PGPASSWORD")
        .args(["--db", &with_param])
        .args(decrypt);
    let out = run_with_stdin(&mut command, token.as_bytes());
    assert_eq!(stdout(&out), "kept", "{}", stderr(&out));

    let mut command = keyseal_in(env.dir.path());
    command
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", &passfile)
        .args(["--db", &bare])
        .args(decrypt);
    let out = run_with_stdin(&mut command, token.as_bytes());
    assert_eq!(stdout(&out), "kept", "{}", stderr(&out));

    // A wrong password from the environment: refused, the password not shown.
    let wrong = pg.app_url().replace(pg.app_password(), SECRET);
    let mut command = keyseal_in(env.dir.path());
    command
        .env("KEYSEAL_DB", &wrong)
        .args(&decrypt[..2])
        .args(&decrypt[2..]);
    let out = run_with_stdin(&mut command, token.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).contains(SECRET), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("***") || stderr(&out).contains("keyseal_app@"),
        "{}",
        stderr(&out)
    );
}

/// `keyseal db migrate` creates the tables with a privileged role and says which version it
/// left, is idempotent, and the app role (rows only) may not run it; on a SQLite file it has
/// nothing to do and creates nothing.
#[test]
fn db_migrate_applies_the_schema_once_and_reports_its_version() {
    let env = Env::new();
    let out = env.run(&["db", "migrate", "--json"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["backend"], "sqlite");
    assert_eq!(value["migrated"], false);
    assert!(!env.db().exists(), "no file was created");

    let Some(pg) = PgDb::empty() else { return };
    let migrate = |url: &str| {
        let mut command = keyseal_in(env.dir.path());
        command
            .env("KEYSEAL_DB", url)
            .args(["db", "migrate", "--json"]);
        run_with_stdin(&mut command, b"")
    };
    // The app role cannot create tables: a clear refusal, no password shown.
    let out = migrate(&pg.app_url());
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        !stderr(&out).contains(pg.app_password()),
        "{}",
        stderr(&out)
    );

    let out = migrate(&pg.admin_url());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(first["backend"], "postgres");
    assert_eq!(first["migrated"], true);
    assert_eq!(first["schema_version_before"], 0);
    assert_eq!(first["schema_version"], keyseal::postgres::SCHEMA_VERSION);
    let out = migrate(&pg.admin_url());
    let again: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(again["migrated"], false);
    assert_eq!(again["schema_version"], first["schema_version"]);
    let tables = common::pg::query(
        &pg.admin_url(),
        "SELECT count(*) FROM pg_tables WHERE tablename = 'encryption_keys'",
    );
    assert_eq!(tables[0][0].as_deref(), Some("1"));
    // Human output.
    let mut command = keyseal_in(env.dir.path());
    command
        .env("KEYSEAL_DB", pg.admin_url())
        .args(["db", "migrate"]);
    let out = run_with_stdin(&mut command, b"");
    assert!(
        stdout(&out).contains("already up to date"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains(&pg.admin_url()), "no password shown");
}

/// The application's table in PostgreSQL: `migrate --data-db postgres://…` (its URL, password
/// included, in `KEYSEAL_DATA_DB`) dry-runs without changing anything, encrypts in batches,
/// verifies, resumes to nothing left, and each token opens with its owner's key; with the
/// key store in PostgreSQL too, the table may sit in the store's own database.
fn migrate_a_postgres_table(env: &Env, data: &PgDb, data_db_flag: bool) {
    common::pg::run_sql(
        &data.admin_url(),
        &format!(
            "CREATE TABLE creds (id integer PRIMARY KEY, owner text, Secret varchar(200)); \
             INSERT INTO creds SELECT i, 'user' || (i % 7), \
               CASE WHEN i % 10 = 0 THEN NULL ELSE 'sk-' || i END \
             FROM generate_series(1, 2500) AS i; {}",
            common::pg::APP_GRANTS
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut command = keyseal_in(env.dir.path());
        match &env.pg {
            Some(pg) => command.env("KEYSEAL_DB", pg.app_url()),
            None => command.arg("--db").arg(env.db()),
        };
        if data_db_flag {
            command.env("KEYSEAL_DATA_DB", data.app_url());
        }
        command
            .arg("--master-key-file")
            .arg(&env.master_file)
            .args([
                "migrate",
                "--table",
                "creds",
                "--column",
                "Secret",
                "--id-column",
                "ID",
                "--user-column",
                "owner",
                "--batch",
                "1000",
                "--json",
            ])
            .args(extra);
        let out = run_with_stdin(&mut command, b"");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()
    };
    let tokens = || {
        common::pg::query(
            &data.admin_url(),
            "SELECT count(*) FILTER (WHERE secret LIKE 'v2:%') FROM creds",
        )[0][0]
            .clone()
            .unwrap()
    };
    let dry = run(&["--dry-run"]);
    assert_eq!(
        (dry["migrated"].as_u64(), dry["skipped"].as_u64()),
        (Some(2250), Some(250))
    );
    assert_eq!(tokens(), "0", "a dry run changes nothing");

    let done = run(&["--verify"]);
    assert_eq!(done["migrated"], 2250, "{done}");
    assert_eq!(done["failed"], 0);
    assert_eq!(done["verify"]["ok"], 2250);
    assert_eq!(done["verify"]["null"], 250);
    assert_eq!(tokens(), "2250");
    let again = run(&[]);
    assert_eq!(
        (again["migrated"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(2500))
    );

    let token = common::pg::query(
        &data.admin_url(),
        "SELECT secret FROM creds WHERE id = 1234",
    )[0][0]
        .clone()
        .unwrap();
    let out = env.run(&["decrypt", "--user", "user2"], &token);
    assert_eq!(stdout(&out), "sk-1234", "{}", stderr(&out));
}

#[test]
fn migrate_data_db_postgres_with_a_sqlite_store() {
    let Some(data) = PgDb::empty() else { return };
    migrate_a_postgres_table(&Env::new(), &data, true);
}

#[test]
fn migrate_a_table_in_the_postgres_store_database() {
    let Some(env) = Env::postgres() else { return };
    let pg = env.pg.as_ref().unwrap();
    // The store's own database: no --data-db.
    migrate_a_postgres_table(&env, pg, false);
}
