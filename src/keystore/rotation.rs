//! Master key rotation in one step: every row and pool key version rewrapped under the new key
//! in one transaction, or none.

use std::sync::{Arc, PoisonError};

use super::backend::{MasterKeyRow, Rewrapped, RotationState, Slot};
use super::keyring::{MasterKeyId, MasterKeyring};
use super::rules::{lock, Inner};
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
    /// Key versions (of the pool key and of users' keys) rewrapped under it: every one that
    /// holds a key. The pool key does not change.
    pub key_versions: usize,
}

impl KeyStore {
    /// Rewraps every user's key under `new_master` in one transaction (all or nothing) and
    /// makes `new_master` this store's key. Data keys, and so every token encrypted under
    /// them, are unchanged.
    ///
    /// Other users of the file must reopen it with the new master key; until they do, their
    /// reads fail with [`Error::MissingMasterKey`] (or [`Error::WrongMasterKey`]) and their
    /// writes are refused, never made under the old key: every other master key of the store
    /// is retired. The pool key ([`KeyStore::pool_key`]) does not change: its versions are
    /// rewrapped like the users' keys, so pool values stay readable.
    ///
    /// To rotate a store that several processes share without stopping them, give them the
    /// new key first and rewrap in the background instead: see
    /// [`KeyStore::rewrap_master_keys`].
    ///
    /// # Errors
    /// - [`Error::WrongMasterKey`] when this store's master key no longer opens the file
    ///   (another process rotated it) or a row (naming the user);
    /// - [`Error::MissingMasterKey`] when a row is wrapped under a key this store was not
    ///   given;
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
        // Pool key version 1 is derived from the legacy master key: store it (wrapped) while
        // that key is still at hand, so that it survives the rotation.
        inner.pool_versions()?;
        // Batches commit under the write lock and wrap with the master key current then, so
        // requests still queued are wrapped under the new key after the rotation.
        let _write = inner
            .write_lock
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ring = inner.ring();
        let new_id = MasterKeyId::of(&new_master);
        let new_row = MasterKeyRow::new(new_id.to_string(), wrap::make_check(&new_master)?);
        // Other writers (other processes) are kept out from here to the commit.
        let mut rotation = inner.backend.begin_rotation()?;
        let state = rotation.state()?;
        let current = state
            .keyring
            .keys
            .iter()
            .find(|k| k.id == ring.current_id().as_str());
        inner.accept_check(&ring, current)?;
        *lock(&inner.legacy_id) = state
            .keyring
            .legacy_id
            .clone()
            .map(MasterKeyId::from_stored);
        // Progress counts users' rows, which come first.
        let (total, key_versions) = (state.rows.len(), state.versions.len());
        progress(0, total);
        let rewrapped = rewrap_all(inner, &ring, &new_master, &new_id, state)?;
        rotation.commit(&new_row, &rewrapped, &mut |done| {
            progress(done.min(total), total);
        })?;
        *lock(&inner.check) = new_row.check;
        *lock(&inner.legacy_id) = Some(new_id);
        *inner.ring.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(MasterKeyring::new(new_master));
        Ok(RotationReport {
            rewrapped: rewrapped.len() - key_versions,
            key_versions,
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

/// Every stored key rewrapped from the key it names to `new` (data keys unchanged).
fn rewrap_all(
    inner: &Inner,
    ring: &MasterKeyring,
    new: &MasterKey,
    new_id: &MasterKeyId,
    state: RotationState,
) -> Result<Vec<Rewrapped>, Error> {
    let mut out = Vec::with_capacity(state.rows.len() + state.versions.len());
    for row in state.rows {
        let key = inner.unwrap_row(ring, &row)?;
        out.push(Rewrapped::new(
            Slot::User(row.user_id),
            row.wrapped,
            wrap::wrap(new, &key)?,
            new_id.to_string(),
        ));
    }
    for version in state.versions {
        let key = super::master_keys::unwrap_version(ring, &version)?;
        out.push(Rewrapped::new(
            Slot::Version {
                owner: version.owner,
                version: version.version,
            },
            version.wrapped.unwrap_or_default(),
            wrap::wrap(new, &key)?,
            new_id.to_string(),
        ));
    }
    Ok(out)
}
