//! The key store: one 32-byte data key per user, wrapped by the master key in `SQLite`, in the
//! same table and format as the Python module (`encryption_keys`).
//!
//! # Security
//! - Each data key is stored as `nonce || AES-256-GCM(master, key) || tag` (no AAD, as Python).
//! - A check value (a public label sealed with AES-GCM under the master key, in the extra table
//!   `keyseal_keystore_meta`) records which master key wraps the rows, so a wrong master key is
//!   refused at [`KeyStore::open`] before any row is read or written; every write transaction
//!   checks it again, so a process holding a stale master key (after another process rotated)
//!   can never add rows wrapped under the wrong key. A file written by the Python module has no
//!   check value: the master key is verified against its oldest row, then the check is added.
//! - Keys are committed with `synchronous=FULL` (WAL) before they are returned.
//! - Unwrapped keys are cached in memory (zeroized on eviction and drop) so that lookups of
//!   existing users cost no database access and no AES-GCM; see [`KeyStoreOptions`].
//!
//! # Layout
//! This folder holds no storage code: [`KeyStore`] and its rules (`rules.rs`: which master
//! key a store belongs to; `group_commit.rs`: shared durable commits and who wins a race;
//! `rotation.rs`: all or nothing) drive a [`backend::Backend`], which only stores. The
//! `SQLite` backend is `crate::sqlite::keystore`; a new backend implements the same trait and
//! joins the conformance tests (`tests/conformance/keystore.rs`).
//!
//! # Example
//! ```
//! use keyseal::{decrypt, encrypt, KeyStore, MasterKey};
//! # let dir = tempfile::tempdir().unwrap();
//! let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
//! let key = store.get_or_create_user_key("alice@example.com")?;
//! let token = encrypt("sk-live-123", &key)?;
//! let again = store.get_or_create_user_key("alice@example.com")?;
//! assert_eq!(decrypt(&token, &again)?, "sk-live-123");
//! # Ok::<(), keyseal::Error>(())
//! ```

pub mod backend;
mod blocking;
mod cache;
mod copy;
mod group_commit;
mod keyring;
mod master_key_check;
mod master_keys;
mod options;
mod rotation;
mod rules;
mod values;
mod versions;
mod wrap;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use cache::KeyCache;
use group_commit::{lost_request, GroupCommit};
use rules::Inner;

pub use backend::KeyState;
pub use blocking::KeyStoreFuture;
pub use copy::CopyReport;
pub use keyring::{MasterKeyId, MasterKeyring};
pub use master_keys::{MasterKeyStatus, MasterRewrapReport};
pub use options::KeyStoreOptions;
pub use rotation::RotationReport;
pub use values::Decrypted;
pub use versions::{KeyOwner, KeyVersion};
pub(crate) use wrap::{now_iso8601, WRAPPED_LEN};

use crate::sqlite::keystore::SqliteBackend;
use crate::user_id::check_user_id;
use crate::{DataKey, Error, MasterKey};

/// Longest accepted user id, in bytes (UTF-8).
///
/// # Errors
/// Longer ids are refused with [`Error::InvalidArgument`] by every [`KeyStore`] method, before
/// anything is read or written; so are empty ids and ids containing NUL.
///
/// # Security
/// Bounds the memory and row size an untrusted id can cost.
///
/// # Example
/// ```
/// use keyseal::{KeyStore, MasterKey, MAX_USER_ID_LEN};
/// # let dir = tempfile::tempdir().unwrap();
/// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
/// let too_long = "x".repeat(MAX_USER_ID_LEN + 1);
/// assert_eq!(store.get_or_create_user_key(&too_long).unwrap_err().code(), "invalid_argument");
/// # Ok::<(), keyseal::Error>(())
/// ```
pub const MAX_USER_ID_LEN: usize = crate::user_id::MAX_USER_ID_LEN;

