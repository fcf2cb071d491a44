//! `keyseal keys import --egregore URL`: the egregore relay's `api_clients` table, created by
//! its exact DDL on a throwaway PostgreSQL and filled by its own statements (through asyncpg,
//! with its key generator and `bcrypt.hashpw`; `tests/python/make_import_data.py`), imported into
//! a SQLite store and into a PostgreSQL one. Every key keeps working with its state; a re-run
//! changes nothing; a key disabled, an expiry moved, a row deleted and a key regenerated
//! upstream arrive on the next run; the URL's password never goes in argv.
//!
//! Needs the server `make test-postgres` starts: skipped with a note without one, unless
//! `KEYSEAL_REQUIRE_POSTGRES=1`.
#![cfg(all(feature = "cli", feature = "postgres"))]

mod common;

#[path = "common/import_data.rs"]
mod import_data;

use common::cli_env::Env;
use common::pg::PgDb;
use import_data::{check_keys, counts, import_with_env, keys_in_store, make, python_ready};

/// A new database holding egregore's table and test keys; `None` when skipped.
fn egregore(env: &Env) -> Option<PgDb> {
    let db = PgDb::empty()?;
    if !python_ready(&["bcrypt", "asyncpg"]) {
        return None;
    }
    make(&[
        "egregore",
        &db.admin_url(),
        env.dir.path().to_str().unwrap(),
    ]);
    Some(db)
}

crate::on_both_backends!(egregore_keys_keep_working_and_reimports_follow_upstream);
fn egregore_keys_keep_working_and_reimports_follow_upstream(env: &Env) {
    let Some(db) = egregore(env) else { return };
    let dir = env.dir.path();
    // The whole URL, password included, from the environment.
    let url = db.admin_url();
    let from_env = [("KEYSEAL_EGREGORE_URL", url.as_str())];

    let (code, report, err) = import_with_env(env, &["--dry-run"], &from_env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(counts(&report), (6, 0, 0, 0), "{report}");
    assert_eq!(keys_in_store(env).len(), 0);

    let (code, report, err) = import_with_env(env, &[], &from_env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(counts(&report), (6, 0, 0, 0), "{report}");
    assert_eq!(report["source"], "egregore");
    assert!(
        check_keys(env, dir),
        "a valid key, and a wrong one, were tried"
    );
    let listed = keys_in_store(env);
    let chat = listed.iter().find(|k| k["name"] == "Chat only").unwrap();
    assert_eq!(chat["scopes"], serde_json::json!(["chat"]));
    assert_eq!(chat["rate_limit"]["requests"], 30);
    assert_eq!(chat["rate_limit"]["period_ms"], 60_000);
    assert!(chat["expires_at"].is_string());

    // The URL without its password as an argument, the password from PGPASSWORD.
    let bare = url.replacen(&format!(":{}@", admin_password(&url)), "@", 1);
    assert!(!bare.contains(admin_password(&url)));
    let (code, report, err) = import_with_env(
        env,
        &["--egregore", &bare],
        &[("PGPASSWORD", admin_password(&url))],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(counts(&report), (0, 0, 6, 0), "{report}");
    assert_eq!(keys_in_store(env).len(), 6);

    // Upstream: disable_client, update_client(expires_at), delete_client, regenerate_api_key.
    make(&["change", "egregore", dir.to_str().unwrap(), &url]);
    let (code, report, err) = import_with_env(env, &[], &from_env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(counts(&report), (0, 3, 2, 1), "{report}");
    check_keys(env, dir);
    assert_eq!(keys_in_store(env).len(), 5);
}

crate::on_both_backends!(egregore_owner_from_name_and_a_row_without_one);
fn egregore_owner_from_name_and_a_row_without_one(env: &Env) {
    let Some(db) = egregore(env) else { return };
    let url = db.admin_url();
    let from_env = [("KEYSEAL_EGREGORE_URL", url.as_str())];
    // The script leaves one row without a name: owned by its name, it has no owner, and the
    // whole import is refused before anything is written.
    let (code, _, err) = import_with_env(env, &["--user-from", "name"], &from_env);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("row id 6: `name` is missing"), "{err}");
    assert!(!err.contains(admin_password(&url)), "{err}");
    assert_eq!(keys_in_store(env).len(), 0);
    common::pg::run_sql(
        &url,
        "UPDATE api_clients SET name = 'Unnamed' WHERE name IS NULL",
    )
    .unwrap();
    let (code, report, err) = import_with_env(env, &["--user-from", "name"], &from_env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(counts(&report), (6, 0, 0, 0), "{report}");
    let listed = keys_in_store(env);
    let relay = listed.iter().find(|k| k["user_id"] == "Relay bot").unwrap();
    assert!(relay["name"].as_str().unwrap().starts_with("client_"));
}

#[test]
fn a_missing_table_or_server_is_a_clear_error_without_the_password() {
    let env = Env::new();
    let Some(db) = PgDb::empty() else { return };
    let url = db.admin_url();
    let (code, _, err) = import_with_env(&env, &[], &[("KEYSEAL_EGREGORE_URL", url.as_str())]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("egregore postgres://postgres:***@"), "{err}");
    assert!(err.contains("api_clients"), "{err}");
    assert!(!err.contains(admin_password(&url)), "{err}");
}

/// The password in a `postgres://user:password@host…` URL.
fn admin_password(url: &str) -> &str {
    let rest = url.split_once("://").unwrap().1;
    let user_info = rest.split_once('@').unwrap().0;
    user_info.split_once(':').unwrap().1
}
