//! Versioned data keys: `keyseal rotate-key`, `key-version (list|disable|enable|destroy)`,
//! `shared-with-python`.

use keyseal::{KeyOwner, KeyState, KeyStore};
use serde_json::json;

use crate::args::{Cli, KeyVersionCommand, Target};
use crate::context::open_store;
use crate::output::{print, Outcome};

/// The owner a `--user ID` / `--pool` target names.
pub fn owner(target: &Target) -> KeyOwner<'_> {
    match &target.user {
        Some(user) => KeyOwner::User(user),
        None => KeyOwner::Pool,
    }
}

fn describe(owner: KeyOwner<'_>) -> String {
    match owner {
        KeyOwner::User(user) => format!("user {user:?}"),
        KeyOwner::Pool => "the pool key".to_owned(),
    }
}

pub fn rotate(cli: &Cli, target: &Target, force: bool) -> Outcome {
    let store = open_store(cli)?;
    let owner = owner(target);
    let version = store.rotate_key(owner, force)?;
    Ok(print(
        cli,
        &json!({ "version": version }),
        &format!(
            "{}: new values now use key version {version}; older versions still decrypt{}",
            describe(owner),
            if force {
                " (the Python module cannot read values written under it)"
            } else {
                ""
            }
        ),
    ))
}

fn list(cli: &Cli, store: &KeyStore, owner: KeyOwner<'_>) -> Outcome {
    let versions = store.key_versions(owner)?;
    let human: Vec<String> = versions
        .iter()
        .map(|v| format!("version {}: {}", v.version, v.state.as_str()))
        .collect();
    let value = json!({
        "versions": versions
            .iter()
            .map(|v| json!({ "version": v.version, "state": v.state.as_str() }))
            .collect::<Vec<_>>(),
    });
    let human = if human.is_empty() {
        format!("{}: no key", describe(owner))
    } else {
        human.join("\n")
    };
    Ok(print(cli, &value, &human))
}

pub fn version(cli: &Cli, command: &KeyVersionCommand) -> Outcome {
    let store = open_store(cli)?;
    let (args, state) = match command {
        KeyVersionCommand::List(target) => return list(cli, &store, owner(target)),
        KeyVersionCommand::Disable(args) => {
            store.disable_key_version(owner(&args.target), args.version)?;
            (args, KeyState::Disabled)
        }
        KeyVersionCommand::Enable(args) => {
            store.enable_key_version(owner(&args.target), args.version)?;
            (args, KeyState::Active)
        }
        KeyVersionCommand::Destroy(args) => {
            store.destroy_key_version(owner(&args.target), args.version)?;
            (args, KeyState::Destroyed)
        }
    };
    Ok(print(
        cli,
        &json!({ "version": args.version, "state": state.as_str() }),
        &format!(
            "{}: key version {} is {}",
            describe(owner(&args.target)),
            args.version,
            state.as_str()
        ),
    ))
}

pub fn shared(cli: &Cli, shared: bool) -> Outcome {
    let store = open_store(cli)?;
    store.set_shared_with_python(shared)?;
    Ok(print(
        cli,
        &json!({ "shared_with_python": shared }),
        if shared {
            "marked as shared with the Python module: rotate-key needs --force"
        } else {
            "marked as not shared with the Python module"
        },
    ))
}
