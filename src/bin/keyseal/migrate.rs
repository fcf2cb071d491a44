//! `keyseal migrate`: encrypt a column's legacy plaintext in place, then optionally check it.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use keyseal::migrate::{
    count_column, migrate_column, verify_column, KeySource, MigrateOptions, MigrateReport, Progress,
};
use keyseal::KeyStore;
use serde_json::{json, Value};

use crate::args::{Cli, MigrateArgs};
use crate::context::{master_key, open_store, store_path};
use crate::output::{print, Failure, Outcome};
use crate::progress::Reporter;

pub fn run(cli: &Cli, args: &MigrateArgs) -> Outcome {
    let keys = match &args.user_column {
        Some(column) => KeySource::UserColumn(column.clone()),
        None => KeySource::Pool,
    };
    let options = MigrateOptions::new(&args.table, &args.column, &args.id_column, keys)
        .batch(args.batch as usize)
        .dry_run(args.dry_run);
    let data_db = args.data_db.as_deref().unwrap_or(&cli.db);
    // Refused before the store is opened (and so before it could be created).
    options.validate()?;

    let mut reporter = Reporter::new("migrate", cli.json);
    let started = Instant::now();
    let on_progress = |p: Progress| reporter.update(p.done, p.total);
    // A dry run only reads: opening the key store would create or change --db, so the
    // master key is checked against it read-only.
    let (report, store) = if args.dry_run {
        let path = store_path(cli)?;
        KeyStore::check_master_key(path, &master_key(cli)?)
            .map_err(|e| Failure(format!("{}: {e}", crate::urls::shown(path))))?;
        (count_column(data_db, &options, on_progress)?, None)
    } else {
        let store = open_store(cli)?;
        let report = migrate_column(data_db, &store, &options, on_progress)?;
        (report, Some(store))
    };
    reporter.finish();
    let seconds = started.elapsed().as_secs_f64();
    let (mut out, mut human) = summary(&report, args.dry_run, seconds);
    if let (true, Some(store)) = (args.verify, &store) {
        let failed = check(cli, data_db, store, &options, &mut out, &mut human)?;
        if failed > 0 {
            print(cli, &out, &human);
            return Err(Failure(format!("{failed} values do not decrypt")));
        }
    }
    print(cli, &out, &human);
    if report.failed > 0 {
        return Err(Failure(failed_rows_line(&report, args.dry_run)));
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON object and the human line for what was (or would be) done.
fn summary(report: &MigrateReport, dry_run: bool, seconds: f64) -> (Value, String) {
    let failed_rows: Vec<Value> = report
        .failed_rows
        .iter()
        .map(|row| json!({ "id": row.id, "reason": row.reason.to_string() }))
        .collect();
    let out = json!({
        "dry_run": dry_run,
        "migrated": report.migrated,
        "skipped": report.skipped,
        "failed": report.failed,
        "failed_rows": failed_rows,
        "seconds": (seconds * 1000.0).round() / 1000.0,
    });
    let human = format!(
        "{}migrated {}, skipped {} (already encrypted or empty), failed {} in {seconds:.2}s",
        if dry_run { "dry run: would have " } else { "" },
        report.migrated,
        report.skipped,
        report.failed
    );
    (out, human)
}

/// `--verify`: decrypts every value and adds the counts to both outputs; returns how many
/// values do not decrypt.
fn check(
    cli: &Cli,
    data_db: &Path,
    store: &KeyStore,
    options: &MigrateOptions,
    out: &mut Value,
    human: &mut String,
) -> Result<u64, Failure> {
    let mut reporter = Reporter::new("verify", cli.json);
    let check = verify_column(data_db, store, options, |p: Progress| {
        reporter.update(p.done, p.total);
    })?;
    reporter.finish();
    out["verify"] = json!({
        "ok": check.ok,
        "plaintext": check.plaintext,
        "null": check.null,
        "failed": check.failed,
    });
    let _ = write!(
        human,
        "\nverify: {} decrypt, {} still plaintext, {} empty, {} fail",
        check.ok, check.plaintext, check.null, check.failed
    );
    Ok(check.failed)
}

/// One line naming the rows left as they were (the first few), and why.
fn failed_rows_line(report: &MigrateReport, dry_run: bool) -> String {
    const SHOWN: usize = 10;
    let mut line = format!(
        "{} values {} left as they were:",
        report.failed,
        if dry_run { "would be" } else { "were" }
    );
    for (i, row) in report.failed_rows.iter().take(SHOWN).enumerate() {
        let _ = write!(
            line,
            "{} id {} ({})",
            if i == 0 { "" } else { "," },
            row.id,
            row.reason
        );
    }
    let shown = report.failed_rows.len().min(SHOWN) as u64;
    if report.failed > shown {
        let _ = write!(line, ", and {} more", report.failed - shown);
    }
    line
}
