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
    /// Tokens added per second.
    fn refill_rate(self) -> f64 {
        f64::from(self.requests) / self.period.as_secs_f64().max(1e-9)
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
