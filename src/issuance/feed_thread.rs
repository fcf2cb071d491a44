//! The change-feed thread: one per [`ApiKeys`](super::ApiKeys), reading other processes'
//! changes on every interval and as soon as the store notifies a commit, so that no
//! verification ever waits for the feed (or for a database that stopped answering).

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::backend::Wake;
use super::Core;
use crate::{Error, StorageKind};

/// Shortest wait between two reads of the feed (a notification storm reads it at most this
/// often).
const MIN_GAP: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Signal {
    state: Mutex<(bool, bool)>, // (woken, stopped)
    cv: Condvar,
}

impl Signal {
    fn wake(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).0 = true;
        self.cv.notify_one();
    }

    fn stop(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.cv.notify_one();
    }

    /// Waits up to `timeout` for a wake-up; `None` once stopped, else whether it was woken.
    fn wait(&self, timeout: Duration) -> Option<bool> {
        let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |(woken, stopped)| !*woken && !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        if guard.1 {
            return None;
        }
        Some(std::mem::take(&mut guard.0))
    }
}

/// Owned by the manager; dropping it stops the thread (which holds the manager's state only
/// weakly, and only for the length of one read).
pub(crate) struct FeedThread {
    signal: Arc<Signal>,
}

impl FeedThread {
    /// Starts the thread for `core`, and the backend's wake-ups (see
    /// [`super::backend::Backend::watch`]).
    ///
    /// # Errors
    /// [`Error::Storage`] (kind `unavailable`) when the thread cannot be started.
    pub(crate) fn start(core: &Arc<Core>) -> Result<Self, Error> {
        let signal = Arc::new(Signal::default());
        let weak_core: Weak<Core> = Arc::downgrade(core);
        let interval = core.config.change_check_interval;
        // A bit under the interval, so the freshness a verification asks for is kept by this
        // thread and not by the verification itself.
        let period = if interval.is_zero() {
            Duration::from_millis(250)
        } else {
            interval
                .saturating_sub(interval / 4)
                .clamp(MIN_GAP, Duration::from_secs(3600))
        };
        let for_thread = signal.clone();
        std::thread::Builder::new()
            .name("keyseal-feed".into())
            .spawn(move || {
                while let Some(woken) = for_thread.wait(period) {
                    let Some(core) = weak_core.upgrade() else {
                        return;
                    };
                    core.feed_tick(woken);
                    drop(core);
                    std::thread::sleep(MIN_GAP);
                }
            })
            .map_err(|e| {
                Error::storage(
                    StorageKind::Unavailable,
                    format!("api keys: cannot start the change-feed thread: {e}"),
                )
            })?;
        let weak_signal = Arc::downgrade(&signal);
        let wake: Wake = Arc::new(move || {
            if let Some(s) = weak_signal.upgrade() {
                s.wake();
            }
        });
        core.backend
            .watch(wake, core.config.listen_url.as_ref().map(|u| u.0.as_str()));
        Ok(FeedThread { signal })
    }
}

impl Drop for FeedThread {
    fn drop(&mut self) {
        // Not joined: a read in progress may wait for a database that stopped answering.
        self.signal.stop();
    }
}
