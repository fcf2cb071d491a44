//! Checking a master key against a store without opening it for writing.

use std::path::Path;

use super::keyring::MasterKeyring;
use super::rules::check_ring;
use super::KeyStore;
use crate::sqlite::keystore::peek_state;
use crate::{Error, MasterKey};

impl KeyStore {
    /// Checks that [`KeyStore::open`] would accept `master` for the store at `path`, without
    /// changing anything on disk: no file, table or journal mode is created, and no `-wal` or
    /// `-shm` file is left behind (on PostgreSQL: nothing is written, no schema migrated). A missing file, or one without a key store yet, passes (a
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
        if crate::db_path::is_postgres(path) {
            #[cfg(feature = "postgres")]
            {
                let url = path.to_str().unwrap_or_default();
                let state = crate::postgres::keystore::PgKeyStore::peek_check_state(
                    url,
                    super::KeyStoreOptions::default().busy_timeout,
                )?;
                let ring = MasterKeyring::new(MasterKey::from_bytes(master.expose_secret())?);
                // Without the master keys table: the legacy check value alone decides.
                return state.map_or(Ok(()), |s| {
                    check_ring(&ring, &s, &super::backend::Keyring::default())
                });
            }
            #[cfg(not(feature = "postgres"))]
            return Err(Error::postgres_not_built());
        }
        if crate::db_path::is_temporary(path) {
            return Err(Error::InvalidArgument {
                what: "the key store needs a file (not empty, not :memory:, not an in-memory \
                       file: URI)"
                    .into(),
            });
        }
        let ring = MasterKeyring::new(MasterKey::from_bytes(master.expose_secret())?);
        match peek_state(path)? {
            Some((state, keys)) => check_ring(&ring, &state, &keys),
            None => Ok(()),
        }
    }
}
