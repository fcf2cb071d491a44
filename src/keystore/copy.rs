//! Copying a whole key store to another location (another file, or PostgreSQL): the check
//! value and every wrapped key, byte for byte, verified after the copy.

use std::path::Path;

use super::backend::{Backend, Guard, StoredRow, Written};
use super::{open_backend, wrap, KeyStore, KeyStoreOptions};
use crate::{Error, StorageKind};

/// What [`KeyStore::copy_to`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyReport {
    /// Users whose wrapped key was copied (and verified).
    pub rows: u64,
}

impl KeyStore {
    /// Copies this store into the empty store at `target` (a SQLite path or a PostgreSQL
    /// URL, selected as [`KeyStore::open`] does): the master key check value and every
    /// user's wrapped key with its creation time, byte for byte, in one transaction. Before
    /// writing, every row is checked to open with this store's master key; after, the copy
    /// is read back and must hold the same check value and the same rows.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when `target` already holds a key store (any row or a
    ///   check value): nothing is written; or for a target that would live only in memory;
    /// - [`Error::WrongMasterKey`] / [`Error::CorruptKey`] naming a row of this store that
    ///   does not open: nothing is written;
    /// - [`Error::Storage`] when either store cannot be read or written, or (kind `corrupt`)
    ///   when the copy read back differs.
    ///
    /// # Security
    /// Keys are copied wrapped; the master key is used only to check them and never leaves
    /// memory. Messages show a PostgreSQL URL without its password.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let master = MasterKey::generate()?;
    /// let copy_key = MasterKey::from_bytes(master.expose_secret())?;
    /// let store = KeyStore::open(dir.path().join("a.db"), master)?;
    /// let key = store.get_or_create_user_key("alice")?;
    /// assert_eq!(store.copy_to(dir.path().join("b.db"))?.rows, 1);
    /// let copy = KeyStore::open(dir.path().join("b.db"), copy_key)?;
    /// assert_eq!(copy.get_user_key("alice")?, Some(key));
    /// assert!(store.copy_to(dir.path().join("b.db")).is_err()); // not empty any more
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn copy_to(&self, target: impl AsRef<Path>) -> Result<CopyReport, Error> {
        let target = target.as_ref();
        let ring = self.inner.ring();
        // Pool key version 1 travels with the copy: store it first if it is not yet.
        self.inner.pool_versions()?;
        let (check, rows) = self.inner.backend.export()?;
        let check = check.ok_or_else(|| {
            Error::storage(
                StorageKind::Corrupt,
                "this key store has no master key check value; reopen it to restore it",
            )
        })?;
        let legacy_held = self
            .inner
            .legacy_id()
            .is_some_and(|id| ring.get(&id).is_some());
        if legacy_held && !ring.iter().any(|(_, k)| wrap::verify_check(k, &check)) {
            return Err(Error::WrongMasterKey { user_id: None });
        }
        for row in &rows {
            let stored = StoredRow {
                user_id: row.user_id.clone(),
                wrapped: row.wrapped.clone(),
                master_id: row.master_id.clone(),
            };
            self.inner.unwrap_row(&ring, &stored)?;
        }
        if crate::db_path::is_temporary(target) {
            return Err(Error::InvalidArgument {
                what: "the copy needs a file or a PostgreSQL URL, not an in-memory database".into(),
            });
        }
        let (backend, shown) = open_backend(target, KeyStoreOptions::default().busy_timeout)?;
        if !backend.import(&check, &rows)? {
            return Err(Error::InvalidArgument {
                what: format!(
                    "{} already holds a key store: copy only into an empty one",
                    shown.display()
                ),
            });
        }
        let (copied_check, copied) = backend.export()?;
        let same = copied_check.as_deref() == Some(check.as_slice()) && {
            let mut a = rows.clone();
            let mut b = copied;
            a.sort_by(|x, y| x.user_id.cmp(&y.user_id));
            b.sort_by(|x, y| x.user_id.cmp(&y.user_id));
            a == b
        };
        if !same {
            return Err(Error::storage(
                StorageKind::Corrupt,
                format!(
                    "the copy in {} does not read back as written",
                    shown.display()
                ),
            ));
        }
        self.copy_keyring(&*backend)?;
        Ok(CopyReport {
            rows: u64::try_from(rows.len()).unwrap_or(u64::MAX),
        })
    }

    /// Copies the master keys (not retired), the legacy key, every key version holding a key
    /// (pool key version 1 included), and the Python flag into `target`, after its rows.
    pub(crate) fn copy_keyring(&self, target: &dyn Backend) -> Result<(), Error> {
        self.inner.pool_versions()?;
        let source = &*self.inner.backend;
        let keyring = source.keyring()?;
        for key in keyring.keys.iter().filter(|k| !k.retired) {
            let legacy = keyring.legacy_id.as_deref() == Some(key.id.as_str());
            target.add_master_key(key, legacy)?;
        }
        for version in source.stale_versions("", None, usize::MAX)? {
            let Some(key) = keyring
                .keys
                .iter()
                .find(|k| Some(k.id.as_str()) == version.master_id.as_deref())
            else {
                continue;
            };
            match target.insert_version(Guard::new(&key.id, &key.check), &version)? {
                Written::Done(_) => {}
                Written::CheckChanged(_) => {
                    return Err(Error::storage(
                        StorageKind::Corrupt,
                        "a key version could not be copied under its master key",
                    ))
                }
            }
        }
        if let Some(shared) = source.shared_with_python()? {
            target.set_shared_with_python(shared)?;
        }
        Ok(())
    }
}
