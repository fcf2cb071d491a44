//! Runtime-agnostic async: blocking key store work runs on a small pool of dedicated threads
//! and completes a [`KeyStoreFuture`], which any executor (tokio, async-std, smol, a plain
//! `block_on`) can await without blocking its own threads.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::KeyStore;
use crate::blocking::Completion;
use crate::user_id::check_user_id;
use crate::{DataKey, Error};

/// The result of a key store call made from async code, e.g.
/// [`KeyStore::get_or_create_user_key_async`](super::KeyStore::get_or_create_user_key_async).
///
/// The work runs on a dedicated thread (one of a small pool shared by all stores); awaiting
/// this future never blocks the executor. It is `Send + 'static`, so it can be spawned.
/// Dropping it does not cancel the work (a key being created is still stored).
///
/// # Errors
/// Those of the blocking call it stands for, and [`Error::Storage`] if that call panicked.
///
/// # Security
/// The result (a [`crate::DataKey`]) is handed over through memory owned by this future and
/// zeroized with it.
///
/// # Example
/// ```
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     struct W(std::thread::Thread);
/// #     impl std::task::Wake for W { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = std::sync::Arc::new(W(std::thread::current())).into();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::park(); }
/// # }
/// use keyseal::{KeyStore, MasterKey};
/// # let dir = tempfile::tempdir().unwrap();
/// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
/// let key = block_on(store.get_or_create_user_key_async("alice"))?;
/// assert_eq!(key, store.get_or_create_user_key("alice")?);
/// # Ok::<(), keyseal::Error>(())
/// ```
#[must_use = "futures do nothing unless awaited (the work itself runs regardless)"]
pub struct KeyStoreFuture<T>(Completion<T>);

impl<T> core::fmt::Debug for KeyStoreFuture<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyStoreFuture(..)")
    }
}

impl<T> KeyStoreFuture<T> {
    /// A future that is already complete.
    pub(crate) fn ready(value: Result<T, Error>) -> Self {
        KeyStoreFuture(Completion::ready(value))
    }
}

impl<T: Send + 'static> KeyStoreFuture<T> {
    /// Runs `work` on the shared pool.
    pub(crate) fn spawn(work: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Self {
        KeyStoreFuture(Completion::spawn("the key store call panicked", work))
    }
}

impl<T> Future for KeyStoreFuture<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl KeyStore {
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
        if let Err(e) = check_user_id(user_id) {
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
        if let Err(e) = check_user_id(user_id) {
            return KeyStoreFuture::ready(Err(e));
        }
        if let Some(key) = self.inner.cache.get(user_id) {
            return KeyStoreFuture::ready(Ok(Some(key)));
        }
        let store = self.clone();
        let user_id = user_id.to_owned();
        KeyStoreFuture::spawn(move || store.get_user_key(&user_id))
    }
}
