//! Token bucket for ICMP errors (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8): a flood of rejected
//! flows, expiring TTLs or oversized datagrams must not turn the appliance into a
//! reflector.

use std::time::Instant;

/// Refills continuously at `rate` tokens per second up to `burst`; time only comes from
/// the caller, so tests drive it.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate_per_sec: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate_per_sec),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: None,
        }
    }

    /// Whether the bucket would be full at `now` (nothing taken for `burst / rate`).
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        let elapsed = self.last.map_or(0.0, |last| {
            now.saturating_duration_since(last).as_secs_f64()
        });
        self.tokens + elapsed * self.rate >= self.burst
    }

    /// Takes one token if there is one.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        // Never move backwards: an earlier `now` refills nothing.
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refill_at_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3);
        assert!((0..3).all(|_| bucket.allow(t0)));
        assert!(!bucket.allow(t0));
        // 10/s: one token per 100 ms.
        assert!(!bucket.allow(t0 + Duration::from_millis(50)));
        assert!(bucket.allow(t0 + Duration::from_millis(100)));
        assert!(!bucket.allow(t0 + Duration::from_millis(100)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(100);
        assert_eq!((0..10).filter(|_| bucket.allow(later)).count(), 3);
    }

    #[test]
    fn zero_rate_and_burst_never_allows() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(0, 0);
        assert!(!bucket.allow(t0));
        assert!(!bucket.allow(t0 + Duration::from_secs(10)));
    }
}
