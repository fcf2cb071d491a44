//! Bounds the number of bcrypt computations running at once, so that a flood of wrong keys
//! cannot take every core.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A counting semaphore for bcrypt work.
pub(crate) struct BcryptLimiter {
    free: Mutex<usize>,
    cv: Condvar,
}

/// One running bcrypt; the slot is given back on drop.
pub(crate) struct BcryptSlot<'a>(&'a BcryptLimiter);

impl Drop for BcryptSlot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.cv.notify_one();
    }
}

impl BcryptLimiter {
    pub(crate) fn new(slots: usize) -> Self {
        BcryptLimiter {
            free: Mutex::new(slots.max(1)),
            cv: Condvar::new(),
        }
    }

    /// A slot, waiting at most `wait`; `None` when all stayed taken.
    pub(crate) fn acquire(&self, wait: Duration) -> Option<BcryptSlot<'_>> {
        // A wait too long for an Instant (e.g. Duration::MAX) means no deadline.
        let start = Instant::now();
        let deadline = start.checked_add(wait);
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if *free == 0 {
            tracing::debug!("keyseal api keys: every bcrypt slot is taken; queueing");
        }
        while *free == 0 {
            free = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        tracing::warn!(
                            waited_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            "keyseal api keys: no bcrypt slot came free in time; refused as \
                             rate_limited"
                        );
                        return None;
                    }
                    self.cv
                        .wait_timeout(free, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.cv.wait(free).unwrap_or_else(PoisonError::into_inner),
            };
        }
        *free -= 1;
        Some(BcryptSlot(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_bounds() {
        let g = BcryptLimiter::new(1);
        let p = g.acquire(Duration::ZERO).unwrap();
        assert!(g.acquire(Duration::from_millis(5)).is_none());
        drop(p);
        assert!(g.acquire(Duration::ZERO).is_some());
    }
}
