//! Rate-limit leases: what a store keeps of a key's shared budget, and the pure rule that
//! grants from it.
//!
//! A key limited to `L` requests per period `P` admits at most `L` requests in any window of
//! length `P`, counted over every process sharing the store. A process does not ask the store
//! for each request: it leases a few tokens (a row: holder, grant time, tokens) and spends
//! them locally. A grant counts against the budget from the moment it is made until one
//! period later, whether or not its tokens are spent; tokens a holder hands back unspent stop
//! counting at once. A process that dies without handing back leaks at most its lease, until
//! the period since the grant ends.
//!
//! Grants are small: at most `max(1, ⌈L / (10·N)⌉)` tokens, `N` being the number of holders
//! with a lease in the window (this one included), so a holder's unspent tokens are about a
//! tenth of its share, and the requests a window admits differ from `L` by about `L / 10` at
//! most (tokens granted just before a window and spent inside it). A holder asks for what it
//! expects to spend (see `fleet_limit`): one token for a process that verifies once.

use std::collections::BTreeSet;
use std::time::Duration;

use super::rate_limit::RateLimit;

/// One lease of a key's budget, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseRow {
    /// The backend's id of the lease.
    pub lease_id: i64,
    /// Who holds it: a random id per [`ApiKeys`](crate::ApiKeys) instance.
    pub holder: String,
    /// When it was granted, Unix ms by the store's clock.
    pub granted_at_ms: i64,
    /// Tokens granted, less those handed back.
    pub tokens: i64,
}

impl LeaseRow {
    /// A lease row as read from a store (backends build them; tests too).
    pub fn new(lease_id: i64, holder: String, granted_at_ms: i64, tokens: i64) -> Self {
        LeaseRow {
            lease_id,
            holder,
            granted_at_ms,
            tokens,
        }
    }
}

/// What a lease rule sees: the store's clock and every lease of the key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseContext {
    /// Now, Unix ms by the store's clock.
    pub now_ms: i64,
    /// Every stored lease of the key.
    pub leases: Vec<LeaseRow>,
}

impl LeaseContext {
    /// A context as a backend reads it.
    pub fn new(now_ms: i64, leases: Vec<LeaseRow>) -> Self {
        LeaseContext { now_ms, leases }
    }
}

/// What a lease rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseDecision {
    /// Tokens to grant now (0: none; nothing is written for the grant).
    pub grant: u32,
    /// Leases granted before this (Unix ms, store clock) no longer count: the backend may
    /// delete them.
    pub forget_before_ms: i64,
    /// With no grant: when a token of the shared budget frees up.
    pub retry_after: Option<Duration>,
}

/// A lease request: the key's row, the holder, and unspent tokens of an earlier lease of
/// the holder handed back (lease id, tokens).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct LeaseRequest<'a> {
    /// The key's row id.
    pub row_id: i64,
    /// The requesting holder.
    pub holder: &'a str,
    /// Unspent tokens of one of the holder's leases, handed back.
    pub give_back: Option<(i64, u32)>,
}

/// What [`Backend::lease`](super::backend::Backend::lease) did.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Leased {
    /// The decision as the rule made it (inside the write transaction when one ran).
    pub decision: LeaseDecision,
    /// The new lease's id, when tokens were granted.
    pub lease_id: Option<i64>,
    /// Whether anything was written (a grant, a hand-back, forgotten leases).
    pub wrote: bool,
}

/// The rule a lease request applies to what the backend read: pure, no I/O.
pub type DecideLease<'a> = &'a (dyn Fn(&LeaseContext) -> LeaseDecision + Sync);

