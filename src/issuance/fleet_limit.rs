//! A key's rate limit in this process: the lease it spends from, and when to ask the store
//! again. The shared budget and the rule that grants from it: `lease`.
//!
//! A verification of a limited key takes a token of the current lease, in memory. Only when
//! the lease is spent or past its period does it ask the store, one thread at a time per key
//! (the others wait for that answer): one write that hands back what is left of the old
//! lease and takes a new one. A refusal from the store is remembered until the moment it
//! names, so a hammered key costs the store nothing more while the window is full.
//!
//! Lease sizes follow demand: the first is one token (a process that verifies once takes
//! only that); a lease spent within its period doubles the next request, one that outlived
//! its period asks next for what was spent. The store caps each grant (see `lease`).
//!
//! When the store cannot be reached for a lease, the key fails closed: tokens already leased
//! are still spent, and after that verifications of the key fail with the store's error
//! ([`crate::Error::Storage`]) for a second before the store is tried again; never unlimited.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::backend::Backend;
use super::lease::{self, LeaseRequest};
use super::rate_limit::RateLimit;
use crate::Error;

/// How long a failed lease request is answered from memory before the store is tried again.
const RETRY_FAILED: Duration = Duration::from_secs(1);

/// This process's part in the fleet's leases: its holder id and what its requests cost.
pub(crate) struct Leases {
    holder: String,
    /// Lease requests that wrote to the store.
    writes: AtomicU64,
    /// Lease requests made (read-only refusals included).
    requests: AtomicU64,
}

