//! The key store: one 32-byte data key per user, wrapped by the master key in `SQLite`, in the
//! same table and format as the Python module (`encryption_keys`, CONTRACT §1).
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

mod backend;
mod blocking;
mod cache;
mod peek;
mod sqlite;
mod wrap;

use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use backend::{Backend, NewRow};
use cache::KeyCache;
use wrap::KeyBytes;

pub use blocking::KeyStoreFuture;
// The migration reads its table through the same trace-free connection in dry runs.
pub(crate) use sqlite::open_read_only;

use crate::{derive_pool_key, DataKey, Error, MasterKey};

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
pub const MAX_USER_ID_LEN: usize = 1024;

/// Tuning for [`KeyStore::open_with`].
///
/// # Example
/// ```
/// use std::time::Duration;
/// use keyseal::{KeyStore, KeyStoreOptions, MasterKey};
/// # let dir = tempfile::tempdir().unwrap();
/// let options = KeyStoreOptions::default()
///     .busy_timeout(Duration::from_secs(10))
///     .cache_capacity(10_000);
/// let store = KeyStore::open_with(dir.path().join("keys.db"), MasterKey::generate()?, &options)?;
/// # Ok::<(), keyseal::Error>(())
/// ```
///
/// # Errors
/// None: the options are checked by [`KeyStore::open_with`].
///
/// # Security
/// A larger cache keeps more unwrapped data keys in memory (each zeroized when evicted); a
/// cache of 0 keeps none, at the cost of one database read and one AES-GCM per lookup.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyStoreOptions {
    /// How long to wait for another connection or process that holds the write lock before
    /// failing with [`Error::Storage`]. Default 5 s; longer than one day counts as one day.
    pub busy_timeout: Duration,
    /// How many unwrapped data keys to keep in memory (about; 0 disables the cache).
    /// Default 100 000.
    pub cache_capacity: usize,
}

/// The longest busy timeout used; longer ones are cut to this.
const MAX_BUSY_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

impl Default for KeyStoreOptions {
    fn default() -> Self {
        KeyStoreOptions {
            busy_timeout: Duration::from_secs(5),
            cache_capacity: 100_000,
        }
    }
}

impl KeyStoreOptions {
    /// Sets [`KeyStoreOptions::busy_timeout`].
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`KeyStoreOptions::cache_capacity`].
    #[must_use]
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }
}

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

/// Where the group commit leader puts a request's result.
type Slot = Arc<Mutex<Option<Result<KeyBytes, Error>>>>;

/// A request waiting for the next group commit.
struct Pending {
    user_id: String,
    key: KeyBytes,
    done: Slot,
}

#[derive(Default)]
struct Group {
    queue: Vec<Pending>,
    leader: bool,
}

/// Gives up group-commit leadership (even if the commit panicked) and wakes the waiters.
struct Leadership<'a>(&'a Inner);

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        lock(&self.0.group).leader = false;
        self.0.group_done.notify_all();
    }
}

