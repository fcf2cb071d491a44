//! The `keyseal` binary as a user runs it: every command, both output modes, every exit code.
#![cfg(feature = "cli")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli_env::{run_in, stderr, stdout, Env};

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

crate::on_both_backends!(encrypt_and_decrypt_per_user_and_pool);
fn encrypt_and_decrypt_per_user_and_pool(env: &Env) {
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

crate::on_both_backends!(api_keys_lifecycle);
fn api_keys_lifecycle(env: &Env) {
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
    let Some(other) = env.like() else { return };
    let (code, unknown) = other.json(&["keys", "verify"], third["key"].as_str().unwrap());
    assert_eq!((code, unknown["reason"].as_str()), (1, Some("unknown")));
}

crate::on_both_backends!(rotate_master_rewraps_and_refuses_the_wrong_key);
fn rotate_master_rewraps_and_refuses_the_wrong_key(env: &Env) {
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

crate::on_both_backends!(decrypt_for_an_unknown_user_writes_nothing);
fn decrypt_for_an_unknown_user_writes_nothing(env: &Env) {
    let token = stdout(&env.run(&["encrypt", "--user", "alice"], "x"));
    let out = env.run(&["decrypt", "--user", "alcie"], &token);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has no key"), "{}", stderr(&out));
    let master =
        keyseal::parse_master_key(&std::fs::read_to_string(&env.master_file).unwrap()).unwrap();
    let store = keyseal::KeyStore::open(env.location(), master).unwrap();
    assert_eq!(store.user_count().unwrap(), 1);
}

crate::on_both_backends!(an_expired_key_cannot_be_rotated_past_the_quota);
fn an_expired_key_cannot_be_rotated_past_the_quota(env: &Env) {
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

/// `--db :memory:` (or any form SQLite keeps in memory) let `keys create` print a key that was
/// never stored: every command that uses the store now refuses it, before doing anything.
#[test]
fn in_memory_stores_are_refused() {
    let env = Env::new();
    let key_file = env.master_file.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["keys", "create", "--user", "u", "--name", "n"],
        &["keys", "list", "--user", "u"],
        &["keys", "verify"],
        &["encrypt", "--user", "u"],
        &["decrypt", "--pool"],
    ];
    for db in [
        ":memory:",
        "file::memory:",
        "file:keys.db?mode=memory",
        "file:keys.db?cache=shared&mode=memory",
        "",
    ] {
        for command in commands {
            let mut args = vec!["--db", db, "--master-key-file", key_file];
            args.extend_from_slice(command);
            let out = run_in(env.dir.path(), &args, "x");
            assert!(
                stdout(&out).is_empty(),
                "{db:?} {command:?}: {}",
                stdout(&out)
            );
            if db.is_empty() {
                // clap already refuses an empty value as bad usage.
                assert_eq!(out.status.code(), Some(2), "{command:?}");
                continue;
            }
            assert_eq!(out.status.code(), Some(1), "{db:?} {command:?}");
            assert!(stderr(&out).contains("not a file"), "{}", stderr(&out));
        }
    }
    // The same through KEYSEAL_DB.
    let out = Command::new(env!("CARGO_BIN_EXE_keyseal"))
        .args([
            "--bcrypt-cost",
            "4",
            "keys",
            "create",
            "--user",
            "u",
            "--name",
            "n",
        ])
        .current_dir(env.dir.path())
        .env("KEYSEAL_DB", ":memory:")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    // Nothing was created either.
    let names: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["master.key"]);
}

/// Runs keyseal under `umask 022` (what most shells have), so the file modes below are what
/// keyseal chooses, not what the test runner's umask allows.
#[cfg(unix)]
fn run_umask_022(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_keyseal"))
        .args(args)
        .current_dir(dir)
        .env_remove("API_KEY_MASTER_KEY")
        .env_remove("KEYSEAL_DB");
    common::process::run_with_stdin(&mut command, stdin.as_bytes())
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The store was created 0644: readable by every user of the machine, though it holds wrapped
/// keys, API key hashes and user ids. Whichever command creates it (the key store, the API
/// keys, migrate), it is now 0600, and so are SQLite's `-wal` and `-shm` beside it.
#[cfg(unix)]
#[test]
fn store_files_are_created_0600_under_umask_022() {
    let env = Env::new();
    let data = env.dir.path().join("app.db");
    rusqlite::Connection::open(&data)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('s');",
        )
        .unwrap();
    let key = env.master_file.to_str().unwrap();
    let data = data.to_str().unwrap();
    let firsts: [(&str, Vec<&str>); 3] = [
        ("encrypt.db", vec!["encrypt", "--user", "alice"]),
        (
            "keys.db",
            vec![
                "--bcrypt-cost",
                "4",
                "keys",
                "create",
                "--user",
                "u",
                "--name",
                "n",
            ],
        ),
        (
            "migrate.db",
            vec![
                "migrate",
                "--data-db",
                data,
                "--table",
                "t",
                "--column",
                "v",
                "--id-column",
                "id",
                "--pool",
            ],
        ),
    ];
    for (name, command) in firsts {
        let db = env.dir.path().join(name);
        let mut args = vec!["--db", db.to_str().unwrap(), "--master-key-file", key];
        args.extend(command);
        let out = run_umask_022(env.dir.path(), &args, "secret");
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(mode(&db), 0o600, "{name}");
        // While a connection writes, SQLite's side files exist: they follow the database.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS probe(x); INSERT INTO probe VALUES (1);")
            .unwrap();
        for side in ["-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{side}", db.display()));
            assert_eq!(mode(&file), 0o600, "{name}{side}");
        }
    }
    // The master key file stays 0600 under the same umask.
    let out = run_umask_022(
        env.dir.path(),
        &["master-key", "generate", "--out", "m2.key"],
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(mode(&env.dir.path().join("m2.key")), 0o600);
}

