//! Rolling master key rotation and the pool key's versions.
//!
//! A fleet rotates its master key without stopping: every process is given the new key as a
//! previous one, then as the current one (new rows are wrapped under it), then
//! [`KeyStore::rewrap_master_keys`] rewraps the stored rows in batches, each its own durable
//! transaction (resumable: a row already under the current key is never touched again), and
//! finally [`KeyStore::retire_master_key`] retires the old key, refused while any stored key
//! still needs it.
//!
//! The pool key's version 1 is what the Python module derives from the store's original master
//! key ([`crate::derive_pool_key`]). It is stored wrapped under a master key (the first time it
//! is needed, while that original key is at hand) and rewrapped like the users' keys and every
//! other key version, so a master rotation never changes it.

use super::backend::{Guard, Retired, Rewrapped, Slot, VersionRow, Written, POOL_OWNER};
use super::keyring::{MasterKeyId, MasterKeyring};
use super::rules::{kept_changing, lock, Inner, MAX_ATTEMPTS};
use super::wrap::{self, KeyBytes};
use super::KeyStore;
use crate::{derive_pool_key, Error};

/// What [`KeyStore::rewrap_master_keys`] did.
///
/// # Errors
/// None; it is only a report.
///
/// # Security
/// Holds counts only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MasterRewrapReport {
    /// Stored keys rewrapped under the current master key.
    pub rewrapped: u64,
    /// Rows that changed while being rewrapped (another process rewrapped them first); a
    /// later run sees them again if they still need it.
    pub skipped: u64,
    /// Rows left as they were because they do not unwrap with any key held (a missing master
    /// key, a damaged row); [`KeyStore::retire_master_key`] stays refused while they remain.
    pub refused: u64,
}

/// One master key the store knows, for an operator deciding what to retire.
///
/// # Errors
/// None.
///
/// # Security
/// Ids and counts only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::struct_excessive_bools)] // Independent facts, each shown to an operator.
pub struct MasterKeyStatus {
    /// The key's id.
    pub id: MasterKeyId,
    /// Retired: no process may write under it.
    pub retired: bool,
    /// Whether this process holds it, and whether it is this process's current key.
    pub held: bool,
    /// This process's current key.
    pub current: bool,
    /// The key of rows without an id (those the Python module writes).
    pub legacy: bool,
    /// Stored keys (user rows, key versions) wrapped under it, rows without an id counted
    /// under the legacy key.
    pub wraps: u64,
}

/// The key held by version `row`; [`Error::KeyVersionUnavailable`] when it holds none.
pub(super) fn unwrap_version(ring: &MasterKeyring, row: &VersionRow) -> Result<KeyBytes, Error> {
    let (Some(wrapped), Some(master_id)) = (&row.wrapped, &row.master_id) else {
        return Err(Error::KeyVersionUnavailable {
            version: row.version,
            state: "destroyed",
        });
    };
    let id = MasterKeyId::from_stored(master_id.clone());
    let name = if row.owner == POOL_OWNER {
        format!("pool key version {}", row.version)
    } else {
        format!("{} (key version {})", row.owner, row.version)
    };
    wrap::unwrap(ring.need(&id, Some(&name))?, &name, wrapped)
}

impl Inner {
    /// Every pool key version, oldest first; version 1 is stored first if it is not yet.
    ///
    /// # Errors
    /// [`Error::MissingMasterKey`] when version 1 is not stored yet and this process does not
    /// hold the legacy master key it is derived from; [`Error::Storage`].
    pub(super) fn pool_versions(&self) -> Result<Vec<VersionRow>, Error> {
        let mut rows = self.backend.versions(POOL_OWNER)?;
        if rows.first().map_or(true, |r| r.version != 1) {
            rows.insert(0, self.store_first_pool_key(&self.ring())?);
        }
        Ok(rows)
    }

    /// Stores pool key version 1, derived from the legacy master key, wrapped under the current.
    fn store_first_pool_key(&self, ring: &MasterKeyring) -> Result<VersionRow, Error> {
        let legacy = self
            .legacy_id()
            .unwrap_or_else(|| ring.current_id().clone());
        let derived = derive_pool_key(ring.need(&legacy, None)?);
        let mut key: KeyBytes = Box::default();
        key.copy_from_slice(derived.expose_secret());
        let wrapped = wrap::wrap(ring.current(), &key)?;
        let row = VersionRow::new(POOL_OWNER, 1, Some(wrapped), None);
        self.write_guarded(ring, |guard| self.backend.insert_version(guard, &row))
    }