/// The grant for `holder`, who wants `want` tokens (0: only handing back) of `limit`.
pub(crate) fn decide(
    limit: RateLimit,
    holder: &str,
    want: u32,
    ctx: &LeaseContext,
) -> LeaseDecision {
    let period_ms = i64::try_from(limit.period().as_millis()).unwrap_or(i64::MAX);
    let since = ctx.now_ms.saturating_sub(period_ms);
    // Granted within the last period (or "later than now": a clock set back keeps counting).
    let mut live: Vec<&LeaseRow> = ctx
        .leases
        .iter()
        .filter(|l| l.granted_at_ms > since && l.tokens > 0)
        .collect();
    let used: u64 = live.iter().map(|l| l.tokens.unsigned_abs()).sum();
    let mut holders: BTreeSet<&str> = live.iter().map(|l| l.holder.as_str()).collect();
    holders.insert(holder);
    let n = u64::try_from(holders.len()).unwrap_or(u64::MAX);
    let budget = u64::from(limit.requests());
    let cap = budget.div_ceil(n.saturating_mul(10)).max(1);
    let free = budget.saturating_sub(used);
    let desired = u64::from(want).min(cap);
    live.sort_by_key(|l| l.granted_at_ms);
    // When `need` tokens are free: the oldest grants leave the window one by one.
    let frees_at = |need: u64| {
        let excess = (used + need).saturating_sub(budget);
        let mut freed = 0u64;
        for l in &live {
            if freed >= excess {
                break;
            }
            freed += l.tokens.unsigned_abs();
            if freed >= excess {
                return l.granted_at_ms.saturating_add(period_ms);
            }
        }
        if excess == 0 {
            ctx.now_ms
        } else {
            ctx.now_ms.saturating_add(period_ms)
        }
    };
    let (grant, wait_until) = if want == 0 {
        (0, None)
    } else if free >= desired {
        (desired, None)
    } else if free == 0 {
        (0, Some(frees_at(1)))
    } else {
        // Part of a lease is free. When the rest follows within a twentieth of the period
        // (grants made together leave the window together), a whole lease then costs one
        // write instead of two; else take the part now.
        let whole = frees_at(desired);
        if whole.saturating_sub(ctx.now_ms) <= period_ms / 20 {
            (0, Some(whole))
        } else {
            (free, None)
        }
    };
    let retry_after = wait_until.map(|at| {
        let ms = at.saturating_sub(ctx.now_ms).max(1);
        Duration::from_millis(u64::try_from(ms).unwrap_or(1))
    });
    LeaseDecision {
        grant: u32::try_from(grant).unwrap_or(u32::MAX),
        forget_before_ms: since.saturating_add(1),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(id: i64, holder: &str, at: i64, tokens: i64) -> LeaseRow {
        LeaseRow::new(id, holder.into(), at, tokens)
    }

    #[test]
    fn grants_up_to_the_cap_and_the_free_budget() {
        let limit = RateLimit::per_minute(100);
        let empty = LeaseContext::new(1_000_000, vec![]);
        // One holder: a tenth of the budget.
        assert_eq!(decide(limit, "a", 50, &empty).grant, 10);
        assert_eq!(decide(limit, "a", 1, &empty).grant, 1);
        // Four holders: ⌈100 / 40⌉.
        let others = LeaseContext::new(
            1_000_000,
            vec![
                lease(1, "b", 999_000, 1),
                lease(2, "c", 999_000, 1),
                lease(3, "d", 999_000, 1),
            ],
        );
        assert_eq!(decide(limit, "a", 50, &others).grant, 3);
        // Almost spent, nothing leaving the window soon: what is left.
        let full = LeaseContext::new(1_000_000, vec![lease(1, "b", 999_000, 98)]);
        assert_eq!(decide(limit, "a", 5, &full).grant, 2);
        // Almost spent, the rest of a lease free within half a second: wait for a whole one.
        let soon = LeaseContext::new(1_000_000, vec![lease(1, "b", 940_500, 97)]);
        let d = decide(limit, "a", 5, &soon);
        assert_eq!(
            (d.grant, d.retry_after),
            (0, Some(Duration::from_millis(500)))
        );
    }

    #[test]
    fn a_full_window_says_when_the_oldest_grant_leaves_it() {
        let limit = RateLimit::per_minute(10);
        let now = 1_000_000;
        let ctx = LeaseContext::new(
            now,
            vec![
                lease(1, "a", now - 50_000, 4),
                lease(2, "b", now - 20_000, 6),
                // Out of the window: ignored.
                lease(3, "a", now - 60_000, 9),
            ],
        );
        let d = decide(limit, "a", 1, &ctx);
        assert_eq!(d.grant, 0);
        assert_eq!(d.retry_after, Some(Duration::from_secs(10)));
        assert_eq!(d.forget_before_ms, now - 60_000 + 1);
        // Handing back only: no grant, no retry.
        assert_eq!(decide(limit, "a", 0, &ctx).retry_after, None);
    }
}
