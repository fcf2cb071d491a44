//! Last-use times: queued by verifications, written in batches.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;

use super::cache::CachedKey;
use super::time::Timestamp;
use super::{ApiKeys, Core};
use crate::Error;

/// How long [`ApiKeys::flush`] waits for the write lock.
pub(crate) const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// How long dropping an [`ApiKeys`] keeps trying to write queued last uses.
const DROP_WAIT: Duration = Duration::from_secs(5);
/// Queued uses kept across failed writes (one per key per interval arrive; beyond this the
/// oldest news is the least missed).
const MAX_PENDING: usize = 100_000;

impl Core {
    /// Queues `now` as the key's last use, unless one was queued less than
    /// [`ApiKeysConfig::last_use_interval`](super::ApiKeysConfig::last_use_interval) ago.
    #[inline]
    pub(crate) fn queue_last_use(&self, cached: &CachedKey, now: Timestamp) {
        let queued = cached.last_use_queued.load(Ordering::Relaxed);
        let interval = i64::try_from(self.config.last_use_interval.as_millis()).unwrap_or(i64::MAX);
        if now.unix_millis().saturating_sub(queued) >= interval
            && cached
                .last_use_queued
                .compare_exchange(
                    queued,
                    now.unix_millis(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.pending_uses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((cached.row_id, now));
        }
    }

    /// Writes queued uses, waiting at most `wait` (`ZERO`: only if nothing is in the way).
    pub(crate) fn flush_within(&self, wait: Duration) -> Result<(), Error> {
        // One flush at a time: a flush that took the queue must have put back what it could
        // not write before another (the one on drop, say) looks at the queue.
        let _one = if wait.is_zero() {
            match self.flush_lock.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
            }
        } else {
            self.flush_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        let tags = self.flush_tags(wait);
        let uses = std::mem::take(
            &mut *self
                .pending_uses
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if uses.is_empty() {
            return tags;
        }
        let result = self.backend.touch(&uses, wait).and(tags);
        if result.is_err() {
            let mut pending = self
                .pending_uses
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if pending.len() < MAX_PENDING {
                pending.extend(uses);
            }
        }
        result
    }

    /// From the feed thread: write queued uses only if that needs no waiting at all.
    pub(crate) fn flush_if_free(&self) {
        let queued = !self
            .pending_uses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
            || self.tags_pending();
        if queued {
            let _ = self.flush_within(Duration::ZERO);
        }
    }

    /// On drop: one write that waits up to [`DROP_WAIT`] for the write lock (no other thread
    /// can hold this connection any more, so only another process can be in the way); says
    /// what was lost, if anything.
    pub(crate) fn flush_on_drop(&self) {
        if let Err(e) = self.flush_within(DROP_WAIT) {
            let lost = self
                .pending_uses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            tracing::warn!(error = %e, lost, "keyseal api keys: last-use times not written");
        }
    }
}

impl ApiKeys {
    /// Writes queued last-use times now, waiting up to 2 s for the write lock. They are
    /// otherwise written in batches, at most once per
    /// [`ApiKeysConfig::last_use_interval`](super::ApiKeysConfig::last_use_interval) per key;
    /// dropping the manager flushes too (waiting up to 5 s).
    ///
    /// # Errors
    /// [`Error::Storage`] when they could not be written (e.g. another process held the
    /// write lock throughout); they stay queued for the next flush.
    pub fn flush(&self) -> Result<(), Error> {
        self.flush_within(FLUSH_WAIT)
    }
}