/// An existing store that others can read is used, with a warning that names the file and its
/// mode (never its content).
#[cfg(unix)]
#[test]
fn a_store_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let token = stdout(&env.run(&["encrypt", "--user", "alice"], "x"));
    std::fs::set_permissions(env.db(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["decrypt", "--user", "alice"], &token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "x");
    let warning = stderr(&out);
    assert!(
        warning.contains("WARN") && warning.contains("0644"),
        "{warning}"
    );
    assert!(warning.contains("chmod 600"), "{warning}");
    assert!(
        warning.contains(&env.db().display().to_string()),
        "{warning}"
    );
    assert_eq!(mode(&env.db()), 0o644, "only warned about, not changed");
}

/// A key file is read as the Python module reads `API_KEY_MASTER_KEY`: a file Python would
/// accept (an extra `=`, data after the padding, the other alphabet, white space) was refused;
/// now exactly the forms Python accepts work, as the same key.
#[test]
fn master_key_files_are_read_as_python_reads_the_variable() {
    if !common::process::python_ready() {
        return;
    }
    let env = Env::new();
    let text = std::fs::read_to_string(&env.master_file).unwrap();
    let key = text.trim();
    let forms = [
        format!("{key}=\n"),
        format!("{key}==junk\n"),
        format!("{key}\r\n\r\n"),
        format!("\t{key} trailing words"),
        key.replace('-', "+").replace('_', "/"),
        key.trim_end_matches('=').to_owned(),
        format!("{key}\u{e9}"),
        format!("{key}AAAA"),
    ];
    let cases: Vec<common::base64_cases::Case> = forms
        .iter()
        .cloned()
        .map(common::base64_cases::Case::master)
        .collect();
    let answers = common::base64_cases::python_answers(&cases);
    let mut accepted = 0;
    for (form, python) in forms.iter().zip(&answers) {
        let file = env.dir.path().join("variant.key");
        std::fs::write(&file, form).unwrap();
        let out = env.run_with_key(&file, &["encrypt", "--pool"], "secret");
        if python["key"].is_null() {
            assert_eq!(out.status.code(), Some(1), "{form:?}: Python refuses it");
        } else {
            assert_eq!(out.status.code(), Some(0), "{form:?}: {}", stderr(&out));
            // The same key: what it encrypted decrypts with the original file.
            let back = env.run(&["decrypt", "--pool"], &stdout(&out));
            assert_eq!(stdout(&back), "secret", "{form:?}");
            accepted += 1;
        }
    }
    assert_eq!(accepted, 6, "{answers:?}");
}

crate::on_both_backends!(status_reports_the_store_and_never_a_secret);

/// `keyseal status`: backend, schema version, keys by state, the feed, the master keys and the
/// pool key's versions; no key, hash or master key in either output.
fn status_reports_the_store_and_never_a_secret(env: &Env) {
    let (code, made) = env.json(
        &[
            "--bcrypt-cost",
            "4",
            "keys",
            "create",
            "--user",
            "u",
            "--name",
            "n",
        ],
        "",
    );
    assert_eq!(code, 0, "{made}");
    let key = made["key"].as_str().unwrap().to_owned();
    let key_id = made["key_id"].as_str().unwrap().to_owned();
    let out = env.run(&["keys", "revoke", "--user", "u", &key_id], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, _) = env.json(&["encrypt", "--pool"], "x");
    assert_eq!(code, 0);
    let (code, v) = env.json(&["status"], "");
    assert_eq!(code, 0, "{v}");
    let backend = if env.pg.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(v["backend"], backend, "{v}");
    assert!(v["schema_version"].as_i64().unwrap() >= 2, "{v}");
    assert_eq!(v["api_keys"]["total"], 1, "{v}");
    assert_eq!(v["api_keys"]["revoked"], 1, "{v}");
    let feed_mode = if env.pg.is_some() { "notify" } else { "poll" };
    assert_eq!(v["feed"]["mode"], feed_mode, "{v}");
    assert_eq!(v["feed"]["staleness"], "fresh", "{v}");
    assert!(v["feed"]["position"].as_i64().unwrap() >= 2, "{v}");
    let masters = v["key_store"]["master_keys"].as_array().unwrap();
    assert_eq!(masters.len(), 1, "{v}");
    assert_eq!(masters[0]["current"], true, "{v}");
    assert_eq!(
        v["key_store"]["pool_key_versions"][0]["state"], "active",
        "{v}"
    );
    let human = env.run(&["status"], "");
    assert_eq!(human.status.code(), Some(0));
    let master = std::fs::read_to_string(&env.master_file).unwrap();
    for shown in [v.to_string(), stdout(&human), stderr(&human)] {
        assert!(!shown.contains(&key), "the key was shown: {shown}");
        assert!(!shown.contains(master.trim()), "the master key was shown");
        assert!(!shown.contains("$2b$"), "a hash was shown");
    }
    assert!(stdout(&human).contains("revoked"), "{}", stdout(&human));
}
