//! The `keyseal` binary as the CLI tests run it: a temporary folder with a master key file and
//! a store, and helpers to run commands in it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::pg::PgDb;
use super::process::run_with_stdin;

/// A temporary folder with a master key file, and the store commands use: `store.db` in the
/// folder, or (see [`Env::postgres`]) a PostgreSQL database of its own.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub master_file: PathBuf,
    pub pg: Option<PgDb>,
}

impl Env {
    /// A store of the same kind as `self`'s, new and empty (`None`: PostgreSQL skipped).
    pub fn like(&self) -> Option<Env> {
        match self.pg {
            Some(_) => Env::postgres(),
            None => Some(Env::new()),
        }
    }

    /// An Env whose store is a new PostgreSQL database: migrated with `keyseal db migrate`
    /// by the superuser, then used through the app role (rows only), its URL (password
    /// included) given in `KEYSEAL_DB` as a user would. `None` when PostgreSQL tests are
    /// skipped (no server configured and none required).
    pub fn postgres() -> Option<Env> {
        let pg = PgDb::empty()?;
        let mut env = Env::new();
        let out = run_with_stdin(
            keyseal_in(env.dir.path())
                .env("KEYSEAL_DB", pg.admin_url())
                .args(["db", "migrate", "--json"]),
            b"",
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        super::pg::run_sql(&pg.admin_url(), super::pg::APP_GRANTS).unwrap();
        env.pg = Some(pg);
        Some(env)
    }

    /// Where the store is: the file's path, or the PostgreSQL URL (with its password).
    pub fn location(&self) -> String {
        match &self.pg {
            Some(pg) => pg.app_url(),
            None => self.db().to_str().unwrap().to_owned(),
        }
    }

    pub fn new() -> Env {
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
        Env {
            dir,
            master_file,
            pg: None,
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    /// A new master key file in the test folder.
    pub fn new_key_file(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let args = ["master-key", "generate", "--out", path.to_str().unwrap()];
        assert_eq!(run_in(self.dir.path(), &args, "").status.code(), Some(0));
        path
    }

    /// Runs keyseal with this store (`--db PATH`, or a URL with its password in
    /// `KEYSEAL_DB`) and the given master key file.
    pub fn run_with_key(&self, key_file: &Path, args: &[&str], stdin: &str) -> Output {
        let mut command = keyseal_in(self.dir.path());
        match &self.pg {
            Some(pg) => command.env("KEYSEAL_DB", pg.app_url()),
            None => command.arg("--db").arg(self.db()),
        };
        command.arg("--master-key-file").arg(key_file).args(args);
        run_with_stdin(&mut command, stdin.as_bytes())
    }

    /// Runs keyseal with this store and master key file.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with_key(&self.master_file, args, stdin)
    }

    pub fn json(&self, args: &[&str], stdin: &str) -> (i32, Value) {
        let mut full = args.to_vec();
        full.push("--json");
        let out = self.run(&full, stdin);
        let text = String::from_utf8(out.stdout.clone()).unwrap();
        let value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}; stderr {:?}", stderr(&out)));
        (out.status.code().unwrap(), value)
    }
}

/// The keyseal binary, to run in `dir`: no master key or store from the environment, every
/// stream piped.
pub fn keyseal_in(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyseal"));
    command
        .current_dir(dir)
        .env_remove("API_KEY_MASTER_KEY")
        .env_remove("KEYSEAL_PREVIOUS_MASTER_KEYS")
        .env_remove("KEYSEAL_DB")
        .env_remove("KEYSEAL_VERIFIER_KEY")
        .env_remove("KEYSEAL_VERIFIER_KEY_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub fn run_in(dir: &Path, args: &[&str], stdin: &str) -> Output {
    run_with_stdin(keyseal_in(dir).args(args), stdin.as_bytes())
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// The flow `$name(env)` as two tests, `$name::sqlite` and `$name::postgres` (the latter on a
/// throwaway server: skipped with a note without one, unless `KEYSEAL_REQUIRE_POSTGRES=1`):
/// every command works the same on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[test]
            fn sqlite() {
                super::$name(&Env::new());
            }

            #[test]
            fn postgres() {
                if let Some(env) = Env::postgres() {
                    super::$name(&env);
                }
            }
        }
    };
}
