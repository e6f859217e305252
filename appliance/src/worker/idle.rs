//! Adaptive idle back-off: how long a worker sleeps when its queues stay empty.
//!
//! A worker that received a frame within its spin window (half the cap, at most [`SPIN`])
//! keeps polling without pause, so under load (with the default cap of 500 µs: a frame at
//! least every 100 µs, ≥ 10 kpps) it never sleeps and its latency is that of pure polling.
//! After that the sleep starts at [`FIRST_SLEEP`] and doubles with
//! every further empty round up to the cap (`workers.idle_backoff_us`): a worker idle for
//! longer wakes once per cap. After [`DEEP_IDLE`] without a frame the cap is 4 times larger
//! (at most [`DEEP_CAP`], never below the configured cap): each wake-up costs ≈ 10–25 µs
//! of the core (the timer, the switch, a poll of every queue), so a long-idle worker wakes
//! less, and only the first datagram after such a silence waits longer. Any received frame
//! starts over.
//!
//! Pure bookkeeping (the caller passes the time and does the sleeping), so tests drive it
//! with a made-up clock.

use std::time::{Duration, Instant};

/// The longest a worker polls without pause after its last received frame (the window is
/// half the cap up to this, so a short cap, chosen to yield a shared core quickly, also
/// spins briefly).
pub const SPIN: Duration = Duration::from_micros(100);
/// Without a frame for this long, a worker is deeply idle: its cap grows ([`DEEP_CAP`]).
pub const DEEP_IDLE: Duration = Duration::from_secs(1);
/// The deep-idle cap: 4 times the configured cap, at most this (and never below the
/// configured cap), so heartbeats stay far inside their timeout.
pub const DEEP_CAP: Duration = Duration::from_millis(2);
/// The first sleep of an idle stretch; it doubles up to the cap.
pub const FIRST_SLEEP: Duration = Duration::from_micros(1);
/// The timer slack a backing-off worker asks for (the kernel's default, 50 µs, would turn
/// every short sleep into 50 µs or more).
pub const TIMER_SLACK_NS: u64 = 1_000;

/// The back-off state of one worker.
#[derive(Clone, Debug)]
pub struct IdleBackoff {
    cap: Duration,
    deep_cap: Duration,
    spin: Duration,
    last_rx: Instant,
    next: Duration,
}

impl IdleBackoff {
    /// Back-off up to `cap` per sleep, as if a frame had arrived at `now`;
    /// `Duration::ZERO` never sleeps (pure polling).
    pub fn new(cap: Duration, now: Instant) -> IdleBackoff {
        IdleBackoff {
            cap,
            deep_cap: cap.saturating_mul(4).min(DEEP_CAP).max(cap),
            spin: SPIN.min(cap / 2),
            last_rx: now,
            next: FIRST_SLEEP.min(cap),
        }
    }

    /// Whether it ever sleeps.
    pub fn enabled(&self) -> bool {
        !self.cap.is_zero()
    }

