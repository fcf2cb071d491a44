//! The `keyseal` binary as the CLI tests run it: a temporary folder with a master key file and
//! a store, and helpers to run commands in it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::process::run_with_stdin;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub master_file: PathBuf,
}

impl Env {
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
        Env { dir, master_file }
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

    /// Runs keyseal with this store and the given master key file.
    pub fn run_with_key(&self, key_file: &Path, args: &[&str], stdin: &str) -> Output {
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
