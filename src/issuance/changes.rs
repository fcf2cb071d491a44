//! Seeing other processes' writes: the change feed, read by the manager's own thread, and
//! how long cached answers are trusted when it cannot be read.
//!
//! The feed thread (see `feed_thread`) reads the store's change feed every
//! [`super::ApiKeysConfig::change_check_interval`], and at once when the store notifies a
//! commit; the read never waits for a write (this process's own included). Verifications
//! never read the feed themselves (unless the interval is zero), so a database that stops
//! answering slows no verification down. A cached answer is trusted while the last
//! successful read (or a re-read of the key's own row) is at most
//! [`super::ApiKeysConfig::max_staleness`] old; past it the row is read again (one indexed
//! read, never a bcrypt), and if that fails too the [`super::StalePolicy`] decides.
//!
//! A store whose epoch changed (restarted, replaced, restored from a backup) or whose feed
//! went back in time is not trusted to continue where this process left off: every cached
//! key is re-read before it answers again, and the key filter and position are read anew.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;

use super::backend::is_pending;
use super::cache::{CacheKey, CachedKey};
use super::config::StalePolicy;
use super::scopes::Requirement;
use super::types::Verification;
use super::{ApiKeys, Core};
use crate::{Error, StorageKind};

/// After a failed re-read of a row, no other is tried for this long: while the store is
/// down, at most one verification per second waits for it.
const REREAD_BACKOFF_MS: u64 = 1_000;
/// Warnings repeated while a state lasts are said at most this often.
const WARN_EVERY_MS: u64 = 10_000;

