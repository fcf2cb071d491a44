//! Tuning of a key store.

use std::time::Duration;

#[cfg(doc)]
use super::KeyStore;
#[cfg(doc)]
use crate::Error;

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
/// let store = KeyStore::open_with(dir.path().join("keys.db"), MasterKey::generate()?, options)?;
/// # Ok::<(), keyseal::Error>(())
/// ```
///
/// A builder passed by value; [`KeyStore::open_with`] also takes `&KeyStoreOptions`, cloned.
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

impl From<&KeyStoreOptions> for KeyStoreOptions {
    fn from(options: &KeyStoreOptions) -> Self {
        options.clone()
    }
}
