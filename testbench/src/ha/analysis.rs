//! From the session client's record and the driver's event times to the figures of the
//! `HA` line. Pure functions, so the definitions are tested without namespaces.
//!
//! Definitions (README.md, "Scale out", repeats them):
//! - A request is **answered** when its echo reply arrived within the client's reply
//!   timeout (1 s).
//! - The **failover window** runs from the SIGKILL to [`FAILOVER_MARGIN`] after the
//!   router's route lost the killed appliance's next hop; requests of every round that
//!   overlaps it may be lost (they were sent towards the dead appliance) and are counted
//!   apart.
//! - A session is **answered** (the `answered=` count) when every request it sent from the
//!   start of the steady phase to the end of the run, outside the failover window, was
//!   answered: steady state, after the kill, across the join and through the drain.
//! - A session **changed backend** at an event (kill, join) when a request it sent in the
//!   settled window after the event was answered by a backend other than the one that
//!   answered its last request before the event. The windows: after the kill, from the
//!   end of the failover window to the join; after the join, from [`FAILOVER_MARGIN`]
//!   after the new next hop appeared to the drain.
//! - A session **changed source** likewise when the source address its backend saw
//!   changed (full NAT: another appliance's SNAT address and port).
//! - **Drain lost**: requests sent from the drain command to the end of the run (rounds
//!   overlapping that span) that were not answered.

use std::ops::Range;

use super::sessions::{SessionsRecord, UNANSWERED};

/// How long after the router's route change requests still count as part of the change
/// (the client-to-router path and the polling granularity are far below it).
pub const FAILOVER_MARGIN_US: u64 = 250_000;

/// [`FAILOVER_MARGIN_US`] as a duration, for documentation and printing.
pub const FAILOVER_MARGIN: std::time::Duration =
    std::time::Duration::from_micros(FAILOVER_MARGIN_US);

/// The driver's events, wall clock in µs since the Unix epoch ([`super::sessions::unix_us`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Start of the steady phase (the sessions are warm).
    pub steady_from: u64,
    /// End of the steady phase.
    pub steady_to: u64,
    /// The SIGKILL.
    pub kill_at: u64,
    /// The router's route no longer had the killed appliance's next hop.
    pub route_gone_at: u64,
    /// The fourth appliance was started.
    pub join_at: u64,
    /// The router's route was last read without its next hop (the routes changed after).
    pub join_unrouted_at: u64,
    /// The router's route had its next hop.
    pub joined_at: u64,
    /// The drain command was sent.
    pub drain_at: u64,
    /// The appliance reported `drained`.
    pub drained_at: u64,
    /// The client was told to stop.
    pub end: u64,
}

/// What the record says about one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Sessions.
    pub sessions: usize,
    /// Sessions with every scored request answered.
    pub answered: usize,
    /// Requests scored (steady phase to end, outside the failover window).
    pub scored_requests: u64,
    /// Of those, unanswered.
    pub scored_lost: u64,
    /// Unanswered requests in the failover window.
    pub failover_lost: u64,
    /// Requests in the failover window.
    pub failover_requests: u64,
    /// Sessions that changed backend at the kill.
    pub backend_changed_kill: usize,
    /// Sessions that changed backend at the join.
    pub backend_changed_join: usize,
    /// Sessions whose backend saw another source address after the kill.
    pub source_changed_kill: usize,
    /// Sessions whose backend saw another source address after the join.
    pub source_changed_join: usize,
    /// Unanswered requests from the drain command to the end.
    pub drain_lost: u64,
    /// Requests from the drain command to the end.
    pub drain_requests: u64,
    /// Requests in the steady phase.
    pub steady_requests: u64,
    /// Of those, unanswered.
    pub steady_lost: u64,
    /// Rounds in the settled windows after the kill and after the join.
    pub after_kill_rounds: usize,
    /// See `after_kill_rounds`.
    pub after_join_rounds: usize,
}

/// Rounds entirely inside `[from, to)`.
pub fn rounds_within(record: &SessionsRecord, from: u64, to: u64) -> Range<usize> {
    let start = record.rounds.partition_point(|r| r.first_us < from);
    let end = record
        .rounds
        .partition_point(|r| r.last_us != 0 && r.last_us < to);
    start..end.max(start)
}

/// Rounds with at least one request inside `[from, to)`.
pub fn rounds_overlapping(record: &SessionsRecord, from: u64, to: u64) -> Range<usize> {
    let start = record
        .rounds
        .partition_point(|r| r.last_us != 0 && r.last_us < from);
    let end = record.rounds.partition_point(|r| r.first_us < to);
    start..end.max(start)
}

/// Unanswered requests and requests, over every session, in `rounds`.
pub fn lost_in(record: &SessionsRecord, rounds: &Range<usize>) -> (u64, u64) {
    let mut lost = 0u64;
    let mut total = 0u64;
    for s in &record.sessions {
        let answers = s.answers.as_bytes();
        for r in rounds.clone() {
            if let Some(&c) = answers.get(r) {
                total += 1;
                lost += u64::from(c == UNANSWERED);
            }
        }
    }
    (lost, total)
}

