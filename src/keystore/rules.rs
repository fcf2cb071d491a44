//! The key store's rules, above the storage [`Backend`]: which master key a store belongs to,
//! what a read does when a rotation races it, and how a write proves it is made under the
//! store's master key. A backend only stores; every decision is made here, once, for all
//! backends.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::backend::{Backend, CheckState, Opened};
use super::cache::KeyCache;
use super::group_commit::GroupCommit;
use super::wrap;
use crate::{DataKey, Error, MasterKey, StorageKind};

/// How many times a write is tried again when another process changed the store between the
/// read it was decided on and the write: each retry needs a change by someone else, so this
/// bound is reached only under a storm of rotations.
pub(super) const MAX_ATTEMPTS: usize = 16;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `master` is the key of a store in `state`; a check value to store when there is
/// none yet. The one rule for [`super::KeyStore::open_with`] and
/// [`super::KeyStore::check_master_key`].
pub(super) fn verify_master_key(
    master: &MasterKey,
    state: &CheckState,
) -> Result<Option<Vec<u8>>, Error> {
    match state {
        CheckState::Present(check) => {
            if wrap::verify_check(master, check) {
                Ok(None)
            } else {
                Err(Error::WrongMasterKey { user_id: None })
            }
        }
        CheckState::Absent { first_row } => {
            if let Some(row) = first_row {
                wrap::unwrap(master, &row.user_id, &row.wrapped)?;
            }
            wrap::make_check(master).map(Some)
        }
    }
}

/// Verifies `master` against the store and confirms the open (creating the tables and the
/// check value when absent), deciding again when another process changed the store meanwhile.
/// Returns the stored check value.
pub(super) fn open_store(backend: &dyn Backend, master: &MasterKey) -> Result<Vec<u8>, Error> {
    let mut seen = backend.check_state()?;
    for _ in 0..MAX_ATTEMPTS {
        let new_check = verify_master_key(master, &seen)?;
        match backend.confirm_open(&seen, new_check.as_deref())? {
            Opened::Stored(check) => return Ok(check),
            Opened::Changed(now) => seen = now,
        }
    }
    Err(kept_changing())
}

pub(super) fn kept_changing() -> Error {
    Error::storage(
        StorageKind::Busy,
        "the key store kept changing under this write (other processes rotating?); \
                  try again",
    )
}

/// The shared state of a [`super::KeyStore`].
pub(super) struct Inner {
    pub(super) path: PathBuf,
    pub(super) backend: Box<dyn Backend>,
    pub(super) master: RwLock<Arc<MasterKey>>,
    /// The stored check value known to belong to `master`.
    pub(super) check: Mutex<Vec<u8>>,
    pub(super) cache: KeyCache,
    /// Shared while committing a batch (several at once when the backend allows), exclusive
    /// while rotating: the master key cannot change under a commit.
    pub(super) write_lock: RwLock<()>,
    pub(super) group_commit: GroupCommit,
}

impl Inner {
    pub(super) fn master(&self) -> Arc<MasterKey> {
        Arc::clone(&self.master.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The check value this store's writes must find: the known one.
    pub(super) fn known_check(&self) -> Vec<u8> {
        lock(&self.check).clone()
    }

    /// A write found `stored` instead of the known check value: accepts it (and remembers it)
    /// when it belongs to `master` too, else refuses, so that no row is ever written under a
    /// master key that is not the store's.
    pub(super) fn accept_check(
        &self,
        master: &MasterKey,
        stored: Option<&[u8]>,
    ) -> Result<(), Error> {
        let mut known = lock(&self.check);
        match stored {
            Some(s) if s == known.as_slice() => Ok(()),
            Some(s) if wrap::verify_check(master, s) => {
                s.clone_into(&mut known);
                Ok(())
            }
            Some(_) => Err(Error::WrongMasterKey { user_id: None }),
            None => Err(Error::storage(
                StorageKind::Corrupt,
                "the master key check value (keyseal_keystore_meta) is missing; \
                          reopen the key store to restore it",
            )),
        }
    }

    /// An existing user's key from the database (and into the cache).
    pub(super) fn load(&self, user_id: &str) -> Result<Option<DataKey>, Error> {
        let master = self.master();
        let Some(blob) = self.backend.load(user_id)? else {
            return Ok(None);
        };
        match wrap::unwrap(&master, user_id, &blob) {
            Ok(key) => Ok(Some(self.cache.insert(user_id, key))),
            Err(Error::WrongMasterKey { .. }) => {
                // Maybe a rotation in this process committed between reading the master key
                // and the row: wait for it to finish (it holds the write lock), then retry.
                let _write = self
                    .write_lock
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                let master = self.master();
                let Some(blob) = self.backend.load(user_id)? else {
                    return Ok(None);
                };
                let key = wrap::unwrap(&master, user_id, &blob)?;
                Ok(Some(self.cache.insert(user_id, key)))
            }
            Err(e) => Err(e),
        }
    }
}
