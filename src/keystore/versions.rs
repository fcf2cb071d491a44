//! Versioned data keys: the pool key's and each user's.
//!
//! Version 1 of a user's key is the user's `encryption_keys` row, the key the Python module
//! reads; newer versions (from [`KeyStore::rotate_key`]) live in keyseal's own table, wrapped
//! under the master key like every other key. Version 1 of the pool key is what the Python
//! module derives from the store's original master key. New values are encrypted under the
//! newest active version; old ones still decrypt under theirs.
//!
//! Retirement goes the safe way: [`KeyStore::disable_key_version`] (reversible: decrypting
//! under it fails with [`Error::KeyVersionUnavailable`] and is counted, see
//! [`KeyStore::refused_decrypts`]), then [`KeyStore::destroy_key_version`] (irreversible,
//! refused unless disabled). A user's version 1 can be disabled but not destroyed: it is the
//! Python module's row, and removing it would let a new key be made for the user.
//!
//! A store shared with the Python module (the default, until
//! [`KeyStore::set_shared_with_python`] says otherwise) refuses a new version unless forced:
//! the Python module cannot read values written under a version other than 1.

use std::sync::atomic::Ordering;

use super::backend::{KeyState, StateChange, VersionRow, POOL_OWNER};
use super::master_keys::unwrap_version;
use super::wrap::{self, KeyBytes};
use super::KeyStore;
use crate::user_id::check_user_id;
use crate::{DataKey, Error};

/// Whose data key: one user's, or the pool key shared by all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner<'a> {
    /// A user's key.
    User(&'a str),
    /// The pool key.
    Pool,
}

/// One version of a data key, as [`KeyStore::key_versions`] lists it.
///
/// # Errors
/// None.
///
/// # Security
/// A number and a state: no key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyVersion {
    /// The version, from 1.
    pub version: u32,
    /// Its state.
    pub state: KeyState,
}

fn to_data_key(key: &KeyBytes) -> DataKey {
    DataKey::from_array(zeroize::Zeroizing::new(***key))
}

/// The owner as stored: the (checked) user id, or [`POOL_OWNER`].
fn owner_text(owner: KeyOwner<'_>) -> Result<&str, Error> {
    match owner {
        KeyOwner::User(user) => {
            check_user_id(user)?;
            Ok(user)
        }
        KeyOwner::Pool => Ok(POOL_OWNER),
    }
}

