//! Drain: stop attracting traffic, finish what is in flight, then say so.
//!
//! `udplb drain` / `POST /v1/drain` starts it: every VIP is withdrawn (the announcement
//! gate reads [`Drain::withdraws`]), and existing flows keep being forwarded until none is
//! left (each leaves by its idle timeout) or the deadline passes; then the state is
//! `drained`. Datagrams that still arrive while draining — routers converge within
//! milliseconds of the withdrawal, but some may be in flight or come from a router that is
//! slower — are served, new flows included: dropping them would lose traffic for nothing.
//! `udplb drain --cancel` / `DELETE /v1/drain` returns to serving and the VIPs are
//! announced again. The state is not finished before the withdrawal was handed to the
//! routing daemon (`withdrawn`), so `drained` means "gone from the routers" as far as this
//! appliance can tell.
//!
//! The clock is passed in (tests drive it).

use std::time::{Duration, Instant};

/// Longest drain deadline (`drain.deadline`, `POST /v1/drain?deadline=`).
pub const MAX_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// Why a drain finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainEnd {
    /// No flow was left.
    Idle,
    /// The deadline passed with flows left.
    Deadline,
}

/// Where the appliance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainState {
    /// Serving; VIPs announced when ready.
    Serving,
    /// VIPs withdrawn, flows still being served until `deadline`.
    Draining {
        /// When the drain began.
        since: Instant,
        /// When it ends at the latest.
        deadline: Instant,
    },
    /// Finished; VIPs stay withdrawn and whatever still arrives is still served.
    Drained {
        /// When the drain began.
        since: Instant,
        /// When it finished.
        at: Instant,
        /// Why it finished.
        end: DrainEnd,
    },
}

/// What `GET /v1/drain` (and the status) report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainReport {
    /// `serving`, `draining` or `drained`.
    pub state: &'static str,
    /// Flows in the flow tables.
    pub flows_remaining: u64,
    /// Milliseconds since the drain began (draining, drained).
    pub elapsed_ms: Option<u64>,
    /// Milliseconds until the deadline (draining).
    pub deadline_in_ms: Option<u64>,
    /// `idle` or `deadline` (drained).
    pub ended_by: Option<&'static str>,
}

impl DrainReport {
    /// The report as YAML (one mapping, stable field order).
    pub fn to_yaml(&self) -> String {
        let mut out = format!(
            "state: {}\nflows_remaining: {}\n",
            self.state, self.flows_remaining
        );
        if let Some(ms) = self.elapsed_ms {
            out.push_str(&format!("elapsed_ms: {ms}\n"));
        }
        if let Some(ms) = self.deadline_in_ms {
            out.push_str(&format!("deadline_in_ms: {ms}\n"));
        }
        if let Some(end) = self.ended_by {
            out.push_str(&format!("ended_by: {end}\n"));
        }
        out
    }
}