/// Per-user data keys, wrapped by a master key and stored in `SQLite`.
///
/// `KeyStore` is `Send + Sync` and a cheap [`Clone`] (an `Arc`): share one per process and
/// database file. Several processes (and the Python module) may use the same file at once.
///
/// # Errors
/// See each method; storage failures are [`Error::Storage`], a master key that does not open
/// the store is [`Error::WrongMasterKey`], a damaged row is [`Error::CorruptKey`].
///
/// # Security
/// - Each data key is stored as `nonce[12] || AES-256-GCM(master, key) || tag[16]` with no
///   associated data, exactly as the Python module stores it, in
///   `encryption_keys`.
/// - A check value (a fixed public label sealed with AES-GCM under the master key, random
///   nonce, its own AAD) in the extra table `keyseal_keystore_meta` records which master key
///   wraps the rows. It does not weaken the wrap: AES-GCM is secure against known plaintexts,
///   and the check costs one nonce of the 2^32 allowed per key. A wrong master key is refused
///   at [`KeyStore::open`] before any row is read or written, and every write transaction
///   checks it again, so a process still holding an old master key (after another process
///   rotated) can never add rows under the wrong key. A file written by the Python module has
///   no check value: the key is verified against its oldest row, then the check is added.
/// - New keys are committed with `synchronous=FULL` (WAL) before they are returned.
/// - Nothing is ever overwritten except by [`KeyStore::rotate_master_key`], atomically; an
///   unreadable row is an error, never a reason to mint another key.
/// - Unwrapped keys are cached in memory (each in its own heap box, zeroized on eviction and
///   drop) so that lookups of existing users cost no database access and no AES-GCM; see
///   [`KeyStoreOptions`]. Rotation never changes a data key, so the cache stays valid.
///
/// # Example
/// ```
/// use keyseal::{KeyStore, MasterKey};
/// # let dir = tempfile::tempdir().unwrap();
/// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
/// let a = store.get_or_create_user_key("alice")?;
/// let b = store.clone().get_or_create_user_key("alice")?;
/// assert_eq!(a, b);
/// assert_eq!(store.user_count()?, 1);
/// # Ok::<(), keyseal::Error>(())
/// ```
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Opens the key store at `path` with the default [`KeyStoreOptions`], creating the file,
    /// its folder and the schema if needed, and verifies that `master` is the store's key.
    /// A `path` whose text starts with `postgres://` or `postgresql://` is a PostgreSQL URL
    /// (feature `postgres`; see the README's PostgreSQL section): the schema is migrated if
    /// the role may, and `path()` shows the URL without its password.
    ///
    /// # Errors
    /// - [`Error::WrongMasterKey`] when `master` does not open the store (`user_id` is `None`
    ///   when the check value refused it, or names the row it was tried on for a file written
    ///   by the Python module); nothing is written then;
    /// - [`Error::CorruptKey`] when that row's blob has the wrong length;
    /// - [`Error::InvalidArgument`] for a database that would live only in memory: an empty
    ///   path, `:memory:`, or a `file:` URI naming `:memory:` or nothing or with `mode=memory`;
    /// - [`Error::InvalidArgument`] for a PostgreSQL URL that cannot be read, or in a build
    ///   without the `postgres` feature;
    /// - [`Error::Storage`] when the file cannot be created, opened or locked in time, or the
    ///   PostgreSQL server cannot be reached, refuses the login, or its schema cannot be used
    ///   (kind `schema`).
    ///
    /// # Security
    /// The master key is kept (zeroized on drop) for the life of the store. A new file is
    /// created with mode 0600 (owner only; SQLite's `-wal` and `-shm` files follow it); an
    /// existing file that others can read is opened with a warning (through `tracing`).
    ///
    /// # Example
    /// ```
    /// use keyseal::{Error, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("nested/keys.db");
    /// let master = MasterKey::generate()?;
    /// let copy = MasterKey::from_bytes(master.expose_secret())?;
    /// KeyStore::open(&path, master)?.get_or_create_user_key("alice")?;
    /// assert!(matches!(
    ///     KeyStore::open(&path, MasterKey::generate()?),
    ///     Err(Error::WrongMasterKey { .. })
    /// ));
    /// KeyStore::open(&path, copy)?;
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, master: MasterKey) -> Result<KeyStore, Error> {
        Self::open_with(path, master, KeyStoreOptions::default())
    }

    /// [`KeyStore::open`] with explicit [`KeyStoreOptions`].
    ///
    /// # Errors
    /// As [`KeyStore::open`].
    ///
    /// # Security
    /// As [`KeyStore::open`]; see [`KeyStoreOptions`] for the cache.
    ///
    /// # Example
    /// See [`KeyStoreOptions`].
    pub fn open_with(
        path: impl AsRef<Path>,
        master: MasterKey,
        options: impl Into<KeyStoreOptions>,
    ) -> Result<KeyStore, Error> {
        Self::open_keyring(path, MasterKeyring::new(master), options)
    }

    /// [`KeyStore::open_with`] with several master keys: rows are unwrapped with the key each
    /// names, new and rewrapped rows are wrapped under the ring's current key.
    ///
    /// The store opens when one key of the ring is the store's (see
    /// [`KeyStore::open`]); the ring's current key is then recorded as one of the store's
    /// keys if it is new. That is the first step of a rolling master key rotation: see
    /// [`KeyStore::rewrap_master_keys`].
    ///
    /// # Errors
    /// As [`KeyStore::open`]; [`Error::WrongMasterKey`] also when the current key was
    /// retired from the store.
    ///
    /// # Security
    /// Holding one of a store's master keys is what allows adding another: keep every master
    /// key as secret as the first.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, KeyStoreOptions, MasterKey, MasterKeyring};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("keys.db");
    /// let old = MasterKey::generate()?;
    /// let old_copy = MasterKey::from_bytes(old.expose_secret())?;
    /// let alice = KeyStore::open(&path, old)?.get_or_create_user_key("alice")?;
    /// let ring = MasterKeyring::new(MasterKey::generate()?).with_previous(old_copy);
    /// let store = KeyStore::open_keyring(&path, ring, KeyStoreOptions::default())?;
    /// assert_eq!(store.get_or_create_user_key("alice")?, alice);
    /// store.get_or_create_user_key("bob")?; // wrapped under the new key
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn open_keyring(
        path: impl AsRef<Path>,
        ring: MasterKeyring,
        options: impl Into<KeyStoreOptions>,
    ) -> Result<KeyStore, Error> {
        let path = path.as_ref();
        let options = options.into();
        let (backend, path) = open_backend(path, options.busy_timeout)?;
        let opened = rules::open_store(&*backend, &ring)?;
        Ok(KeyStore {
            inner: Arc::new(Inner {
                path,
                backend,
                ring: RwLock::new(Arc::new(ring)),
                check: Mutex::new(opened.check),
                legacy_id: Mutex::new(opened.legacy_id),
                refused_decrypts: AtomicU64::new(0),
                cache: KeyCache::new(options.cache_capacity),
                write_lock: RwLock::new(()),
                group_commit: GroupCommit::default(),
            }),
        })
    }

    /// The user's data key, created, wrapped and durably stored the first time.
    ///
    /// Any number of threads and processes asking for the same new user at once all get the
    /// same key (one row). Concurrent creators share durable commits (group commit); each call
    /// returns only after the commit holding its key.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`]: empty user id, longer than [`MAX_USER_ID_LEN`] bytes, or
    ///   containing NUL;
    /// - [`Error::WrongMasterKey`] naming the user when the stored key does not open with the
    ///   master key (or with `user_id: None` when another process rotated the master key);
    ///   nothing is written;
    /// - [`Error::CorruptKey`]: the stored blob has the wrong length;
    /// - [`Error::Randomness`], [`Error::Storage`].
    ///
    /// # Security
    /// Never returns a new key for a user that has one: an unreadable row is an error, not a
    /// reason to mint another key.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// let key = store.get_or_create_user_key("alice")?;
    /// assert_eq!(store.get_or_create_user_key("alice")?, key);
    /// assert_eq!(store.get_or_create_user_key("").unwrap_err().code(), "invalid_argument");
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn get_or_create_user_key(&self, user_id: &str) -> Result<DataKey, Error> {
        check_user_id(user_id)?;
        if let Some(key) = self.inner.cache.get(user_id) {
            return Ok(key);
        }
        if let Some(key) = self.inner.load(user_id)? {
            return Ok(key);
        }
        let mut created = self.inner.create(&[user_id])?;
        created.pop().ok_or_else(lost_request)
    }

    /// The keys of many users at once, in order, creating the missing ones in one durable
    /// transaction (for imports and migrations).
    ///
    /// # Errors
    /// As [`KeyStore::get_or_create_user_key`], for the first user that fails; all ids are
    /// validated before anything is written.
    ///
    /// # Security
    /// As [`KeyStore::get_or_create_user_key`].
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// let keys = store.get_or_create_user_keys(&["a", "b", "a"])?;
    /// assert_eq!(keys[0], keys[2]);
    /// assert_eq!(store.user_count()?, 2);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn get_or_create_user_keys(&self, user_ids: &[&str]) -> Result<Vec<DataKey>, Error> {
        for user_id in user_ids {
            check_user_id(user_id)?;
        }
        let mut found: Vec<Option<DataKey>> = Vec::with_capacity(user_ids.len());
        let mut missing = Vec::new();
        for user_id in user_ids {
            let key = match self.inner.cache.get(user_id) {
                Some(key) => Some(key),
                None => self.inner.load(user_id)?,
            };
            if key.is_none() {
                missing.push(*user_id);
            }
            found.push(key);
        }
        let mut created = self.inner.create(&missing)?.into_iter();
        found
            .into_iter()
            .map(|key| key.or_else(|| created.next()).ok_or_else(lost_request))
            .collect()
    }

    /// The user's data key if the user has one; never creates.
    ///
    /// # Errors
    /// As [`KeyStore::get_or_create_user_key`] (without creation).
    ///
    /// # Security
    /// As [`KeyStore::get_or_create_user_key`].
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// assert!(store.get_user_key("bob")?.is_none());
    /// let key = store.get_or_create_user_key("bob")?;
    /// assert_eq!(store.get_user_key("bob")?, Some(key));
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn get_user_key(&self, user_id: &str) -> Result<Option<DataKey>, Error> {
        check_user_id(user_id)?;
        if let Some(key) = self.inner.cache.get(user_id) {
            return Ok(Some(key));
        }
        self.inner.load(user_id)
    }

    /// The number of users with a stored key.
    ///
    /// # Errors
    /// [`Error::Storage`].
    ///
    /// # Security
    /// Reads counts only.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// assert_eq!(store.user_count()?, 0);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn user_count(&self) -> Result<u64, Error> {
        self.inner.backend.count()
    }

    /// The database file.
    ///
    /// # Errors
    /// None.
    ///
    /// # Security
    /// A path only.
    ///
    /// # Example
    /// ```
    /// use keyseal::{KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("keys.db");
    /// let store = KeyStore::open(&path, MasterKey::generate()?)?;
    /// assert_eq!(store.path(), path);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The backend, for crate-internal tools that move whole stores (copying).
    pub(crate) fn backend(&self) -> &dyn backend::Backend {
        &*self.inner.backend
    }
}

/// The backend `location` selects, and the location as the store shows it (a PostgreSQL
/// URL without its password).
pub(crate) fn open_backend(
    location: &Path,
    busy_timeout: std::time::Duration,
) -> Result<(Box<dyn backend::Backend>, PathBuf), Error> {
    if crate::db_path::is_postgres(location) {
        #[cfg(feature = "postgres")]
        {
            let url = location.to_str().unwrap_or_default();
            let backend = crate::postgres::keystore::PgKeyStore::open(url, busy_timeout)?;
            let shown = PathBuf::from(backend.display());
            return Ok((Box::new(backend), shown));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(Error::postgres_not_built());
    }
    let backend = SqliteBackend::open(location, busy_timeout)?;
    Ok((Box::new(backend), location.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn store_and_future_are_send_sync() {
        assert_send_sync::<KeyStore>();
        assert_send_sync::<KeyStoreFuture<DataKey>>();
    }
}