    /// Runs a write guarded by the current master key, accepting a changed check value of the
    /// same key and refusing a retired one.
    pub(super) fn write_guarded<T>(
        &self,
        ring: &MasterKeyring,
        mut write: impl FnMut(Guard<'_>) -> Result<Written<T>, Error>,
    ) -> Result<T, Error> {
        for _ in 0..MAX_ATTEMPTS {
            let check = self.known_check();
            match write(Guard::new(ring.current_id().as_str(), &check))? {
                Written::Done(done) => return Ok(done),
                Written::CheckChanged(now) => self.accept_check(ring, now.as_ref())?,
            }
        }
        Err(kept_changing())
    }
}

impl KeyStore {
    /// Rewraps, under this store's current master key, every stored key wrapped under another
    /// one: `batch` rows per durable transaction, calling `progress(report_so_far)` after each.
    /// Safe while other processes use the store; interrupted (even by `kill -9`), it resumes
    /// where it stopped when run again, since a row already under the current key is skipped.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when `batch` is 0;
    /// - [`Error::WrongMasterKey`] when the current key was retired by another process;
    /// - [`Error::Storage`]; batches committed before it stay committed.
    ///
    /// Rows that cannot be unwrapped are counted in [`MasterRewrapReport::refused`], not errors.
    ///
    /// # Security
    /// Data keys are unchanged: only their wrapping changes.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, KeyStoreOptions, MasterKey, MasterKeyId, MasterKeyring};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("keys.db");
    /// let old = MasterKey::generate()?;
    /// let old_id = MasterKeyId::of(&old);
    /// let old_copy = MasterKey::from_bytes(old.expose_secret())?;
    /// let key = KeyStore::open(&path, old)?.get_or_create_user_key("alice")?;
    /// // The new key becomes current; the old one is kept to unwrap existing rows.
    /// let ring = MasterKeyring::new(MasterKey::generate()?).with_previous(old_copy);
    /// let store = KeyStore::open_keyring(&path, ring, KeyStoreOptions::default())?;
    /// let report = store.rewrap_master_keys(1000, |_| {})?;
    /// assert_eq!(report.rewrapped, 1, "alice");
    /// store.retire_master_key(&old_id)?;
    /// assert_eq!(store.get_or_create_user_key("alice")?, key);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn rewrap_master_keys(
        &self,
        batch: usize,
        mut progress: impl FnMut(MasterRewrapReport),
    ) -> Result<MasterRewrapReport, Error> {
        if batch == 0 {
            return Err(Error::InvalidArgument {
                what: "the rewrap batch size must be at least 1".into(),
            });
        }
        let inner = &*self.inner;
        let ring = inner.ring();
        let current = ring.current_id().as_str();
        // Pool key version 1 must exist before its legacy key can go.
        inner.pool_versions()?;
        let mut report = MasterRewrapReport::default();
        let mut after: Option<String> = None;
        loop {
            let rows = inner.backend.stale_rows(current, after.as_deref(), batch)?;
            let Some(last) = rows.last() else { break };
            after = Some(last.user_id.clone());
            let mut rewrapped = Vec::with_capacity(rows.len());
            for row in rows {
                match inner.unwrap_row(&ring, &row) {
                    Ok(key) => rewrapped.push(Rewrapped::new(
                        Slot::User(row.user_id),
                        row.wrapped,
                        wrap::wrap(ring.current(), &key)?,
                        current.to_owned(),
                    )),
                    Err(_) => report.refused += 1,
                }
            }
            self.store_rewrapped(&ring, &rewrapped, &mut report)?;
            progress(report);
        }
        let mut after: Option<(String, u32)> = None;
        loop {
            let cursor = after.as_ref().map(|(o, v)| (o.as_str(), *v));
            let versions = inner.backend.stale_versions(current, cursor, batch)?;
            let Some(last) = versions.last() else { break };
            after = Some((last.owner.clone(), last.version));
            let mut rewrapped = Vec::with_capacity(versions.len());
            for row in versions {
                match (unwrap_version(&ring, &row), row.wrapped) {
                    (Ok(key), Some(previous)) => rewrapped.push(Rewrapped::new(
                        Slot::Version {
                            owner: row.owner,
                            version: row.version,
                        },
                        previous,
                        wrap::wrap(ring.current(), &key)?,
                        current.to_owned(),
                    )),
                    _ => report.refused += 1,
                }
            }
            self.store_rewrapped(&ring, &rewrapped, &mut report)?;
            progress(report);
        }
        Ok(report)
    }

