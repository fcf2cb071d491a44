//! `keys verify [--require-scope S]...`: the key on standard input, never in argv.

use std::process::ExitCode;

use keyseal::{ApiKeys, Requirement, Verification};

use crate::args::Cli;
use crate::context::read_stdin_line;
use crate::output::{error_line, expiry, print, to_json, Outcome};

pub fn verify(cli: &Cli, api_keys: &ApiKeys, require_scopes: &[String]) -> Outcome {
    let key = read_stdin_line()?;
    let required = Requirement::all(require_scopes.iter().cloned());
    let verdict = api_keys.verify_with(key.trim(), &required)?;
    // Recording the last use is best effort: a busy or read-only store must not turn a valid
    // key into a failure.
    if let Err(err) = api_keys.flush() {
        tracing::warn!("could not record the key's last use: {err}");
    }
    let json = to_json(&verdict);
    match &verdict {
        Verification::Valid(ok) => Ok(print(
            cli,
            &json,
            &format!(
                "valid: key {} of user {}, scopes [{}], expires {}",
                ok.key_id,
                ok.user_id,
                ok.scopes.join(", "),
                expiry(ok.expires_at)
            ),
        )),
        refused => {
            if cli.json {
                println!("{json}");
            } else {
                let reason = refused.refusal().map_or("refused", |r| r.reason());
                error_line(&format!("refused: {reason}"));
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