/// The last round before `t` in which session `s` was answered.
fn last_answered_before(record: &SessionsRecord, s: usize, t: u64) -> Option<usize> {
    let before = record
        .rounds
        .partition_point(|r| r.last_us != 0 && r.last_us < t);
    let answers = record.sessions[s].answers.as_bytes();
    (0..before.min(answers.len()))
        .rev()
        .find(|&r| answers[r] != UNANSWERED)
}

/// The source address session `s`'s backend saw in round `r` (the last change at or
/// before it).
fn peer_at(record: &SessionsRecord, s: usize, r: usize) -> Option<std::net::SocketAddr> {
    let r = u64::try_from(r).unwrap_or(u64::MAX);
    record.sessions[s]
        .peers
        .iter()
        .rev()
        .find(|(round, _)| *round <= r)
        .map(|(_, p)| *p)
}

/// Sessions whose backend (`.0`) and whose seen source address (`.1`) in `after` differ
/// from those of their last answer before `t`.
pub fn changed(record: &SessionsRecord, t: u64, after: &Range<usize>) -> (usize, usize) {
    let mut backend = 0;
    let mut source = 0;
    for s in 0..record.sessions.len() {
        let Some(before) = last_answered_before(record, s, t) else {
            continue;
        };
        let answers = record.sessions[s].answers.as_bytes();
        let was = answers[before];
        let was_peer = peer_at(record, s, before);
        let answered_after = after
            .clone()
            .filter(|&r| answers.get(r).is_some_and(|&c| c != UNANSWERED));
        let (mut b, mut p) = (false, false);
        for r in answered_after {
            b |= answers[r] != was;
            p |= peer_at(record, s, r) != was_peer;
        }
        backend += usize::from(b);
        source += usize::from(p);
    }
    (backend, source)
}

/// Unanswered requests per `bucket_us` of round start time from `from`: (offset of the
/// bucket in ms, unanswered, requests), only buckets with a loss.
pub fn losses_over_time(
    record: &SessionsRecord,
    from: u64,
    bucket_us: u64,
) -> Vec<(u64, u64, u64)> {
    let mut buckets: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
    for (r, round) in record.rounds.iter().enumerate() {
        if round.first_us < from {
            continue;
        }
        let b = (round.first_us - from) / bucket_us.max(1);
        let (lost, total) = lost_in(record, &(r..r + 1));
        let e = buckets.entry(b).or_default();
        e.0 += lost;
        e.1 += total;
    }
    buckets
        .into_iter()
        .filter(|(_, (lost, _))| *lost > 0)
        .map(|(b, (lost, total))| (b * bucket_us / 1000, lost, total))
        .collect()
}

