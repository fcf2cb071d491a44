//! The `keyseal` binary as a user runs it: every command, both output modes, every exit code.
#![cfg(feature = "cli")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    master_file: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let master_file = dir.path().join("master.key");
        let out = run_in(
            dir.path(),
            &[
                "master-key",
                "generate",
                "--out",
                master_file.to_str().unwrap(),
            ],
            "",
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        Env { dir, master_file }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    /// A new master key file in the test folder.
    fn new_key_file(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let args = ["master-key", "generate", "--out", path.to_str().unwrap()];
        assert_eq!(run_in(self.dir.path(), &args, "").status.code(), Some(0));
        path
    }

    /// Runs keyseal with this store and the given master key file.
    fn run_with_key(&self, key_file: &Path, args: &[&str], stdin: &str) -> Output {
        let db = self.db();
        let mut full = vec![
            "--db",
            db.to_str().unwrap(),
            "--master-key-file",
            key_file.to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        run_in(self.dir.path(), &full, stdin)
    }

    /// Runs keyseal with this store and master key file.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with_key(&self.master_file, args, stdin)
    }

    fn json(&self, args: &[&str], stdin: &str) -> (i32, Value) {
        let mut full = args.to_vec();
        full.push("--json");
        let out = self.run(&full, stdin);
        let text = String::from_utf8(out.stdout.clone()).unwrap();
        let value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}; stderr {:?}", stderr(&out)));
        (out.status.code().unwrap(), value)
    }
}

fn run_in(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyseal"))
        .args(args)
        .current_dir(dir)
        .env_remove("API_KEY_MASTER_KEY")
        .env_remove("KEYSEAL_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn master_key_generate_writes_a_private_file_once() {
    let env = Env::new();
    let meta = std::fs::metadata(&env.master_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&env.master_file).unwrap();
    keyseal::parse_master_key(&text).unwrap();
    // Never overwrites.
    let again = env.run(
        &[
            "master-key",
            "generate",
            "--out",
            env.master_file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&env.master_file).unwrap(), text);
    // To stdout.
    let out = run_in(env.dir.path(), &["master-key", "generate"], "");
    assert_eq!(out.status.code(), Some(0));
    keyseal::parse_master_key(&stdout(&out)).unwrap();
}

#[test]
fn encrypt_and_decrypt_per_user_and_pool() {
    let env = Env::new();
    for target in [&["--user", "alice"][..], &["--pool"][..]] {
        let mut args = vec!["encrypt"];
        args.extend_from_slice(target);
        let out = env.run(&args, "sk-secret-1\n");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let token = stdout(&out);
        assert!(token.starts_with("v2:"));
        assert!(!token.contains("sk-secret-1"));
        let mut args = vec!["decrypt"];
        args.extend_from_slice(target);
        let out = env.run(&args, &token);
        assert_eq!(stdout(&out), "sk-secret-1");
        let (code, value) = env.json(&args, &token);
        assert_eq!(
            (code, value["plaintext"].as_str()),
            (0, Some("sk-secret-1"))
        );
    }
    // Another user's key does not open alice's token.
    let token = stdout(&env.run(&["encrypt", "--user", "alice"], "x"));
    env.run(&["encrypt", "--user", "bob"], "y");
    let out = env.run(&["decrypt", "--user", "bob"], &token);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("authentication failed"),
        "{}",
        stderr(&out)
    );
    // The pool key is the Python module's: the token opens with derive_pool_key.
    let token = stdout(&env.run(&["encrypt", "--pool"], "pooled"));
    let master =
        keyseal::parse_master_key(&std::fs::read_to_string(&env.master_file).unwrap()).unwrap();
    assert_eq!(
        keyseal::decrypt(&token, &keyseal::derive_pool_key(&master)).unwrap(),
        "pooled"
    );
}

