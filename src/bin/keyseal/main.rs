//! `keyseal`: the command line, a thin layer over the library.
//!
//! Secrets come on standard input, never as arguments. Exit 0 on success, 1 when refused or
//! failed (one line on stderr), 2 on bad usage (clap's message).
//!
//! Layout: `args` is the command line's shape, `output` what is printed and the exit codes,
//! `context` what commands share (standard input, master key, store), then one module per
//! command group.

mod args;
mod context;
mod copy;
mod crypt;
mod db;
mod keys;
mod master_key;
mod migrate;
mod output;
mod progress;
mod rewrap;
mod rotate_key;
mod rotate_master;
mod status;
mod urls;

// The same reading of `--db` as the library's (PostgreSQL URLs, in-memory and `file:` URI
// forms).
#[allow(dead_code)]
#[path = "../../db_path.rs"]
mod db_path;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use args::{Cli, Command, DbCommand, MasterKeyCommand};
use output::Outcome;

fn main() -> ExitCode {
    let mut command = Cli::command();
    let matches = command.get_matches_mut();
    // Before anything runs: a password already in argv should not also reach a server.
    if let Err(message) = urls::refuse_passwords_in_argv(&command, &matches) {
        output::error_line(&message);
        return ExitCode::from(2);
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    output::init_logging(cli.verbose);
    output::exit_code(run(&cli))
}

fn run(cli: &Cli) -> Outcome {
    match &cli.command {
        Command::MasterKey(MasterKeyCommand::Generate { out }) => {
            master_key::generate(cli, out.as_deref())
        }
        Command::MasterKey(MasterKeyCommand::Status) => rotate_master::status(cli),
        Command::MasterKey(MasterKeyCommand::Retire { id }) => rotate_master::retire(cli, id),
        Command::RewrapKeys { batch } => rotate_master::rewrap_keys(cli, *batch),
        Command::RotateKey { target, force } => rotate_key::rotate(cli, target, *force),
        Command::KeyVersion(command) => rotate_key::version(cli, command),
        Command::SharedWithPython { shared } => rotate_key::shared(cli, shared == "yes"),
        Command::Encrypt(target) => crypt::encrypt_stdin(cli, target),
        Command::Decrypt(target) => crypt::decrypt_stdin(cli, target),
        Command::Hash => crypt::hash_stdin(cli),
        Command::Keys(command) => keys::run(cli, command),
        Command::Status => status::run(cli),
        Command::RotateMaster {
            new_master_key_file,
        } => rotate_master::run(cli, new_master_key_file),
        Command::Migrate(args) => migrate::run(cli, args),
        Command::Db(DbCommand::Migrate) => db::migrate(cli),
        Command::Copy(args) => copy::run(cli, args),
        Command::Rewrap(args) => rewrap::run(cli, args),
    }
}
