//! The new-flow rate guard: a per-worker token bucket.
//!
//! Design note: above the configured rate, new flows are not inserted (the caller serves
//! them statelessly), so a flood of new sources cannot evict established flows. Tokens
//! are scaled by 1e9 so the refill is exact in nanoseconds without floating point; a
//! burst of up to one second's worth passes.

use super::Timestamp;

/// Token bucket for new flows; tokens are scaled by 1e9 so refill is exact in ns.
#[derive(Debug)]
pub(super) struct NewFlowGuard {
    rate: u64,
    tokens: u64,
    last: Timestamp,
}

const NS: u64 = 1_000_000_000;

impl NewFlowGuard {
    pub(super) fn new(rate: u32) -> Self {
        NewFlowGuard {
            rate: u64::from(rate),
            tokens: u64::from(rate) * NS,
            last: 0,
        }
    }

    pub(super) fn allow(&mut self, now: Timestamp) -> bool {
        if self.rate == 0 {
            return true;
        }
        let elapsed = now.saturating_sub(self.last).min(NS);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate * NS);
        if self.tokens >= NS {
            self.tokens -= NS;
            true
        } else {
            false
        }
    }
}
