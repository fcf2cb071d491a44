//! Running `keys import`: read the input and check every key (a bad one refuses the whole
//! import, named by its place, before anything is written), import, report the counts.

use keyseal::{ApiKeys, ImportOptions};
use serde_json::Value;
use std::path::Path;

use super::egregore::{self, Owner};
use super::input::{Parsed, Place};
use super::{jsonl, keycloak};
use crate::args::{Cli, ImportArgs};
use crate::output::{print, to_json, Failure, Outcome};
use crate::urls::shown;

pub fn run(cli: &Cli, api_keys: &ApiKeys, args: &ImportArgs) -> Outcome {
    let (kind, parsed, complete) = read_input(args)?;
    let source = args.source.clone().unwrap_or_else(|| kind.to_owned());
    let mut options = ImportOptions::new(&source);
    options.dry_run = args.dry_run;
    options.complete = complete;
    let report = api_keys
        .import_keys(&parsed.keys, &options)
        .map_err(|e| located(&e, &parsed.places))?;
    let mut json = to_json(&report);
    if let Value::Object(fields) = &mut json {
        fields.insert("source".into(), Value::String(source.clone()));
    }
    let human = format!(
        "import from {source}{}: {} created, {} updated, {} unchanged, {} deleted",
        if args.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        },
        report.created,
        report.updated,
        report.unchanged,
        report.deleted
    );
    Ok(print(cli, &json, &human))
}

/// The input's kind, its keys, and whether it holds every key of its source.
fn read_input(args: &ImportArgs) -> Result<(&'static str, Parsed, bool), Failure> {
    if let Some(path) = &args.jsonl {
        let parsed = jsonl::parse(&read_file(path)?)
            .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
        return Ok(("jsonl", parsed, args.complete));
    }
    if let Some(path) = &args.keycloak_users {
        let parsed = keycloak::parse(
            &read_file(path)?,
            args.keycloak_tag.as_deref().unwrap_or("mcpkey_live"),
        )
        .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
        // The export is the system's user list: a key gone from it was revoked there, and
        // must stop working here too.
        return Ok(("keycloak", parsed, true));
    }
    if let Some(url) = &args.egregore {
        let owner = if args.user_from.as_deref() == Some("name") {
            Owner::Name
        } else {
            Owner::ClientId
        };
        let where_ = format!("egregore {}", shown(Path::new(url)));
        let rows = read_egregore(url).map_err(|e| Failure(format!("{where_}: {e}")))?;
        let parsed =
            egregore::parse(&rows, owner).map_err(|e| Failure(format!("{where_}: {e}")))?;
        // The whole table was read: a row gone upstream is a key deleted there.
        return Ok(("egregore", parsed, true));
    }
    unreachable!("clap requires one of --jsonl, --egregore, --keycloak-users")
}

#[cfg(feature = "postgres")]
fn read_egregore(url: &str) -> Result<Vec<String>, String> {
    egregore::read(url).map_err(|e| e.to_string())
}

#[cfg(not(feature = "postgres"))]
fn read_egregore(_url: &str) -> Result<Vec<String>, String> {
    Err(
        "this keyseal was built without its `postgres` feature (build with --features postgres)"
            .into(),
    )
}

fn read_file(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("{}: cannot be read: {e}", path.display())))
}

/// The library names a key it refuses by its position in the list ("imported key N"): the
/// message names the place in the input instead.
fn located(err: &keyseal::Error, places: &[Place]) -> Failure {
    const MARK: &str = "imported key ";
    let text = err.to_string();
    if let Some(start) = text.find(MARK) {
        let digits_at = start + MARK.len();
        let digits = text[digits_at..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let index = text[digits_at..digits_at + digits].parse::<usize>().ok();
        if let Some(place) = index.and_then(|i| places.get(i)) {
            return Failure(format!(
                "{}{place}{}",
                &text[..start],
                &text[digits_at + digits..]
            ));
        }
    }
    Failure(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_librarys_position_becomes_the_inputs_place() {
        let places = [Place::Line(1), Place::Line(4)];
        let err = keyseal::Error::InvalidArgument {
            what: "imported key 1 (source id a): name: 1 to 256 bytes".into(),
        };
        let Failure(text) = located(&err, &places);
        assert!(
            text.contains("line 4 (source id a): name: 1 to 256 bytes"),
            "{text}"
        );
        assert!(!text.contains("imported key"), "{text}");
        // Anything else is passed on as it is.
        let err = keyseal::Error::InvalidArgument {
            what: "import source: 1 to 64 bytes".into(),
        };
        assert_eq!(located(&err, &places).0, err.to_string());
    }
}
