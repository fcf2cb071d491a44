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
//! is needed, while that original key is at hand) and rewrapped like the users' keys, so a
//! master rotation never changes it.

use super::backend::{Guard, PoolKeyRow, Retired, Rewrapped, Slot, Written};
use super::keyring::{MasterKeyId, MasterKeyring};
use super::rules::{kept_changing, lock, Inner, MAX_ATTEMPTS};
use super::wrap::{self, KeyBytes};
use super::KeyStore;
use crate::{derive_pool_key, DataKey, Error};

/// What [`KeyStore::rewrap_master_keys`] did.
///
/// # Errors
/// None; it is only a report.
///
/// # Security
/// Holds counts only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapReport {
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
    /// Stored keys (user rows, pool key versions) wrapped under it, rows without an id
    /// counted under the legacy key.
    pub wraps: u64,
}

/// The pool key version in `row`.
pub(super) fn unwrap_pool_row(ring: &MasterKeyring, row: &PoolKeyRow) -> Result<KeyBytes, Error> {
    let id = MasterKeyId::from_stored(row.master_id.clone());
    let name = format!("pool key version {}", row.version);
    wrap::unwrap(ring.need(&id, Some(&name))?, &name, &row.wrapped)
}

impl Inner {
    /// Every pool key version, oldest first; version 1 is stored first if it is not yet.
    ///
    /// # Errors
    /// [`Error::MissingMasterKey`] when version 1 is not stored yet and this process does not
    /// hold the legacy master key it is derived from, or a version is wrapped under a key it
    /// does not hold; [`Error::Storage`].
    pub(super) fn pool_versions(&self) -> Result<Vec<(u32, KeyBytes)>, Error> {
        let ring = self.ring();
        let mut rows = self.backend.pool_keys()?;
        if rows.is_empty() {
            rows.push(self.store_first_pool_key(&ring)?);
        }
        rows.iter()
            .map(|row| Ok((row.version, unwrap_pool_row(&ring, row)?)))
            .collect()
    }

    /// Stores pool key version 1, derived from the legacy master key, wrapped under the current.
    fn store_first_pool_key(&self, ring: &MasterKeyring) -> Result<PoolKeyRow, Error> {
        let legacy = self
            .legacy_id()
            .unwrap_or_else(|| ring.current_id().clone());
        let derived = derive_pool_key(ring.need(&legacy, None)?);
        let mut key: KeyBytes = Box::default();
        key.copy_from_slice(derived.expose_secret());
        let row = PoolKeyRow::new(
            1,
            wrap::wrap(ring.current(), &key)?,
            ring.current_id().to_string(),
        );
        for _ in 0..MAX_ATTEMPTS {
            let check = self.known_check();
            let guard = Guard::new(ring.current_id().as_str(), &check);
            match self.backend.insert_pool_key(guard, &row)? {
                Written::Done(stored) => return Ok(stored),
                Written::CheckChanged(now) => self.accept_check(ring, now.as_ref())?,
            }
        }
        Err(kept_changing())
    }
}

impl KeyStore {
    /// The newest pool key: the key of values shared by every user (`keyseal encrypt --pool`).
    ///
    /// Version 1 is what the Python module derives from the store's original master key
    /// ([`crate::derive_pool_key`]); it is stored, wrapped, the first time it is asked for
    /// (one PBKDF2 of 100 000 iterations), and never changes with a master key rotation.
    ///
    /// # Errors
    /// [`Error::MissingMasterKey`] when the pool key is wrapped under (or, not stored yet,
    /// derived from) a master key this store was not given; [`Error::WrongMasterKey`],
    /// [`Error::Storage`].
    ///
    /// # Security
    /// The pool key decrypts every pool secret; keep it in memory only.
    ///
    /// # Example
    /// ```
    /// use keyseal::{derive_pool_key, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let master = MasterKey::generate()?;
    /// let expected = derive_pool_key(&master);
    /// let store = KeyStore::open(dir.path().join("keys.db"), master)?;
    /// assert_eq!(store.pool_key()?, expected);
    /// store.rotate_master_key(MasterKey::generate()?)?;
    /// assert_eq!(store.pool_key()?, expected, "kept across the rotation");
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn pool_key(&self) -> Result<DataKey, Error> {
        let mut versions = self.inner.pool_versions()?;
        let (_, key) = versions.pop().ok_or_else(kept_changing)?;
        Ok(DataKey::from_array(zeroize::Zeroizing::new(**key)))
    }

    /// The live versions of the pool key, oldest first.
    ///
    /// # Errors
    /// As [`KeyStore::pool_key`].
    ///
    /// # Security
    /// Version numbers only.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// assert_eq!(store.pool_key_versions()?, [1]);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn pool_key_versions(&self) -> Result<Vec<u32>, Error> {
        Ok(self
            .inner
            .pool_versions()?
            .into_iter()
            .map(|(v, _)| v)
            .collect())
    }

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
    /// Rows that cannot be unwrapped are counted in [`RewrapReport::refused`], not errors.
    ///
    /// # Security
    /// Data keys are unchanged: only their wrapping changes.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey, MasterKeyId, MasterKeyring};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("keys.db");
    /// let old = MasterKey::generate()?;
    /// let old_id = MasterKeyId::of(&old);
    /// let old_copy = MasterKey::from_bytes(old.expose_secret())?;
    /// let key = KeyStore::open(&path, old)?.get_or_create_user_key("alice")?;
    /// // The new key becomes current; the old one is kept to unwrap existing rows.
    /// let ring = MasterKeyring::new(MasterKey::generate()?).with_previous(old_copy);
    /// let store = KeyStore::open_keyring(&path, ring, Default::default())?;
    /// let report = store.rewrap_master_keys(1000, |_| {})?;
    /// assert_eq!(report.rewrapped, 2, "alice and the pool key");
    /// store.retire_master_key(&old_id)?;
    /// assert_eq!(store.get_or_create_user_key("alice")?, key);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn rewrap_master_keys(
        &self,
        batch: usize,
        mut progress: impl FnMut(RewrapReport),
    ) -> Result<RewrapReport, Error> {
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
        let mut report = RewrapReport::default();
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
        let mut pool = Vec::new();
        for row in inner.backend.pool_keys()? {
            if row.master_id != current {
                let key = unwrap_pool_row(&ring, &row)?;
                pool.push(Rewrapped::new(
                    Slot::Pool(row.version),
                    row.wrapped,
                    wrap::wrap(ring.current(), &key)?,
                    current.to_owned(),
                ));
            }
        }
        self.store_rewrapped(&ring, &pool, &mut report)?;
        progress(report);
        Ok(report)
    }

    fn store_rewrapped(
        &self,
        ring: &MasterKeyring,
        rows: &[Rewrapped],
        report: &mut RewrapReport,
    ) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let inner = &*self.inner;
        // Serialised with this process's own batches and rotations.
        let _write = lock(&inner.write_lock);
        for _ in 0..MAX_ATTEMPTS {
            let check = inner.known_check();
            let guard = Guard::new(ring.current_id().as_str(), &check);
            match inner.backend.store_rewrapped(guard, rows)? {
                Written::Done(n) => {
                    report.rewrapped += n;
                    report.skipped += rows.len() as u64 - n;
                    return Ok(());
                }
                Written::CheckChanged(now) => inner.accept_check(ring, now.as_ref())?,
            }
        }
        Err(kept_changing())
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
        let _write = lock(&inner.write_lock);
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
