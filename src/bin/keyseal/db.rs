//! `keyseal db migrate`: create or upgrade the store's tables.
//!
//! On PostgreSQL it applies the schema migrations the database lacks, with the role `--db`
//! names (one that may create tables; servers can then run with a role that only reads and
//! writes rows). A SQLite store has nothing to migrate ahead of time: its tables are created
//! when it is first opened, by whoever opens it, so the command says so and touches nothing
//! (it does not create the file either).

use serde_json::json;

use crate::args::Cli;
use crate::db_path;
use crate::output::{print, Failure, Outcome};
use crate::urls::shown;

pub fn migrate(cli: &Cli) -> Outcome {
    if !db_path::is_postgres(&cli.db) {
        let value = json!({ "backend": "sqlite", "migrated": false, "schema_version": null });
        let human = format!(
            "{}: SQLite, nothing to do (its tables are created when the store is first opened)",
            shown(&cli.db)
        );
        return Ok(print(cli, &value, &human));
    }
    migrate_postgres(cli)
}

#[cfg(feature = "postgres")]
fn migrate_postgres(cli: &Cli) -> Outcome {
    let url = cli
        .db
        .to_str()
        .ok_or_else(|| Failure("--db is not UTF-8".into()))?;
    let version =
        keyseal::postgres::migrate(url).map_err(|e| Failure(format!("{}: {e}", shown(&cli.db))))?;
    let value = json!({
        "backend": "postgres",
        "migrated": version.after != version.before,
        "schema_version_before": version.before,
        "schema_version": version.after,
    });
    let human = if version.after == version.before {
        format!(
            "{}: schema version {}, already up to date",
            shown(&cli.db),
            version.after
        )
    } else {
        format!(
            "{}: schema version {} (was {})",
            shown(&cli.db),
            version.after,
            version.before
        )
    };
    Ok(print(cli, &value, &human))
}

#[cfg(not(feature = "postgres"))]
fn migrate_postgres(_cli: &Cli) -> Outcome {
    Err(Failure(
        "--db is a PostgreSQL URL, but this keyseal was built without its `postgres` feature \
         (build with --features postgres)"
            .into(),
    ))
}
