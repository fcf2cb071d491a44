//! Runtime-agnostic async: blocking key store work runs on a small pool of dedicated threads
//! and completes a [`KeyStoreFuture`], which any executor (tokio, async-std, smol, a plain
//! `block_on`) can await without blocking its own threads.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use super::KeyStore;
use crate::user_id::check_user_id;
use crate::{DataKey, Error, StorageKind};

/// Threads in the pool: enough for group commit to batch several new users per transaction.
const THREADS: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    sender: Mutex<Sender<Job>>,
}

fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut started = 0;
        for i in 0..THREADS {
            let receiver: Arc<Mutex<Receiver<Job>>> = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("keyseal-keystore-{i}"))
                .spawn(move || loop {
                    let job = receiver
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        (started > 0).then(|| Pool {
            sender: Mutex::new(sender),
        })
    })
    .as_ref()
}

struct Slot<T> {
    value: Option<Result<T, Error>>,
    waker: Option<Waker>,
}

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
pub struct KeyStoreFuture<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> core::fmt::Debug for KeyStoreFuture<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyStoreFuture(..)")
    }
}

impl<T> KeyStoreFuture<T> {
    /// A future that is already complete.
    pub(crate) fn ready(value: Result<T, Error>) -> Self {
        KeyStoreFuture {
            slot: Arc::new(Mutex::new(Slot {
                value: Some(value),
                waker: None,
            })),
        }
    }
}

impl<T: Send + 'static> KeyStoreFuture<T> {
    /// Runs `work` on the pool (inline if no thread could be started).
    pub(crate) fn spawn(work: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Self {
        let future = KeyStoreFuture {
            slot: Arc::new(Mutex::new(Slot {
                value: None,
                waker: None,
            })),
        };
        let slot = Arc::clone(&future.slot);
        let job: Job = Box::new(move || {
            let value = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| {
                Err(Error::storage(
                    StorageKind::Other,
                    "the key store call panicked",
                ))
            });
            let waker = {
                let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
                slot.value = Some(value);
                slot.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        let rejected = match pool() {
            Some(pool) => pool
                .sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(job)
                .err()
                .map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = rejected {
            job();
        }
        future
    }
}

impl<T> Future for KeyStoreFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = slot.value.take() {
            return Poll::Ready(value);
        }
        match &mut slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            other => *other = Some(cx.waker().clone()),
        }
        Poll::Pending
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