impl Core {
    /// Milliseconds since this manager was opened, offset so that 0 means "never".
    pub(crate) fn clock_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1 << 32)
    }

    pub(crate) fn check_interval_ms(&self) -> u64 {
        u64::try_from(self.config.change_check_interval.as_millis()).unwrap_or(u64::MAX)
    }

    fn max_staleness_ms(&self) -> u64 {
        u64::try_from(self.config.max_staleness.as_millis()).unwrap_or(u64::MAX)
    }

    /// On a verification's path: with a zero interval, reads the feed now if `min_gap_ms`
    /// passed since the last read (so every call sees every change committed before it);
    /// otherwise does nothing (the feed thread reads it). Returns the clock it read.
    pub(crate) fn check_for_changes(&self, min_gap_ms: u64) -> u64 {
        let now = self.clock_ms();
        if self.check_interval_ms() == 0 && self.claim_check(now, min_gap_ms) {
            self.check_now(now);
            self.flush_if_free();
        }
        now
    }

    /// For an id the key filter does not know: perhaps made elsewhere a moment ago (a client
    /// that just got its key from another server). The first such call in a millisecond waits
    /// for a read of the feed that started after it (the feed thread's, or one it runs
    /// itself), so a key committed before the call is found; the others in that millisecond
    /// are answered from memory at once. So a flood of made-up ids costs at most ~1000 reads a
    /// second and no waiting for most of it. Gated apart from the feed thread's reads: one
    /// that just started (perhaps before the key was committed) does not stand in for it.
    pub(crate) fn look_for_new_keys(&self) {
        let now = self.clock_ms();
        let last = self.unknown_check_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1
            && self
                .unknown_check_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.check_now(now);
        }
    }

    /// Takes the right to read the feed at `now` if `min_gap_ms` passed since the last read.
    fn claim_check(&self, now: u64, min_gap_ms: u64) -> bool {
        let last = self.last_check_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= min_gap_ms
            && self
                .last_check_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// One round of the feed thread: read the feed (`woken`: the store notified a commit),
    /// then write queued last uses if nothing is in the way.
    pub(crate) fn feed_tick(&self, woken: bool) {
        let now = self.clock_ms();
        self.last_check_ms.store(now, Ordering::Relaxed);
        if woken {
            tracing::trace!("keyseal api keys: woken by a commit elsewhere");
        }
        self.check_now(now);
        self.flush_if_free();
    }

    /// Reads the feed unless a read that started after `wanted` already succeeded. One at a
    /// time; the others wait for it. Strictly after: the clock counts milliseconds, and a
    /// read that started in the same one may have started before a change the caller must
    /// see.
    fn check_now(&self, wanted: u64) -> bool {
        let _one = self
            .check_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.checked_ms.load(Ordering::Acquire) > wanted {
            return true;
        }
        self.check_locked(wanted)
    }

    /// Reads the feed; the caller holds `check_lock`.
    fn check_locked(&self, now: u64) -> bool {
        let started = self.clock_ms();
        match self.catch_up() {
            Ok(()) => {
                self.checked_ms.fetch_max(started, Ordering::AcqRel);
                let down_since = self.feed_down_since.swap(0, Ordering::AcqRel);
                if down_since != 0 {
                    tracing::info!(
                        unreadable_ms = started.saturating_sub(down_since),
                        "keyseal api keys: the change feed is readable again"
                    );
                }
                true
            }
            Err(e) => {
                self.catch_up_pending.store(true, Ordering::SeqCst);
                let first = self
                    .feed_down_since
                    .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok();
                if first || self.time_to_warn(now) {
                    tracing::warn!(
                        error = %e,
                        lag_ms = now.saturating_sub(self.checked_ms.load(Ordering::Acquire)),
                        max_staleness_ms = self.max_staleness_ms(),
                        "keyseal api keys: cannot read the change feed; cached keys are trusted \
                         until it is older than max_staleness, then re-read or refused"
                    );
                }
                false
            }
        }
    }

    /// Rate limit for repeated warnings.
    fn time_to_warn(&self, now: u64) -> bool {
        let last = self.warned_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= WARN_EVERY_MS
            && self
                .warned_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// How old `cached`'s knowledge is at `now` if it is past
    /// [`super::ApiKeysConfig::max_staleness`], else `None` (trusted).
    #[inline]
    pub(crate) fn too_old(&self, cached: &CachedKey, now: u64) -> Option<u64> {
        let known = self
            .checked_ms
            .load(Ordering::Acquire)
            .max(cached.confirmed_ms.load(Ordering::Acquire));
        let age = now.saturating_sub(known);
        (age > self.max_staleness_ms()).then_some(age)
    }

    /// How far behind the feed is: milliseconds since the last successful read began.
    pub(crate) fn feed_lag_ms(&self) -> u64 {
        self.clock_ms()
            .saturating_sub(self.checked_ms.load(Ordering::Acquire))
    }

    pub(crate) fn catch_up(&self) -> Result<(), Error> {
        let elsewhere = self.backend.changed_elsewhere()?;
        let epoch = self.backend.epoch().map_or(0, |e| e | 1);
        let last_epoch = self.last_epoch.swap(epoch, Ordering::AcqRel);
        let went_back = self
            .backend
            .store_seq()
            .is_some_and(|s| s < self.seq.load(Ordering::SeqCst));
        if (epoch != 0 && last_epoch != 0 && epoch != last_epoch) || went_back {
            return self.start_over(went_back);
        }
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
        if changes
            .iter()
            .any(|c| !c.deleted && c.lookup.as_deref().is_some_and(is_pending))
        {
            // A key imported (or updated) elsewhere: recent scan misses are stale.
            self.failures.pending_changed(std::time::Instant::now());
        }
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

    /// The store is not the one this process followed (a new epoch, or a feed that went back
    /// in time): re-read everything it depends on rather than wait for the feed to pass a
    /// position it may never reach again, and re-read every cached key before it answers.
    fn start_over(&self, went_back: bool) -> Result<(), Error> {
        self.catch_up_pending.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        let stale = self.cache.mark_all_stale();
        let (lookups, seq) = self.backend.all_lookups()?;
        self.known_ids.extend(lookups.iter().map(String::as_str));
        self.legacy.merge(self.backend.legacy_formats()?);
        tracing::warn!(
            went_back,
            cached_keys = stale,
            from_seq = self.seq.load(Ordering::SeqCst),
            to_seq = seq,
            "keyseal api keys: the store was restarted, replaced or restored; every cached \
             key is re-read (no bcrypt) before it answers again"
        );
        self.seq.store(seq, Ordering::SeqCst);
        self.epoch_changes.fetch_add(1, Ordering::Relaxed);
        self.catch_up_pending.store(false, Ordering::SeqCst);
        Ok(())
    }
}

impl ApiKeys {
    /// A cached key whose knowledge is `age` ms old, past the bound: re-read its row (one
    /// indexed read, no bcrypt; at most one attempt per second while the store fails), else
    /// answer by the [`StalePolicy`].
    #[cold]
    pub(crate) fn answer_too_old(
        &self,
        cache_key: CacheKey,
        cached: &CachedKey,
        now: u64,
        age: u64,
        required: &Requirement,
    ) -> Result<Verification, Error> {
        if now >= self.reread_after_ms.load(Ordering::Acquire) {
            match self.refresh(cache_key, cached, required) {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    self.reread_after_ms
                        .store(now.saturating_add(REREAD_BACKOFF_MS), Ordering::Release);
                    tracing::debug!(error = %e, "keyseal api keys: re-reading a cached key failed");
                }
            }
        }
        let serve_up_to = match self.config.stale_policy {
            StalePolicy::Refuse => None,
            StalePolicy::ServeStale { up_to } => Some(
                u64::try_from(up_to.max(self.config.max_staleness).as_millis()).unwrap_or(u64::MAX),
            ),
        };
        if serve_up_to.is_some_and(|bound| age <= bound) {
            if self.time_to_warn(now) {
                tracing::warn!(
                    age_ms = age,
                    "keyseal api keys: serving cached keys although the store cannot be read \
                     (stale policy serve-stale)"
                );
            }
            return self.answer(cached, required);
        }
        if self.time_to_warn(now) {
            tracing::warn!(
                age_ms = age,
                "keyseal api keys: refusing cached keys: the store cannot be read and what \
                 this process knows is older than max_staleness (fail closed)"
            );
        }
        Err(Error::storage(
            StorageKind::Unavailable,
            format!(
                "api keys: the store could not be read for {:.1} s, longer than max_staleness \
                 ({:?}); cached keys are refused until it can",
                Duration::from_millis(age).as_secs_f64(),
                self.config.max_staleness
            ),
        ))
    }
}
