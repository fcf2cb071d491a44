//! Async [`ApiKeys`]: the same operations as futures that any executor can await. Work that
//! needs storage or bcrypt runs on the crate's small pool of dedicated threads (shared with
//! the key store); a verification answered from the cache completes at once, on the
//! caller's thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::listing::{KeyPage, ListFilter};
use super::scopes::Requirement;
use super::types::{CreatedKey, KeyInfo, NewKey, Verification};
use super::update::KeyUpdate;
use super::ApiKeys;
use crate::blocking::Completion;
use crate::Error;

/// The result of an [`ApiKeys`] call made from async code, e.g. [`ApiKeys::verify_async`].
///
/// Awaiting it never blocks the executor: storage and bcrypt work runs on a dedicated
/// thread, and a verification the cache can answer is complete when returned. It is
/// `Send + 'static`, so it can be spawned. Dropping it does not cancel the work (a key being
/// created is still stored; its key is then lost, and it can be listed and deleted).
///
/// # Errors
/// Those of the blocking call it stands for, and [`Error::Storage`] if that call panicked.
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
/// use keyseal::{ApiKeys, ApiKeysConfig, NewKey, Requirement};
/// use std::sync::Arc;
/// # let dir = tempfile::tempdir().unwrap();
/// let keys = Arc::new(ApiKeys::open_with(dir.path().join("keys.db"), ApiKeysConfig::default().bcrypt_cost(4))?);
/// let made = block_on(keys.create_async(NewKey::new("user-42", "CI").scope("read")))?;
/// assert!(block_on(keys.verify_async(&made.key))?.is_valid());
/// let admin = Requirement::all(["admin"]);
/// let v = block_on(keys.verify_with_async(&made.key, &admin))?;
/// assert_eq!(v.refusal().unwrap().reason(), "forbidden");
/// # Ok::<(), keyseal::Error>(())
/// ```
#[must_use = "futures do nothing unless awaited (the work itself runs regardless)"]
pub struct ApiKeysFuture<T>(State<T>);

/// A cached answer is held inline (no allocation, no lock); other work hands its result over
/// through a [`Completion`].
enum State<T> {
    Ready(Option<Result<T, Error>>),
    Running(Completion<T>),
}

// Nothing is pinned structurally: the inline value is moved out, the completion is `Unpin`.
impl<T> Unpin for State<T> {}

impl<T> core::fmt::Debug for ApiKeysFuture<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ApiKeysFuture(..)")
    }
}

impl<T> Future for ApiKeysFuture<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            State::Ready(value) => Poll::Ready(value.take().unwrap_or_else(|| {
                Err(Error::InvalidArgument {
                    what: "an ApiKeysFuture was polled after it completed".into(),
                })
            })),
            State::Running(completion) => Pin::new(completion).poll(cx),
        }
    }
}

impl<T: Send + 'static> ApiKeysFuture<T> {
    fn run(
        keys: &Arc<ApiKeys>,
        work: impl FnOnce(&ApiKeys) -> Result<T, Error> + Send + 'static,
    ) -> Self {
        let keys = Arc::clone(keys);
        ApiKeysFuture(State::Running(Completion::spawn(
            "the api keys call panicked",
            move || work(&keys),
        )))
    }
}

impl<T> ApiKeysFuture<T> {
    /// Whether the answer was there at once (no thread involved).
    #[doc(hidden)]
    pub fn is_ready(&self) -> bool {
        match &self.0 {
            State::Ready(value) => value.is_some(),
            State::Running(completion) => completion.is_ready(),
        }
    }
}

impl ApiKeys {
    /// [`ApiKeys::verify`] for async code. A key in the cache is answered at once, on this
    /// thread; one that needs storage or bcrypt is verified on a dedicated thread. The key
    /// is copied for that thread and wiped when done.
    ///
    /// See [`ApiKeysFuture`] for an example.
    ///
    /// # Errors
    /// As [`ApiKeys::verify`].
    pub fn verify_async(self: &Arc<Self>, key: &str) -> ApiKeysFuture<Verification> {
        self.verify_with_async(key, &Requirement::none())
    }

