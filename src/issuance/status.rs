//! What an [`ApiKeys`] can say about its store and its change feed, for operators
//! (`keyseal status`).

use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;

use super::config::StalePolicy;
use super::listing::ListFilter;
use super::types::KeyStatus;
use super::ApiKeys;
use crate::Error;

/// The state of an [`ApiKeys`] and its change feed, from [`ApiKeys::status`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiKeysStatus {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The schema version the store holds (`None`: it could not be read now).
    pub schema_version: Option<i64>,
    /// How other processes' changes reach this one: `poll`, `notify` (poll, and woken by
    /// each commit), `notify-down` (the notification connection is being re-made) or
    /// `notify-unavailable` (notifications cannot be had there; poll only).
    pub feed_mode: &'static str,
    /// The feed position this process has applied.
    pub feed_position: i64,
    /// Time since the last successful read of the feed began.
    pub feed_lag: Duration,
    /// Whether the last read of the feed failed.
    pub feed_failing: bool,
    /// `fresh` (cached keys answered), `stale-serving` (the feed is older than
    /// `max_staleness`; cached keys are re-read, or answered under
    /// [`StalePolicy::ServeStale`]) or `stale-refusing` (past every bound: cached keys whose
    /// row cannot be re-read are refused).
    pub staleness: &'static str,
    /// The configured bound.
    pub max_staleness: Duration,
    /// How many times the store was found restarted, replaced or restored.
    pub store_restarts_seen: u64,
    /// Keys with a cached verification.
    pub cached_keys: usize,
    /// Last uses waiting to be written.
    pending_last_uses: usize,
}

impl ApiKeysStatus {
    /// Last uses waiting to be written.
    pub fn pending_last_uses(&self) -> usize {
        self.pending_last_uses
    }
}

/// How many keys are in each state, from [`ApiKeys::key_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyCounts {
    /// Every key stored.
    pub total: u64,
    /// Valid now.
    pub active: u64,
    /// Replaced by a rotation, in their grace period.
    pub rotated: u64,
    /// Past their expiry.
    pub expired: u64,
    /// Revoked.
    pub revoked: u64,
    /// Disabled.
    pub disabled: u64,
    /// Imported from another system (in any state).
    pub imported: u64,
    /// Of those, the ones with a lookup: stored with one, or upgraded at their first
    /// verification (the others still wait for it).
    pub upgraded: u64,
}

impl ApiKeys {
    /// The state of this manager and its change feed: one read of the store (its schema
    /// version, left out when the store cannot be read); everything else is what this
    /// process knows. Never fails: it is what to look at when the store is down.
    pub fn status(&self) -> ApiKeysStatus {
        let schema_version = self.backend.schema_version().ok();
        let lag = self.feed_lag_ms();
        let max = u64::try_from(self.config.max_staleness.as_millis()).unwrap_or(u64::MAX);
        let serve = match self.config.stale_policy {
            StalePolicy::Refuse => max,
            StalePolicy::ServeStale { up_to } => u64::try_from(up_to.as_millis())
                .unwrap_or(u64::MAX)
                .max(max),
        };
        ApiKeysStatus {
            backend: self.backend.name(),
            schema_version,
            feed_mode: self.backend.feed_mode().as_str(),
            feed_position: self.seq.load(Ordering::SeqCst),
            feed_lag: Duration::from_millis(lag),
            feed_failing: self.feed_down_since.load(Ordering::Acquire) != 0,
            staleness: if lag <= max {
                "fresh"
            } else if lag <= serve {
                "stale-serving"
            } else {
                "stale-refusing"
            },
            max_staleness: self.config.max_staleness,
            store_restarts_seen: self.epoch_changes.load(Ordering::Relaxed),
            cached_keys: self.cache.rows(),
            pending_last_uses: self
                .pending_uses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
        }
    }

    /// How many keys are in each state now: reads every key's metadata, a page of 1 000 at
    /// a time (never a hash).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be read.
    pub fn key_counts(&self) -> Result<KeyCounts, Error> {
        let mut counts = KeyCounts::default();
        let mut filter = ListFilter::all().limit(1000);
        loop {
            let page = self.list_page(&filter)?;
            for k in &page.keys {
                counts.total += 1;
                match k.status {
                    KeyStatus::Active => counts.active += 1,
                    KeyStatus::Rotated => counts.rotated += 1,
                    KeyStatus::Expired => counts.expired += 1,
                    KeyStatus::Revoked => counts.revoked += 1,
                    KeyStatus::Disabled => counts.disabled += 1,
                }
                if let Some(from) = &k.imported {
                    counts.imported += 1;
                    counts.upgraded += u64::from(from.upgraded);
                }
            }
            match page.next {
                Some(next) if !page.keys.is_empty() => filter = filter.after(Some(next)),
                _ => return Ok(counts),
            }
        }
    }
}