impl Leases {
    /// A new holder id: random, so two instances (or processes) never share one.
    pub(crate) fn new() -> Result<Self, Error> {
        let mut raw = [0u8; 8];
        getrandom::getrandom(&mut raw).map_err(|_| Error::Randomness)?;
        Ok(Leases {
            holder: raw.iter().fold(String::with_capacity(16), |mut hex, b| {
                hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
                hex
            }),
            writes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    /// Lease requests that wrote to the store so far.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Lease requests made so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// The lease in hand.
#[derive(Debug)]
struct Held {
    lease_id: i64,
    granted: u32,
    left: u32,
    /// Its period ends (no token of it is spent after).
    until: Instant,
}

#[derive(Debug)]
struct Local {
    lease: Option<Held>,
    /// The store said the window is full until then.
    refused_until: Option<Instant>,
    /// The store could not be reached: this error until then.
    failed: Option<(Instant, Error)>,
    /// Tokens the next request asks for.
    want: u32,
}

/// A key's limit, shared by every cache entry of the key.
pub(crate) type SharedBucket = std::sync::Arc<FleetBucket>;

/// One key's limit in this process (shared by every cache entry of the key).
#[derive(Debug)]
pub(crate) struct FleetBucket {
    row_id: i64,
    limit: RateLimit,
    local: Mutex<Local>,
}

impl FleetBucket {
    pub(crate) fn new(row_id: i64, limit: RateLimit) -> Self {
        FleetBucket {
            row_id,
            limit,
            local: Mutex::new(Local {
                lease: None,
                refused_until: None,
                failed: None,
                want: 1,
            }),
        }
    }

    /// The limit it enforces.
    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// The answer memory alone gives: a token of the lease (`Ok`), or the wait the store
    /// named (`Err`); `None` when the store must be asked (or its error given).
    pub(crate) fn take_local(&self, now: Instant) -> Option<Result<(), Duration>> {
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        local.take_local(now)
    }

    /// Takes a token: from the lease, or from a new one the store grants.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be reached for a new lease (the same error
    /// for a second after, without asking again).
    pub(crate) fn take(
        &self,
        backend: &dyn Backend,
        leases: &Leases,
    ) -> Result<Result<(), Duration>, Error> {
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(answer) = local.take_local(now) {
            return Ok(answer);
        }
        if let Some((until, e)) = &local.failed {
            if now < *until {
                return Err(e.clone());
            }
        }
        let old = local.lease.take();
        if let Some(old) = &old {
            // Spent within its period: ask for more; else for what it took.
            local.want = if old.left == 0 {
                old.granted.saturating_mul(2)
            } else {
                (old.granted - old.left).max(1)
            }
            .min(self.limit.requests());
        }
        // A lease is only renewed once spent or past its period, when its grant no longer
        // counts: nothing to hand back.
        let want = local.want;
        let (limit, holder) = (self.limit, leases.holder.as_str());
        let decide = move |ctx: &_| lease::decide(limit, holder, want, ctx);
        let request = LeaseRequest {
            row_id: self.row_id,
            holder,
            give_back: None,
        };
        leases.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = match backend.lease(&request, &decide) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "keyseal api keys: no rate-limit lease (the store cannot be reached): the key is refused with an error");
                local.failed = Some((now + RETRY_FAILED, e.clone()));
                return Err(e);
            }
        };
        local.failed = None;
        if outcome.wrote {
            leases.writes.fetch_add(1, Ordering::Relaxed);
        }
        match outcome.lease_id {
            Some(lease_id) if outcome.decision.grant > 0 => {
                let granted = outcome.decision.grant;
                local.lease = Some(Held {
                    lease_id,
                    granted,
                    left: granted - 1,
                    // From before the request: the store's grant time is no earlier.
                    until: now + self.limit.period(),
                });
                local.refused_until = None;
                Ok(Ok(()))
            }
            _ => {
                let retry_after = outcome
                    .decision
                    .retry_after
                    .unwrap_or_else(|| self.limit.period());
                local.refused_until = Some(now + retry_after);
                Ok(Err(retry_after))
            }
        }
    }

    /// Hands back the unspent tokens of the lease in hand, if any (when the manager is
    /// dropped): others may spend them at once.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store cannot be written.
    pub(crate) fn give_back(&self, backend: &dyn Backend, leases: &Leases) -> Result<(), Error> {
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(held) = local.lease.take() else {
            return Ok(());
        };
        if held.left == 0 || Instant::now() >= held.until {
            return Ok(()); // nothing left, or counted no longer anyway
        }
        let (limit, holder) = (self.limit, leases.holder.as_str());
        let decide = move |ctx: &_| lease::decide(limit, holder, 0, ctx);
        let request = LeaseRequest {
            row_id: self.row_id,
            holder,
            give_back: Some((held.lease_id, held.left)),
        };
        leases.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = backend.lease(&request, &decide)?;
        if outcome.wrote {
            leases.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether forgetting it loses nothing: no tokens in hand, no refusal or error to
    /// remember.
    pub(crate) fn is_idle(&self, now: Instant) -> bool {
        let local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        local
            .lease
            .as_ref()
            .map_or(true, |l| l.left == 0 || now >= l.until)
            && local.refused_until.map_or(true, |t| now >= t)
            && local.failed.as_ref().map_or(true, |(t, _)| now >= *t)
    }
}

impl Local {
    fn take_local(&mut self, now: Instant) -> Option<Result<(), Duration>> {
        if let Some(held) = &mut self.lease {
            if held.left > 0 && now < held.until {
                held.left -= 1;
                return Some(Ok(()));
            }
        }
        match self.refused_until {
            Some(t) if now < t => Some(Err((t - now).max(Duration::from_millis(1)))),
            _ => None,
        }
    }
}

impl super::ApiKeys {
    /// Hands back every unspent lease (best effort: a lease not handed back stops counting
    /// when its period ends).
    pub(crate) fn give_back_leases(&self) {
        for bucket in self.cache.buckets() {
            if let Err(e) = bucket.give_back(&*self.backend, &self.leases) {
                tracing::debug!(error = %e, "keyseal api keys: unspent rate-limit lease not handed back");
            }
        }
    }

    /// Rate-limit lease requests that wrote to the store (for tests and benchmarks).
    pub(crate) fn lease_writes(&self) -> u64 {
        self.leases.writes()
    }

    /// Rate-limit lease requests made (for tests and benchmarks).
    pub(crate) fn lease_requests(&self) -> u64 {
        self.leases.requests()
    }
}
