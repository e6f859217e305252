//! One endpoint's health: the active check's thresholds and the passive check's
//! ejection. Pure state machines: results and counter samples come in with the time, so
//! tests drive a fake clock.

use std::time::{Duration, Instant};

use pipelines::spec::{ActiveCheckSpec, PassiveCheckSpec};

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether it passed.
    pub passed: bool,
    /// Why, for status (`"DNS rcode SERVFAIL"`, `"timeout"`, `"ICMP port unreachable"`).
    pub reason: String,
    /// When it ended.
    pub at: Instant,
}

/// The active check's view of one endpoint: healthy until `unhealthy_threshold` failures
/// in a row, then unhealthy until `healthy_threshold` passes in a row.
///
/// A new endpoint starts healthy (fail open): a reload or a scaled-up Service must not
/// take traffic away before the first probe has had a chance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveState {
    /// The verdict.
    pub healthy: bool,
    /// Passes in a row (0 after a failure).
    pub passes: u32,
    /// Failures in a row (0 after a pass).
    pub failures: u32,
    /// The last probe's result.
    pub last: Option<ProbeResult>,
}

impl Default for ActiveState {
    fn default() -> Self {
        ActiveState {
            healthy: true,
            passes: 0,
            failures: 0,
            last: None,
        }
    }
}

impl ActiveState {
    /// Records a probe result; returns whether the verdict changed.
    pub fn record(&mut self, spec: &ActiveCheckSpec, result: ProbeResult) -> bool {
        let before = self.healthy;
        if result.passed {
            self.failures = 0;
            self.passes = self.passes.saturating_add(1);
            if !self.healthy && self.passes >= spec.healthy_threshold {
                self.healthy = true;
            }
        } else {
            self.passes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.healthy && self.failures >= spec.unhealthy_threshold {
                self.healthy = false;
            }
        }
        self.last = Some(result);
        before != self.healthy
    }
}

/// What the workers counted for one endpoint (summed over listeners), as running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassiveSample {
    /// ICMP port or host unreachable about its flows.
    pub icmp_unreachable: u64,
    /// Replies it sent.
    pub reply_packets: u64,
}

/// The passive check's view of one endpoint.
///
/// Counters arrive as running totals a few times a second; only their growth counts. A
/// period with any reply resets the failure count: the endpoint answers (the workers'
/// counters do not say in which order errors and replies came within a period, and an
/// endpoint that answers is not ejected on a guess). Otherwise each ICMP unreachable is
/// one more failure in a row. At `consecutive_failures` the endpoint is ejected, if the
/// Service's ejection cap allows (else it waits, its count kept, until a slot frees), for
/// `n × base_ejection_time`, where `n` counts ejections in a row: an ejection that
/// starts less than `base_ejection_time` after the previous one ended continues the row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassiveState {
    /// ICMP unreachable errors in a row.
    pub failures: u64,
    /// Ejected until then.
    pub ejected_until: Option<Instant>,
    /// When the last ejection ended (for the row).
    pub last_ejection_end: Option<Instant>,
    /// Ejections in a row (the multiplier of the next one).
    pub ejections_in_a_row: u32,
    /// The totals last seen; `None` until the first sample (the baseline).
    seen: Option<PassiveSample>,
}

/// What a passive sample did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassiveStep {
    /// Nothing that changes health.
    Nothing,
    /// The ejection time is over: the endpoint is back.
    Returned,
    /// The failure count reached the threshold: eject, if the cap allows
    /// ([`PassiveState::eject`]).
    WantsEjection,
}

impl PassiveState {
    /// Whether the endpoint is ejected.
    pub fn ejected(&self) -> bool {
        self.ejected_until.is_some()
    }

    /// Takes the totals `now`; returns what the caller must act on.
    pub fn sample(
        &mut self,
        spec: &PassiveCheckSpec,
        totals: PassiveSample,
        now: Instant,
    ) -> PassiveStep {
        let Some(seen) = self.seen.replace(totals) else {
            return PassiveStep::Nothing;
        };
        // Totals only grow; a shrink (counters of a removed listener) counts as none.
        let errors = totals
            .icmp_unreachable
            .saturating_sub(seen.icmp_unreachable);
        let replies = totals.reply_packets.saturating_sub(seen.reply_packets);
        if let Some(until) = self.ejected_until {
            if now < until {
                return PassiveStep::Nothing;
            }
            self.ejected_until = None;
            self.last_ejection_end = Some(until);
            self.failures = 0;
            return PassiveStep::Returned;
        }
        if replies > 0 {
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(errors);
        }
        if self.failures >= u64::from(spec.consecutive_failures) {
            PassiveStep::WantsEjection
        } else {
            PassiveStep::Nothing
        }
    }

    /// Ejects the endpoint at `now`; returns for how long.
    pub fn eject(&mut self, spec: &PassiveCheckSpec, now: Instant) -> Duration {
        let continues = self
            .last_ejection_end
            .is_some_and(|end| now.saturating_duration_since(end) < spec.base_ejection_time);
        self.ejections_in_a_row = if continues {
            self.ejections_in_a_row.saturating_add(1)
        } else {
            1
        };
        let time = spec
            .base_ejection_time
            .saturating_mul(self.ejections_in_a_row);
        self.ejected_until = Some(now + time);
        self.failures = 0;
        time
    }
}

