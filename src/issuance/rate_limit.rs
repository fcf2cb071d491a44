//! Per-key rate limits: the public [`RateLimit`] and the token bucket that enforces it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A per-key rate limit: at most `requests` per `period`, as a token bucket (bursts up to
/// `requests`, refilled evenly).
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
    /// The bucket size.
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
    /// Tokens added per second.
    fn refill_rate(self) -> f64 {
        f64::from(self.requests) / self.period.as_secs_f64().max(1e-9)
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

/// Per-key token bucket.
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Instant,
    limit: RateLimit,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Bucket {
            tokens: f64::from(limit.requests()),
            last: Instant::now(),
            limit,
        }
    }

    /// Tokens there would be at `now`, at most the bucket size.
    fn tokens_at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * self.limit.refill_rate()).min(f64::from(self.limit.requests()))
    }

    /// Takes a token, or says how long until one is there.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.tokens = self.tokens_at(now);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.limit.refill_rate();
            Err(Duration::from_secs_f64(wait.clamp(0.001, 1e9)))
        }
    }

    /// The limit it enforces.
    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Whether the bucket is full by `now`: forgetting it then changes nothing.
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        self.tokens_at(now) >= f64::from(self.limit.requests())
    }
}

/// A key's token bucket, shared by every cache entry of the key.
pub(crate) type SharedBucket = Arc<Mutex<Bucket>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills() {
        let mut b = Bucket::new(RateLimit::new(2, Duration::from_secs(1)));
        let t = Instant::now();
        assert!(b.take(t).is_ok());
        assert!(b.take(t).is_ok());
        let wait = b.take(t).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(b.take(t + Duration::from_millis(600)).is_ok());
        assert!(!b.is_full(t + Duration::from_millis(600)));
        assert!(b.is_full(t + Duration::from_secs(5)));
    }
}
