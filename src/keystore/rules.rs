//! The key store's rules, above the storage [`Backend`]: which master keys a store belongs to,
//! which key unwraps a row, what a read does when a rotation races it, and how a write proves
//! it is made under a master key the store still accepts. A backend only stores; every
//! decision is made here, once, for all backends.
//!
//! # Which master keys open a store
//! A process opens a store when one of the keys of its keyring is the store's: it verifies
//! the legacy check value (of the key that wraps rows without an id, the Python module's), or
//! the check value stored for its id, not retired. Its current key is then added to the
//! store's keys if new: holding one of the store's keys is what allows adding another (the
//! step that starts a rolling rotation). A wrong key alone is refused as before, and a key the
//! store retired is refused too, so no row is ever written under it.
//!
//! # Which key unwraps a row
//! The one the row names. A row without an id (written by the Python module) is tried with the
//! legacy key first, then with the other keys held: the Python module holds one key, and
//! during a rotation it may already hold the new one. AES-GCM authenticates, so a key that is
//! not the row's never yields a wrong data key.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::backend::{Backend, CheckState, Keyring, MasterKeyRow, Opened, StoredRow};
use super::cache::KeyCache;
use super::group_commit::GroupCommit;
use super::keyring::{MasterKeyId, MasterKeyring};
use super::wrap::{self, KeyBytes};
use crate::{DataKey, Error, MasterKey, StorageKind};

/// How many times a write is tried again when another process changed the store between the
/// read it was decided on and the write: each retry needs a change by someone else, so this
/// bound is reached only under a storm of rotations.
pub(super) const MAX_ATTEMPTS: usize = 16;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What opening decided: the key that verified the legacy state, and the legacy check value to
/// store when there is none yet.
struct Verified<'a> {
    legacy: Option<(&'a MasterKeyId, &'a MasterKey)>,
    new_check: Option<Vec<u8>>,
}