impl KeyStore {
    /// The versions of `owner`'s key and their states, oldest first (none for a user without
    /// a key).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad user id; [`Error::MissingMasterKey`] when the pool
    /// key's version 1 must be stored and cannot be (see [`KeyStore::pool_key`]);
    /// [`Error::Storage`].
    ///
    /// # Security
    /// Numbers and states only.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyOwner, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// store.get_or_create_user_key("alice")?;
    /// assert_eq!(store.key_versions(KeyOwner::User("alice"))?.len(), 1);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn key_versions(&self, owner: KeyOwner<'_>) -> Result<Vec<KeyVersion>, Error> {
        let rows = self.version_rows(owner)?;
        Ok(rows
            .iter()
            .map(|r| KeyVersion {
                version: r.version,
                state: r.state,
            })
            .collect())
    }

    /// Every version row of `owner`, a user's version 1 included (active unless a state row
    /// says otherwise; absent when the user has no key).
    fn version_rows(&self, owner: KeyOwner<'_>) -> Result<Vec<VersionRow>, Error> {
        let inner = &*self.inner;
        match owner {
            KeyOwner::Pool => inner.pool_versions(),
            KeyOwner::User(user) => {
                check_user_id(user)?;
                let mut rows = inner.backend.versions(user)?;
                if rows.first().map_or(true, |r| r.version != 1)
                    && inner.backend.load(user)?.is_some()
                {
                    rows.insert(0, VersionRow::new(user, 1, None, None));
                }
                Ok(rows)
            }
        }
    }

    /// The key of `owner`'s `version`, for decrypting a value made under it.
    ///
    /// # Errors
    /// - [`Error::KeyVersionUnavailable`] when the version is disabled (counted in
    ///   [`KeyStore::refused_decrypts`]), destroyed or missing;
    /// - [`Error::InvalidArgument`] for a bad user id;
    /// - [`Error::MissingMasterKey`], [`Error::WrongMasterKey`], [`Error::CorruptKey`],
    ///   [`Error::Storage`].
    ///
    /// # Security
    /// Never creates a key.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyOwner, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// let v1 = store.get_or_create_user_key("alice")?;
    /// store.set_shared_with_python(false)?;
    /// let v2 = store.rotate_key(KeyOwner::User("alice"), false)?;
    /// assert_eq!(v2, 2);
    /// assert_eq!(store.key_version(KeyOwner::User("alice"), 1)?, v1);
    /// assert_ne!(store.key_version(KeyOwner::User("alice"), 2)?, v1);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn key_version(&self, owner: KeyOwner<'_>, version: u32) -> Result<DataKey, Error> {
        let rows = self.version_rows(owner)?;
        let row =
            rows.iter()
                .find(|r| r.version == version)
                .ok_or(Error::KeyVersionUnavailable {
                    version,
                    state: "missing",
                })?;
        self.key_of(owner, row)
    }

    /// The key in `row`, refused unless active.
    fn key_of(&self, owner: KeyOwner<'_>, row: &VersionRow) -> Result<DataKey, Error> {
        match row.state {
            KeyState::Active => {}
            KeyState::Disabled => {
                self.inner.refused_decrypts.fetch_add(1, Ordering::Relaxed);
                return Err(Error::KeyVersionUnavailable {
                    version: row.version,
                    state: "disabled",
                });
            }
            _ => {
                return Err(Error::KeyVersionUnavailable {
                    version: row.version,
                    state: "destroyed",
                })
            }
        }
        match (owner, row.version) {
            (KeyOwner::User(user), 1) => {
                self.get_user_key(user)?
                    .ok_or(Error::KeyVersionUnavailable {
                        version: 1,
                        state: "missing",
                    })
            }
            _ => Ok(to_data_key(&unwrap_version(&self.inner.ring(), row)?)),
        }
    }

    /// The newest active version of `owner`'s key and its number: what new values are
    /// encrypted under. A user without a key gets version 1 created (as
    /// [`KeyStore::get_or_create_user_key`]).
    ///
    /// # Errors
    /// [`Error::KeyVersionUnavailable`] when every version is disabled or destroyed; as
    /// [`KeyStore::key_version`] otherwise.
    ///
    /// # Security
    /// As [`KeyStore::get_or_create_user_key`].
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyOwner, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// let (version, key) = store.newest_key(KeyOwner::User("alice"))?;
    /// assert_eq!((version, key), (1, store.get_or_create_user_key("alice")?));
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn newest_key(&self, owner: KeyOwner<'_>) -> Result<(u32, DataKey), Error> {
        if let KeyOwner::User(user) = owner {
            if self.inner.backend.versions(user)?.is_empty() {
                // No other version and no state row: version 1, the hot path.
                return Ok((1, self.get_or_create_user_key(user)?));
            }
        }
        let rows = self.version_rows(owner)?;
        let row = rows
            .iter()
            .rev()
            .find(|r| r.state == KeyState::Active)
            .ok_or(Error::KeyVersionUnavailable {
                version: rows.last().map_or(1, |r| r.version),
                state: "disabled",
            })?;
        Ok((row.version, self.key_of(owner, row)?))
    }

    /// The newest active pool key: the key of values shared by every user
    /// (`keyseal encrypt --pool`).
    ///
    /// Version 1 is what the Python module derives from the store's original master key
    /// ([`crate::derive_pool_key`]); it is stored, wrapped, the first time it is asked for
    /// (one PBKDF2 of 100 000 iterations), and never changes with a master key rotation.
    ///
    /// # Errors
    /// [`Error::MissingMasterKey`] when the pool key is wrapped under (or, not stored yet,
    /// derived from) a master key this store was not given; [`Error::KeyVersionUnavailable`]
    /// when every version is disabled; [`Error::WrongMasterKey`], [`Error::Storage`].
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
        self.newest_key(KeyOwner::Pool).map(|(_, key)| key)
    }

    /// The live versions of the pool key (active or disabled), oldest first.
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
            .filter(|r| r.state != KeyState::Destroyed)
            .map(|r| r.version)
            .collect())
    }

    /// Adds a new version of `owner`'s key, which new values are then encrypted under; older
    /// versions still decrypt. Returns its number. On a store shared with the Python module
    /// (see [`KeyStore::set_shared_with_python`]) this needs `force`: the Python module reads
    /// only version 1, so it cannot read values written under the new version.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`]: shared with the Python module and not `force`, or a bad
    ///   user id;
    /// - [`Error::NotFound`]: the user has no key yet;
    /// - [`Error::WrongMasterKey`] when this process's master key was retired;
    /// - [`Error::Randomness`], [`Error::Storage`].
    ///
    /// # Security
    /// The new key comes from the operating system's randomness and is stored wrapped under
    /// the current master key, durably, before it is used.
    ///
    /// # Example
    /// See [`KeyStore::key_version`].
    pub fn rotate_key(&self, owner: KeyOwner<'_>, force: bool) -> Result<u32, Error> {
        let inner = &*self.inner;
        let stored = owner_text(owner)?;
        if self.shared_with_python()? && !force {
            return Err(Error::InvalidArgument {
                what: "this store is shared with the Python module, which reads only key \
                       version 1 and could not read values written under a new version: \
                       force it, or mark the store as no longer shared"
                    .into(),
            });
        }
        match owner {
            KeyOwner::User(user) if inner.backend.load(user)?.is_none() => {
                return Err(Error::NotFound { what: "user key" })
            }
            KeyOwner::Pool => {
                inner.pool_versions()?;
            }
            KeyOwner::User(_) => {}
        }
        let ring = inner.ring();
        let key = wrap::random_key()?;
        let wrapped = wrap::wrap(ring.current(), &key)?;
        let row = inner.write_guarded(&ring, |guard| {
            inner.backend.add_version(guard, stored, 2, &wrapped)
        })?;
        Ok(row.version)
    }

    /// Disables `owner`'s `version`: values under it stop decrypting (each attempt fails with
    /// [`Error::KeyVersionUnavailable`] and is counted) until [`KeyStore::enable_key_version`].
    /// Disabling a disabled version does nothing.
    ///
    /// # Errors
    /// [`Error::KeyVersionUnavailable`] when the version is missing or destroyed;
    /// [`Error::InvalidArgument`] for a bad user id; [`Error::Storage`].
    ///
    /// # Security
    /// Reversible: the key is kept.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyOwner, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// store.get_or_create_user_key("alice")?;
    /// store.disable_key_version(KeyOwner::User("alice"), 1)?;
    /// let err = store.key_version(KeyOwner::User("alice"), 1).unwrap_err();
    /// assert_eq!(err.code(), "key_version_unavailable");
    /// assert_eq!(store.refused_decrypts(), 1);
    /// store.enable_key_version(KeyOwner::User("alice"), 1)?;
    /// store.key_version(KeyOwner::User("alice"), 1)?;
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn disable_key_version(&self, owner: KeyOwner<'_>, version: u32) -> Result<(), Error> {
        self.set_state(owner, version, KeyState::Active, KeyState::Disabled)
    }

    /// Enables a disabled version again. Enabling an active version does nothing.
    ///
    /// # Errors
    /// As [`KeyStore::disable_key_version`].
    ///
    /// # Security
    /// Values under the version decrypt again.
    ///
    /// # Example
    /// See [`KeyStore::disable_key_version`].
    pub fn enable_key_version(&self, owner: KeyOwner<'_>, version: u32) -> Result<(), Error> {
        self.set_state(owner, version, KeyState::Disabled, KeyState::Active)
    }

    /// Destroys a disabled version: its key is deleted and values under it can never be
    /// decrypted again. Destroying a destroyed version does nothing.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when the version is not disabled (disable it first, and
    ///   watch [`KeyStore::refused_decrypts`]), or is a user's version 1 (the Python module's
    ///   row, which can only be disabled);
    /// - [`Error::KeyVersionUnavailable`] when it is missing; [`Error::Storage`].
    ///
    /// # Security
    /// Irreversible. The database may keep the deleted bytes in free pages until they are
    /// reused or the file is vacuumed.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyOwner, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// let v2 = store.rotate_key(KeyOwner::Pool, true)?;
    /// assert!(store.destroy_key_version(KeyOwner::Pool, 1).is_err(), "not disabled");
    /// store.disable_key_version(KeyOwner::Pool, 1)?;
    /// store.destroy_key_version(KeyOwner::Pool, 1)?;
    /// assert_eq!(store.pool_key_versions()?, [v2]);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn destroy_key_version(&self, owner: KeyOwner<'_>, version: u32) -> Result<(), Error> {
        if matches!(owner, KeyOwner::User(_)) && version == 1 {
            return Err(Error::InvalidArgument {
                what: "a user's key version 1 is the Python module's row: it can be disabled, \
                       not destroyed"
                    .into(),
            });
        }
        self.set_state(owner, version, KeyState::Disabled, KeyState::Destroyed)
    }

    fn set_state(
        &self,
        owner: KeyOwner<'_>,
        version: u32,
        from: KeyState,
        to: KeyState,
    ) -> Result<(), Error> {
        let inner = &*self.inner;
        let stored = owner_text(owner)?;
        let rows = self.version_rows(owner)?;
        let Some(row) = rows.iter().find(|r| r.version == version) else {
            return Err(Error::KeyVersionUnavailable {
                version,
                state: "missing",
            });
        };
        if row.wrapped.is_none() && row.owner != POOL_OWNER && version == 1 {
            // A user's version 1 gets a state row the first time its state changes.
            let ring = inner.ring();
            let marker = VersionRow::new(stored, 1, None, None);
            inner.write_guarded(&ring, |guard| inner.backend.insert_version(guard, &marker))?;
        }
        match inner.backend.change_state(stored, version, from, to)? {
            StateChange::Done => Ok(()),
            StateChange::Was(now) if now == to => Ok(()),
            StateChange::Was(KeyState::Destroyed) => Err(Error::KeyVersionUnavailable {
                version,
                state: "destroyed",
            }),
            StateChange::Was(now) => Err(Error::InvalidArgument {
                what: format!(
                    "key version {version} is {}, not {}: {}",
                    now.as_str(),
                    from.as_str(),
                    if to == KeyState::Destroyed {
                        "disable it first"
                    } else {
                        "nothing to change"
                    }
                ),
            }),
            _ => Err(Error::KeyVersionUnavailable {
                version,
                state: "missing",
            }),
        }
    }

    /// How many times this store refused a key version because it was disabled, since it was
    /// opened: the signal to watch before destroying a version.
    ///
    /// # Errors
    /// None.
    ///
    /// # Security
    /// A count.
    ///
    /// # Example
    /// See [`KeyStore::disable_key_version`].
    #[must_use]
    pub fn refused_decrypts(&self) -> u64 {
        self.inner.refused_decrypts.load(Ordering::Relaxed)
    }

    /// Whether the store is shared with the Python module: then [`KeyStore::rotate_key`]
    /// needs `force`. Until set, a store counts as shared.
    ///
    /// # Errors
    /// [`Error::Storage`].
    ///
    /// # Security
    /// A flag.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// assert!(store.shared_with_python()?);
    /// store.set_shared_with_python(false)?;
    /// assert!(!store.shared_with_python()?);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn shared_with_python(&self) -> Result<bool, Error> {
        Ok(self.inner.backend.shared_with_python()?.unwrap_or(true))
    }

    /// Records whether the store is shared with the Python module (see
    /// [`KeyStore::shared_with_python`]).
    ///
    /// # Errors
    /// [`Error::Storage`].
    ///
    /// # Security
    /// Marking a store as not shared lets new key versions be made without `force`: values
    /// under them are unreadable by the Python module.
    ///
    /// # Example
    /// See [`KeyStore::shared_with_python`].
    pub fn set_shared_with_python(&self, shared: bool) -> Result<(), Error> {
        self.inner.backend.set_shared_with_python(shared)
    }
}
