//! When to try a Replicate request again, and how long to wait first (the official Go client's
//! backoff, and Replicate's `Retry-After` when it sends one).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::RETRY_AFTER_CAP;

/// How reads (and throttled creates) are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// The first backoff; doubles with every retry.
    pub base_delay: Duration,
    /// No backoff is longer. A read whose `Retry-After` asks for more gives up at once instead of
    /// sleeping (the caller's poll loop comes back later).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// The Go client's numbers: 5 attempts, 0.5 s doubling.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 = the first retry): exponential, capped, with
    /// "equal jitter" (half fixed, half random) so throttled workers spread out.
    pub(super) fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let full = self.base_delay.saturating_mul(1u32 << exponent).min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(random_fraction())
    }
}

/// A uniformly random number in [0, 1) without a `rand` dependency (v4 UUIDs are random).
fn random_fraction() -> f64 {
    let bits = (uuid::Uuid::new_v4().as_u128() >> 75) as u64; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
}

/// `Retry-After` as delta seconds or an HTTP date, capped at a minute; a date in the past means
/// "now".
pub(super) fn retry_after_of(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(raw.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
        let at = SystemTime::from(at.with_timezone(&chrono::Utc));
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(RETRY_AFTER_CAP))
}
