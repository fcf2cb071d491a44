//! `keyseal rewrap`: re-encrypt a column's tokens in place, then optionally check them.

use std::process::ExitCode;
use std::time::Instant;

use keyseal::migrate::Progress;
use keyseal::rewrap::{rewrap_column, verify_rewrapped, RewrapOptions};
use serde_json::json;

use crate::args::{Cli, RewrapArgs};
use crate::context::open_store;
use crate::output::{error_line, print, Failure, Outcome};
use crate::progress::Reporter;

pub fn run(cli: &Cli, args: &RewrapArgs) -> Outcome {
    let mut options = match &args.user_column {
        Some(user) => RewrapOptions::user_column(&args.table, &args.column, &args.id_column, user),
        None => RewrapOptions::pool(&args.table, &args.column, &args.id_column),
    }
    .batch(args.batch as usize)
    .force(args.force)
    .dry_run(args.dry_run);
    if args.to_v3 {
        let columns = if args.context_columns.is_empty() {
            vec![args.id_column.clone()]
        } else {
            args.context_columns.clone()
        };
        options = options.to_v3(columns);
    }
    let data_db = args.data_db.as_deref().unwrap_or(&cli.db);
    let store = open_store(cli)?;
    let mut reporter = Reporter::new("rewrap", cli.json);
    let started = Instant::now();
    let report = rewrap_column(data_db, &store, &options, |p: Progress| {
        reporter.update(p.done, p.total);
    })?;
    reporter.finish();
    let seconds = started.elapsed().as_secs_f64();
    let refused_rows: Vec<_> = report
        .refused_rows
        .iter()
        .map(|r| json!({ "id": r.id, "reason": r.reason.to_string() }))
        .collect();
    let mut out = json!({
        "dry_run": args.dry_run,
        "rewrapped": report.rewrapped,
        "skipped": report.skipped,
        "refused": report.refused,
        "refused_rows": refused_rows,
        "seconds": (seconds * 1000.0).round() / 1000.0,
    });
    let mut human = format!(
        "{}rewrapped {}, skipped {} (already in their target form, or empty), refused {} in \
         {seconds:.2}s",
        if args.dry_run {
            "dry run: would have "
        } else {
            ""
        },
        report.rewrapped,
        report.skipped,
        report.refused
    );
    let mut failed = 0;
    if args.verify {
        let check = verify_rewrapped(data_db, &store, &options)?;
        out["verify"] = json!({
            "ok": check.ok, "stale": check.stale, "failed": check.failed, "null": check.null,
        });
        human = format!(
            "{human}\nverify: {} decrypt in their target form, {} decrypt but are not yet, {} do \
             not decrypt, {} empty",
            check.ok, check.stale, check.failed, check.null
        );
        failed = check.failed;
    }
    print(cli, &out, &human);
    for row in report.refused_rows.iter().take(10) {
        error_line(&format!("refused row {}: {}", row.id, row.reason));
    }
    if failed > 0 {
        return Err(Failure(format!("{failed} values do not decrypt")));
    }
    if report.refused > 0 {
        return Err(Failure(format!(
            "{} rows were left as they were (see refused_rows)",
            report.refused
        )));
    }
    Ok(ExitCode::SUCCESS)
}
