//! Seeing other processes' writes: the change check, and the bound it gives cached answers.
//!
//! The check runs on the storage's read path, which never waits for a write (this process's
//! own included), at most every [`super::ApiKeysConfig::change_check_interval`]. A cached
//! key is answered only while the last successful check started less than that interval
//! plus [`STALE_SLACK`] ago; past it (the store cannot be read), cached keys fail closed with
//! an error rather than outlive a revocation.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;

use super::ApiKeys;
use crate::{Error, StorageKind};

/// How much later than the interval a check may succeed before cached answers stop.
pub(crate) const STALE_SLACK: Duration = Duration::from_secs(1);

impl ApiKeys {
    /// Milliseconds since this manager was opened, offset so that 0 means "never".
    pub(crate) fn clock_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1 << 32)
    }

    pub(crate) fn check_interval_ms(&self) -> u64 {
        u64::try_from(self.config.change_check_interval.as_millis()).unwrap_or(u64::MAX)
    }

    /// Looks for other processes' writes if `min_gap_ms` has passed since the last look, and
    /// writes queued last uses if that needs no waiting. Returns the clock it read.
    pub(crate) fn check_for_changes(&self, min_gap_ms: u64) -> u64 {
        let now = self.clock_ms();
        let last = self.last_check_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < min_gap_ms
            || self
                .last_check_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return now;
        }
        self.check_now(now);
        self.flush_if_free();
        now
    }

    /// Runs the change check unless one that started after `wanted` already succeeded.
    /// Only one runs at a time; the others wait for it (a read, never a write). Strictly
    /// after: the clock counts milliseconds, and a check that started in the same one may
    /// have started before a change the caller must see (with a zero interval, every call
    /// sees every change committed before it).
    fn check_now(&self, wanted: u64) -> bool {
        let _one = self
            .check_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.checked_ms.load(Ordering::Acquire) > wanted {
            return true;
        }
        let started = self.clock_ms();
        match self.catch_up() {
            Ok(()) => {
                self.checked_ms.fetch_max(started, Ordering::AcqRel);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "keyseal api keys: could not read other processes' changes; cached keys are refused until it works");
                self.catch_up_pending.store(true, Ordering::SeqCst);
                // Let the very next call try again.
                self.last_check_ms.store(0, Ordering::Relaxed);
                false
            }
        }
    }

    /// Whether the last successful change check is recent enough at `now` for a cached
    /// answer.
    #[inline]
    pub(crate) fn fresh_without_check(&self, now: u64) -> bool {
        let bound = self
            .check_interval_ms()
            .saturating_add(u64::try_from(STALE_SLACK.as_millis()).unwrap_or(u64::MAX));
        now.saturating_sub(self.checked_ms.load(Ordering::Acquire)) <= bound
    }

    /// `Ok` when a cached answer may be given at `now` (from [`Self::check_for_changes`]): a change check
    /// succeeded recently enough, or one does now.
    #[inline]
    pub(crate) fn fresh_enough(&self, now: u64) -> Result<(), Error> {
        if self.fresh_without_check(now) || self.check_now(now) {
            return Ok(());
        }
        Err(Error::storage(
            StorageKind::Unavailable,
            "api keys: the store could not be read to look for revocations; cached \
                      keys are refused until it can",
        ))
    }

    pub(crate) fn catch_up(&self) -> Result<(), Error> {
        let elsewhere = self.backend.changed_elsewhere()?;
        if !elsewhere && !self.catch_up_pending.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        self.catch_up_pending.store(true, Ordering::SeqCst);
        let (changes, new_seq) = self
            .backend
            .changes_since(self.seq.load(Ordering::SeqCst))?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.known_ids
            .extend(changes.iter().filter_map(|c| c.lookup.as_deref()));
        for c in &changes {
            let cached = self.cache.by_row(c.row_id);
            if let Some(why) = &c.unreadable {
                // Fail closed for what cannot be checked; the other rows still get through.
                tracing::warn!(problem = %why, "keyseal api keys: unreadable row refused");
                if let Some(cached) = &cached {
                    cached.unreadable.store(true, Ordering::SeqCst);
                }
                continue;
            }
            if let Some(cached) = cached {
                cached.apply_change(c);
            }
        }
        self.seq.fetch_max(new_seq, Ordering::SeqCst);
        self.legacy.merge(self.backend.legacy_formats()?);
        self.catch_up_pending.store(false, Ordering::SeqCst);
        Ok(())
    }
}