/// The drain state machine.
#[derive(Debug)]
pub struct Drain {
    state: DrainState,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            state: DrainState::Serving,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Drain {
    /// The current state.
    pub fn state(&self) -> DrainState {
        self.state
    }

    /// Whether VIPs must be withdrawn (draining or drained).
    pub fn withdraws(&self) -> bool {
        !matches!(self.state, DrainState::Serving)
    }

    /// Starts draining at `now` with `deadline` for the flows. While draining, a new
    /// request moves the deadline to `now + deadline`; a finished drain stays finished.
    pub fn start(&mut self, now: Instant, deadline: Duration) {
        self.state = match self.state {
            DrainState::Serving => DrainState::Draining {
                since: now,
                deadline: now + deadline,
            },
            DrainState::Draining { since, .. } => DrainState::Draining {
                since,
                deadline: now + deadline,
            },
            drained @ DrainState::Drained { .. } => drained,
        };
    }

    /// Back to serving (the VIPs are announced again when ready). Returns whether a drain
    /// was cancelled.
    pub fn cancel(&mut self) -> bool {
        let was = self.withdraws();
        self.state = DrainState::Serving;
        was
    }

    /// Advances at `now` with `flows` in the flow tables; `withdrawn` says whether the
    /// withdrawal has reached the routing daemon (always true without announcement).
    pub fn update(&mut self, now: Instant, flows: u64, withdrawn: bool) {
        if let DrainState::Draining { since, deadline } = self.state {
            let end = if now >= deadline {
                Some(DrainEnd::Deadline)
            } else if flows == 0 && withdrawn {
                Some(DrainEnd::Idle)
            } else {
                None
            };
            if let Some(end) = end {
                self.state = DrainState::Drained {
                    since,
                    at: now,
                    end,
                };
            }
        }
    }

    /// The report at `now` with `flows` in the flow tables.
    pub fn report(&self, now: Instant, flows: u64) -> DrainReport {
        match self.state {
            DrainState::Serving => DrainReport {
                state: "serving",
                flows_remaining: flows,
                elapsed_ms: None,
                deadline_in_ms: None,
                ended_by: None,
            },
            DrainState::Draining { since, deadline } => DrainReport {
                state: "draining",
                flows_remaining: flows,
                elapsed_ms: Some(millis(now.saturating_duration_since(since))),
                deadline_in_ms: Some(millis(deadline.saturating_duration_since(now))),
                ended_by: None,
            },
            DrainState::Drained { since, at, end } => DrainReport {
                state: "drained",
                flows_remaining: flows,
                elapsed_ms: Some(millis(at.saturating_duration_since(since))),
                deadline_in_ms: None,
                ended_by: Some(match end {
                    DrainEnd::Idle => "idle",
                    DrainEnd::Deadline => "deadline",
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn drains_until_no_flow_is_left() {
        let t0 = Instant::now();
        let mut d = Drain::default();
        assert!(!d.withdraws());
        assert_eq!(d.report(t0, 9).state, "serving");
        d.start(t0, 30 * S);
        assert!(d.withdraws());
        // Flows left: still draining.
        d.update(t0 + S, 3, true);
        let r = d.report(t0 + S, 3);
        assert_eq!(
            (r.state, r.flows_remaining, r.elapsed_ms, r.deadline_in_ms),
            ("draining", 3, Some(1000), Some(29_000))
        );
        // No flow left, but the withdrawal has not reached the daemon yet.
        d.update(t0 + 2 * S, 0, false);
        assert_eq!(d.report(t0 + 2 * S, 0).state, "draining");
        d.update(t0 + 3 * S, 0, true);
        assert_eq!(
            d.state(),
            DrainState::Drained {
                since: t0,
                at: t0 + 3 * S,
                end: DrainEnd::Idle
            }
        );
        let r = d.report(t0 + 10 * S, 0);
        assert_eq!(
            (r.state, r.elapsed_ms, r.ended_by),
            ("drained", Some(3000), Some("idle"))
        );
        assert!(d.withdraws(), "a drained appliance stays withdrawn");
        // New flows after the end do not undo it.
        d.update(t0 + 11 * S, 5, true);
        assert_eq!(d.report(t0 + 11 * S, 5).state, "drained");
        assert_eq!(
            d.report(t0 + 11 * S, 5).to_yaml(),
            "state: drained\nflows_remaining: 5\nelapsed_ms: 3000\nended_by: idle\n"
        );
    }

    #[test]
    fn the_deadline_ends_a_drain_with_flows_left() {
        let t0 = Instant::now();
        let mut d = Drain::default();
        d.start(t0, 5 * S);
        d.update(t0 + 4 * S, 100, true);
        assert_eq!(d.report(t0 + 4 * S, 100).state, "draining");
        d.update(t0 + 5 * S, 100, false);
        let r = d.report(t0 + 5 * S, 100);
        assert_eq!(
            (r.state, r.flows_remaining, r.ended_by),
            ("drained", 100, Some("deadline"))
        );
    }

    #[test]
    fn a_second_request_moves_the_deadline_and_cancel_serves_again() {
        let t0 = Instant::now();
        let mut d = Drain::default();
        d.start(t0, 5 * S);
        d.start(t0 + 2 * S, 10 * S);
        assert_eq!(
            d.state(),
            DrainState::Draining {
                since: t0,
                deadline: t0 + 12 * S
            }
        );
        d.update(t0 + 6 * S, 1, true);
        assert_eq!(d.report(t0 + 6 * S, 1).state, "draining");
        assert!(d.cancel());
        assert!(!d.withdraws());
        assert_eq!(d.report(t0 + 7 * S, 1).state, "serving");
        assert!(!d.cancel(), "nothing to cancel");
        // A finished drain stays finished until cancelled.
        d.start(t0, S);
        d.update(t0 + S, 0, true);
        d.start(t0 + 2 * S, 30 * S);
        assert_eq!(d.report(t0 + 2 * S, 0).state, "drained");
    }
}