struct Inner {
    path: PathBuf,
    backend: Box<dyn Backend>,
    master: RwLock<Arc<MasterKey>>,
    /// The stored check value known to belong to `master`.
    check: Mutex<Vec<u8>>,
    cache: KeyCache,
    /// Held while committing a batch or rotating.
    write_lock: Mutex<()>,
    /// Group commit: requests waiting for the next batch, and whether a leader is committing.
    group: Mutex<Group>,
    /// Signalled after each batch (results are in) and when leadership is free.
    group_done: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn validate(user_id: &str) -> Result<(), Error> {
    if user_id.is_empty() {
        return Err(Error::InvalidArgument {
            what: "user id must not be empty".into(),
        });
    }
    if user_id.len() > MAX_USER_ID_LEN {
        return Err(Error::InvalidArgument {
            what: format!("user id longer than {MAX_USER_ID_LEN} bytes"),
        });
    }
    if user_id.contains('\0') {
        return Err(Error::InvalidArgument {
            what: "user id must not contain NUL characters".into(),
        });
    }
    Ok(())
}

impl Inner {
    fn master(&self) -> Arc<MasterKey> {
        Arc::clone(&self.master.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Refuses to write unless the stored check value belongs to `master`.
    fn guard(&self, master: &MasterKey, stored: Option<&[u8]>) -> Result<(), Error> {
        let mut known = lock(&self.check);
        match stored {
            Some(s) if s == known.as_slice() => Ok(()),
            Some(s) if wrap::verify_check(master, s) => {
                s.clone_into(&mut known);
                Ok(())
            }
            Some(_) => Err(Error::WrongMasterKey { user_id: None }),
            None => Err(Error::Storage {
                message: "the master key check value (keyseal_keystore_meta) is missing; \
                          reopen the key store to restore it"
                    .into(),
            }),
        }
    }

    /// An existing user's key from the database (and into the cache).
    fn load(&self, user_id: &str) -> Result<Option<DataKey>, Error> {
        let master = self.master();
        let Some(blob) = self.backend.load(user_id)? else {
            return Ok(None);
        };
        match wrap::unwrap(&master, user_id, &blob) {
            Ok(key) => Ok(Some(self.cache.insert(user_id, key))),
            Err(Error::WrongMasterKey { .. }) => {
                // Maybe a rotation in this process committed between reading the master key
                // and the row: wait for it to finish (it holds the write lock), then retry.
                let _write = lock(&self.write_lock);
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

    /// Creates (or, if another caller won, reads) the keys of `user_ids` through group commit.
    fn create(&self, user_ids: &[&str]) -> Result<Vec<DataKey>, Error> {
        let mut slots: Vec<Slot> = Vec::with_capacity(user_ids.len());
        let mut pending = Vec::with_capacity(user_ids.len());
        for user_id in user_ids {
            let slot: Slot = Arc::default();
            pending.push(Pending {
                user_id: (*user_id).to_owned(),
                key: wrap::random_key()?,
                done: Arc::clone(&slot),
            });
            slots.push(slot);
        }
        // Group commit: one waiting caller at a time leads, committing everything queued (its
        // own requests and those that arrived during the previous commit) in one durable
        // transaction; the others sleep until their results are in.
        let mut group = lock(&self.group);
        group.queue.append(&mut pending);
        while !slots.iter().all(|slot| lock(slot).is_some()) {
            if group.leader {
                group = self
                    .group_done
                    .wait(group)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            group.leader = true;
            let batch = mem::take(&mut group.queue);
            drop(group);
            let lost = batch.is_empty();
            {
                let _leadership = Leadership(self);
                let _write = lock(&self.write_lock);
                self.commit_batch(batch);
            }
            if lost {
                // Only after a panicking leader dropped our requests.
                break;
            }
            group = lock(&self.group);
        }
        user_ids
            .iter()
            .zip(slots)
            .map(|(user_id, slot)| {
                let key = lock(&slot).take().ok_or_else(lost_request)??;
                Ok(self.cache.insert(user_id, key))
            })
            .collect()
    }

    /// Commits a batch of requests in one durable transaction and hands each its result.
    /// Call with the write lock held.
    fn commit_batch(&self, batch: Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        // The master key cannot change while the write lock is held.
        let master = self.master();
        let created_at = wrap::now_iso8601();
        let mut rows = Vec::with_capacity(batch.len());
        for p in &batch {
            match wrap::wrap(&master, &p.key) {
                Ok(wrapped) => rows.push(NewRow {
                    user_id: &p.user_id,
                    wrapped,
                    created_at: &created_at,
                }),
                Err(e) => {
                    for p in &batch {
                        *lock(&p.done) = Some(Err(e.clone()));
                    }
                    return;
                }
            }
        }
        let stored = self
            .backend
            .insert_batch(&rows, &mut |check| self.guard(&master, check));
        let wrapped: Vec<Vec<u8>> = rows.into_iter().map(|r| r.wrapped).collect();
        match stored {
            Ok(stored) => {
                for ((p, mine), stored) in batch.into_iter().zip(wrapped).zip(stored) {
                    let result = if stored == mine {
                        Ok(p.key)
                    } else {
                        // Another caller (thread or process) created this user first.
                        wrap::unwrap(&master, &p.user_id, &stored)
                    };
                    *lock(&p.done) = Some(result);
                }
            }
            Err(e) => {
                for p in batch {
                    *lock(&p.done) = Some(Err(e.clone()));
                }
            }
        }
    }
}

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
///   associated data, exactly as the Python module stores it (CONTRACT §1), in
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
    ///
    /// # Errors
    /// - [`Error::WrongMasterKey`] when `master` does not open the store (`user_id` is `None`
    ///   when the check value refused it, or names the row it was tried on for a file written
    ///   by the Python module); nothing is written then;
    /// - [`Error::CorruptKey`] when that row's blob has the wrong length;
    /// - [`Error::InvalidArgument`] for a database that would live only in memory: an empty
    ///   path, `:memory:`, or a `file:` URI naming `:memory:` or nothing or with `mode=memory`;
    /// - [`Error::Storage`] when the file cannot be created, opened or locked in time.
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
        Self::open_with(path, master, &KeyStoreOptions::default())
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
        options: &KeyStoreOptions,
    ) -> Result<KeyStore, Error> {
        let path = path.as_ref();
        // SQLite takes the timeout in milliseconds as an i32: cap it at one day.
        let busy_timeout = options.busy_timeout.min(MAX_BUSY_TIMEOUT);
        let backend = sqlite::SqliteBackend::open(path, busy_timeout)?;
        let check = backend.initialize(&mut |state| peek::decide(&master, state))?;
        Ok(KeyStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                backend: Box::new(backend),
                master: RwLock::new(Arc::new(master)),
                check: Mutex::new(check),
                cache: KeyCache::new(options.cache_capacity),
                write_lock: Mutex::new(()),
                group: Mutex::new(Group::default()),
                group_done: Condvar::new(),
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
        validate(user_id)?;
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
            validate(user_id)?;
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
        validate(user_id)?;
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

    /// The pool key derived from the current master key ([`crate::derive_pool_key`]).
    ///
    /// Runs PBKDF2 with 100 000 iterations (tens of milliseconds): call it once and keep the
    /// key. It changes when the master key is rotated.
    ///
    /// # Errors
    /// None.
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
    /// assert_eq!(store.pool_key(), expected);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn pool_key(&self) -> DataKey {
        derive_pool_key(&self.inner.master())
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
        let _write = lock(&inner.write_lock);
        let old = inner.master();
        let new_check = wrap::make_check(&new_master)?;
        let rewrapped = inner.backend.rewrap_all(
            &mut |check| inner.guard(&old, check),
            &mut |user_id, blob| {
                let key = wrap::unwrap(&old, user_id, blob)?;
                wrap::wrap(&new_master, &key)
            },
            &new_check,
            &mut progress,
        )?;
        *lock(&inner.check) = new_check;
        *inner.master.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new_master);
        Ok(RotationReport { rewrapped })
    }

    /// [`KeyStore::get_or_create_user_key`] for async code: a cached key is returned at once,
    /// anything that needs the database runs on a dedicated thread, so the executor is never
    /// blocked. Works on any runtime.
    ///
    /// # Errors
    /// As [`KeyStore::get_or_create_user_key`].
    ///
    /// # Security
    /// As [`KeyStore::get_or_create_user_key`].
    ///
    /// # Example
    /// See [`KeyStoreFuture`].
    pub fn get_or_create_user_key_async(&self, user_id: &str) -> KeyStoreFuture<DataKey> {
        if let Err(e) = validate(user_id) {
            return KeyStoreFuture::ready(Err(e));
        }
        if let Some(key) = self.inner.cache.get(user_id) {
            return KeyStoreFuture::ready(Ok(key));
        }
        let store = self.clone();
        let user_id = user_id.to_owned();
        KeyStoreFuture::spawn(move || store.get_or_create_user_key(&user_id))
    }

    /// [`KeyStore::get_user_key`] for async code (see
    /// [`KeyStore::get_or_create_user_key_async`]).
    ///
    /// # Errors
    /// As [`KeyStore::get_user_key`].
    ///
    /// # Security
    /// As [`KeyStore::get_user_key`].
    ///
    /// # Example
    /// See [`KeyStoreFuture`].
    pub fn get_user_key_async(&self, user_id: &str) -> KeyStoreFuture<Option<DataKey>> {
        if let Err(e) = validate(user_id) {
            return KeyStoreFuture::ready(Err(e));
        }
        if let Some(key) = self.inner.cache.get(user_id) {
            return KeyStoreFuture::ready(Ok(Some(key)));
        }
        let store = self.clone();
        let user_id = user_id.to_owned();
        KeyStoreFuture::spawn(move || store.get_user_key(&user_id))
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

fn lost_request() -> Error {
    Error::Storage {
        message: "internal error: group commit lost a request".into(),
    }
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

    #[test]
    fn user_ids_are_validated() {
        assert!(validate("a").is_ok());
        assert!(validate("").is_err());
        assert!(validate("a\0b").is_err());
        assert!(validate(&"x".repeat(MAX_USER_ID_LEN)).is_ok());
        assert!(validate(&"x".repeat(MAX_USER_ID_LEN + 1)).is_err());
    }
}
