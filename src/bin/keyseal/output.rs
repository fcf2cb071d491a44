//! What keyseal prints: one JSON object with `--json` or human text on stdout, one
//! `keyseal: ...` line on stderr when a command fails, and the exit codes (0 success, 1 refused
//! or failed; clap exits 2 on bad usage before any of this runs).

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::process::ExitCode;

use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

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

/// Like [`print`], for output that holds a secret (a key, a plaintext): rendered into a buffer
/// of the exact size, written straight to the stdout descriptor (std's stdout buffer is never
/// wiped), then every copy is wiped, the strings inside `value` too.
pub fn print_secret(cli: &Cli, mut value: Value, human: &str) -> Outcome {
    let line = if cli.json {
        format_secret(format_args!("{value}\n"))
    } else {
        format_secret(format_args!("{human}\n"))
    };
    wipe(&mut value);
    let written = match unbuffered(&std::io::stdout()) {
        Some(mut out) => out.write_all(line.as_bytes()),
        None => std::io::stdout().lock().write_all(line.as_bytes()),
    };
    written.map_err(|e| Failure(format!("cannot write to standard output: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// `args` formatted into a string allocated once at its exact size: a `String` grown while
/// formatting would free its smaller buffers with parts of the secret still in them.
pub fn format_secret(args: fmt::Arguments<'_>) -> Zeroizing<String> {
    struct Count(usize);
    impl fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = count.write_fmt(args);
    let mut text = Zeroizing::new(String::with_capacity(count.0));
    let _ = text.write_fmt(args);
    text
}

/// Wipes every string in `value` (object keys are field names, not secrets).
fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(fields) => fields.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `handle`'s descriptor as an unbuffered file, so that what passes through it is not copied
/// into std's buffers, which are never wiped; `None` where that is not available.
#[cfg(unix)]
pub fn unbuffered(handle: &impl std::os::fd::AsFd) -> Option<std::fs::File> {
    handle
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from)
}

#[cfg(not(unix))]
pub fn unbuffered<T>(_handle: &T) -> Option<std::fs::File> {
    None
}

/// The library's own JSON form of a value (the fields the JSON output documents).
pub fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A time shown to people: the instant, or `never`.
pub fn expiry(at: Option<impl ToString>) -> String {
    at.map_or_else(|| "never".into(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_formatted_into_one_allocation_of_the_exact_size() {
        let key = "ks_".repeat(300);
        let text = format_secret(format_args!("created {}\n{key}\nkeep it", 42));
        assert_eq!(*text, format!("created 42\n{key}\nkeep it"));
        assert_eq!(text.capacity(), text.len());
    }

    #[test]
    fn wiping_a_value_empties_every_string_in_it() {
        let mut value =
            json!({ "key": "ks_1", "scopes": ["a", "b"], "n": 1, "inner": { "p": "x" } });
        wipe(&mut value);
        assert_eq!(
            value,
            json!({ "key": "", "scopes": ["", ""], "n": 1, "inner": { "p": "" } })
        );
    }
}
