//! `keyseal rotate-master`: rewrap every user's data key under a new master key.

use std::path::Path;

use keyseal::parse_master_key;
use serde_json::json;
use zeroize::Zeroizing;

use crate::args::Cli;
use crate::context::open_store;
use crate::output::{error_line, print, Failure, Outcome};
use crate::progress::Reporter;

pub fn run(cli: &Cli, new_file: &Path) -> Outcome {
    let text = Zeroizing::new(
        std::fs::read_to_string(new_file)
            .map_err(|e| Failure(format!("cannot read {}: {e}", new_file.display())))?,
    );
    let new_master = parse_master_key(&text)
        .map_err(|e| Failure(format!("new master key file {}: {e}", new_file.display())))?;
    // Opening checks the current key against the store before anything is touched.
    let store = open_store(cli)?;
    let mut reporter = Reporter::new("rotate-master", cli.json);
    let report = store.rotate_master_key_with_progress(new_master, |done, total| {
        reporter.update(done as u64, total as u64);
    })?;
    reporter.finish();
    // The pool key is derived from the master key: values encrypted with --pool under the old
    // key no longer decrypt with the new one.
    error_line(
        "note: the pool key changed with the master key; re-encrypt any values that \
         were encrypted with --pool (decrypt with the old key file, encrypt with the new one)",
    );
    Ok(print(
        cli,
        &json!({ "rewrapped": report.rewrapped }),
        &format!(
            "rewrapped {} user keys under the new master key; use {} from now on",
            report.rewrapped,
            new_file.display()
        ),
    ))
}