/// Every figure of one run.
pub fn figures(record: &SessionsRecord, t: &Timeline) -> Figures {
    let failover_end = t.route_gone_at + FAILOVER_MARGIN_US;
    let failover = rounds_overlapping(record, t.kill_at, failover_end);
    let scored = rounds_within(record, t.steady_from, t.end);
    let mut answered = 0;
    let (mut scored_lost, mut scored_requests) = (0u64, 0u64);
    for s in &record.sessions {
        let answers = s.answers.as_bytes();
        let mut all = true;
        for r in scored.clone().filter(|r| !failover.contains(r)) {
            if let Some(&c) = answers.get(r) {
                scored_requests += 1;
                if c == UNANSWERED {
                    scored_lost += 1;
                    all = false;
                }
            }
        }
        answered += usize::from(all);
    }
    let (failover_lost, failover_requests) = lost_in(record, &failover);
    let after_kill = rounds_within(record, failover_end, t.join_at);
    let after_join = rounds_within(record, t.joined_at + FAILOVER_MARGIN_US, t.drain_at);
    let (backend_changed_kill, source_changed_kill) = changed(record, t.kill_at, &after_kill);
    // A session's "before" must precede the route change, which came after the last
    // read without the joiner (sessions sent between that read and `joined_at` may
    // already have gone to their new appliance).
    let (backend_changed_join, source_changed_join) =
        changed(record, t.join_unrouted_at, &after_join);
    let (drain_lost, drain_requests) =
        lost_in(record, &rounds_overlapping(record, t.drain_at, t.end));
    let (steady_lost, steady_requests) =
        lost_in(record, &rounds_within(record, t.steady_from, t.steady_to));
    Figures {
        sessions: record.sessions.len(),
        answered,
        scored_requests,
        scored_lost,
        failover_lost,
        failover_requests,
        backend_changed_kill,
        backend_changed_join,
        source_changed_kill,
        source_changed_join,
        drain_lost,
        drain_requests,
        steady_requests,
        steady_lost,
        after_kill_rounds: after_kill.len(),
        after_join_rounds: after_join.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::sessions::{Round, SessionRecord};

    const MS: u64 = 1000;

    /// Round i: first request at 1 s + 100 ms i, last 50 ms later.
    fn at(i: u64) -> u64 {
        1_000 * MS + 100 * MS * i
    }

    fn record(sessions: &[(&str, Vec<(u64, &str)>)]) -> SessionsRecord {
        let n = sessions[0].0.len();
        SessionsRecord {
            interval_ms: 100,
            reply_timeout_ms: 1000,
            rounds: (0..n as u64)
                .map(|i| Round {
                    first_us: at(i),
                    last_us: at(i) + 50 * MS,
                })
                .collect(),
            backends: vec!["b0".into(), "b1".into()],
            sessions: sessions
                .iter()
                .enumerate()
                .map(|(i, (a, peers))| SessionRecord {
                    port: 20_000 + u16::try_from(i).unwrap(),
                    answers: (*a).into(),
                    peers: peers
                        .iter()
                        .map(|(r, p)| (*r, format!("198.18.128.{p}:1").parse().unwrap()))
                        .collect(),
                })
                .collect(),
            ..SessionsRecord::default()
        }
    }

    #[test]
    fn round_windows() {
        let rec = record(&[("000000", vec![(0, "21")])]);
        assert_eq!(rounds_within(&rec, at(1), at(4)), 1..4);
        assert_eq!(rounds_within(&rec, at(1) + 1, at(4) + 49 * MS), 2..4);
        assert_eq!(
            rounds_overlapping(&rec, at(1) + 20 * MS, at(1) + 30 * MS),
            1..2
        );
        assert_eq!(
            rounds_overlapping(&rec, at(1) - 40 * MS, at(1) - 10 * MS),
            1..1
        );
        assert_eq!(rounds_overlapping(&rec, 0, u64::MAX), 0..6);
        assert_eq!(rounds_within(&rec, at(50), at(60)), 6..6);
    }

    #[test]
    fn losses_by_time() {
        let rec = record(&[("00.0..", vec![]), ("0000.0", vec![])]);
        // Buckets of 200 ms from round 0: rounds 0-1, 2-3, 4-5.
        assert_eq!(
            losses_over_time(&rec, at(0), 200 * MS),
            [(200, 1, 4), (400, 3, 4)]
        );
    }

    #[test]
    fn changed_backend_and_source() {
        // Session 0 keeps b0 and its source; 1 moves to b1; 2 keeps b0 with a new source
        // (another appliance's SNAT); 3 was never answered before the event.
        let rec = record(&[
            ("000000", vec![(0, "21")]),
            ("00.111", vec![(0, "21")]),
            ("000000", vec![(0, "21"), (3, "22")]),
            ("...000", vec![(3, "21")]),
        ]);
        // Event during round 2, settled from round 3.
        assert_eq!(changed(&rec, at(2) + 60 * MS, &(3..6)), (1, 1));
        // Session 1's last answer before an event in round 2 is round 1.
        assert_eq!(changed(&rec, at(2) + 10 * MS, &(2..6)), (1, 1));
        // Nothing after: nothing changed.
        assert_eq!(changed(&rec, at(2), &(6..6)), (0, 0));
    }

    #[test]
    fn figures_of_a_run() {
        // 20 rounds. Steady: rounds 0-1. Kill in round 2, route gone 20 ms later: the
        // failover window overlaps rounds 2 to 4 (margin 250 ms). Join in round 8, next
        // hop at round 9; drain from round 17.
        let base = "0".repeat(20);
        let with = |r: usize, c: u8| {
            let mut b = base.clone().into_bytes();
            b[r] = c;
            String::from_utf8(b).unwrap()
        };
        let lost_at_kill = with(4, b'.');
        let drained = with(19, b'.');
        let moved_at_join = "00000000000011111111".to_owned();
        let rec = record(&[
            (base.as_str(), vec![(0, "21")]),
            (lost_at_kill.as_str(), vec![(0, "21")]),
            (drained.as_str(), vec![(0, "21")]),
            (moved_at_join.as_str(), vec![(0, "21")]),
        ]);
        let t = Timeline {
            steady_from: at(0),
            steady_to: at(2),
            kill_at: at(2) + 10 * MS,
            route_gone_at: at(2) + 30 * MS,
            join_at: at(8),
            join_unrouted_at: at(9) - 10 * MS,
            joined_at: at(9),
            drain_at: at(17),
            drained_at: at(18),
            end: at(20),
        };
        let f = figures(&rec, &t);
        assert_eq!(f.sessions, 4);
        // Session 2 lost its last request, in the drain: not answered, and drain_lost=1.
        assert_eq!(f.answered, 3);
        assert_eq!(f.drain_lost, 1);
        assert_eq!(f.drain_requests, 4 * 3);
        assert_eq!((f.failover_lost, f.failover_requests), (1, 4 * 3));
        assert_eq!(f.scored_lost, 1);
        assert_eq!(f.scored_requests, 4 * 17);
        assert_eq!((f.steady_lost, f.steady_requests), (0, 4 * 2));
        // After the kill: rounds 5 to 7; after the join: from 9 + 250 ms, rounds 12 to 16.
        assert_eq!((f.after_kill_rounds, f.after_join_rounds), (3, 5));
        assert_eq!((f.backend_changed_kill, f.backend_changed_join), (0, 1));
        assert_eq!((f.source_changed_kill, f.source_changed_join), (0, 0));
    }
}
