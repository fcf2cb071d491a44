//! `keyseal keys ...`: issue, verify, list, change, disable / enable, delete, revoke,
//! rotate and import API keys; one module per kind of command.

mod admin;
mod import;
mod issue;
mod list;
mod verify;

use crate::args::{Cli, KeysCommand};
use crate::context::open_api_keys;
use crate::output::Outcome;

pub fn run(cli: &Cli, command: &KeysCommand) -> Outcome {
    let api_keys = open_api_keys(cli)?;
    match command {
        KeysCommand::Create(args) => issue::create(cli, &api_keys, args),
        KeysCommand::Rotate {
            user,
            key_id,
            grace,
        } => issue::rotate(cli, &api_keys, user, key_id, *grace),
        KeysCommand::Import(args) => import::run(cli, &api_keys, args),
        KeysCommand::Verify { require_scopes } => verify::verify(cli, &api_keys, require_scopes),
        KeysCommand::List { whose, status } => list::list(cli, &api_keys, whose, *status),
        KeysCommand::Update(args) => admin::update(cli, &api_keys, args),
        KeysCommand::Disable { user, key_id } => {
            let info = api_keys.disable(user, key_id)?;
            Ok(admin::done(cli, &info, "disabled"))
        }
        KeysCommand::Enable { user, key_id } => {
            let info = api_keys.enable(user, key_id)?;
            Ok(admin::done(cli, &info, "enabled"))
        }
        KeysCommand::Delete { user, key_id } => {
            let info = api_keys.delete(user, key_id)?;
            Ok(admin::done(cli, &info, "deleted"))
        }
        KeysCommand::Revoke { user, key_id } => {
            let info = api_keys.revoke(user, key_id)?;
            Ok(admin::done(cli, &info, "revoked"))
        }
    }
}