/// Whether a key of `ring` is the store's, given its legacy `state` and its `keys`. The one
/// rule for [`super::KeyStore::open_keyring`] and [`super::KeyStore::check_master_key`].
fn verify_ring<'a>(
    ring: &'a MasterKeyring,
    state: &CheckState,
    keys: &Keyring,
) -> Result<Verified<'a>, Error> {
    let registered = ring.iter().any(|(id, key)| {
        keys.keys
            .iter()
            .any(|k| k.id == id.as_str() && !k.retired && wrap::verify_check(key, &k.check))
    });
    match state {
        CheckState::Present(check) => {
            let legacy = ring
                .iter()
                .find(|(_, key)| wrap::verify_check(key, check))
                .map(|(id, key)| (id, key));
            if legacy.is_none() && !registered {
                return Err(Error::WrongMasterKey { user_id: None });
            }
            Ok(Verified {
                legacy,
                new_check: None,
            })
        }
        CheckState::Absent { first_row: None } => {
            let (id, key) = ring.iter().next().map(|(i, k)| (i, k)).ok_or_else(no_key)?;
            Ok(Verified {
                legacy: Some((id, key)),
                new_check: Some(wrap::make_check(key)?),
            })
        }
        CheckState::Absent {
            first_row: Some(row),
        } => {
            let mut first_error = None;
            for (id, key) in ring.iter() {
                match wrap::unwrap(key, &row.user_id, &row.wrapped) {
                    Ok(_) => {
                        return Ok(Verified {
                            legacy: Some((id, key)),
                            new_check: Some(wrap::make_check(key)?),
                        })
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Err(first_error.unwrap_or_else(no_key))
        }
    }
}

fn no_key() -> Error {
    Error::WrongMasterKey { user_id: None }
}

/// Checks `ring` against a store without writing (for dry runs).
pub(super) fn check_ring(
    ring: &MasterKeyring,
    state: &CheckState,
    keys: &Keyring,
) -> Result<(), Error> {
    verify_ring(ring, state, keys).map(drop)
}

/// What an open established: the check value stored for the current key, and the legacy key.
pub(super) struct OpenedStore {
    pub(super) check: Vec<u8>,
    pub(super) legacy_id: Option<MasterKeyId>,
}

/// Verifies `ring` against the store and confirms the open (creating the tables and the
/// legacy check value when absent), deciding again when another process changed the store
/// meanwhile; then records the keys that proved to be the store's and the current one.
pub(super) fn open_store(
    backend: &dyn Backend,
    ring: &MasterKeyring,
) -> Result<OpenedStore, Error> {
    let keys = backend.keyring()?;
    let mut seen = backend.check_state()?;
    let mut confirmed = None;
    for _ in 0..MAX_ATTEMPTS {
        let verified = verify_ring(ring, &seen, &keys)?;
        match backend.confirm_open(&seen, verified.new_check.as_deref())? {
            Opened::Stored(check) => {
                confirmed = Some((verified.legacy, check));
                break;
            }
            Opened::Changed(now) => seen = now,
        }
    }
    let (legacy, legacy_check) = confirmed.ok_or_else(kept_changing)?;
    if let Some((id, _)) = legacy {
        // The legacy check value proves this key: record it under its id.
        let row = MasterKeyRow::new(id.to_string(), legacy_check);
        backend.add_master_key(&row, true)?;
    }
    let current = ring.current();
    let row = MasterKeyRow::new(ring.current_id().to_string(), wrap::make_check(current)?);
    let stored = backend.add_master_key(&row, false)?;
    if stored.retired || !wrap::verify_check(current, &stored.check) {
        return Err(Error::WrongMasterKey { user_id: None });
    }
    let legacy_id = backend.keyring()?.legacy_id.map(MasterKeyId::from_stored);
    Ok(OpenedStore {
        check: stored.check,
        legacy_id,
    })
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
    pub(super) ring: RwLock<Arc<MasterKeyring>>,
    /// The check value stored for the current master key.
    pub(super) check: Mutex<Vec<u8>>,
    /// The master key of rows without an id.
    pub(super) legacy_id: Mutex<Option<MasterKeyId>>,
    pub(super) cache: KeyCache,
    /// Decryptions refused because their key version is disabled.
    pub(super) refused_decrypts: AtomicU64,
    /// Shared while committing a batch (several at once when the backend allows), exclusive
    /// while rotating: the master key cannot change under a commit.
    pub(super) write_lock: RwLock<()>,
    pub(super) group_commit: GroupCommit,
}

impl Inner {
    pub(super) fn ring(&self) -> Arc<MasterKeyring> {
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The check value this store's writes must find: the known one.
    pub(super) fn known_check(&self) -> Vec<u8> {
        lock(&self.check).clone()
    }

    pub(super) fn legacy_id(&self) -> Option<MasterKeyId> {
        lock(&self.legacy_id).clone()
    }

    /// A write found the current key's stored row `stored` instead of the known check value:
    /// accepts it (and remembers it) when it belongs to the current key and is not retired,
    /// else refuses, so that no row is ever written under a master key the store retired.
    pub(super) fn accept_check(
        &self,
        ring: &MasterKeyring,
        stored: Option<&MasterKeyRow>,
    ) -> Result<(), Error> {
        let mut known = lock(&self.check);
        match stored {
            Some(s) if !s.retired && wrap::verify_check(ring.current(), &s.check) => {
                s.check.clone_into(&mut known);
                Ok(())
            }
            Some(_) => Err(Error::WrongMasterKey { user_id: None }),
            None => Err(Error::storage(
                StorageKind::Corrupt,
                "the current master key's check value (keyseal_master_keys) is missing; \
                          reopen the key store to restore it",
            )),
        }
    }

    /// The data key in `row`, unwrapped with the master key the row names (see the module
    /// docs for rows without one).
    pub(super) fn unwrap_row(
        &self,
        ring: &MasterKeyring,
        row: &StoredRow,
    ) -> Result<KeyBytes, Error> {
        let user = row.user_id.as_str();
        if let Some(id) = &row.master_id {
            let id = MasterKeyId::from_stored(id.clone());
            return wrap::unwrap(ring.need(&id, Some(user))?, user, &row.wrapped);
        }
        let legacy = self.legacy_id();
        let legacy_key = legacy.as_ref().and_then(|id| ring.get(id));
        let others = ring
            .iter()
            .filter(|(id, _)| Some(id) != legacy.as_ref())
            .map(|(_, k)| k);
        let mut last = None;
        for key in legacy_key.into_iter().chain(others) {
            match wrap::unwrap(key, user, &row.wrapped) {
                Ok(k) => return Ok(k),
                Err(e @ Error::CorruptKey { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        match (legacy, legacy_key) {
            (Some(id), None) => Err(Error::MissingMasterKey {
                id: id.to_string(),
                user_id: Some(user.to_owned()),
            }),
            _ => Err(last.unwrap_or(Error::WrongMasterKey {
                user_id: Some(user.to_owned()),
            })),
        }
    }

    /// An existing user's key from the database (and into the cache).
    pub(super) fn load(&self, user_id: &str) -> Result<Option<DataKey>, Error> {
        let ring = self.ring();
        let Some(row) = self.backend.load(user_id)? else {
            return Ok(None);
        };
        match self.unwrap_row(&ring, &row) {
            Ok(key) => Ok(Some(self.cache.insert(user_id, key))),
            Err(Error::WrongMasterKey { .. } | Error::MissingMasterKey { .. }) => {
                // Maybe a rotation in this process committed between reading the keyring and
                // the row: wait for it to finish (it holds the write lock), then retry.
                let _write = self
                    .write_lock
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                let ring = self.ring();
                let Some(row) = self.backend.load(user_id)? else {
                    return Ok(None);
                };
                let key = self.unwrap_row(&ring, &row)?;
                Ok(Some(self.cache.insert(user_id, key)))
            }
            Err(e) => Err(e),
        }
    }
}