    /// After a round that ended at `now` and received `received` frames: how long to sleep,
    /// if at all.
    pub fn after_round(&mut self, received: usize, now: Instant) -> Option<Duration> {
        if received > 0 {
            self.last_rx = now;
            self.next = FIRST_SLEEP.min(self.cap);
            return None;
        }
        let quiet = now.saturating_duration_since(self.last_rx);
        if !self.enabled() || quiet < self.spin {
            return None;
        }
        let cap = if quiet >= DEEP_IDLE {
            self.deep_cap
        } else {
            self.cap
        };
        let sleep = self.next.min(cap);
        self.next = self.next.saturating_mul(2).min(cap);
        Some(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Empty rounds `step` apart from `from`; what each answered.
    fn empty_rounds(
        b: &mut IdleBackoff,
        from: Instant,
        step: Duration,
        n: u32,
    ) -> Vec<Option<Duration>> {
        (1..=n).map(|i| b.after_round(0, from + step * i)).collect()
    }

    #[test]
    fn zero_cap_never_sleeps() {
        let t0 = Instant::now();
        let mut b = IdleBackoff::new(Duration::ZERO, t0);
        assert!(!b.enabled());
        let s = empty_rounds(&mut b, t0, Duration::from_millis(1), 100);
        assert!(s.iter().all(Option::is_none));
    }

    #[test]
    fn polls_through_the_spin_then_doubles_up_to_the_cap() {
        let t0 = Instant::now();
        let mut b = IdleBackoff::new(Duration::from_micros(200), t0);
        // Rounds every 10 µs: nine inside the 100 µs spin window, then sleeps.
        let s = empty_rounds(&mut b, t0, Duration::from_micros(10), 20);
        assert!(s[..9].iter().all(Option::is_none), "{s:?}");
        let us: Vec<u128> = s[9..]
            .iter()
            .map(|d| d.expect("sleeps").as_micros())
            .collect();
        assert_eq!(us, [1, 2, 4, 8, 16, 32, 64, 128, 200, 200, 200]);
    }

    #[test]
    fn a_short_cap_spins_for_half_of_it() {
        let t0 = Instant::now();
        let mut b = IdleBackoff::new(Duration::from_micros(20), t0);
        let s = empty_rounds(&mut b, t0, Duration::from_micros(1), 14);
        assert!(s[..9].iter().all(Option::is_none), "{s:?}");
        let us: Vec<u128> = s[9..]
            .iter()
            .map(|d| d.expect("sleeps").as_micros())
            .collect();
        assert_eq!(us, [1, 2, 4, 8, 16]);
    }

    #[test]
    fn a_received_frame_starts_over() {
        let t0 = Instant::now();
        let mut b = IdleBackoff::new(Duration::from_micros(200), t0);
        empty_rounds(&mut b, t0, Duration::from_micros(50), 20);
        let t1 = t0 + Duration::from_millis(2);
        assert_eq!(b.after_round(3, t1), None);
        assert_eq!(b.after_round(0, t1 + SPIN / 2), None);
        assert_eq!(b.after_round(0, t1 + SPIN), Some(FIRST_SLEEP));
    }

    #[test]
    fn frames_closer_than_the_spin_never_sleep() {
        let t0 = Instant::now();
        let mut b = IdleBackoff::new(Duration::from_micros(200), t0);
        for i in 1..1000u32 {
            let t = t0 + Duration::from_micros(10) * i;
            let received = usize::from(i.is_multiple_of(9));
            assert_eq!(b.after_round(received, t), None, "round {i}");
        }
    }

    #[test]
    fn a_long_silence_quadruples_the_cap_up_to_the_deep_cap() {
        let t0 = Instant::now();
        let mut b = IdleBackoff::new(Duration::from_micros(500), t0);
        let s = empty_rounds(&mut b, t0, Duration::from_millis(1), 999);
        assert!(s[10..]
            .iter()
            .all(|d| *d == Some(Duration::from_micros(500))));
        let s = empty_rounds(&mut b, t0 + DEEP_IDLE, Duration::from_millis(1), 4);
        let us: Vec<u128> = s.iter().map(|d| d.expect("sleeps").as_micros()).collect();
        assert_eq!(us, [500, 1000, 2000, 2000]);
        // A frame: back to the configured cap.
        let t1 = t0 + DEEP_IDLE * 2;
        assert_eq!(b.after_round(1, t1), None);
        let s = empty_rounds(&mut b, t1, Duration::from_millis(1), 20);
        assert!(s.iter().flatten().all(|d| *d <= Duration::from_micros(500)));
        // A cap at or above the deep cap stays as configured.
        let mut b = IdleBackoff::new(Duration::from_millis(5), t0);
        let s = empty_rounds(&mut b, t0 + DEEP_IDLE, Duration::from_millis(1), 30);
        assert_eq!(s.iter().flatten().max(), Some(&Duration::from_millis(5)));
    }

    #[test]
    fn a_cap_below_the_first_sleep_is_the_sleep() {
        let t0 = Instant::now();
        let mut b = IdleBackoff::new(Duration::from_nanos(300), t0);
        let s = empty_rounds(&mut b, t0, Duration::from_micros(1), 3);
        assert_eq!(s, [Some(Duration::from_nanos(300)); 3]);
    }
}