    fn store_rewrapped(
        &self,
        ring: &MasterKeyring,
        rows: &[Rewrapped],
        report: &mut MasterRewrapReport,
    ) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let inner = &*self.inner;
        // Like a commit: beside this process's own batches, never during its rotations.
        let _write = inner
            .write_lock
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = inner.write_guarded(ring, |guard| inner.backend.store_rewrapped(guard, rows))?;
        report.rewrapped += n;
        report.skipped += rows.len() as u64 - n;
        Ok(())
    }

    /// Retires master key `id` from the store: from now on no process may open the store with
    /// it alone or write under it. Refused while any stored key still needs it (run
    /// [`KeyStore::rewrap_master_keys`] first). When it is the key of rows without an id (the
    /// Python module's), this process's current key takes that role: give the Python module
    /// the current key before retiring.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when `id` is this store's current key, or stored keys
    ///   still need it (the message says how many);
    /// - [`Error::NotFound`] when the store does not know `id`;
    /// - [`Error::MissingMasterKey`] when pool key version 1 is not stored yet and must be
    ///   derived from `id`, which this process does not hold;
    /// - [`Error::Storage`].
    ///
    /// # Security
    /// Irreversible for writes: a retired key is refused by every process from then on.
    ///
    /// # Example
    /// See [`KeyStore::rewrap_master_keys`].
    pub fn retire_master_key(&self, id: &MasterKeyId) -> Result<(), Error> {
        let inner = &*self.inner;
        let ring = inner.ring();
        if id == ring.current_id() {
            return Err(Error::InvalidArgument {
                what: format!(
                    "master key {id} is this process's current key; make another current first"
                ),
            });
        }
        inner.pool_versions()?;
        let _write = inner
            .write_lock
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let legacy = inner
            .backend
            .keyring()?
            .legacy_id
            .map(MasterKeyId::from_stored);
        let is_legacy = legacy.as_ref() == Some(id);
        let current = inner
            .backend
            .keyring()?
            .keys
            .into_iter()
            .find(|k| k.id == ring.current_id().as_str());
        inner.accept_check(&ring, current.as_ref())?;
        let new_legacy = current.filter(|_| is_legacy);
        match inner
            .backend
            .retire_master_key(id.as_str(), is_legacy, new_legacy.as_ref())?
        {
            Retired::Done => {
                if is_legacy {
                    *lock(&inner.legacy_id) = Some(ring.current_id().clone());
                }
                Ok(())
            }
            Retired::InUse(n) => Err(Error::InvalidArgument {
                what: format!(
                    "master key {id} still wraps {n} stored keys: rewrap them first \
                     (`keyseal rewrap-keys`)"
                ),
            }),
            Retired::Unknown => Err(Error::NotFound { what: "master key" }),
        }
    }

    /// The master keys this store knows, with what each wraps.
    ///
    /// # Errors
    /// [`Error::Storage`].
    ///
    /// # Security
    /// Ids and counts only.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// store.get_or_create_user_key("alice")?;
    /// let keys = store.master_keys()?;
    /// assert_eq!(keys.len(), 1);
    /// assert!(keys[0].current && keys[0].legacy && keys[0].wraps == 1);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn master_keys(&self) -> Result<Vec<MasterKeyStatus>, Error> {
        let inner = &*self.inner;
        let ring = inner.ring();
        let keyring = inner.backend.keyring()?;
        let usage = inner.backend.usage()?;
        Ok(keyring
            .keys
            .into_iter()
            .map(|k| {
                let legacy = keyring.legacy_id.as_deref() == Some(k.id.as_str());
                let wraps = usage
                    .iter()
                    .filter(|(id, _)| match id {
                        Some(id) => *id == k.id,
                        None => legacy,
                    })
                    .map(|(_, n)| n)
                    .sum();
                let id = MasterKeyId::from_stored(k.id);
                MasterKeyStatus {
                    held: ring.get(&id).is_some(),
                    current: &id == ring.current_id(),
                    retired: k.retired,
                    legacy,
                    wraps,
                    id,
                }
            })
            .collect())
    }
}
