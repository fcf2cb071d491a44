//! How the `keyseal` binary reads a secret from standard input: whole, however long and however
//! the pipe hands it over, one trailing newline dropped, and refused (exit 1, one line) when it
//! is not UTF-8.
#![cfg(feature = "cli")]

mod common;

use std::process::Output;

use common::cli_env::{keyseal_in, stderr, stdout, Env};
use common::process::run_with_stdin;

/// Runs keyseal in `env` with raw bytes on standard input, written in small pieces so that the
/// binary sees many short reads.
fn run_bytes(env: &Env, args: &[&str], input: &[u8]) -> Output {
    let db = env.db();
    let mut command = keyseal_in(env.dir.path());
    command
        .args(["--db", db.to_str().unwrap()])
        .args(["--master-key-file", env.master_file.to_str().unwrap()])
        .args(args);
    run_with_stdin(&mut command, input)
}

/// Longer than the reader's first buffer (64 KiB), so it has to grow several times.
fn long_secret() -> String {
    (0..200_000)
        .map(|i| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]))
        .collect()
}

#[test]
fn hash_reads_a_long_piped_input_whole_without_its_newline() {
    let env = Env::new();
    let secret = long_secret();
    let out = run_bytes(&env, &["hash"], format!("{secret}\n").as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), keyseal::api_key_hash(&secret));
}

#[test]
fn a_long_secret_encrypts_and_decrypts_back_whole() {
    let env = Env::new();
    let secret = long_secret();
    let out = run_bytes(&env, &["encrypt", "--user", "alice"], secret.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token = stdout(&out);
    let out = run_bytes(&env, &["decrypt", "--user", "alice"], token.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{secret}\n")
    );
}

#[test]
fn input_that_is_not_utf8_is_refused_with_one_line() {
    let env = Env::new();
    let out = run_bytes(&env, &["hash"], b"sk-\xff\xfe");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "keyseal: cannot read standard input as UTF-8 text: stream did not contain valid UTF-8"
    );
}
