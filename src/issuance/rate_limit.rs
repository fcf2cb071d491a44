//! Per-key rate limits: the public [`RateLimit`]. It is enforced across every process
//! sharing the store by leases of its budget (`lease`, `fleet_limit`).

use std::time::Duration;

use serde::Serialize;

/// A per-key rate limit: at most `requests` in any window of length `period` (a sliding
/// window, not a bucket that starts full and refills: a key used flat out gets `requests`
/// in its first period, not twice that), counted over every process that shares the store.
///
/// Each process leases a few tokens of the budget from the store and spends them locally,
/// so the store is written about once per tenth of a process's share, not per request. A
/// lease counts against the budget for one `period` from its grant; a window may therefore
/// admit a little more than `requests` (tokens leased just before it and spent inside it,
/// about a tenth of the budget at most) and a process that stops leaks at most its unspent
/// lease until that period ends. A refusal's `retry_after` is when the shared window frees
/// a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    requests: u32,
    #[serde(rename = "period_ms", serialize_with = "ser_millis")]
    period: Duration,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RateLimit {
    /// `requests` per `period` (both at least 1; smaller values are raised to 1 / 1 ms).
    pub fn new(requests: u32, period: Duration) -> Self {
        RateLimit {
            requests: requests.max(1),
            period: period.max(Duration::from_millis(1)),
        }
    }
    /// `requests` per second.
    pub fn per_second(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(1))
    }
    /// `requests` per minute.
    pub fn per_minute(requests: u32) -> Self {
        Self::new(requests, Duration::from_secs(60))
    }
    /// Requests allowed per period.
    pub fn requests(&self) -> u32 {
        self.requests
    }
    /// The period over which `requests` are allowed.
    pub fn period(&self) -> Duration {
        self.period
    }
    /// `N/s`, `N/min` or `N/h` (N from 1 to 4 294 967 295), as the CLI and imports write
    /// rate limits.
    ///
    /// ```
    /// use keyseal::RateLimit;
    /// assert_eq!(RateLimit::parse("100/min")?, RateLimit::per_minute(100));
    /// assert_eq!(RateLimit::parse("5/s")?.to_string(), "5/s");
    /// assert!(RateLimit::parse("100/day").is_err());
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for anything else (a zero, a missing or unknown
    /// unit, spaces).
    pub fn parse(text: &str) -> Result<Self, crate::Error> {
        let bad = || crate::Error::InvalidArgument {
            what: format!("rate limit {text:?}: expected N/s, N/min or N/h, N at least 1"),
        };
        let (n, unit) = text.split_once('/').ok_or_else(bad)?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let requests: u32 = n.parse().map_err(|_| bad())?;
        let period = match unit {
            "s" => Duration::from_secs(1),
            "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if requests == 0 {
            return Err(bad());
        }
        Ok(Self::new(requests, period))
    }
}

impl core::fmt::Display for RateLimit {
    /// `N/s`, `N/min`, `N/h`, or `N/{ms}ms` for other periods.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.period.as_millis() {
            1_000 => write!(f, "{}/s", self.requests),
            60_000 => write!(f, "{}/min", self.requests),
            3_600_000 => write!(f, "{}/h", self.requests),
            ms => write!(f, "{}/{ms}ms", self.requests),
        }
    }
}
