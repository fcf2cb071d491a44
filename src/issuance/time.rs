//! A UTC instant with millisecond precision, written as RFC 3339 (`2025-01-31T12:00:00Z`).

use crate::civil::{civil_from_days, days_from_civil};
use core::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, UTC, in milliseconds since the Unix epoch.
///
/// Displays and serializes as RFC 3339 (`2025-01-31T12:00:00Z`, with `.123` when the
/// milliseconds are not zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Now, from the system clock.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp(ms)
    }

    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// This instant plus `d` (saturating).
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// Parses RFC 3339 / ISO 8601 as Python's `datetime.isoformat()` writes it:
    /// `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]]` followed by `Z`, `±HH:MM` or nothing (then UTC).
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.trim().as_bytes();
        let num = |s: &[u8]| -> Option<i64> {
            if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
                return None;
            }
            s.iter().try_fold(0i64, |a, &c| {
                a.checked_mul(10)?.checked_add(i64::from(c - b'0'))
            })
        };
        if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
        if b[13] != b':' {
            return None;
        }
        let (hour, minute) = (num(&b[11..13])?, num(&b[14..16])?);
        let mut i = 16;
        let mut second = 0;
        let mut millis = 0;
        if b.get(i) == Some(&b':') {
            second = num(b.get(i + 1..i + 3)?)?;
            i += 3;
            if b.get(i) == Some(&b'.') {
                let start = i + 1;
                i = start;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                let frac = &b[start..i];
                if frac.is_empty() {
                    return None;
                }
                let mut m = 0;
                for k in 0..3 {
                    m = m * 10 + frac.get(k).map_or(0, |&c| i64::from(c - b'0'));
                }
                millis = m;
            }
        }
        let offset_min = match &b[i..] {
            [] | [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let v = num(&[*h1, *h2])? * 60 + num(&[*m1, *m2])?;
                if *sign == b'-' {
                    -v
                } else {
                    v
                }
            }
            _ => return None,
        };
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
        Some(Timestamp(secs * 1000 + millis))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        let t = Timestamp::parse("2025-03-01T12:34:56.789+00:00").unwrap();
        assert_eq!(t.to_string(), "2025-03-01T12:34:56.789Z");
        assert_eq!(Timestamp::parse(&t.to_string()), Some(t));
        assert_eq!(
            Timestamp::parse("2025-03-01T14:34:56.789123+02:00"),
            Some(t)
        );
        assert_eq!(
            Timestamp::parse("2024-02-29 00:00:00").unwrap().0,
            1_709_164_800_000
        );
        for bad in [
            "",
            "2025-13-01T00:00:00Z",
            "2025-01-01",
            "2025-01-01T00:00:00+0",
            "x",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }
}
