//! What keyseal prints: one JSON object with `--json` or human text on stdout, one
//! `keyseal: ...` line on stderr when a command fails, and the exit codes (0 success, 1 refused
//! or failed; clap exits 2 on bad usage before any of this runs).

use std::process::ExitCode;

use serde_json::Value;

use crate::args::Cli;

/// A failure to report: one line on stderr, exit 1.
pub struct Failure(pub String);

impl From<keyseal::Error> for Failure {
    fn from(err: keyseal::Error) -> Self {
        Failure(err.to_string())
    }
}

/// What a command ends with: its exit code, or the failure to report.
pub type Outcome = Result<ExitCode, Failure>;

/// Logs go to stderr, without time or colour; warnings (say, a store file that others can
/// read) always show, `-v` adds info and `-vv` debug. Nothing logged holds a secret.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .init();
}

/// The exit code of a finished command; a failure is written as its one stderr line first.
pub fn exit_code(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(Failure(message)) => {
            error_line(&message);
            ExitCode::FAILURE
        }
    }
}

/// One `keyseal: ...` line on stderr.
pub fn error_line(message: &str) {
    eprintln!("keyseal: {message}");
}

/// Prints the JSON object with `--json`, else the human text; success.
pub fn print(cli: &Cli, value: &Value, human: &str) -> ExitCode {
    if cli.json {
        println!("{value}");
    } else {
        println!("{human}");
    }
    ExitCode::SUCCESS
}

/// The library's own JSON form of a value (the fields the JSON output documents).
pub fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A time shown to people: the instant, or `never`.
pub fn expiry(at: Option<impl ToString>) -> String {
    at.map_or_else(|| "never".into(), |t| t.to_string())
}
