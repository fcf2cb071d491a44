//! Copying a whole store (per-user data keys, the master key check value, API keys with their
//! hashes and every state column (enabled, metadata included), legacy key formats) to another location, SQLite or
//! PostgreSQL, through the backend traits: the way up from one SQLite file to a shared
//! PostgreSQL database, and back.

use std::path::Path;
use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::issuance::backend::Row;
use crate::{ApiKeys, Error, KeyStore, MasterKey, StorageKind};

/// What [`copy_store`] copied (and then verified).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreCopyReport {
    /// Users whose data key was copied.
    pub data_keys: u64,
    /// API keys copied (revoked and expired ones included).
    pub api_keys: u64,
    /// Legacy key formats copied.
    pub legacy_formats: u64,
}

/// How long each side waits for other writers.
const BUSY: Duration = Duration::from_secs(30);

fn invalid(what: String) -> Error {
    Error::InvalidArgument { what }
}

/// Copies the whole store at `from` into the empty store at `to` (each a SQLite path or a
/// PostgreSQL URL), then verifies the copy: every data key at `to` unwraps with `master` to
/// the same key as at `from`, the row counts match, and every API-key row (hash and state
/// included) equals its source. Copy a store that nobody writes meanwhile (each part is read
/// as one snapshot, the two parts one after the other).
///
/// The data keys go in one transaction, the API keys in a second; when the second fails, the
/// first is taken back, so a failed copy leaves the target as empty as it was (a SQLite
/// target file, or PostgreSQL tables, may have been created). The master keys, key versions
/// and the Python-sharing flag follow; if that last step fails, the data keys are taken back
/// but what else was written stays, and the target is refused as not empty: copy into a new
/// database or file.
///
/// # Errors
/// - [`Error::InvalidArgument`]: `from` and `to` are the same location, `from` is a SQLite
///   file that does not exist, or `to` is not empty (it holds a check value, a data key or an
///   API key);
/// - [`Error::WrongMasterKey`] (and the other errors of [`KeyStore::open`]): `master` is
///   not the source's master key;
/// - [`Error::Storage`] with kind `corrupt`: a source row cannot be read or its data key does
///   not unwrap (nothing is written then), or the copy did not verify;
/// - [`Error::Storage`]: either store cannot be opened, read or written.
///
/// # Security
/// Wrapped keys and hashes are moved as stored, never unwrapped into anything but memory
/// that is wiped; nothing secret is logged.
pub fn copy_store(from: &Path, to: &Path, master: &MasterKey) -> Result<StoreCopyReport, Error> {
    if from == to {
        return Err(invalid(
            "copy: the source and the target are the same store".into(),
        ));
    }
    // Opening a missing SQLite source would create an empty store there, and copy nothing.
    let missing = !crate::db_path::is_postgres(from)
        && crate::db_path::file_of(from).map_or(true, |file| !file.exists());
    if missing {
        return Err(invalid(format!(
            "copy: there is no store at {} to copy",
            from.display()
        )));
    }
    let source = KeyStore::open(from, MasterKey::from_bytes(master.expose_secret())?)?;
    let source_api = ApiKeys::open(from)?;
    let (check, rows) = source.backend().export()?;
    let check = check.ok_or_else(|| {
        Error::storage(
            StorageKind::Corrupt,
            "the source store has no master key check value",
        )
    })?;
    // Every source key must unwrap before anything is written: a damaged row is reported
    // here, not found later in the copy.
    for row in &rows {
        source.get_user_key(&row.user_id)?;
    }
    let (api_rows, legacy) = source_api.backend().export()?;

    let (target, _) = crate::keystore::open_backend(to, BUSY)?;
    let target_api = ApiKeys::open(to)?;
    let not_empty = || {
        invalid(
            "copy: the target store is not empty (it holds keys or a master key check value); \
             copy into a new database or file"
                .into(),
        )
    };
    if !target.import(&check, &rows)? {
        return Err(not_empty());
    }
    let users: Vec<String> = rows.iter().map(|r| r.user_id.clone()).collect();
    match target_api.backend().import(&api_rows, &legacy) {
        Ok(true) => {}
        Ok(false) => {
            target.undo_import(&check, &users)?;
            return Err(not_empty());
        }
        Err(e) => {
            target.undo_import(&check, &users)?;
            return Err(e);
        }
    }
    // Master keys, key versions and the Python flag: without them values written under a
    // newer key version would not decrypt from the copy.
    if let Err(e) = source.copy_keyring(&*target) {
        target.undo_import(&check, &users)?;
        return Err(e);
    }
    drop(target);

    verify(&source, to, master, &api_rows, &legacy)?;
    Ok(StoreCopyReport {
        data_keys: rows.len() as u64,
        api_keys: api_rows.len() as u64,
        legacy_formats: legacy.len() as u64,
    })
}

fn mismatch(what: &str) -> Error {
    Error::storage(
        StorageKind::Corrupt,
        format!("copy: the copy did not verify ({what}); do not use the target store"),
    )
}

/// The copy at `to` against the source: data keys through a fresh key store, API-key rows
/// through a fresh export.
fn verify(
    source: &KeyStore,
    to: &Path,
    master: &MasterKey,
    api_rows: &[Row],
    legacy: &[(String, usize)],
) -> Result<(), Error> {
    let copy = KeyStore::open(to, MasterKey::from_bytes(master.expose_secret())?)?;
    if copy.user_count()? != source.user_count()? {
        return Err(mismatch("data key counts differ"));
    }
    let (_, rows) = copy.backend().export()?;
    for row in &rows {
        let copied = copy.get_user_key(&row.user_id)?;
        let original = source.get_user_key(&row.user_id)?;
        let same = match (copied, original) {
            (Some(a), Some(b)) => bool::from(a.expose_secret().ct_eq(b.expose_secret())),
            _ => false,
        };
        if !same {
            return Err(mismatch("a data key differs"));
        }
    }
    let (copied_rows, mut copied_legacy) = ApiKeys::open(to)?.backend().export()?;
    if copied_rows.len() != api_rows.len() {
        return Err(mismatch("API key counts differ"));
    }
    if !copied_rows
        .iter()
        .zip(api_rows)
        .all(|(a, b)| same_row(a, b))
    {
        return Err(mismatch("an API key row differs"));
    }
    let mut legacy = legacy.to_vec();
    legacy.sort();
    copied_legacy.sort();
    if copied_legacy != legacy {
        return Err(mismatch("legacy key formats differ"));
    }
    Ok(())
}

/// Every column but the backend's own row id.
fn same_row(a: &Row, b: &Row) -> bool {
    a.key_id == b.key_id
        && a.lookup == b.lookup
        && a.scheme == b.scheme
        && a.hash == b.hash
        && a.user_id == b.user_id
        && a.name == b.name
        && a.scopes == b.scopes
        && a.environment == b.environment
        && a.created_at == b.created_at
        && a.expires_at == b.expires_at
        && a.revoked_at == b.revoked_at
        && a.rotated_to == b.rotated_to
        && a.rate_limit == b.rate_limit
        && a.last_used_at == b.last_used_at
        && a.enabled == b.enabled
        && a.metadata == b.metadata
        && a.verifier_tag == b.verifier_tag
}
