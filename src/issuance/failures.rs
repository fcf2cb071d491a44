//! Recent failures: a repeated wrong key costs no bcrypt, and one key id cannot be made to
//! burn more than a few bcrypts a minute.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::cache::{CacheKey, FastMap};

/// How long a wrong key is remembered.
const REMEMBER_FOR: Duration = Duration::from_secs(600);
/// The window over which failures per key id are counted.
const WINDOW: Duration = Duration::from_secs(60);

/// Recently failed keys (by [`CacheKey`], never the key) and per-row failure counts.
pub(crate) struct FailureCache {
    recent: Mutex<FastMap<CacheKey, Instant>>,
    per_row: Mutex<HashMap<i64, (Instant, u32)>>,
    capacity: usize,
    max_per_row: u32,
    /// When the keys waiting for their first use last changed (one imported, one updated):
    /// a pending scan that found nothing before then says nothing about the key now.
    pending_changed: Mutex<Option<Instant>>,
}

impl FailureCache {
    pub(crate) fn new(capacity: usize, max_per_row: u32) -> Self {
        FailureCache {
            recent: Mutex::default(),
            per_row: Mutex::default(),
            capacity: capacity.max(1),
            max_per_row,
            pending_changed: Mutex::default(),
        }
    }

    /// The keys waiting for their first use changed at `now`.
    pub(crate) fn pending_changed(&self, now: Instant) {
        *self
            .pending_changed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
    }

    /// Whether this key failed recently, after the pending keys last changed (a failure is
    /// recorded with the time its scan started).
    pub(crate) fn known_bad_for_scan(&self, key: &CacheKey, now: Instant) -> bool {
        let since = *self
            .pending_changed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.failed_since(key, now, since)
    }

    /// Whether this key failed bcrypt recently.
    pub(crate) fn known_bad(&self, key: &CacheKey, now: Instant) -> bool {
        self.failed_since(key, now, None)
    }

    /// Whether this key failed within [`REMEMBER_FOR`] of `now`, and after `since` if given.
    fn failed_since(&self, key: &CacheKey, now: Instant, since: Option<Instant>) -> bool {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.get(key).is_some_and(|&at| {
            now.saturating_duration_since(at) < REMEMBER_FOR && since.map_or(true, |s| at > s)
        })
    }

    /// `Err(retry_after)` when this key id has failed too often in the current window.
    pub(crate) fn row_allowed(&self, row_id: i64, now: Instant) -> Result<(), Duration> {
        let per_row = self.per_row.lock().unwrap_or_else(PoisonError::into_inner);
        match per_row.get(&row_id) {
            Some(&(start, n)) if n >= self.max_per_row => {
                let end = start + WINDOW;
                if now < end {
                    Err(end - now)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Remembers a key that failed bcrypt, and counts the failure against `row_id`.
    pub(crate) fn record(&self, key: CacheKey, row_id: Option<i64>, now: Instant) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.len() >= self.capacity {
                recent.retain(|_, at| now.saturating_duration_since(*at) < REMEMBER_FOR);
                if recent.len() >= self.capacity {
                    recent.clear();
                }
            }
            recent.insert(key, now);
        }
        if let Some(row) = row_id {
            let mut per_row = self.per_row.lock().unwrap_or_else(PoisonError::into_inner);
            if per_row.len() >= self.capacity {
                per_row.retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
            }
            let e = per_row.entry(row).or_insert((now, 0));
            if now.saturating_duration_since(e.0) >= WINDOW {
                *e = (now, 0);
            }
            e.1 += 1;
        }
    }
}