/// How many endpoints of `endpoints` may be ejected at once: `percent` of them rounded
/// down, but at least one unless `percent` is 0.
pub fn ejection_cap(percent: u8, endpoints: usize) -> usize {
    if percent == 0 {
        return 0;
    }
    (endpoints * usize::from(percent) / 100).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipelines::spec::ProbeSpec;

    fn active(healthy: u32, unhealthy: u32) -> ActiveCheckSpec {
        ActiveCheckSpec {
            probe: ProbeSpec::Udp {
                send: b"x".to_vec(),
                expect: None,
            },
            interval: Duration::from_secs(3),
            timeout: Duration::from_secs(1),
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
            port: None,
        }
    }

    fn result(passed: bool, at: Instant) -> ProbeResult {
        ProbeResult {
            passed,
            reason: String::new(),
            at,
        }
    }

    #[test]
    fn active_thresholds() {
        let t = Instant::now();
        let spec = active(2, 3);
        let mut s = ActiveState::default();
        assert!(s.healthy);
        // Two failures, a pass, then three failures: unhealthy only at the third in a row.
        assert!(!s.record(&spec, result(false, t)));
        assert!(!s.record(&spec, result(false, t)));
        assert!(!s.record(&spec, result(true, t)));
        assert!(!s.record(&spec, result(false, t)));
        assert!(!s.record(&spec, result(false, t)));
        assert!(s.healthy);
        assert!(s.record(&spec, result(false, t)));
        assert!(!s.healthy);
        assert_eq!(s.failures, 3);
        // One pass is not enough to come back with healthy_threshold 2; a failure resets.
        assert!(!s.record(&spec, result(true, t)));
        assert!(!s.record(&spec, result(false, t)));
        assert!(!s.record(&spec, result(true, t)));
        assert!(s.record(&spec, result(true, t)));
        assert!(s.healthy);
        assert_eq!((s.passes, s.failures), (2, 0));
    }

    fn passive(failures: u32, base_s: u64) -> PassiveCheckSpec {
        PassiveCheckSpec {
            consecutive_failures: failures,
            base_ejection_time: Duration::from_secs(base_s),
            max_ejection_percent: 10,
        }
    }

    fn totals(icmp: u64, replies: u64) -> PassiveSample {
        PassiveSample {
            icmp_unreachable: icmp,
            reply_packets: replies,
        }
    }

    #[test]
    fn passive_counts_errors_in_a_row_and_replies_reset() {
        let t = Instant::now();
        let spec = passive(3, 30);
        let mut s = PassiveState::default();
        // The first sample is the baseline, whatever it holds.
        assert_eq!(s.sample(&spec, totals(100, 5), t), PassiveStep::Nothing);
        assert_eq!(s.sample(&spec, totals(102, 5), t), PassiveStep::Nothing);
        assert_eq!(s.failures, 2);
        // A period with replies resets, even with errors in it.
        assert_eq!(s.sample(&spec, totals(104, 6), t), PassiveStep::Nothing);
        assert_eq!(s.failures, 0);
        assert_eq!(s.sample(&spec, totals(105, 6), t), PassiveStep::Nothing);
        assert_eq!(
            s.sample(&spec, totals(107, 6), t),
            PassiveStep::WantsEjection
        );
        // A shrinking total (a listener removed) is no growth.
        let mut fresh = PassiveState::default();
        fresh.sample(&spec, totals(10, 10), t);
        assert_eq!(fresh.sample(&spec, totals(0, 0), t), PassiveStep::Nothing);
        assert_eq!(fresh.failures, 0);
    }

    #[test]
    fn ejection_lasts_n_times_the_base_in_a_row() {
        let t0 = Instant::now();
        let spec = passive(1, 30);
        let s30 = Duration::from_secs(30);
        let mut s = PassiveState::default();
        s.sample(&spec, totals(0, 0), t0);
        assert_eq!(
            s.sample(&spec, totals(1, 0), t0),
            PassiveStep::WantsEjection
        );
        assert_eq!(s.eject(&spec, t0), s30);
        assert!(s.ejected());
        // Errors while ejected change nothing; the end of the time brings it back.
        assert_eq!(
            s.sample(&spec, totals(5, 0), t0 + Duration::from_secs(29)),
            PassiveStep::Nothing
        );
        let t1 = t0 + s30;
        assert_eq!(s.sample(&spec, totals(5, 0), t1), PassiveStep::Returned);
        assert!(!s.ejected());
        // Ejected again soon after: twice as long.
        assert_eq!(
            s.sample(&spec, totals(6, 0), t1),
            PassiveStep::WantsEjection
        );
        assert_eq!(s.eject(&spec, t1), 2 * s30);
        let t2 = t1 + 2 * s30;
        assert_eq!(s.sample(&spec, totals(6, 0), t2), PassiveStep::Returned);
        // After a quiet base time the row starts over.
        let t3 = t2 + s30;
        assert_eq!(
            s.sample(&spec, totals(7, 0), t3),
            PassiveStep::WantsEjection
        );
        assert_eq!(s.eject(&spec, t3), s30);
    }

    #[test]
    fn ejection_cap_rounds_down_but_allows_one() {
        assert_eq!(ejection_cap(0, 100), 0);
        assert_eq!(ejection_cap(10, 3), 1);
        assert_eq!(ejection_cap(10, 25), 2);
        assert_eq!(ejection_cap(50, 5), 2);
        assert_eq!(ejection_cap(100, 5), 5);
        assert_eq!(ejection_cap(10, 0), 1);
    }
}
