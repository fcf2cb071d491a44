//! Master key rotation: every row rewrapped under the new key in one transaction, or none.

use std::sync::{Arc, PoisonError};

use super::backend::{Rewrapped, StoredRow};
use super::rules::lock;
use super::{wrap, KeyStore, KeyStoreFuture};
use crate::{Error, MasterKey};

/// What [`KeyStore::rotate_master_key`] did.
///
/// # Example
/// ```
/// use keyseal::{KeyStore, MasterKey};
/// # let dir = tempfile::tempdir().unwrap();
/// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
/// store.get_or_create_user_key("alice")?;
/// let report = store.rotate_master_key(MasterKey::generate()?)?;
/// assert_eq!(report.rewrapped, 1);
/// # Ok::<(), keyseal::Error>(())
/// ```
///
/// # Errors
/// None; it is only a report.
///
/// # Security
/// Holds counts only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationReport {
    /// Rows rewrapped under the new master key (every row of `encryption_keys`).
    pub rewrapped: usize,
}

impl KeyStore {
    /// Rewraps every user's key under `new_master` in one transaction (all or nothing) and
    /// makes `new_master` this store's key. Data keys, and so every token encrypted under
    /// them, are unchanged.
    ///
    /// Other users of the file must reopen it with the new master key; until they do, their
    /// reads fail with [`Error::WrongMasterKey`] and their writes are refused, never made under
    /// the old key. The pool key ([`KeyStore::pool_key`]) is derived from the master key, so
    /// it changes: re-encrypt pool secrets.
    ///
    /// # Errors
    /// - [`Error::WrongMasterKey`] when this store's master key no longer opens the file
    ///   (another process rotated it) or a row (naming the user);
    /// - [`Error::CorruptKey`] for a row of the wrong length;
    /// - [`Error::Randomness`], [`Error::Storage`].
    ///
    /// On any error nothing is changed.
    ///
    /// # Security
    /// A crash (even `kill -9` or power loss) during rotation leaves the file as it was, under
    /// the old master key: the transaction commits atomically or not at all.
    ///
    /// # Example
    /// ```
    /// use keyseal::{Error, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("keys.db");
    /// let old = MasterKey::generate()?;
    /// let old_copy = MasterKey::from_bytes(old.expose_secret())?;
    /// let new = MasterKey::generate()?;
    /// let new_copy = MasterKey::from_bytes(new.expose_secret())?;
    /// let store = KeyStore::open(&path, old)?;
    /// let key = store.get_or_create_user_key("alice")?;
    /// assert_eq!(store.rotate_master_key(new)?.rewrapped, 1);
    /// assert_eq!(store.get_or_create_user_key("alice")?, key);
    /// let reopened = KeyStore::open(&path, new_copy)?;
    /// assert_eq!(reopened.get_or_create_user_key("alice")?, key);
    /// assert!(matches!(KeyStore::open(&path, old_copy), Err(Error::WrongMasterKey { .. })));
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn rotate_master_key(&self, new_master: MasterKey) -> Result<RotationReport, Error> {
        self.rotate_master_key_with_progress(new_master, |_, _| {})
    }

    /// [`KeyStore::rotate_master_key`], calling `progress(rows_done, rows_total)` from time to
    /// time (for a progress bar); the transaction commits after the last call.
    ///
    /// # Errors
    /// As [`KeyStore::rotate_master_key`].
    ///
    /// # Security
    /// As [`KeyStore::rotate_master_key`].
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// store.get_or_create_user_keys(&["a", "b", "c"])?;
    /// let mut last = (0, 0);
    /// store.rotate_master_key_with_progress(MasterKey::generate()?, |done, total| {
    ///     last = (done, total);
    /// })?;
    /// assert_eq!(last, (3, 3));
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn rotate_master_key_with_progress(
        &self,
        new_master: MasterKey,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<RotationReport, Error> {
        let inner = &*self.inner;
        // Batches commit under the write lock and wrap with the master key current then, so
        // requests still queued are wrapped under the new key after the rotation.
        let _write = inner
            .write_lock
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = inner.master();
        let new_check = wrap::make_check(&new_master)?;
        // Other writers (other processes) are kept out from here to the commit.
        let mut rotation = inner.backend.begin_rotation()?;
        let (stored_check, rows) = rotation.rows()?;
        inner.accept_check(&old, stored_check.as_deref())?;
        let total = rows.len();
        progress(0, total);
        let rewrapped = rewrap_rows(&old, &new_master, rows)?;
        rotation.commit(&new_check, &rewrapped, &mut |done| progress(done, total))?;
        *lock(&inner.check) = new_check;
        *inner.master.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new_master);
        Ok(RotationReport {
            rewrapped: rewrapped.len(),
        })
    }

    /// [`KeyStore::rotate_master_key`] for async code, on a dedicated thread.
    ///
    /// # Errors
    /// As [`KeyStore::rotate_master_key`].
    ///
    /// # Security
    /// As [`KeyStore::rotate_master_key`].
    ///
    /// # Example
    /// See [`KeyStoreFuture`].
    pub fn rotate_master_key_async(&self, new_master: MasterKey) -> KeyStoreFuture<RotationReport> {
        let store = self.clone();
        KeyStoreFuture::spawn(move || store.rotate_master_key(new_master))
    }
}

/// Every row rewrapped from `old` to `new` (data keys unchanged).
fn rewrap_rows(
    old: &MasterKey,
    new: &MasterKey,
    rows: Vec<StoredRow>,
) -> Result<Vec<Rewrapped>, Error> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let key = wrap::unwrap(old, &row.user_id, &row.wrapped)?;
        out.push(Rewrapped {
            wrapped: wrap::wrap(new, &key)?,
            user_id: row.user_id,
        });
    }
    Ok(out)
}
