//! `keyseal copy --to`: the whole store at `--db` into a new, empty one (SQLite or
//! PostgreSQL), verified afterwards.

use std::process::ExitCode;

use serde_json::json;

use crate::args::{Cli, CopyArgs};
use crate::context::{master_key, store_path};
use crate::output::{print, Failure, Outcome};
use crate::urls::shown;

pub fn run(cli: &Cli, args: &CopyArgs) -> Outcome {
    let from = store_path(cli)?;
    if crate::db_path::is_temporary(&args.to) {
        return Err(Failure(format!(
            "--to {:?} is not a file: SQLite would keep the copy in memory only; give a file \
             path or a PostgreSQL URL",
            args.to.display().to_string()
        )));
    }
    let master = master_key(cli)?;
    let report = keyseal::copy_store(from, &args.to, &master)
        .map_err(|e| Failure(format!("copy {} to {}: {e}", shown(from), shown(&args.to))))?;
    let value = json!({
        "from": shown(from),
        "to": shown(&args.to),
        "data_keys": report.data_keys,
        "api_keys": report.api_keys,
        "legacy_formats": report.legacy_formats,
        "verified": true,
    });
    let human = format!(
        "copied {} data keys and {} API keys from {} to {}; verified",
        report.data_keys,
        report.api_keys,
        shown(from),
        shown(&args.to)
    );
    print(cli, &value, &human);
    Ok(ExitCode::SUCCESS)
}
