//! Runtime-agnostic async for blocking storage work, shared by the key store and API keys:
//! the work runs on a small pool of dedicated threads and completes a [`Completion`], which
//! any executor (tokio, async-std, smol, a plain `block_on`) can await without blocking its
//! own threads. Each public future type wraps one.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::{Error, StorageKind};

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
                .name(format!("keyseal-blocking-{i}"))
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

/// A result that blocking work running on the pool hands over, or one ready at once.
pub(crate) struct Completion<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Completion<T> {
    /// Already complete: no thread involved.
    #[cfg_attr(not(feature = "keystore"), allow(dead_code))]
    pub(crate) fn ready(value: Result<T, Error>) -> Self {
        Completion {
            slot: Arc::new(Mutex::new(Slot {
                value: Some(value),
                waker: None,
            })),
        }
    }
}

impl<T: Send + 'static> Completion<T> {
    /// Runs `work` on the pool (inline if no thread could be started); a panic becomes an
    /// [`Error::Storage`] naming `what`.
    pub(crate) fn spawn(
        what: &'static str,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Self {
        let completion = Completion {
            slot: Arc::new(Mutex::new(Slot {
                value: None,
                waker: None,
            })),
        };
        let slot = Arc::clone(&completion.slot);
        let job: Job = Box::new(move || {
            let value = catch_unwind(AssertUnwindSafe(work))
                .unwrap_or_else(|_| Err(Error::storage(StorageKind::Other, what)));
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
        completion
    }
}

impl<T> Future for Completion<T> {
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

impl<T> Completion<T> {
    /// Whether the value is there (before it was taken by a poll).
    #[cfg_attr(not(feature = "issuance"), allow(dead_code))]
    pub(crate) fn is_ready(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .value
            .is_some()
    }
}
