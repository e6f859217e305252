//! A worker's proof of life: the time of its last poll round and the tables generation it
//! runs, published with two relaxed atomic stores per round and read by the management
//! thread (`/healthz`, the announcement gate).
//!
//! A flag set at start would say nothing about a worker that is stuck in a loop or
//! blocked; a timestamp refreshed by every round does. The time is kept as signed
//! nanoseconds from the heartbeat's own origin (a clock may be read before it), with
//! `i64::MIN` meaning "never polled".

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NEVER: i64 = i64::MIN;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// One worker's heartbeat. Shared as an `Arc` between the worker (writer) and whoever
/// checks it (readers).
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    /// Nanoseconds from `origin` to the last round; [`NEVER`] before the first.
    last_round: AtomicI64,
    /// Generation of the tables the worker runs (`Tables::generation`).
    generation: AtomicU64,
}

impl Heartbeat {
    /// A heartbeat that has never beaten, timed from `origin` (any instant not later than
    /// the first beat; the appliance uses its start).
    pub fn new(origin: Instant) -> Arc<Heartbeat> {
        Arc::new(Heartbeat {
            origin,
            last_round: AtomicI64::new(NEVER),
            generation: AtomicU64::new(0),
        })
    }

    /// A poll round ran at `clock`.
    pub fn beat(&self, clock: Instant) {
        let offset = match clock.checked_duration_since(self.origin) {
            Some(after) => nanos(after),
            // Never NEVER: i64::MIN + 1 at the most negative.
            None => -nanos(self.origin.duration_since(clock)),
        };
        self.last_round.store(offset, Ordering::Relaxed);
    }

    /// The worker now runs tables of generation `generation`.
    pub fn adopted(&self, generation: u64) {
        self.generation.store(generation, Ordering::Relaxed);
    }

    /// How long ago, seen at `now`, the last round ran; `None` before the first round.
    /// A round stamped after `now` (clocks read on different threads) counts as age 0.
    pub fn age(&self, now: Instant) -> Option<Duration> {
        let offset = self.last_round.load(Ordering::Relaxed);
        if offset == NEVER {
            return None;
        }
        let span = Duration::from_nanos(offset.unsigned_abs());
        let at = if offset >= 0 {
            self.origin.checked_add(span)
        } else {
            self.origin.checked_sub(span)
        }?;
        Some(now.saturating_duration_since(at))
    }

    /// The tables generation the worker last reported (0 before its first round).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_follows_the_last_round_on_a_driven_clock() {
        let t0 = Instant::now();
        let hb = Heartbeat::new(t0);
        assert_eq!(hb.age(t0 + Duration::from_secs(5)), None, "never polled");
        hb.beat(t0 + Duration::from_millis(100));
        assert_eq!(
            hb.age(t0 + Duration::from_millis(350)),
            Some(Duration::from_millis(250))
        );
        hb.beat(t0 + Duration::from_millis(400));
        assert_eq!(
            hb.age(t0 + Duration::from_millis(400)),
            Some(Duration::ZERO)
        );
        // A reader whose clock is behind the worker's sees age 0, not a wrap.
        assert_eq!(
            hb.age(t0 + Duration::from_millis(300)),
            Some(Duration::ZERO)
        );
        // A beat at the origin itself is a beat.
        let hb = Heartbeat::new(t0);
        hb.beat(t0);
        assert_eq!(
            hb.age(t0 + Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn generation_is_what_the_worker_adopted() {
        let hb = Heartbeat::new(Instant::now());
        assert_eq!(hb.generation(), 0);
        hb.adopted(7);
        assert_eq!(hb.generation(), 7);
    }
}
