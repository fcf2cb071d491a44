//! Database locations on the command line: a PostgreSQL URL's password must not be an argument
//! (other users see argv in `ps`, shells keep it in their history), and a URL is shown without
//! its password.
//!
//! [`refuse_passwords_in_argv`] checks every flag of the command that was run, so a URL flag
//! added later is covered without being listed here.

use std::ffi::OsStr;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

use crate::db_path;

/// Whether `text` is a PostgreSQL URL holding a password: `user:password@` in its authority
/// (an empty password included), or a `password=` parameter.
pub fn has_password(text: &str) -> bool {
    if !db_path::is_postgres(Path::new(text)) {
        return false;
    }
    let Some((_, rest)) = text.split_once("://") else {
        return false;
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority
        .rfind('@')
        .is_some_and(|at| authority[..at].contains(':'))
    {
        return true;
    }
    rest.split_once('?').is_some_and(|(_, query)| {
        query.split('&').any(|param| {
            param
                .split_once('=')
                .map_or(param, |(key, _)| key)
                .eq_ignore_ascii_case("password")
        })
    })
}

/// A location as messages show it: a PostgreSQL URL without its password, else the path.
pub fn shown(location: &Path) -> String {
    let text = location.to_string_lossy();
    if !db_path::is_postgres(location) {
        return text.into_owned();
    }
    #[cfg(feature = "postgres")]
    {
        keyseal::postgres::redact_url(&text)
    }
    #[cfg(not(feature = "postgres"))]
    {
        if has_password(&text) {
            "the PostgreSQL URL (password not shown)".into()
        } else {
            text.into_owned()
        }
    }
}

/// Refuses a PostgreSQL URL with a password given as an argument to any flag of the command
/// that was run (values from the environment are fine). The message names the flag and where
/// the password can go instead, never the URL itself.
///
/// # Errors
/// The message to print before exiting with the usage code (2).
pub fn refuse_passwords_in_argv(command: &Command, matches: &ArgMatches) -> Result<(), String> {
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let Ok(Some(values)) = matches.try_get_raw(id) else {
            continue;
        };
        let secret = values
            .map(OsStr::to_string_lossy)
            .any(|value| has_password(&value));
        if secret {
            let flag = arg
                .get_long()
                .map_or_else(|| id.to_owned(), |long| format!("--{long}"));
            let env = arg
                .get_env()
                .map(|env| {
                    format!(
                        "put the whole URL in {} instead, or ",
                        env.to_string_lossy()
                    )
                })
                .unwrap_or_default();
            return Err(format!(
                "{flag}: the URL holds a password, and command-line arguments are visible to \
                 other users (ps, shell history): {env}leave the password out of the URL and \
                 set PGPASSWORD or use a password file (passfile=FILE in the URL, or \
                 PGPASSFILE; mode 0600)"
            ));
        }
    }
    if let Some((name, sub_matches)) = matches.subcommand() {
        if let Some(sub) = command.find_subcommand(name) {
            return refuse_passwords_in_argv(sub, sub_matches);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_in_the_user_info_and_in_parameters() {
        for yes in [
            "postgres://app:s3cret@db/keys",
            "postgresql://app:@db/keys",
            "postgres://app:p%40ss@db:5432/keys?sslmode=require",
            "postgres://app@db/keys?sslmode=disable&password=s3cret",
            "POSTGRES://app@db/keys?PASSWORD=x",
        ] {
            assert!(has_password(yes), "{yes}");
        }
        for no in [
            "postgres://app@db/keys",
            "postgres://db:5432/keys",
            "postgres://app@[::1]:5432/keys?sslmode=require",
            "postgres://app@db/keys?passfile=/home/app/.pgpass",
            "keys.db",
            "user:pw@host.db",
        ] {
            assert!(!has_password(no), "{no}");
        }
    }
}
