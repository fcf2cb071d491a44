//! Checking a master key against a store without opening it for writing.

use std::path::Path;

use super::backend::CheckState;
use super::{sqlite, wrap, KeyStore};
use crate::{Error, MasterKey};

/// Whether `master` is the key of a store in `state`; a check value to store when there is
/// none yet. Shared by [`KeyStore::open_with`] and [`KeyStore::check_master_key`].
pub(super) fn decide(master: &MasterKey, state: CheckState) -> Result<Option<Vec<u8>>, Error> {
    match state {
        CheckState::Present(check) => {
            if wrap::verify_check(master, &check) {
                Ok(None)
            } else {
                Err(Error::WrongMasterKey { user_id: None })
            }
        }
        CheckState::Absent { first_row } => {
            if let Some((user_id, blob)) = first_row {
                wrap::unwrap(master, &user_id, &blob)?;
            }
            wrap::make_check(master).map(Some)
        }
    }
}

impl KeyStore {
    /// Checks that [`KeyStore::open`] would accept `master` for the store at `path`, without
    /// changing anything on disk: no file, table or journal mode is created, and no `-wal` or
    /// `-shm` file is left behind. A missing file, or one without a key store yet, passes (a
    /// new store takes any key). For dry runs.
    ///
    /// # Errors
    /// As [`KeyStore::open`]: [`Error::WrongMasterKey`], [`Error::CorruptKey`],
    /// [`Error::InvalidArgument`] for an in-memory path, [`Error::Storage`].
    ///
    /// # Example
    /// ```
    /// use keyseal::{Error, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("keys.db");
    /// let master = MasterKey::generate()?;
    /// KeyStore::check_master_key(&path, &master)?; // no store yet: any key
    /// assert!(!path.exists());
    /// let copy = MasterKey::from_bytes(master.expose_secret())?;
    /// KeyStore::open(&path, master)?.get_or_create_user_key("alice")?;
    /// KeyStore::check_master_key(&path, &copy)?;
    /// assert!(matches!(
    ///     KeyStore::check_master_key(&path, &MasterKey::generate()?),
    ///     Err(Error::WrongMasterKey { .. })
    /// ));
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn check_master_key(path: impl AsRef<Path>, master: &MasterKey) -> Result<(), Error> {
        let path = path.as_ref();
        if crate::db_path::is_temporary(path) {
            return Err(Error::InvalidArgument {
                what: "the key store needs a file (not empty, not :memory:, not an in-memory \
                       file: URI)"
                    .into(),
            });
        }
        match sqlite::peek_check_state(path)? {
            Some(state) => decide(master, state).map(drop),
            None => Ok(()),
        }
    }
}