    /// [`ApiKeys::verify_with`] for async code, as [`ApiKeys::verify_async`].
    ///
    /// See [`ApiKeysFuture`] for an example.
    ///
    /// # Errors
    /// As [`ApiKeys::verify_with`].
    pub fn verify_with_async(
        self: &Arc<Self>,
        key: &str,
        required: &Requirement,
    ) -> ApiKeysFuture<Verification> {
        if let Some(answer) = self.verify_from_memory(key, required) {
            return ApiKeysFuture(State::Ready(Some(answer)));
        }
        let key = zeroize::Zeroizing::new(key.to_owned());
        let required = required.clone();
        ApiKeysFuture::run(self, move |keys| keys.verify_with(&key, &required))
    }

    /// [`ApiKeys::create`] for async code (the bcrypt runs on a dedicated thread).
    ///
    /// See [`ApiKeysFuture`] for an example.
    ///
    /// # Errors
    /// As [`ApiKeys::create`].
    pub fn create_async(self: &Arc<Self>, new: NewKey) -> ApiKeysFuture<CreatedKey> {
        ApiKeysFuture::run(self, move |keys| keys.create(&new))
    }

    /// [`ApiKeys::revoke`] for async code.
    ///
    /// # Errors
    /// As [`ApiKeys::revoke`].
    pub fn revoke_async(self: &Arc<Self>, user_id: &str, key_id: &str) -> ApiKeysFuture<KeyInfo> {
        let (user_id, key_id) = (user_id.to_owned(), key_id.to_owned());
        ApiKeysFuture::run(self, move |keys| keys.revoke(&user_id, &key_id))
    }

    /// [`ApiKeys::rotate`] for async code.
    ///
    /// # Errors
    /// As [`ApiKeys::rotate`].
    pub fn rotate_async(
        self: &Arc<Self>,
        user_id: &str,
        key_id: &str,
        grace: std::time::Duration,
    ) -> ApiKeysFuture<CreatedKey> {
        let (user_id, key_id) = (user_id.to_owned(), key_id.to_owned());
        ApiKeysFuture::run(self, move |keys| keys.rotate(&user_id, &key_id, grace))
    }

    /// [`ApiKeys::update`] for async code.
    ///
    /// # Errors
    /// As [`ApiKeys::update`].
    pub fn update_async(
        self: &Arc<Self>,
        user_id: &str,
        key_id: &str,
        update: KeyUpdate,
    ) -> ApiKeysFuture<KeyInfo> {
        let (user_id, key_id) = (user_id.to_owned(), key_id.to_owned());
        ApiKeysFuture::run(self, move |keys| keys.update(&user_id, &key_id, &update))
    }

    /// [`ApiKeys::disable`] for async code.
    ///
    /// # Errors
    /// As [`ApiKeys::disable`].
    pub fn disable_async(self: &Arc<Self>, user_id: &str, key_id: &str) -> ApiKeysFuture<KeyInfo> {
        let (user_id, key_id) = (user_id.to_owned(), key_id.to_owned());
        ApiKeysFuture::run(self, move |keys| keys.disable(&user_id, &key_id))
    }

    /// [`ApiKeys::enable`] for async code.
    ///
    /// # Errors
    /// As [`ApiKeys::enable`].
    pub fn enable_async(self: &Arc<Self>, user_id: &str, key_id: &str) -> ApiKeysFuture<KeyInfo> {
        let (user_id, key_id) = (user_id.to_owned(), key_id.to_owned());
        ApiKeysFuture::run(self, move |keys| keys.enable(&user_id, &key_id))
    }

    /// [`ApiKeys::delete`] for async code.
    ///
    /// # Errors
    /// As [`ApiKeys::delete`].
    pub fn delete_async(self: &Arc<Self>, user_id: &str, key_id: &str) -> ApiKeysFuture<KeyInfo> {
        let (user_id, key_id) = (user_id.to_owned(), key_id.to_owned());
        ApiKeysFuture::run(self, move |keys| keys.delete(&user_id, &key_id))
    }

    /// [`ApiKeys::info`] for async code.
    ///
    /// # Errors
    /// As [`ApiKeys::info`].
    pub fn info_async(self: &Arc<Self>, user_id: &str, key_id: &str) -> ApiKeysFuture<KeyInfo> {
        let (user_id, key_id) = (user_id.to_owned(), key_id.to_owned());
        ApiKeysFuture::run(self, move |keys| keys.info(&user_id, &key_id))
    }

    /// [`ApiKeys::list_page`] for async code.
    ///
    /// # Errors
    /// As [`ApiKeys::list_page`].
    pub fn list_page_async(self: &Arc<Self>, filter: ListFilter) -> ApiKeysFuture<KeyPage> {
        ApiKeysFuture::run(self, move |keys| keys.list_page(&filter))
    }
}