#[test]
fn refusals_exit_1_with_one_line() {
    let env = Env::new();
    // Malformed token.
    let out = env.run(&["decrypt", "--pool"], "v2:@@@");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1);
    assert!(stderr(&out).contains("malformed"));
    // No master key at all.
    let out = run_in(
        env.dir.path(),
        &["--db", env.db().to_str().unwrap(), "encrypt", "--pool"],
        "x",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no master key"), "{}", stderr(&out));
    // A wrong master key for an existing store.
    env.run(&["encrypt", "--user", "alice"], "x");
    let other = env.new_key_file("other.key");
    let out = env.run_with_key(&other, &["encrypt", "--user", "alice"], "x");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wrong master key"),
        "{}",
        stderr(&out)
    );
    // A master key file with garbage.
    std::fs::write(env.dir.path().join("bad.key"), "not a key").unwrap();
    let out = run_in(
        env.dir.path(),
        &["--master-key-file", "bad.key", "encrypt", "--pool"],
        "x",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !stderr(&out).contains("not a key"),
        "never echo key material"
    );
    // Unknown key id on revoke.
    let out = env.run(&["keys", "revoke", "--user", "alice", "nope"], "");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        &[][..],
        &["encrypt"][..],
        &["encrypt", "--user", "a", "--pool"][..],
        &["keys", "create", "--user", "a"][..],
        &[
            "keys",
            "create",
            "--user",
            "a",
            "--name",
            "n",
            "--expires-in",
            "30x",
        ][..],
        &["keys", "rotate", "--user", "a", "id", "--grace", "soon"][..],
        &[
            "migrate",
            "--table",
            "t",
            "--column",
            "c",
            "--id-column",
            "id",
        ][..],
        &["no-such-command"][..],
    ] {
        let out = env.run(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn hash_matches_the_python_vectors() {
    let env = Env::new();
    let out = env.run(&["hash"], "mhu_abc\n");
    assert_eq!(
        stdout(&out),
        "f8c81ddbf7d9562a76222c4aa2646443c74ceb8d29883ed91ce452cecdc38098"
    );
    let (code, value) = env.json(&["hash"], "");
    assert_eq!(code, 0);
    assert_eq!(
        value["hash"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn api_keys_lifecycle() {
    let env = Env::new();
    let (code, created) = env.json(
        &[
            "keys",
            "create",
            "--user",
            "alice",
            "--name",
            "ci",
            "--scope",
            "read",
            "--scope",
            "write",
            "--expires-in",
            "30d",
        ],
        "",
    );
    assert_eq!(code, 0);
    for field in [
        "key",
        "key_id",
        "user_id",
        "name",
        "scopes",
        "created_at",
        "expires_at",
    ] {
        assert!(!created[field].is_null(), "field {field}");
    }
    assert_eq!(created["scopes"], serde_json::json!(["read", "write"]));
    let key = created["key"].as_str().unwrap().to_string();
    let key_id = created["key_id"].as_str().unwrap().to_string();

    let (code, ok) = env.json(&["keys", "verify"], &format!("{key}\n"));
    assert_eq!(code, 0);
    assert_eq!(ok["valid"], true);
    assert_eq!(ok["key_id"], key_id.as_str());
    assert_eq!(ok["user_id"], "alice");
    assert_eq!(ok["expires_at"], created["expires_at"]);
    let out = env.run(&["keys", "verify"], &key);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("valid"));

    // Refusals and their reasons.
    let (code, bad) = env.json(&["keys", "verify"], "garbage");
    assert_eq!(
        (code, bad["valid"].as_bool(), bad["reason"].as_str()),
        (1, Some(false), Some("malformed"))
    );

    // Human list output shows metadata only.
    let out = env.run(&["keys", "list", "--user", "alice"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains(&key_id));
    assert!(!stdout(&out).contains(&key));
    let (_, listed) = env.json(&["keys", "list", "--user", "alice"], "");
    let text = listed.to_string();
    assert!(
        !text.contains(&key) && !text.contains("$2"),
        "no secrets or hashes: {text}"
    );
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);

    // Rotate with a grace period: both keys work.
    let (code, rotated) = env.json(
        &[
            "keys", "rotate", "--user", "alice", &key_id, "--grace", "1h",
        ],
        "",
    );
    assert_eq!(code, 0);
    let new_key = rotated["key"].as_str().unwrap().to_string();
    let new_id = rotated["key_id"].as_str().unwrap().to_string();
    assert_ne!(new_key, key);
    assert_eq!(rotated["name"], "ci");
    assert_eq!(env.json(&["keys", "verify"], &key).0, 0);
    assert_eq!(env.json(&["keys", "verify"], &new_key).0, 0);

    // Revoke the old one: refused as revoked.
    let out = env.run(&["keys", "revoke", "--user", "alice", &key_id], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, refused) = env.json(&["keys", "verify"], &key);
    assert_eq!((code, refused["reason"].as_str()), (1, Some("revoked")));
    let out = env.run(&["keys", "verify"], &key);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("revoked"));
    assert!(!stderr(&out).contains(&key), "the key is never echoed");

    // Rotation with grace 0 ends the old key at once: expired.
    let (_, third) = env.json(
        &["keys", "rotate", "--user", "alice", &new_id, "--grace", "0"],
        "",
    );
    let (code, expired) = env.json(&["keys", "verify"], &new_key);
    assert_eq!((code, expired["reason"].as_str()), (1, Some("expired")));
    assert_eq!(
        env.json(&["keys", "verify"], third["key"].as_str().unwrap())
            .0,
        0
    );

    // Unknown: well formed, not in the store.
    let other = Env::new();
    let (code, unknown) = other.json(&["keys", "verify"], third["key"].as_str().unwrap());
    assert_eq!((code, unknown["reason"].as_str()), (1, Some("unknown")));
}

#[test]
fn rotate_master_rewraps_and_refuses_the_wrong_key() {
    let env = Env::new();
    let token = stdout(&env.run(&["encrypt", "--user", "alice"], "kept"));
    let new_key = env.new_key_file("new.key");

    // A wrong current key is refused before anything is touched.
    let wrong = env.new_key_file("wrong.key");
    let new_arg = [
        "rotate-master",
        "--new-master-key-file",
        new_key.to_str().unwrap(),
    ];
    let out = env.run_with_key(&wrong, &new_arg, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wrong master key"));
    assert_eq!(
        stdout(&env.run(&["decrypt", "--user", "alice"], &token)),
        "kept"
    );

    let (code, report) = env.json(&new_arg, "");
    assert_eq!((code, report["rewrapped"].as_u64()), (0, Some(1)));
    // The old key no longer opens the store; the new one yields the same data key.
    assert_eq!(
        env.run(&["decrypt", "--user", "alice"], &token)
            .status
            .code(),
        Some(1)
    );
    let out = env.run_with_key(&new_key, &["decrypt", "--user", "alice"], &token);
    assert_eq!(stdout(&out), "kept");
}

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

#[test]
fn decrypt_for_an_unknown_user_writes_nothing() {
    let env = Env::new();
    let token = stdout(&env.run(&["encrypt", "--user", "alice"], "x"));
    let out = env.run(&["decrypt", "--user", "alcie"], &token);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has no key"), "{}", stderr(&out));
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let users: u32 = conn
        .query_row("SELECT count(*) FROM encryption_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);
}

#[test]
fn an_expired_key_cannot_be_rotated_past_the_quota() {
    let env = Env::new();
    let (_, created) = env.json(
        &[
            "--bcrypt-cost",
            "4",
            "keys",
            "create",
            "--user",
            "u",
            "--name",
            "n",
            "--expires-in",
            "1s",
        ],
        "",
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = env.run(
        &[
            "keys",
            "rotate",
            "--user",
            "u",
            created["key_id"].as_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
}
